// The page of one configuration item: its fields, its attributes with who set each and
// when, its relationships both ways, services, open incidents, recent changes, discovery
// sources and its audited history with before/after values.

import { gql, isAbort } from '../api.js';
import { buildHash } from '../router.js';
import {
  h, badge, ciLink, empty, errorBox, fields, historyList, loading, pager, section, setTitle,
  table, time, valueCell, words,
  replace,
} from '../ui.js';

export const HISTORY_PAGE = 10;

export const QUERIES = {
  ci: `query ConsoleCi($id: ID!) {
  configurationItem(id: $id) {
    id name description status environment criticality owner attributes version createdAt updatedAt stale
    ciClass { name label effectiveAttributes { name type required recommended description } }
    provenance { field source setAt }
    outgoing { id createdAt type { name inverseLabel } target { id name status ciClass { name } } }
    incoming { id createdAt type { name inverseLabel } source { id name status ciClass { name } } }
    services { id name kind criticality }
    incidents(open: true, first: 20) { id number title state priorityLabel openedAt }
    changes(first: 10) { id number title state type risk plannedStart }
    discoveredBy { source externalId scope firstSeenAt lastSeenAt stale }
  }
}`,
  history: `query ConsoleCiHistory($id: ID!, $first: Int, $after: String, $last: Int, $before: String) {
  configurationItem(id: $id) {
    id
    history(first: $first, after: $after, last: $last, before: $before) {
      totalCount
      pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
      nodes { id occurredAt actor source action before after }
    }
  }
}`,
};

// The attribute rows: every attribute the CI has, plus those its class declares and it
// lacks, each with the source that set it and when (from `provenance`).
export function attributeRows(ci) {
  const byField = new Map(ci.provenance.map((p) => [p.field, p]));
  const definitions = new Map((ci.ciClass.effectiveAttributes || []).map((d) => [d.name, d]));
  const names = new Set([...Object.keys(ci.attributes || {}), ...definitions.keys()]);
  return [...names].sort().map((name) => ({
    name,
    value: ci.attributes ? ci.attributes[name] : undefined,
    definition: definitions.get(name),
    provenance: byField.get(`attributes.${name}`),
  }));
}

function provenanceCell(p) {
  if (!p) return h('span', { class: 'muted' }, '—');
  return h('span', {}, h('span', { class: p.source === 'manual' ? 'source manual' : 'source' }, p.source), ' ', time(p.setAt));
}

function relationshipTable(rels, direction) {
  if (!rels.length) return empty(direction === 'out' ? 'No outgoing relationship.' : 'No incoming relationship.');
  return table([
    {
      label: 'Relationship',
      cell: (r) => (direction === 'out'
        ? h('code', {}, r.type.name)
        : h('span', {}, h('code', {}, r.type.name), h('span', { class: 'muted small' }, ` (${r.type.inverseLabel})`))),
    },
    { label: direction === 'out' ? 'Target' : 'Source', cell: (r) => ciLink(direction === 'out' ? r.target : r.source) },
    { label: 'Status', cell: (r) => badge((direction === 'out' ? r.target : r.source).status) },
    { label: 'Since', cell: (r) => time(r.createdAt) },
  ], rels, {
    caption: direction === 'out' ? 'Outgoing relationships' : 'Incoming relationships',
    rowAttrs: () => ({ 'data-test': direction === 'out' ? 'rel-outgoing' : 'rel-incoming' }),
  });
}

function coreFields(ci) {
  const p = new Map(ci.provenance.map((x) => [x.field, x]));
  // The source that set a core field, in small print next to its value.
  const by = (field) => (p.get(field) ? h('span', { class: 'muted small' }, ` · ${p.get(field).source}`) : null);
  return fields([
    ['Class', h('span', {}, ci.ciClass.label, h('span', { class: 'muted small' }, ` (${ci.ciClass.name})`))],
    ['Status', h('span', {}, badge(ci.status), by('status'), ci.stale ? h('span', {}, ' ', badge('STALE', { title: 'Every source that reported it stopped reporting it' })) : null)],
    ['Environment', ci.environment ? h('span', {}, ci.environment, by('environment')) : null],
    ['Criticality', ci.criticality ? h('span', {}, badge(ci.criticality), by('criticality')) : null],
    ['Owner', ci.owner ? h('span', {}, ci.owner, by('owner')) : null],
    ['Description', ci.description],
    ['Version', String(ci.version)],
    ['Created', time(ci.createdAt)],
    ['Updated', time(ci.updatedAt)],
    ['Id', h('code', { class: 'small' }, ci.id)],
  ]);
}

export function render(root, ctx) {
  const id = ctx.params.id;
  const controller = new AbortController();
  setTitle('Configuration item');
  root.append(loading());

  gql(QUERIES.ci, { id }, { signal: controller.signal })
    .then((data) => show(data.configurationItem))
    .catch((err) => {
      if (isAbort(err)) return;
      replace(root, h('h1', {}, 'Configuration item'), errorBox(err, { title: 'Could not load this CI' }));
    });

  function show(ci) {
    setTitle(ci.name);
    const historyBox = h('div', { 'data-test': 'ci-history' }, loading());
    const attrs = attributeRows(ci);
    const impactHref = buildHash('/impact', { ci: ci.id, run: 1 });

    replace(root, 
      h('div', { class: 'page-head' },
        h('div', {},
          h('p', { class: 'eyebrow' }, ci.ciClass.label),
          h('h1', { 'data-test': 'ci-name' }, ci.name)),
        h('div', { class: 'page-actions' },
          h('a', { class: 'button', href: impactHref, 'data-test': 'ci-impact-link' }, 'Impact analysis'))),
      h('div', { class: 'grid-2' },
        section('Details', coreFields(ci)),
        section('Services',
          ci.services.length
            ? h('ul', { class: 'plain' }, ci.services.map((s) => h('li', { 'data-test': 'ci-service' },
              h('a', { href: buildHash('/search', { service: s.id }) }, s.name), ' ',
              h('span', { class: 'muted small' }, words(s.kind)), ' ', badge(s.criticality))))
            : empty('Not a member of any service.'))),
      section('Attributes',
        attrs.length
          ? table([
            { label: 'Attribute', cell: (a) => h('span', {}, h('code', {}, a.name), a.definition && a.definition.required ? h('span', { class: 'muted small' }, ' required') : null) },
            { label: 'Value', cell: (a) => valueCell(a.value) },
            { label: 'Set by', cell: (a) => provenanceCell(a.provenance) },
          ], attrs, { caption: 'Attributes', rowAttrs: (a) => ({ 'data-test': 'ci-attribute', 'data-name': a.name }) })
          : empty('No attribute.')),
      h('div', { class: 'grid-2' },
        section(`Outgoing relationships (${ci.outgoing.length})`, relationshipTable(ci.outgoing, 'out')),
        section(`Incoming relationships (${ci.incoming.length})`, relationshipTable(ci.incoming, 'in'))),
      h('div', { class: 'grid-2' },
        section('Open incidents',
          ci.incidents.length
            ? h('ul', { class: 'plain' }, ci.incidents.map((i) => h('li', { 'data-test': 'ci-incident' },
              badge(i.priorityLabel), ' ', h('a', { href: `#/incidents/${encodeURIComponent(i.id)}` }, i.number), ' ', i.title, ' ',
              badge(i.state), ' ', h('span', { class: 'muted small' }, 'opened '), time(i.openedAt))))
            : empty('No open incident.')),
        section('Recent changes',
          ci.changes.length
            ? h('ul', { class: 'plain' }, ci.changes.map((c) => h('li', { 'data-test': 'ci-change' },
              h('a', { href: `#/changes/${encodeURIComponent(c.id)}` }, c.number), ' ', c.title, ' ',
              badge(c.state), ' ', c.risk ? badge(c.risk, { title: 'risk' }) : null,
              c.plannedStart ? h('span', { class: 'muted small' }, ' planned ') : null, c.plannedStart ? time(c.plannedStart) : null)))
            : empty('No change touches this CI.'))),
      section('Discovery sources',
        ci.discoveredBy.length
          ? table([
            { label: 'Source', cell: (d) => h('strong', {}, d.source) },
            { label: 'External id', cell: (d) => h('code', {}, d.externalId) },
            { label: 'Scope', cell: (d) => d.scope || '—' },
            { label: 'First seen', cell: (d) => time(d.firstSeenAt) },
            { label: 'Last seen', cell: (d) => time(d.lastSeenAt) },
            { label: 'State', cell: (d) => (d.stale ? badge('STALE') : badge('REPORTED')) },
          ], ci.discoveredBy, { caption: 'Discovery sources' })
          : empty('No discovery source reports this CI (recorded by hand).')),
      section('History', historyBox));

    loadHistory(historyBox, {});
  }

  // The audit trail, a page at a time, newest first.
  function loadHistory(box, cursor) {
    const vars = { id };
    if (cursor.before) Object.assign(vars, { last: HISTORY_PAGE, before: cursor.before });
    else Object.assign(vars, { first: HISTORY_PAGE, after: cursor.after });
    gql(QUERIES.history, vars, { signal: controller.signal })
      .then((data) => {
        const conn = data.configurationItem.history;
        replace(box, historyList(conn),
          conn.totalCount > HISTORY_PAGE
            ? pager(conn, (page) => loadHistory(box, page), { label: 'events', pageSize: HISTORY_PAGE })
            : null);
      })
      .catch((err) => {
        if (!isAbort(err)) replace(box, errorBox(err, { title: 'Could not load the history' }));
      });
  }

  return () => controller.abort();
}
