// The console's only way to the server: GraphQL over HTTP (POST, JSON body) with the API
// token from session storage. Every page goes through `gql`, so authentication, error
// shapes and aborted requests are handled once, here.

const TOKEN_KEY = 'cmdb.token';
const RETURN_KEY = 'cmdb.returnTo';

// Where the API lives. Same origin by default; a `<meta name="cmdb-graphql-endpoint">` in
// index.html may point elsewhere (only for trying the console against a separate server:
// the server must then allow this origin with `--cors-origin`).
export function endpoint() {
  const meta = typeof document !== 'undefined'
    ? document.querySelector('meta[name="cmdb-graphql-endpoint"]')
    : null;
  return (meta && meta.content) || '/graphql';
}

// Session storage only: the token dies with the tab and is never written to local storage
// or put in a URL.
export function getToken() {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

export function setToken(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
}

// Forgets the token, and whatever GraphiQL kept in this tab's session storage (its header
// editor may hold the token too).
export function clearToken() {
  try {
    sessionStorage.removeItem(TOKEN_KEY);
    for (let i = sessionStorage.length - 1; i >= 0; i -= 1) {
      const key = sessionStorage.key(i);
      if (key && key.startsWith('graphiql:')) sessionStorage.removeItem(key);
    }
  } catch {
    // Storage disabled: nothing was kept.
  }
}

// The route to come back to after logging in (a hash such as `#/ci/<id>`, never a token).
export function rememberReturn(hash) {
  try {
    sessionStorage.setItem(RETURN_KEY, hash);
  } catch {
    /* storage disabled: the user lands on search instead */
  }
}

export function takeReturn() {
  try {
    const hash = sessionStorage.getItem(RETURN_KEY);
    sessionStorage.removeItem(RETURN_KEY);
    return hash;
  } catch {
    return null;
  }
}

// A failed request: the GraphQL errors (each with `extensions.code`) or a transport problem,
// in one shape the pages can display.
export class ApiError extends Error {
  constructor(message, { status = 0, errors = [], data = null } = {}) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.data = data;
    // Each: { message, code, field, path, extensions }.
    this.errors = errors.length ? errors : [{ message, code: status ? `HTTP_${status}` : 'NETWORK' }];
  }

  get code() {
    return this.errors[0] && this.errors[0].code;
  }

  // True when the server refused the token (HTTP 401 or an UNAUTHENTICATED error).
  get unauthenticated() {
    return this.status === 401 || this.errors.some((e) => e.code === 'UNAUTHENTICATED');
  }
}

// Listeners told when the token stops working, so the app can go back to the login page.
const unauthenticatedListeners = new Set();

export function onUnauthenticated(listener) {
  unauthenticatedListeners.add(listener);
  return () => unauthenticatedListeners.delete(listener);
}

function normaliseErrors(errors) {
  return (errors || []).map((e) => {
    const ext = e.extensions || {};
    return {
      message: e.message || 'unknown error',
      code: ext.code || 'ERROR',
      field: ext.field || null,
      path: Array.isArray(e.path) ? e.path.join('.') : null,
      extensions: ext,
    };
  });
}

// Runs one GraphQL operation and resolves to its `data`. Any error (transport, HTTP or
// GraphQL) rejects with an ApiError; an AbortError passes through untouched so callers
// can ignore requests they cancelled. `token` overrides the stored one (used by login to
// check a token before keeping it).
export async function gql(query, variables = {}, { signal, token } = {}) {
  const bearer = token !== undefined ? token : getToken();
  const headers = {
    'content-type': 'application/json',
    accept: 'application/graphql-response+json, application/json',
  };
  if (bearer) headers.authorization = `Bearer ${bearer}`;

  let response;
  try {
    response = await fetch(endpoint(), {
      method: 'POST',
      headers,
      body: JSON.stringify({ query, variables }),
      signal,
      credentials: 'same-origin',
      cache: 'no-store',
    });
  } catch (err) {
    if (err && err.name === 'AbortError') throw err;
    throw new ApiError(`The server could not be reached (${err && err.message ? err.message : err}).`);
  }

  let body = null;
  try {
    body = await response.json();
  } catch (err) {
    if (err && err.name === 'AbortError') throw err;
    body = null;
  }

  const errors = normaliseErrors(body && body.errors);
  if (!response.ok || errors.length || !body || body.data == null) {
    const message = errors.length
      ? errors[0].message
      : `The server answered HTTP ${response.status} without a GraphQL result.`;
    const error = new ApiError(message, {
      status: response.ok ? 0 : response.status,
      errors,
      data: body ? body.data : null,
    });
    // Only a stored token going bad logs the user out; a token being tried at login does not.
    if (error.unauthenticated && token === undefined) {
      clearToken();
      unauthenticatedListeners.forEach((listener) => listener(error));
    }
    throw error;
  }
  return body.data;
}

// True for the rejection of a request the caller aborted on purpose.
export function isAbort(err) {
  return Boolean(err && err.name === 'AbortError');
}
