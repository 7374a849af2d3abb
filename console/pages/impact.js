// Impact analysis: pick CIs, choose the direction and depth, and see what is hit: totals,
// the affected services (DOWN or DEGRADED) and customers, a drawing of the affected CIs with
// their paths, and the list of affected CIs with the chain of relationships explaining each.

import { gql, isAbort } from '../api.js';
import { buildHash, replaceHash } from '../router.js';
import { ImpactGraph } from '../graph.js';
import {
  h, badge, ciHref, ciLink, debounce, empty, errorBox, labelled, loading, section, select,
  setTitle, table, announce, words,
  replace,
} from '../ui.js';

export const DEFAULT_LIMIT = 2000;
const ROWS_STEP = 200;

export const QUERIES = {
  pick: `query ConsoleImpactPick($name: String!) {
  configurationItems(filter: { name: { contains: $name } }, first: 10) {
    nodes { id name status ciClass { name } }
  }
}`,
  names: `query ConsoleImpactNames($ids: [ID!]!, $first: Int) {
  configurationItems(filter: { ids: $ids }, first: $first) { nodes { id name status ciClass { name } } }
}`,
  types: `query ConsoleRelationshipTypes { relationshipTypes { name propagation } }`,
  impact: `query ConsoleImpact($input: ImpactAnalysisInput!) {
  impactAnalysis(input: $input) {
    totalAffectedCis
    truncated
    countsByState { state count }
    countsByDepth { depth count }
    countsByClass { count ciClass { name label } }
    affectedServices { state criticality service { id name kind } affectedMembers { id name } }
    affectedCustomers { agreement customer { id name } service { id name } }
    affectedCis {
      depth
      state
      ci { id name status ciClass { name } }
      path { id type { name } source { id name } target { id name } }
    }
  }
}`,
};

// The chain of a path, from the starting CI to the affected one, each step saying which way
// the relationship points: `esx-03 ←hosted_on— vm-1 ←runs_on— app`.
export function pathSteps(affected) {
  const path = affected.path;
  if (!path.length) return { start: affected.ci, steps: [] };
  const steps = [];
  let cur = affected.ci.id;
  for (let i = path.length - 1; i >= 0; i -= 1) {
    const rel = path[i];
    const forward = rel.source.id !== cur; // the relationship points at `cur`
    const other = forward ? rel.source : rel.target;
    const here = forward ? rel.target : rel.source;
    steps.push({ type: rel.type.name, forward, ci: here });
    cur = other.id;
  }
  steps.reverse();
  const first = path[0];
  const start = first.source.id === cur ? first.source : first.target;
  return { start, steps };
}

function pathNode(affected) {
  const { start, steps } = pathSteps(affected);
  if (!steps.length) return h('span', { class: 'muted' }, 'starting CI');
  return h('span', { class: 'path' },
    h('a', { href: ciHref(start.id) }, start.name),
    steps.map((s) => [
      h('span', { class: 'path-rel' }, s.forward ? ` —${s.type}→ ` : ` ←${s.type}— `),
      h('a', { href: ciHref(s.ci.id) }, s.ci.name),
    ]));
}

export function render(root, ctx) {
  setTitle('Impact analysis');
  const controller = new AbortController();
  let runController = null;
  let graph = null;
  const picked = new Map(); // id -> { id, name, ciClass }

  // ---- The form ----
  const chips = h('ul', { class: 'chips', 'aria-label': 'Starting CIs', 'data-test': 'impact-chips' });
  const pickInput = h('input', {
    type: 'search', autocomplete: 'off', placeholder: 'type a CI name', role: 'combobox',
    'aria-autocomplete': 'list', 'aria-expanded': 'false', 'aria-controls': 'pick-list',
    'data-test': 'impact-ci-input',
  });
  const pickList = h('ul', { id: 'pick-list', role: 'listbox', class: 'listbox', hidden: true, 'data-test': 'impact-ci-options' });
  const direction = select([['DOWNSTREAM', 'downstream: what they hit'], ['UPSTREAM', 'upstream: what they need'], ['BOTH', 'both']],
    ctx.query.get('direction') || 'DOWNSTREAM', { 'data-test': 'impact-direction' });
  const maxDepth = h('input', { type: 'number', min: 0, max: 50, placeholder: '10', value: ctx.query.get('maxDepth') || '', 'data-test': 'impact-max-depth' });
  const limit = h('input', { type: 'number', min: 1, max: 20000, value: ctx.query.get('limit') || String(DEFAULT_LIMIT), 'data-test': 'impact-limit' });
  const types = h('select', { multiple: true, size: 4, 'data-test': 'impact-types' });
  const retired = h('input', { type: 'checkbox', checked: ctx.query.get('retired') === '1', 'data-test': 'impact-retired' });
  const runButton = h('button', { type: 'submit', 'data-test': 'impact-run' }, 'Run impact analysis');
  const formStatus = h('div', { 'aria-live': 'polite' });
  const results = h('div', { 'data-test': 'impact-results' });

  function renderChips() {
    replace(chips, ...[...picked.values()].map((ci) => h('li', { class: 'chip', 'data-test': 'impact-chip' },
      h('a', { href: ciHref(ci.id) }, ci.name),
      ci.ciClass ? h('span', { class: 'muted small' }, ` ${ci.ciClass.name}`) : null,
      h('button', {
        type: 'button', class: 'chip-remove', 'aria-label': `Remove ${ci.name}`,
        onclick: () => { picked.delete(ci.id); renderChips(); pickInput.focus(); },
      }, '×'))));
    if (!picked.size) chips.append(h('li', { class: 'muted small' }, 'No CI picked yet.'));
  }

  // ---- The CI picker: a combobox with a debounced name search ----
  let options = [];
  let active = -1;
  let pickController = null;
  const closeList = () => {
    pickList.hidden = true;
    pickInput.setAttribute('aria-expanded', 'false');
    pickInput.removeAttribute('aria-activedescendant');
    active = -1;
  };
  const choose = (ci) => {
    picked.set(ci.id, ci);
    renderChips();
    pickInput.value = '';
    closeList();
    pickInput.focus();
  };
  const highlight = (i) => {
    active = i;
    [...pickList.children].forEach((li, j) => li.setAttribute('aria-selected', String(j === i)));
    if (i >= 0 && pickList.children[i]) pickInput.setAttribute('aria-activedescendant', pickList.children[i].id);
  };
  const searchCis = debounce(async () => {
    const name = pickInput.value.trim();
    if (!name) return closeList();
    if (pickController) pickController.abort();
    pickController = new AbortController();
    try {
      const data = await gql(QUERIES.pick, { name }, { signal: pickController.signal });
      options = data.configurationItems.nodes;
      replace(pickList, ...(options.length ? options.map((ci, i) => h('li', {
        id: `pick-${i}`, role: 'option', 'aria-selected': 'false', 'data-test': 'impact-ci-option',
        onmousedown: (e) => { e.preventDefault(); choose(ci); },
      }, ci.name, h('span', { class: 'muted small' }, ` ${ci.ciClass.name} · ${words(ci.status)}`)))
        : [h('li', { class: 'muted', role: 'option', 'aria-disabled': 'true' }, 'No CI of that name.')]));
      pickList.hidden = false;
      pickInput.setAttribute('aria-expanded', 'true');
      highlight(options.length ? 0 : -1);
    } catch (err) {
      if (!isAbort(err)) replace(formStatus, errorBox(err, { title: 'The CI search failed' }));
    }
  }, 250);
  pickInput.addEventListener('input', searchCis);
  pickInput.addEventListener('blur', () => setTimeout(closeList, 100));
  pickInput.addEventListener('keydown', (e) => {
    if (e.key === 'ArrowDown' && options.length) {
      e.preventDefault();
      highlight(Math.min(options.length - 1, active + 1));
    } else if (e.key === 'ArrowUp' && options.length) {
      e.preventDefault();
      highlight(Math.max(0, active - 1));
    } else if (e.key === 'Enter' && !pickList.hidden && active >= 0) {
      e.preventDefault();
      choose(options[active]);
    } else if (e.key === 'Escape') {
      closeList();
    }
  });

  // ---- Running the analysis ----
  function input() {
    const value = { ciIds: [...picked.keys()], direction: direction.value, includeRetired: retired.checked };
    if (maxDepth.value !== '') value.maxDepth = Number(maxDepth.value);
    if (limit.value !== '') value.limit = Number(limit.value);
    const chosen = [...types.selectedOptions].map((o) => o.value);
    if (chosen.length) value.relationshipTypes = chosen;
    return value;
  }

  async function run() {
    if (!picked.size) {
      replace(formStatus, errorBox({ errors: [{ code: 'VALIDATION', message: 'Pick at least one CI to start from.' }] }, { title: 'Nothing to analyse' }));
      pickInput.focus();
      return;
    }
    replace(formStatus);
    const vars = { input: input() };
    replaceHash(buildHash('/impact', {
      ci: vars.input.ciIds.join(','), direction: vars.input.direction, maxDepth: vars.input.maxDepth,
      limit: vars.input.limit, types: (vars.input.relationshipTypes || []).join(','), retired: vars.input.includeRetired ? 1 : '', run: 1,
    }));
    if (runController) runController.abort();
    runController = new AbortController();
    runButton.disabled = true;
    if (graph) { graph.destroy(); graph = null; }
    replace(results, loading('Analysing…'));
    try {
      const data = await gql(QUERIES.impact, vars, { signal: runController.signal });
      showReport(data.impactAnalysis);
    } catch (err) {
      if (!isAbort(err)) replace(results, errorBox(err, { title: 'The impact analysis failed' }));
    } finally {
      runButton.disabled = false;
    }
  }

  function showReport(report) {
    announce(`${report.totalAffectedCis} CIs and ${report.affectedServices.length} services affected`);
    const stateCount = (s) => (report.countsByState.find((c) => c.state === s) || { count: 0 }).count;
    replace(results, 
      h('div', { class: 'stats', 'data-test': 'impact-totals' },
        stat('Affected CIs', report.totalAffectedCis, 'impact-total'),
        stat('Down', stateCount('DOWN')),
        stat('Degraded', stateCount('DEGRADED')),
        stat('Dependencies', stateCount('DEPENDENCY')),
        stat('Services hit', report.affectedServices.length),
        stat('Customers hit', new Set(report.affectedCustomers.map((c) => c.customer.id)).size)),
      report.truncated
        ? h('p', { class: 'notice', role: 'status' }, `Only the first ${report.affectedCis.length} of ${report.totalAffectedCis} affected CIs are listed and drawn (the limit); the counts are exact.`)
        : null,
      h('div', { class: 'grid-2' },
        section('Affected services', servicesList(report.affectedServices)),
        section('Affected customers', customersTable(report.affectedCustomers))),
      h('div', { class: 'grid-2' },
        section('By depth', table([
          { label: 'Depth', cell: (c) => String(c.depth) },
          { label: 'CIs', cell: (c) => String(c.count), class: 'num' },
        ], report.countsByDepth, { caption: 'Affected CIs by depth' })),
        section('By class', table([
          { label: 'Class', cell: (c) => `${c.ciClass.label} (${c.ciClass.name})` },
          { label: 'CIs', cell: (c) => String(c.count), class: 'num' },
        ], report.countsByClass, { caption: 'Affected CIs by class' }))),
      graphSection(report),
      cisSection(report));
  }

  function stat(label, value, test) {
    return h('div', { class: 'stat', 'data-test': test },
      h('div', { class: 'stat-value' }, String(value)), h('div', { class: 'stat-label' }, label));
  }

  function servicesList(services) {
    if (!services.length) return empty('No service is hit.');
    return h('ul', { class: 'plain', 'data-test': 'affected-services' }, services.map((s) => h('li', {
      'data-test': 'affected-service', 'data-state': s.state, 'data-name': s.service.name,
    },
    badge(s.state), ' ', h('a', { href: buildHash('/search', { service: s.service.id }) }, s.service.name),
    ' ', s.criticality ? badge(s.criticality, { title: 'criticality' }) : null,
    h('div', { class: 'muted small' },
      `${words(s.service.kind)} service; ${s.affectedMembers.length} affected member${s.affectedMembers.length === 1 ? '' : 's'}: `,
      s.affectedMembers.slice(0, 8).map((m, i) => [i ? ', ' : '', h('a', { href: ciHref(m.id) }, m.name)]),
      s.affectedMembers.length > 8 ? ` and ${s.affectedMembers.length - 8} more` : ''))));
  }

  function customersTable(customers) {
    if (!customers.length) return empty('No customer consumes a hit service.');
    return table([
      { label: 'Customer', cell: (c) => c.customer.name },
      { label: 'Service', cell: (c) => c.service.name },
      { label: 'Agreement', cell: (c) => c.agreement || '—' },
    ], customers, { caption: 'Affected customers', rowAttrs: () => ({ 'data-test': 'affected-customer' }) });
  }

  // ---- The drawing ----
  function graphSection(report) {
    const canvas = h('canvas', {
      class: 'graph-canvas', tabindex: 0, 'data-test': 'impact-graph',
      role: 'img', 'aria-label': 'Drawing of the affected CIs by depth; the list below holds the same information. Drag to pan, wheel or +/- to zoom, 0 to fit.',
    });
    const tooltip = h('div', { class: 'graph-tooltip', hidden: true, role: 'tooltip' });
    const status = h('span', { class: 'muted small', 'aria-live': 'polite', 'data-test': 'impact-graph-status' });
    const detail = h('div', { class: 'graph-detail', 'data-test': 'impact-selected' },
      h('span', { class: 'muted small' }, 'Click a CI in the drawing to see the path that explains it.'));
    const expandAll = h('input', { type: 'checkbox', 'data-test': 'impact-expand-all' });
    const expandLabel = h('label', { class: 'inline' }, expandAll, ' Show every CI (no grouping)');
    const fitButton = h('button', { type: 'button', class: 'secondary', onclick: () => graph && graph.fit() }, 'Fit');
    const legend = h('span', { class: 'legend small' },
      badge('DOWN'), ' ', badge('DEGRADED'), ' ', badge('DEPENDENCY'), ' ', h('span', { class: 'legend-start' }, 'starting CI'));

    graph = new ImpactGraph(canvas, {
      tooltip,
      onStatus: (text) => { status.textContent = text; },
      onSelect: (node) => {
        const affected = report.affectedCis.find((a) => a.ci.id === node.id);
        replace(detail, 
          h('strong', {}, h('a', { href: ciHref(node.id) }, node.name)), ' ',
          h('span', { class: 'muted small' }, node.cls), ' ', badge(node.state), ` depth ${node.depth}`,
          affected ? h('div', {}, pathNode(affected)) : null);
      },
    });
    expandLabel.hidden = true;
    expandAll.addEventListener('change', () => graph && graph.setExpandAll(expandAll.checked));
    graph.setData(report.affectedCis).then(() => {
      expandLabel.hidden = !(graph && graph.groupable);
    }).catch((err) => { status.textContent = `Could not draw: ${err.message}`; });

    return section('Drawing',
      h('div', { class: 'graph-toolbar' }, fitButton, expandLabel, legend, status),
      h('div', { class: 'graph-wrap' }, canvas, tooltip),
      detail);
  }

  // ---- The list of affected CIs, shown a slice at a time and filterable ----
  function cisSection(report) {
    let shown = ROWS_STEP;
    let filtered = report.affectedCis;
    const filter = h('input', { type: 'search', placeholder: 'name, class or state', 'data-test': 'impact-ci-filter' });
    const box = h('div', {});
    const paint = () => {
      const rows = filtered.slice(0, shown);
      replace(box, 
        rows.length ? table([
          { label: 'CI', cell: (a) => ciLink(a.ci) },
          { label: 'State', cell: (a) => badge(a.state) },
          { label: 'Depth', cell: (a) => String(a.depth), class: 'num' },
          { label: 'Path', cell: (a) => pathNode(a) },
          {
            label: 'Drawing',
            cell: (a) => h('button', {
              type: 'button', class: 'link-button', onclick: () => {
                if (graph) graph.select(a.ci.id);
                document.querySelector('.graph-canvas')?.scrollIntoView({ block: 'center', behavior: 'smooth' });
              },
            }, 'locate'),
          },
        ], rows, { caption: 'Affected CIs', rowAttrs: (a) => ({ 'data-test': 'affected-ci', 'data-state': a.state }) }) : empty('No CI matches.'),
        filtered.length > shown
          ? h('button', { type: 'button', class: 'secondary', onclick: () => { shown += ROWS_STEP; paint(); } },
            `Show ${Math.min(ROWS_STEP, filtered.length - shown)} more of ${filtered.length - shown}`)
          : null);
    };
    filter.addEventListener('input', debounce(() => {
      const q = filter.value.trim().toLowerCase();
      filtered = q
        ? report.affectedCis.filter((a) => a.ci.name.toLowerCase().includes(q) || a.ci.ciClass.name.includes(q) || a.state.toLowerCase().includes(q))
        : report.affectedCis;
      shown = ROWS_STEP;
      paint();
    }, 200));
    paint();
    return section(`Affected CIs (${report.affectedCis.length}${report.truncated ? ` of ${report.totalAffectedCis}` : ''})`,
      labelled('Filter the list', filter), box);
  }

  // ---- Page ----
  const form = h('form', {
    class: 'filters', 'aria-label': 'Impact analysis',
    onsubmit: (e) => { e.preventDefault(); run(); },
  },
  h('div', { class: 'picker' }, labelled('Starting CIs', pickInput, 'search by name, pick one or more'), pickList),
  chips,
  h('div', { class: 'filter-grid' },
    labelled('Direction', direction),
    labelled('Max depth', maxDepth, 'relationships away; 10 when empty'),
    labelled('List at most', limit, 'affected CIs (counts stay exact)'),
    labelled('Relationship types', types, 'all when none is selected'),
    h('div', { class: 'control' }, h('label', { class: 'inline' }, retired, ' Include retired CIs'))),
  h('div', { class: 'form-actions' }, runButton),
  formStatus);

  root.append(h('h1', {}, 'Impact analysis'), form, results);
  renderChips();

  const wantedTypes = new Set((ctx.query.get('types') || '').split(',').filter(Boolean));
  gql(QUERIES.types, {}, { signal: controller.signal }).then((d) => {
    replace(types, ...d.relationshipTypes.map((t) => h('option', { value: t.name, selected: wantedTypes.has(t.name) }, `${t.name} (${words(t.propagation)})`)));
  }).catch((err) => { if (!isAbort(err)) formStatus.append(errorBox(err, { title: 'Could not load the relationship types' })); });

  // CIs named in the hash (from a CI page's link, or a bookmarked analysis).
  const ids = (ctx.query.get('ci') || '').split(',').filter(Boolean);
  if (ids.length) {
    gql(QUERIES.names, { ids, first: ids.length }, { signal: controller.signal }).then((d) => {
      d.configurationItems.nodes.forEach((ci) => picked.set(ci.id, ci));
      renderChips();
      if (ctx.query.get('run') === '1' && picked.size) run();
    }).catch((err) => { if (!isAbort(err)) formStatus.append(errorBox(err, { title: 'Could not load the starting CIs' })); });
  } else {
    pickInput.focus();
  }

  return () => {
    controller.abort();
    if (runController) runController.abort();
    if (pickController) pickController.abort();
    searchCis.cancel();
    if (graph) graph.destroy();
  };
}
