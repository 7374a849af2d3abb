// Changes: a filtered, paged list (`#/changes`) and the detail of one change
// (`#/changes/<id>`): its window and plans, approvals, and its assessment (risk with the
// reasons, blast radius, services, customers, open incidents and collisions).

import { gql, isAbort } from '../api.js';
import { buildHash, replaceHash } from '../router.js';
import {
  h, badge, ciLink, empty, errorBox, fields, historyList, labelled, loading, pager, section,
  select, setTitle, table, time, words, announce,
  replace,
} from '../ui.js';

export const PAGE_SIZE = 25;

export const QUERIES = {
  list: `query ConsoleChanges($filter: ChangeFilter, $first: Int, $after: String, $last: Int, $before: String) {
  changes(filter: $filter, first: $first, after: $after, last: $last, before: $before) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    nodes { id number title type state risk plannedStart plannedEnd outcome updatedAt }
  }
}`,
  detail: `query ConsoleChange($id: ID!) {
  change(id: $id) {
    id number title description type state risk plannedStart plannedEnd implementationPlan backoutPlan
    outcome reviewNotes version createdAt updatedAt
    affectedCis { id name status ciClass { name } }
    approvals { decision approver comment decidedAt }
    assessment {
      assessedAt risk blastRadius
      reasons { rule level message }
      blastRadiusCis { id name ciClass { name } }
      affectedServices { state criticality service { id name } }
      affectedCustomers { agreement customer { id name } service { id name } }
      openIncidents { id number title priorityLabel state }
      collisions { overlapStart overlapEnd sharedCiCount change { id number title state } }
    }
    history(first: 20) { totalCount nodes { id occurredAt actor source action before after } }
  }
}`,
};

const STATES = ['DRAFT', 'SUBMITTED', 'ASSESSED', 'APPROVED', 'REJECTED', 'SCHEDULED', 'IN_PROGRESS', 'COMPLETED', 'FAILED', 'ROLLED_BACK', 'CLOSED'];
const TYPES = ['STANDARD', 'NORMAL', 'EMERGENCY'];
const RISKS = ['LOW', 'MEDIUM', 'HIGH', 'CRITICAL'];

// The ChangeFilter for the list's form state; `from`/`to` (dates) become a window.
export function buildFilter(state) {
  const filter = {};
  if (state.state) filter.states = [state.state];
  if (state.type) filter.type = state.type;
  if (state.risk) filter.risk = state.risk;
  if (state.from && state.to) {
    filter.window = { from: new Date(`${state.from}T00:00:00`).toISOString(), to: new Date(`${state.to}T23:59:59.999`).toISOString() };
  }
  return filter;
}

export function render(root, ctx) {
  return ctx.params.id ? renderDetail(root, ctx.params.id) : renderList(root, ctx);
}

function renderList(root, ctx) {
  setTitle('Changes');
  const keys = ['state', 'type', 'risk', 'from', 'to'];
  const state = Object.fromEntries(keys.map((k) => [k, ctx.query.get(k) || '']));
  let cursor = { after: ctx.query.get('after') || undefined, before: ctx.query.get('before') || undefined };
  let controller = null;
  const results = h('div', { 'data-test': 'change-results' });
  const controls = {
    state: select([['', 'any state'], ...STATES.map((s) => [s, words(s)])], state.state, { 'data-test': 'change-state' }),
    type: select([['', 'any type'], ...TYPES.map((s) => [s, words(s)])], state.type, { 'data-test': 'change-type' }),
    risk: select([['', 'any risk'], ...RISKS.map((s) => [s, words(s)])], state.risk, { 'data-test': 'change-risk' }),
    from: h('input', { type: 'date', value: state.from, 'data-test': 'change-from' }),
    to: h('input', { type: 'date', value: state.to, 'data-test': 'change-to' }),
  };

  async function run() {
    replaceHash(buildHash('/changes', { ...state, ...cursor }));
    if (controller) controller.abort();
    controller = new AbortController();
    replace(results, loading());
    const vars = { filter: buildFilter(state) };
    if (cursor.before) Object.assign(vars, { last: PAGE_SIZE, before: cursor.before });
    else Object.assign(vars, { first: PAGE_SIZE, after: cursor.after });
    try {
      const data = await gql(QUERIES.list, vars, { signal: controller.signal });
      const conn = data.changes;
      announce(`${conn.totalCount} changes`);
      replace(results, 
        conn.nodes.length ? table([
          { label: 'Number', cell: (c) => h('a', { href: `#/changes/${encodeURIComponent(c.id)}`, 'data-test': 'change-link' }, c.number) },
          { label: 'Title', cell: (c) => c.title },
          { label: 'Type', cell: (c) => words(c.type) },
          { label: 'State', cell: (c) => badge(c.state) },
          { label: 'Risk', cell: (c) => badge(c.risk) },
          { label: 'Window', cell: (c) => (c.plannedStart ? h('span', {}, time(c.plannedStart), ' → ', time(c.plannedEnd)) : h('span', { class: 'muted' }, 'none')) },
          { label: 'Updated', cell: (c) => time(c.updatedAt) },
        ], conn.nodes, { caption: 'Changes', rowAttrs: () => ({ 'data-test': 'change-row' }) }) : empty('No change matches.'),
        pager(conn, (page) => { cursor = { after: page.after, before: page.before }; run(); }, { label: 'changes', pageSize: PAGE_SIZE }));
    } catch (err) {
      if (!isAbort(err)) replace(results, errorBox(err, { title: 'Could not list the changes' }));
    }
  }

  for (const [key, control] of Object.entries(controls)) {
    control.addEventListener('change', () => {
      state[key] = control.value;
      cursor = {};
      // A window needs both ends: wait for the second date.
      if ((key === 'from' || key === 'to') && Boolean(state.from) !== Boolean(state.to)) return;
      run();
    });
  }

  root.append(h('h1', {}, 'Changes'),
    h('form', { class: 'filters', 'aria-label': 'Filter changes', onsubmit: (e) => e.preventDefault() },
      h('div', { class: 'filter-grid' },
        labelled('State', controls.state),
        labelled('Type', controls.type),
        labelled('Risk', controls.risk),
        labelled('Window from', controls.from, 'with “to”: changes planned in that period'),
        labelled('to', controls.to))),
    results);
  run();
  return () => controller && controller.abort();
}

function assessmentSection(a) {
  if (!a) return section('Assessment', empty('Not assessed yet: a change is assessed when it is submitted.'));
  return h('div', { 'data-test': 'change-assessment' },
    section('Assessment',
      h('div', { class: 'stats' },
        h('div', { class: 'stat' }, h('div', { class: 'stat-value' }, badge(a.risk)), h('div', { class: 'stat-label' }, 'risk')),
        h('div', { class: 'stat', 'data-test': 'change-blast-radius' }, h('div', { class: 'stat-value' }, String(a.blastRadius)), h('div', { class: 'stat-label' }, 'CIs in the blast radius')),
        h('div', { class: 'stat' }, h('div', { class: 'stat-value' }, String(a.affectedServices.length)), h('div', { class: 'stat-label' }, 'services hit')),
        h('div', { class: 'stat' }, h('div', { class: 'stat-value' }, String(new Set(a.affectedCustomers.map((c) => c.customer.id)).size)), h('div', { class: 'stat-label' }, 'customers hit')),
        h('div', { class: 'stat' }, h('div', { class: 'stat-value' }, String(a.openIncidents.length)), h('div', { class: 'stat-label' }, 'open incidents')),
        h('div', { class: 'stat' }, h('div', { class: 'stat-value' }, String(a.collisions.length)), h('div', { class: 'stat-label' }, 'collisions'))),
      h('p', { class: 'muted small' }, 'Assessed ', time(a.assessedAt)),
      h('h3', {}, 'Why this risk'),
      a.reasons.length ? table([
        { label: 'Rule', cell: (r) => h('code', {}, r.rule) },
        { label: 'Level', cell: (r) => badge(r.level) },
        { label: 'Finding', cell: (r) => r.message },
      ], a.reasons, { caption: 'Risk reasons', rowAttrs: () => ({ 'data-test': 'risk-reason' }) }) : empty('No rule fired.')),
    h('div', { class: 'grid-2' },
      section('Services hit', a.affectedServices.length ? table([
        { label: 'Service', cell: (s) => h('a', { href: buildHash('/search', { service: s.service.id }) }, s.service.name) },
        { label: 'State', cell: (s) => badge(s.state) },
        { label: 'Criticality', cell: (s) => badge(s.criticality) },
      ], a.affectedServices, { caption: 'Services hit' }) : empty('No service hit.')),
      section('Customers hit', a.affectedCustomers.length ? table([
        { label: 'Customer', cell: (c) => c.customer.name },
        { label: 'Service', cell: (c) => c.service.name },
        { label: 'Agreement', cell: (c) => c.agreement || '—' },
      ], a.affectedCustomers, { caption: 'Customers hit' }) : empty('No customer hit.'))),
    h('div', { class: 'grid-2' },
      section('Open incidents in the blast radius', a.openIncidents.length
        ? h('ul', { class: 'plain' }, a.openIncidents.map((i) => h('li', {}, badge(i.priorityLabel), ' ',
          h('a', { href: `#/incidents/${encodeURIComponent(i.id)}` }, i.number), ' ', i.title, ' ', badge(i.state))))
        : empty('None.')),
      section('Collisions', a.collisions.length ? table([
        { label: 'Change', cell: (c) => h('span', {}, h('a', { href: `#/changes/${encodeURIComponent(c.change.id)}` }, c.change.number), ' ', c.change.title) },
        { label: 'Overlap', cell: (c) => h('span', {}, time(c.overlapStart), ' → ', time(c.overlapEnd)) },
        { label: 'Shared CIs', cell: (c) => String(c.sharedCiCount), class: 'num' },
      ], a.collisions, { caption: 'Collisions' }) : empty('No other change overlaps in time and blast radius.'))),
    section(`Blast radius (${a.blastRadius} CIs)`,
      h('details', {},
        h('summary', {}, a.blastRadius > a.blastRadiusCis.length ? `The ${a.blastRadiusCis.length} nearest CIs` : 'Every CI'),
        h('ul', { class: 'columns' }, a.blastRadiusCis.map((ci) => h('li', {}, ciLink(ci)))))));
}

function renderDetail(root, id) {
  setTitle('Change');
  const controller = new AbortController();
  root.append(loading());
  gql(QUERIES.detail, { id }, { signal: controller.signal }).then((data) => {
    const c = data.change;
    setTitle(c.number);
    replace(root, 
      h('p', { class: 'crumbs' }, h('a', { href: '#/changes' }, 'Changes'), ' › ', c.number),
      h('div', { class: 'page-head' },
        h('div', {}, h('p', { class: 'eyebrow' }, `${c.number} · ${words(c.type)} change`), h('h1', { 'data-test': 'change-title' }, c.title)),
        h('div', { class: 'page-actions' }, badge(c.state), ' ', c.risk ? badge(c.risk, { title: 'risk' }) : null)),
      h('div', { class: 'grid-2' },
        section('Details', fields([
          ['State', badge(c.state)],
          ['Type', words(c.type)],
          ['Risk', c.risk ? badge(c.risk) : null],
          ['Window', c.plannedStart ? h('span', {}, time(c.plannedStart), ' → ', time(c.plannedEnd)) : null],
          ['Outcome', c.outcome ? badge(c.outcome) : null],
          ['Description', c.description ? h('p', { class: 'prose' }, c.description) : null],
          ['Implementation plan', c.implementationPlan ? h('p', { class: 'prose' }, c.implementationPlan) : null],
          ['Back-out plan', c.backoutPlan ? h('p', { class: 'prose' }, c.backoutPlan) : null],
          ['Review notes', c.reviewNotes ? h('p', { class: 'prose' }, c.reviewNotes) : null],
          ['Recorded', time(c.createdAt)],
          ['Updated', time(c.updatedAt)],
        ])),
        h('div', {},
          section('CIs it touches', c.affectedCis.length
            ? h('ul', { class: 'plain' }, c.affectedCis.map((ci) => h('li', { 'data-test': 'change-ci' }, ciLink(ci), ' ', badge(ci.status))))
            : empty('No CI named.')),
          section('Approvals', c.approvals.length
            ? h('ul', { class: 'plain' }, c.approvals.map((a) => h('li', {}, badge(a.decision), ' by ', h('strong', {}, a.approver), ' ', time(a.decidedAt),
              a.comment ? h('div', { class: 'muted' }, a.comment) : null)))
            : empty('No decision yet.')))),
      assessmentSection(c.assessment),
      section(`History (${c.history.totalCount})`, historyList(c.history),
        c.history.totalCount > c.history.nodes.length ? h('p', { class: 'muted small' }, `The ${c.history.nodes.length} latest events are shown.`) : null));
  }).catch((err) => {
    if (isAbort(err)) return;
    replace(root, h('p', { class: 'crumbs' }, h('a', { href: '#/changes' }, 'Changes')), errorBox(err, { title: 'Could not load this change' }));
  });
  return () => controller.abort();
}
