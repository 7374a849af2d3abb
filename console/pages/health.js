// Health: the `cmdbHealth` verification as a dashboard: the accuracy, the count of each
// finding (completeness, staleness, orphans, duplicates) and the first CIs concerned.

import { gql, isAbort } from '../api.js';
import { buildHash, replaceHash } from '../router.js';
import {
  h, badge, ciLink, empty, errorBox, labelled, loading, section, setTitle, table, time, announce,
  replace,
} from '../ui.js';

export const QUERIES = {
  health: `query ConsoleHealth($staleAfterHours: Int!, $limit: Int!) {
  cmdbHealth(staleAfterHours: $staleAfterHours, limit: $limit) {
    checkedAt totalCis healthyCis accuracyPercent staleAfterHours
    completeness { count cis { missingRequired missingRecommended ci { id name ciClass { name } } } }
    staleness { count cis { sources { source lastSeenAt } ci { id name ciClass { name } } } }
    orphans { count cis { id name ciClass { name } } }
    duplicates { count groups { reason attribute value ciClass { name label } cis { id name environment ciClass { name } } } }
  }
}`,
};

// A count card; clicking it scrolls to the finding's list (a button, not a `#anchor` link:
// the hash belongs to the router).
function card(label, value, { test, tone, target } = {}) {
  const body = [h('div', { class: 'stat-value' }, String(value)), h('div', { class: 'stat-label' }, label)];
  return h('div', { class: `stat${tone ? ` stat-${tone}` : ''}`, 'data-test': test },
    target
      ? h('button', {
        type: 'button', class: 'stat-link', 'aria-label': `${label}: ${value}, show the list`,
        onclick: () => document.getElementById(target)?.scrollIntoView({ behavior: 'smooth', block: 'start' }),
      }, ...body)
      : body);
}

export function render(root, ctx) {
  setTitle('Health');
  let controller = null;
  const hours = h('input', { type: 'number', min: 1, value: ctx.query.get('hours') || '168', 'data-test': 'health-hours' });
  const limit = h('input', { type: 'number', min: 1, max: 500, value: ctx.query.get('limit') || '100', 'data-test': 'health-limit' });
  const results = h('div', { 'data-test': 'health-results' });

  async function run() {
    replaceHash(buildHash('/health', { hours: hours.value, limit: limit.value }));
    if (controller) controller.abort();
    controller = new AbortController();
    replace(results, loading('Checking the CMDB…'));
    try {
      const data = await gql(QUERIES.health, {
        staleAfterHours: Number(hours.value) || 168,
        limit: Number(limit.value) || 100,
      }, { signal: controller.signal });
      show(data.cmdbHealth);
    } catch (err) {
      if (!isAbort(err)) replace(results, errorBox(err, { title: 'The health check failed' }));
    }
  }

  function show(r) {
    announce(`Accuracy ${r.accuracyPercent.toFixed(1)} percent`);
    const tone = (count) => (count ? 'warn' : 'ok');
    replace(results, 
      h('div', { class: 'stats' },
        h('div', { class: 'stat stat-wide', 'data-test': 'health-accuracy' },
          h('div', { class: 'stat-value' }, `${r.accuracyPercent.toFixed(1)} %`),
          h('meter', { min: 0, max: 100, low: 80, high: 95, optimum: 100, value: r.accuracyPercent, 'aria-label': 'Accuracy' }),
          h('div', { class: 'stat-label' }, `${r.healthyCis} of ${r.totalCis} CIs without finding`)),
        card('Incomplete', r.completeness.count, { test: 'health-completeness', tone: tone(r.completeness.count), target: 'health-incomplete' }),
        card('Stale', r.staleness.count, { test: 'health-staleness', tone: tone(r.staleness.count), target: 'health-stale' }),
        card('Orphans', r.orphans.count, { test: 'health-orphans', tone: tone(r.orphans.count), target: 'health-orphans' }),
        card('Duplicate groups', r.duplicates.count, { test: 'health-duplicates', tone: tone(r.duplicates.count), target: 'health-duplicates' })),
      h('p', { class: 'muted small' }, 'Checked ', time(r.checkedAt), `; a CI is stale when its sources have not reported it for ${r.staleAfterHours} hours.`),
      finding('health-incomplete', 'Incomplete CIs', r.completeness, r.completeness.cis, [
        { label: 'CI', cell: (x) => ciLink(x.ci) },
        { label: 'Missing required', cell: (x) => codes(x.missingRequired, 'required') },
        { label: 'Missing recommended', cell: (x) => codes(x.missingRecommended) },
      ], 'Every CI has the attributes its class asks for.'),
      finding('health-stale', 'Stale CIs', r.staleness, r.staleness.cis, [
        { label: 'CI', cell: (x) => ciLink(x.ci) },
        { label: 'Sources that stopped reporting it', cell: (x) => h('ul', { class: 'plain' }, x.sources.map((s) => h('li', {}, h('strong', {}, s.source), ' last seen ', time(s.lastSeenAt)))) },
      ], 'Every discovered CI was reported recently.'),
      finding('health-orphans', 'Orphans', r.orphans, r.orphans.cis, [
        { label: 'CI', cell: (ci) => ciLink(ci) },
      ], 'Every CI has a relationship or a service.'),
      finding('health-duplicates', 'Suspected duplicates', r.duplicates, r.duplicates.groups, [
        { label: 'Why', cell: (g) => h('span', {}, badge(g.reason), g.attribute ? h('code', {}, ` ${g.attribute}`) : null) },
        { label: 'Class', cell: (g) => g.ciClass.label },
        { label: 'Shared value', cell: (g) => h('code', {}, g.value) },
        { label: 'CIs', cell: (g) => h('ul', { class: 'plain' }, g.cis.map((ci) => h('li', {}, ciLink(ci, { showClass: false }), ci.environment ? h('span', { class: 'muted small' }, ` ${ci.environment}`) : null))) },
      ], 'No two CIs of a class share a name or an identifier.'));
  }

  // One finding: its count, and the first CIs (or groups) as a table.
  function finding(id, title, f, rows, columns, allGood) {
    const s = section(`${title} (${f.count})`,
      rows.length
        ? [table(columns, rows, { caption: title, rowAttrs: () => ({ 'data-test': `${id}-row` }) }),
          f.count > rows.length ? h('p', { class: 'muted small' }, `The first ${rows.length} of ${f.count} are listed.`) : null]
        : empty(allGood));
    s.id = id;
    return s;
  }

  function codes(list, kind) {
    if (!list.length) return h('span', { class: 'muted' }, '—');
    return h('span', {}, list.map((a, i) => [i ? ' ' : '', h('code', { class: kind === 'required' ? 'missing-required' : '' }, a)]));
  }

  root.append(h('h1', {}, 'CMDB health'),
    h('form', { class: 'filters', 'aria-label': 'Health check settings', onsubmit: (e) => { e.preventDefault(); run(); } },
      h('div', { class: 'filter-grid' },
        labelled('Stale after (hours)', hours),
        labelled('CIs listed per finding', limit)),
      h('div', { class: 'form-actions' }, h('button', { type: 'submit', 'data-test': 'health-run' }, 'Check again'))),
    results);
  run();
  return () => controller && controller.abort();
}
