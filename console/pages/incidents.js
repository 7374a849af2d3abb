// Incidents: a filtered, paged list (`#/incidents`) and the detail of one incident
// (`#/incidents/<id>`) with its affected CIs, services, customers and history.

import { gql, isAbort } from '../api.js';
import { buildHash, replaceHash } from '../router.js';
import {
  h, badge, ciLink, empty, errorBox, fields, historyList, labelled, loading, pager, section,
  select, setTitle, table, time, words, announce,
  replace,
} from '../ui.js';

export const PAGE_SIZE = 25;

export const QUERIES = {
  list: `query ConsoleIncidents($filter: IncidentFilter, $first: Int, $after: String, $last: Int, $before: String) {
  incidents(filter: $filter, first: $first, after: $after, last: $last, before: $before) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    nodes { id number title state priority priorityLabel impact urgency major assigneeGroup openedAt resolvedAt }
  }
}`,
  detail: `query ConsoleIncident($id: ID!) {
  incident(id: $id) {
    id number title description state impact urgency priority priorityLabel suggestedImpact major
    assigneeGroup resolutionNotes openedAt acknowledgedAt resolvedAt closedAt version createdAt updatedAt
    affectedCis { id name status ciClass { name } }
    affectedServices { origin state service { id name criticality } }
    affectedCustomers { agreement responseTargetMinutes resolutionTargetMinutes customer { id name } service { id name } }
    history(first: 20) { totalCount nodes { id occurredAt actor source action before after } }
  }
}`,
};

const STATES = ['NEW', 'IN_PROGRESS', 'ON_HOLD', 'RESOLVED', 'CLOSED'];

// The IncidentFilter for the list's form state.
export function buildFilter(state) {
  const filter = {};
  if (state.state) filter.states = [state.state];
  if (state.open === 'open') filter.open = true;
  if (state.open === 'closed') filter.open = false;
  if (state.priority) filter.priority = Number(state.priority);
  if (state.major === 'yes') filter.major = true;
  if (state.major === 'no') filter.major = false;
  return filter;
}

export function render(root, ctx) {
  return ctx.params.id ? renderDetail(root, ctx.params.id) : renderList(root, ctx);
}

function renderList(root, ctx) {
  setTitle('Incidents');
  const keys = ['state', 'open', 'priority', 'major'];
  const state = Object.fromEntries(keys.map((k) => [k, ctx.query.get(k) || '']));
  if (!ctx.query.has('open')) state.open = 'open'; // What people look at first.
  let cursor = { after: ctx.query.get('after') || undefined, before: ctx.query.get('before') || undefined };
  let controller = null;
  const results = h('div', { 'data-test': 'incident-results' });

  const controls = {
    open: select([['open', 'open only'], ['closed', 'resolved or closed'], ['all', 'all']], state.open, { 'data-test': 'incident-open' }),
    state: select([['', 'any state'], ...STATES.map((s) => [s, words(s)])], state.state, { 'data-test': 'incident-state' }),
    priority: select([['', 'any priority'], ...[1, 2, 3, 4, 5].map((p) => [String(p), `P${p}`])], state.priority, { 'data-test': 'incident-priority' }),
    major: select([['', 'major or not'], ['yes', 'major only'], ['no', 'not major']], state.major, { 'data-test': 'incident-major' }),
  };

  async function run() {
    replaceHash(buildHash('/incidents', { ...state, ...cursor }));
    if (controller) controller.abort();
    controller = new AbortController();
    replace(results, loading());
    const vars = { filter: buildFilter(state) };
    if (cursor.before) Object.assign(vars, { last: PAGE_SIZE, before: cursor.before });
    else Object.assign(vars, { first: PAGE_SIZE, after: cursor.after });
    try {
      const data = await gql(QUERIES.list, vars, { signal: controller.signal });
      const conn = data.incidents;
      announce(`${conn.totalCount} incidents`);
      replace(results, 
        conn.nodes.length ? table([
          { label: 'Number', cell: (i) => h('a', { href: `#/incidents/${encodeURIComponent(i.id)}`, 'data-test': 'incident-link' }, i.number) },
          { label: 'Priority', cell: (i) => badge(i.priorityLabel, { title: `impact ${words(i.impact)}, urgency ${words(i.urgency)}` }) },
          { label: 'Title', cell: (i) => h('span', {}, i.title, i.major ? [' ', badge('MAJOR')] : null) },
          { label: 'State', cell: (i) => badge(i.state) },
          { label: 'Group', cell: (i) => i.assigneeGroup || '—' },
          { label: 'Opened', cell: (i) => time(i.openedAt) },
          { label: 'Resolved', cell: (i) => time(i.resolvedAt) },
        ], conn.nodes, { caption: 'Incidents', rowAttrs: () => ({ 'data-test': 'incident-row' }) }) : empty('No incident matches.'),
        pager(conn, (page) => { cursor = { after: page.after, before: page.before }; run(); }, { label: 'incidents', pageSize: PAGE_SIZE }));
    } catch (err) {
      if (!isAbort(err)) replace(results, errorBox(err, { title: 'Could not list the incidents' }));
    }
  }

  for (const [key, control] of Object.entries(controls)) {
    control.addEventListener('change', () => {
      state[key] = control.value;
      cursor = {};
      run();
    });
  }

  root.append(h('h1', {}, 'Incidents'),
    h('form', { class: 'filters', 'aria-label': 'Filter incidents', onsubmit: (e) => e.preventDefault() },
      h('div', { class: 'filter-grid' },
        labelled('Open', controls.open),
        labelled('State', controls.state),
        labelled('Priority', controls.priority),
        labelled('Major', controls.major))),
    results);
  run();
  return () => controller && controller.abort();
}

// Minutes as people say them: `90` -> `1 h 30 min`.
export function minutes(m) {
  if (m === null || m === undefined) return '—';
  const hours = Math.floor(m / 60);
  const rest = Math.round(m % 60);
  if (!hours) return `${rest} min`;
  return rest ? `${hours} h ${rest} min` : `${hours} h`;
}

function renderDetail(root, id) {
  setTitle('Incident');
  const controller = new AbortController();
  root.append(loading());
  gql(QUERIES.detail, { id }, { signal: controller.signal }).then((data) => {
    const i = data.incident;
    setTitle(i.number);
    replace(root, 
      h('p', { class: 'crumbs' }, h('a', { href: '#/incidents' }, 'Incidents'), ' › ', i.number),
      h('div', { class: 'page-head' },
        h('div', {}, h('p', { class: 'eyebrow' }, i.number), h('h1', { 'data-test': 'incident-title' }, i.title)),
        h('div', { class: 'page-actions' }, badge(i.priorityLabel), ' ', badge(i.state), i.major ? [' ', badge('MAJOR')] : null)),
      h('div', { class: 'grid-2' },
        section('Details', fields([
          ['State', badge(i.state)],
          ['Priority', h('span', {}, badge(i.priorityLabel), ` (impact ${words(i.impact)} × urgency ${words(i.urgency)})`)],
          ['Suggested impact', i.suggestedImpact ? words(i.suggestedImpact) : null],
          ['Assignee group', i.assigneeGroup],
          ['Description', i.description ? h('p', { class: 'prose' }, i.description) : null],
          ['Resolution notes', i.resolutionNotes ? h('p', { class: 'prose' }, i.resolutionNotes) : null],
        ])),
        section('Timeline', fields([
          ['Opened', time(i.openedAt)],
          ['Acknowledged', time(i.acknowledgedAt)],
          ['Resolved', time(i.resolvedAt)],
          ['Closed', time(i.closedAt)],
          ['Recorded', time(i.createdAt)],
          ['Updated', time(i.updatedAt)],
          ['Version', String(i.version)],
        ]))),
      h('div', { class: 'grid-2' },
        section('Affected CIs', i.affectedCis.length
          ? h('ul', { class: 'plain' }, i.affectedCis.map((ci) => h('li', { 'data-test': 'incident-ci' }, ciLink(ci), ' ', badge(ci.status))))
          : empty('No CI named.')),
        section('Affected services', i.affectedServices.length
          ? table([
            { label: 'Service', cell: (s) => h('a', { href: buildHash('/search', { service: s.service.id }) }, s.service.name) },
            { label: 'State', cell: (s) => badge(s.state) },
            { label: 'Criticality', cell: (s) => badge(s.service.criticality) },
            { label: 'Origin', cell: (s) => words(s.origin) },
          ], i.affectedServices, { caption: 'Affected services', rowAttrs: () => ({ 'data-test': 'incident-service' }) })
          : empty('No service affected.'))),
      section('Affected customers', i.affectedCustomers.length
        ? table([
          { label: 'Customer', cell: (c) => c.customer.name },
          { label: 'Service', cell: (c) => c.service.name },
          { label: 'Agreement', cell: (c) => c.agreement || '—' },
          { label: 'Response target', cell: (c) => minutes(c.responseTargetMinutes) },
          { label: 'Resolution target', cell: (c) => minutes(c.resolutionTargetMinutes) },
        ], i.affectedCustomers, { caption: 'Affected customers' })
        : empty('No customer affected.')),
      section(`History (${i.history.totalCount})`, historyList(i.history),
        i.history.totalCount > i.history.nodes.length ? h('p', { class: 'muted small' }, `The ${i.history.nodes.length} latest events are shown.`) : null));
  }).catch((err) => {
    if (isAbort(err)) return;
    replace(root, h('p', { class: 'crumbs' }, h('a', { href: '#/incidents' }, 'Incidents')), errorBox(err, { title: 'Could not load this incident' }));
  });
  return () => controller.abort();
}
