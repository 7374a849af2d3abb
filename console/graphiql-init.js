// Starts GraphiQL (the vendored UMD bundle, a global `GraphiQL` on React 18) against this
// server's /graphql, with the console's token (session storage, `cmdb.token`) prefilled as
// the Authorization header. A classic script rather than inline code, so the page works
// under a Content-Security-Policy that allows only same-origin scripts.
(function () {
  'use strict';

  var mount = document.getElementById('graphiql');
  var note = document.getElementById('graphiql-auth-note');
  var endpoint = mount.getAttribute('data-endpoint') || '/graphql';

  // Storage may be disabled (private modes, policies): then GraphiQL keeps nothing.
  var session = null;
  try {
    session = window.sessionStorage;
    session.getItem('cmdb.token');
  } catch (e) {
    session = null;
  }
  var token = session ? session.getItem('cmdb.token') : null;
  var authHeaders = token ? { Authorization: 'Bearer ' + token } : {};

  if (!window.React || !window.ReactDOM || !window.GraphiQL) {
    mount.textContent = 'GraphiQL could not start: its scripts did not load.';
    return;
  }

  note.textContent = token
    ? 'The Authorization header comes from your console login (this tab only).'
    : 'Not logged in: log in to the console, or add an Authorization header below.';

  // The header editor's values win over these, so a user can try another token; without
  // one, requests still carry the console's token.
  var fetcher = window.GraphiQL.createFetcher({
    url: endpoint,
    headers: authHeaders,
    enableIncrementalDelivery: false,
  });

  var defaultQuery = [
    '# The cmdb GraphQL API: the Docs panel (left) lists every type and field.',
    '# Run with Ctrl-Enter.',
    '',
    '{',
    '  configurationItems(first: 5) {',
    '    totalCount',
    '    nodes { id name status ciClass { name } }',
    '  }',
    '}',
    '',
  ].join('\n');

  var props = {
    fetcher: fetcher,
    defaultQuery: defaultQuery,
    // GraphiQL keeps its tabs in this tab's session storage, never in local storage, and
    // never keeps headers at all (they may hold the token); its "persist headers" switch
    // is hidden by `shouldPersistHeaders: false`.
    storage: session || undefined,
    shouldPersistHeaders: false,
    isHeadersEditorEnabled: true,
  };
  if (token) {
    props.defaultHeaders = JSON.stringify(authHeaders, null, 2);
    props.defaultEditorToolsVisibility = 'headers';
  }

  var root = window.ReactDOM.createRoot(mount);
  root.render(window.React.createElement(window.GraphiQL, props));
})();
