// Entry point: wires the routes to the page modules, keeps the navigation bar in step with
// the login state, and sends the user back to the login page whenever the token stops
// working.

import { clearToken, getToken, onUnauthenticated, rememberReturn } from './api.js';
import { Router, navigate } from './router.js';
import * as login from './pages/login.js';
import * as search from './pages/search.js';
import * as ci from './pages/ci.js';
import * as impact from './pages/impact.js';
import * as incidents from './pages/incidents.js';
import * as changes from './pages/changes.js';
import * as health from './pages/health.js';

const routes = [
  { pattern: ['login'], page: login, nav: 'login', public: true },
  { pattern: ['search'], page: search, nav: 'search' },
  { pattern: ['ci', ':id'], page: ci, nav: 'search' },
  { pattern: ['impact'], page: impact, nav: 'impact' },
  { pattern: ['incidents'], page: incidents, nav: 'incidents' },
  { pattern: ['incidents', ':id'], page: incidents, nav: 'incidents' },
  { pattern: ['changes'], page: changes, nav: 'changes' },
  { pattern: ['changes', ':id'], page: changes, nav: 'changes' },
  { pattern: ['health'], page: health, nav: 'health' },
];

const main = document.getElementById('main');

// Shows the page links and the logout button only to a logged-in user, and marks the
// current page's link for assistive technology.
function updateNav(route) {
  const loggedIn = Boolean(getToken());
  document.getElementById('nav-links').hidden = !loggedIn;
  document.getElementById('logout').hidden = !loggedIn;
  document.getElementById('nav-login').hidden = loggedIn;
  for (const link of document.querySelectorAll('[data-nav]')) {
    if (route && link.dataset.nav === route.nav) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
}

// The skip link moves focus without touching the hash (the hash is the route).
document.getElementById('skip-link').addEventListener('click', (event) => {
  event.preventDefault();
  main.focus();
});

// Every page but login needs a token; the page asked for is remembered (its hash only) so
// the user lands there after logging in.
function guard(route, hash) {
  if (route.public || getToken()) return true;
  rememberReturn(hash);
  navigate('#/login');
  return false;
}

const router = new Router(routes, {
  root: main,
  guard,
  onRoute: (route) => {
    updateNav(route);
    // Move focus to the new content so keyboard and screen reader users follow the page.
    main.focus({ preventScroll: true });
    window.scrollTo(0, 0);
  },
});

document.getElementById('logout').addEventListener('click', () => {
  clearToken();
  updateNav(null);
  navigate('#/login');
});

onUnauthenticated(() => {
  rememberReturn(location.hash);
  updateNav(null);
  navigate('#/login?expired=1');
});

// Coming back from GraphiQL with the back button may restore this page from the browser's
// cache: render again so the login state is checked anew.
window.addEventListener('pageshow', (event) => {
  if (event.persisted) router.render();
});

router.start();
