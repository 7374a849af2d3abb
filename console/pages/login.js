// Login: asks for an API token, checks it against the server with the cheapest possible
// query, and keeps it in session storage only once the server has accepted it.

import { gql, setToken, getToken, takeReturn, clearToken, isAbort } from '../api.js';
import { navigate } from '../router.js';
import { h, errorBox, replace, setTitle } from '../ui.js';

export const QUERIES = {
  // `__typename` needs no data: the server checks the token before anything else.
  check: 'query ConsoleLogin { __typename }',
};

export function render(root, ctx) {
  setTitle('Log in');
  const controller = new AbortController();
  const input = h('input', {
    id: 'token', name: 'token', type: 'password', required: true, autocomplete: 'off',
    spellcheck: 'false', 'data-test': 'token-input', 'aria-describedby': 'token-help',
  });
  const status = h('div', { 'aria-live': 'polite' });
  const button = h('button', { type: 'submit', 'data-test': 'login-button' }, 'Log in');

  const notices = [];
  if (ctx.query.get('expired')) {
    notices.push(h('p', { class: 'notice', role: 'status' }, 'The server refused the token (unknown, revoked or expired). Log in again.'));
  }
  if (getToken()) {
    notices.push(h('p', { class: 'notice' }, 'You are logged in. Logging in again replaces the token of this tab.'));
  }

  const form = h('form', { class: 'card login', 'data-test': 'login-form', novalidate: true },
    h('h1', {}, 'Log in to the cmdb console'),
    ...notices,
    h('label', { for: 'token' }, 'API token'),
    input,
    h('p', { id: 'token-help', class: 'muted small' },
      'The token is kept in this browser tab only (session storage) and sent as ',
      h('code', {}, 'Authorization: Bearer …'),
      '. An admin creates tokens with ', h('code', {}, 'cmdb token create'), '.'),
    button,
    status);

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const token = input.value.trim();
    replace(status);
    if (!token) {
      status.append(errorBox({ errors: [{ code: 'VALIDATION', message: 'Enter an API token.' }] }, { title: 'No token' }));
      input.focus();
      return;
    }
    button.disabled = true;
    button.textContent = 'Checking…';
    try {
      await gql(QUERIES.check, {}, { token, signal: controller.signal });
      clearToken();
      setToken(token);
      input.value = '';
      const back = takeReturn();
      navigate(back && !back.startsWith('#/login') ? back : '#/search');
    } catch (err) {
      if (isAbort(err)) return;
      status.append(errorBox(err, { title: err.unauthenticated ? 'The server refused this token' : 'Could not log in' }));
      input.select();
    } finally {
      button.disabled = false;
      button.textContent = 'Log in';
    }
  });

  root.append(h('div', { class: 'narrow' }, form));
  input.focus();
  return () => controller.abort();
}
