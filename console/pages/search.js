// Search: CIs by name (as you type), class, status, environment, owner, service and one
// attribute, a page at a time with cursor pagination. The filters live in the hash, so a
// search can be bookmarked and the back button returns to it.

import { gql, isAbort } from '../api.js';
import { buildHash, replaceHash, navigate } from '../router.js';
import {
  h, badge, ciHref, debounce, empty, errorBox, labelled, loading, pager, select, setTitle,
  table, time, announce,
  replace,
} from '../ui.js';

export const PAGE_SIZE = 25;

export const QUERIES = {
  classes: `query ConsoleClasses { ciClasses { name label } }`,
  search: `query ConsoleSearch($filter: ConfigurationItemFilter, $first: Int, $after: String, $last: Int, $before: String) {
  configurationItems(filter: $filter, first: $first, after: $after, last: $last, before: $before) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    nodes { id name status environment owner criticality updatedAt ciClass { name label } }
  }
}`,
  service: `query ConsoleServiceName($id: ID!) { service(id: $id) { id name } }`,
};

const STATUSES = ['PLANNED', 'IN_SERVICE', 'UNDER_MAINTENANCE', 'RETIRED'];
const MATCHES = [['contains', 'contains'], ['startsWith', 'starts with'], ['equals', 'is exactly']];

// The classes rarely change: one request per page load is enough.
let classesPromise = null;
function loadClasses() {
  if (!classesPromise) {
    classesPromise = gql(QUERIES.classes).then((d) => d.ciClasses).catch((err) => {
      classesPromise = null;
      throw err;
    });
  }
  return classesPromise;
}

// An attribute value as typed: JSON when it parses (`64`, `true`, `"x"`), else the text.
export function parseAttributeValue(text) {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

// The GraphQL filter for the form state; empty fields are left out.
export function buildFilter(state) {
  const filter = {};
  if (state.name) filter.name = { [state.match || 'contains']: state.name };
  if (state.class) filter.class = state.class;
  if (state.status) filter.status = [state.status];
  if (state.environment) filter.environment = state.environment;
  if (state.owner) filter.owner = state.owner;
  if (state.service) filter.serviceId = state.service;
  if (state.attr && state.value !== '') {
    filter.attributes = [{ name: state.attr, equals: parseAttributeValue(state.value) }];
  }
  return filter;
}

const KEYS = ['name', 'match', 'class', 'status', 'environment', 'owner', 'service', 'attr', 'value'];

export function render(root, ctx) {
  setTitle('Search');
  const state = Object.fromEntries(KEYS.map((k) => [k, ctx.query.get(k) || '']));
  let cursor = {
    after: ctx.query.get('after') || undefined,
    before: ctx.query.get('before') || undefined,
  };
  let controller = null;
  let requestSeq = 0;

  const nameInput = h('input', {
    type: 'search', value: state.name, autocomplete: 'off', placeholder: 'e.g. esx',
    'data-test': 'search-input',
  });
  const matchSelect = select(MATCHES, state.match || 'contains', { 'data-test': 'search-match' });
  const classSelect = select([['', 'any class']], state.class, { 'data-test': 'search-class' });
  const statusSelect = select([['', 'any status'], ...STATUSES.map((s) => [s, s.replace(/_/g, ' ').toLowerCase()])], state.status, { 'data-test': 'search-status' });
  const envInput = h('input', { type: 'text', value: state.environment, placeholder: 'production', 'data-test': 'search-environment' });
  const ownerInput = h('input', { type: 'text', value: state.owner, placeholder: 'platform-team', 'data-test': 'search-owner' });
  const attrInput = h('input', { type: 'text', value: state.attr, placeholder: 'engine', 'data-test': 'search-attr-name' });
  const valueInput = h('input', { type: 'text', value: state.value, placeholder: 'postgresql', 'data-test': 'search-attr-value' });
  const serviceChip = h('div', { class: 'chips' });
  const results = h('div', { 'data-test': 'search-results' });

  // Keeps the hash in step with the form without re-rendering the page.
  const syncHash = () => replaceHash(buildHash('/search', { ...state, ...cursor }));

  async function run() {
    syncHash();
    if (controller) controller.abort();
    controller = new AbortController();
    const seq = ++requestSeq;
    replace(results, loading('Searching…'));
    const vars = { filter: buildFilter(state) };
    if (cursor.before) Object.assign(vars, { last: PAGE_SIZE, before: cursor.before });
    else Object.assign(vars, { first: PAGE_SIZE, after: cursor.after });
    try {
      const data = await gql(QUERIES.search, vars, { signal: controller.signal });
      if (seq !== requestSeq) return; // A newer search answered or is on its way.
      showResults(data.configurationItems);
    } catch (err) {
      if (isAbort(err) || seq !== requestSeq) return;
      replace(results, errorBox(err, { title: 'The search failed' }));
    }
  }

  function showResults(conn) {
    announce(`${conn.totalCount} configuration items found`);
    if (!conn.nodes.length) {
      replace(results, empty('No configuration item matches.'));
      return;
    }
    replace(results, 
      table([
        { label: 'Name', cell: (ci) => h('a', { href: ciHref(ci.id), 'data-test': 'search-result-link' }, ci.name) },
        { label: 'Class', cell: (ci) => ci.ciClass.label || ci.ciClass.name },
        { label: 'Status', cell: (ci) => badge(ci.status) },
        { label: 'Environment', cell: (ci) => ci.environment || '—' },
        { label: 'Owner', cell: (ci) => ci.owner || '—' },
        { label: 'Criticality', cell: (ci) => badge(ci.criticality) },
        { label: 'Updated', cell: (ci) => time(ci.updatedAt) },
      ], conn.nodes, {
        caption: 'Configuration items found',
        rowAttrs: (ci) => ({ 'data-test': 'search-result', 'data-id': ci.id }),
      }),
      pager(conn, (page) => {
        cursor = { after: page.after, before: page.before };
        run();
        results.scrollIntoView({ block: 'start', behavior: 'smooth' });
      }, { label: 'configuration items', pageSize: PAGE_SIZE }));
  }

  // Any filter change starts again from the first page.
  const changed = (key, value) => {
    state[key] = value;
    cursor = {};
  };
  const typed = debounce(() => run(), 250);
  const onText = (key, input) => input.addEventListener('input', () => {
    changed(key, input.value.trim());
    typed();
  });
  onText('name', nameInput);
  onText('environment', envInput);
  onText('owner', ownerInput);
  onText('attr', attrInput);
  onText('value', valueInput);
  const onSelect = (key, sel) => sel.addEventListener('change', () => {
    changed(key, sel.value);
    typed.cancel();
    run();
  });
  onSelect('match', matchSelect);
  onSelect('class', classSelect);
  onSelect('status', statusSelect);

  const form = h('form', { class: 'filters', role: 'search', 'aria-label': 'Search configuration items', onsubmit: (e) => { e.preventDefault(); typed.cancel(); run(); } },
    h('div', { class: 'filter-main' },
      labelled('Name', nameInput),
      labelled('Match', matchSelect)),
    h('div', { class: 'filter-grid' },
      labelled('Class', classSelect, 'includes subclasses'),
      labelled('Status', statusSelect),
      labelled('Environment', envInput, 'exact'),
      labelled('Owner', ownerInput, 'exact'),
      labelled('Attribute', attrInput),
      labelled('equals', valueInput, 'JSON when it parses (64, true), else text')),
    serviceChip,
    h('div', { class: 'form-actions' },
      h('button', { type: 'submit' }, 'Search'),
      h('button', {
        type: 'button', class: 'secondary',
        onclick: () => navigate('#/search'),
      }, 'Clear filters')));

  root.append(h('h1', {}, 'Search configuration items'), form, results);

  // A service filter arrives from a CI page's service link: show it as a removable chip.
  if (state.service) {
    const removeService = () => {
      changed('service', '');
      replace(serviceChip);
      run();
    };
    const chip = (label) => h('span', { class: 'chip' }, `Member of service ${label}`,
      h('button', { type: 'button', class: 'chip-remove', 'aria-label': 'Remove the service filter', onclick: removeService }, '×'));
    replace(serviceChip, chip('…'));
    gql(QUERIES.service, { id: state.service })
      .then((d) => serviceChip.firstChild && replace(serviceChip, chip(d.service.name)))
      .catch(() => serviceChip.firstChild && replace(serviceChip, chip(state.service)));
  }

  loadClasses().then((classes) => {
    for (const c of classes) {
      classSelect.append(h('option', { value: c.name, selected: c.name === state.class }, `${c.label} (${c.name})`));
    }
  }).catch((err) => {
    if (!isAbort(err)) form.append(errorBox(err, { title: 'Could not load the CI classes' }));
  });

  run();
  nameInput.focus();
  return () => {
    typed.cancel();
    if (controller) controller.abort();
  };
}
