// Hash routing: `#/path/segments?key=value`. The hash keeps the page and its filters (so a
// view can be bookmarked or shared) and needs nothing from the server, which serves the
// same index.html for every console URL. Tokens never go in it.

// Splits the current hash into path segments and query parameters.
export function parseHash(hash = location.hash) {
  const raw = hash.replace(/^#/, '') || '/';
  const [pathPart, queryPart = ''] = raw.split('?');
  const segments = pathPart.split('/').filter(Boolean).map((s) => {
    try {
      return decodeURIComponent(s);
    } catch {
      return s;
    }
  });
  return { path: `/${segments.join('/')}`, segments, query: new URLSearchParams(queryPart) };
}

// Builds a hash from a path and a plain object of parameters (empty values left out).
export function buildHash(path, params = {}) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined || value === null || value === '') continue;
    query.set(key, String(value));
  }
  const qs = query.toString();
  return `#${path}${qs ? `?${qs}` : ''}`;
}

export function navigate(hash) {
  if (location.hash === hash) {
    window.dispatchEvent(new HashChangeEvent('hashchange'));
  } else {
    location.hash = hash;
  }
}

// Updates the hash without adding a history entry or re-rendering: used while typing in
// filters, so the back button is not flooded and the input keeps its focus.
export function replaceHash(hash) {
  if (location.hash !== hash) history.replaceState(history.state, '', hash);
}

// A router over a list of routes `{ pattern: ['ci', ':id'], page, name, public }`. The page
// module's `render(root, ctx)` may return a cleanup function, called before the next page
// renders (to abort requests and stop timers).
export class Router {
  constructor(routes, { root, guard, onRoute }) {
    this.routes = routes;
    this.root = root;
    this.guard = guard;
    this.onRoute = onRoute;
    this.cleanup = null;
    this.renderId = 0;
    this.handle = () => this.render();
  }

  start() {
    window.addEventListener('hashchange', this.handle);
    this.render();
  }

  match(segments) {
    for (const route of this.routes) {
      if (route.pattern.length !== segments.length) continue;
      const params = {};
      const ok = route.pattern.every((part, i) => {
        if (part.startsWith(':')) {
          params[part.slice(1)] = segments[i];
          return true;
        }
        return part === segments[i];
      });
      if (ok) return { route, params };
    }
    return null;
  }

  async render() {
    const { segments, query, path } = parseHash();
    if (segments.length === 0) {
      navigate('#/search');
      return;
    }
    const found = this.match(segments);
    if (!found) {
      navigate('#/search');
      return;
    }
    if (this.guard && !this.guard(found.route, location.hash)) return;

    if (this.cleanup) {
      try {
        this.cleanup();
      } catch (err) {
        console.error(err);
      }
      this.cleanup = null;
    }
    const id = ++this.renderId;
    this.root.replaceChildren();
    if (this.onRoute) this.onRoute(found.route, path);
    const ctx = {
      params: found.params,
      query,
      path,
      // A page may ask whether it is still the one shown before touching the DOM.
      isCurrent: () => id === this.renderId,
    };
    try {
      const cleanup = await found.route.page.render(this.root, ctx);
      if (id === this.renderId) this.cleanup = typeof cleanup === 'function' ? cleanup : null;
      else if (typeof cleanup === 'function') cleanup();
    } catch (err) {
      console.error(err);
    }
  }
}
