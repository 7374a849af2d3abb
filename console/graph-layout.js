// The impact graph's model and layout, with no DOM: the affected CIs become nodes, the
// relationships of their paths become edges, and nodes are placed in columns by depth (a
// simple layered layout). Beyond GROUP_THRESHOLD CIs, the CIs of one class at one depth are
// drawn as a single group node showing their count, unless that group is expanded.
// Everything long runs in slices that give the browser back its thread between them, so
// the tab stays responsive whatever the size of the analysis.

export const GROUP_THRESHOLD = 300;
export const NODE_W = 180;
export const NODE_H = 26;
export const GROUP_H = 40;
export const ROW_GAP = 10;
export const COL_GAP = 110;

const STATE_RANK = { DOWN: 3, DEGRADED: 2, DEPENDENCY: 1 };

// The worse of two impact states (DOWN over DEGRADED over DEPENDENCY).
export function worseState(a, b) {
  return (STATE_RANK[a] || 0) >= (STATE_RANK[b] || 0) ? a : b;
}

// Gives the thread back to the browser (input, painting) when a slice has run long enough.
export function makeYielder(budgetMs = 6) {
  let sliceStart = now();
  return async function maybeYield(signal) {
    if (now() - sliceStart < budgetMs) return;
    await new Promise((resolve) => setTimeout(resolve, 0));
    if (signal && signal.aborted) throw abortError();
    sliceStart = now();
  };
}

function now() {
  return typeof performance !== 'undefined' ? performance.now() : Date.now();
}

function abortError() {
  const err = new Error('layout cancelled');
  err.name = 'AbortError';
  return err;
}

// The model: every affected CI once, and every relationship found in a path once, oriented
// from the end nearer the starting CIs to the farther one (the way impact travelled).
export async function buildModel(affectedCis, { signal } = {}) {
  const maybeYield = makeYielder();
  const nodes = new Map();
  for (let i = 0; i < affectedCis.length; i += 1) {
    const a = affectedCis[i];
    nodes.set(a.ci.id, {
      id: a.ci.id,
      name: a.ci.name,
      cls: a.ci.ciClass ? a.ci.ciClass.name : '?',
      depth: a.depth,
      state: a.state,
      start: a.depth === 0,
      pathIds: a.path.map((r) => r.id),
      path: a.path,
    });
    if ((i & 255) === 0) await maybeYield(signal);
  }
  const edges = new Map();
  let i = 0;
  for (const node of nodes.values()) {
    for (const rel of node.path) {
      if (edges.has(rel.id)) continue;
      const s = nodes.get(rel.source.id);
      const t = nodes.get(rel.target.id);
      // A path may name a CI the `limit` cut from the list: such an edge cannot be drawn.
      if (!s || !t) continue;
      const forward = s.depth <= t.depth;
      edges.set(rel.id, {
        id: rel.id,
        from: forward ? s.id : t.id,
        to: forward ? t.id : s.id,
        type: rel.type ? rel.type.name : '',
      });
    }
    i += 1;
    if ((i & 255) === 0) await maybeYield(signal);
  }
  return { nodes, edges };
}

function compare(x, y) {
  if (x < y) return -1;
  return x > y ? 1 : 0;
}

export function groupKey(depth, cls) {
  return `g|${depth}|${cls}`;
}

// What is drawn: CI nodes, or group nodes standing for the CIs of one class at one depth.
// `expandAll` or a group key in `expanded` shows that group's CIs one by one; a group of
// one CI is always shown as the CI itself.
export async function buildView(model, { expandAll = false, expanded = new Set(), threshold = GROUP_THRESHOLD, signal } = {}) {
  const maybeYield = makeYielder();
  const grouping = !expandAll && model.nodes.size > threshold;
  const groups = new Map();
  if (grouping) {
    for (const n of model.nodes.values()) {
      const key = groupKey(n.depth, n.cls);
      let g = groups.get(key);
      if (!g) {
        g = { key, kind: 'group', depth: n.depth, cls: n.cls, count: 0, states: { DOWN: 0, DEGRADED: 0, DEPENDENCY: 0 }, state: null, start: false, members: [] };
        groups.set(key, g);
      }
      g.count += 1;
      g.states[n.state] = (g.states[n.state] || 0) + 1;
      g.state = worseState(g.state, n.state);
      g.start = g.start || n.start;
      g.members.push(n.id);
    }
  }
  const vnodes = new Map(); // view key -> view node
  const keyOf = new Map(); // CI id -> view key
  let i = 0;
  for (const n of model.nodes.values()) {
    const gk = groupKey(n.depth, n.cls);
    const g = grouping ? groups.get(gk) : null;
    if (g && g.count > 1 && !expanded.has(gk)) {
      if (!vnodes.has(gk)) vnodes.set(gk, g);
      keyOf.set(n.id, gk);
    } else {
      const key = `c|${n.id}`;
      vnodes.set(key, {
        key, kind: 'ci', id: n.id, depth: n.depth, cls: n.cls, name: n.name, state: n.state, start: n.start,
        // Part of an expanded group: clicking can fold it again.
        group: g && g.count > 1 ? gk : null,
      });
      keyOf.set(n.id, key);
    }
    i += 1;
    if ((i & 511) === 0) await maybeYield(signal);
  }
  const vedges = new Map();
  for (const e of model.edges.values()) {
    const from = keyOf.get(e.from);
    const to = keyOf.get(e.to);
    if (!from || !to || from === to) continue;
    const key = `${from}>${to}`;
    let ve = vedges.get(key);
    if (!ve) {
      ve = { key, from, to, count: 0, types: new Set(), relIds: [] };
      vedges.set(key, ve);
    }
    ve.count += 1;
    ve.types.add(e.type);
    ve.relIds.push(e.id);
    i += 1;
    if ((i & 1023) === 0) await maybeYield(signal);
  }
  return { nodes: [...vnodes.values()], edges: [...vedges.values()], keyOf, grouped: grouping };
}

// The layered layout: one column per depth; within a column, nodes are ordered by the
// average position of the nodes that point at them in earlier columns (the barycenter
// heuristic, one sweep), which keeps most edges short and uncrossed. Each node gets
// x, y (its top-left corner), w and h. Returns the columns, sorted by y, for hit tests.
export async function layout(view, { signal } = {}) {
  const maybeYield = makeYielder();
  const byKey = new Map(view.nodes.map((n) => [n.key, n]));
  const incoming = new Map();
  for (const e of view.edges) {
    if (!incoming.has(e.to)) incoming.set(e.to, []);
    incoming.get(e.to).push(e.from);
  }
  const depths = [...new Set(view.nodes.map((n) => n.depth))].sort((a, b) => a - b);
  const columns = [];
  const order = new Map(); // key -> position in its column
  for (const depth of depths) {
    const col = view.nodes.filter((n) => n.depth === depth);
    for (let i = 0; i < col.length; i += 1) {
      const n = col[i];
      const preds = (incoming.get(n.key) || []).filter((k) => order.has(k) && byKey.get(k).depth < depth);
      n.bary = preds.length ? preds.reduce((s, k) => s + order.get(k), 0) / preds.length : Number.POSITIVE_INFINITY;
      if ((i & 1023) === 0) await maybeYield(signal);
    }
    // Starting CIs first, then by barycenter; ties by class and name for a stable drawing.
    // Plain code-point comparison: localeCompare is several times slower on big columns.
    col.sort((a, b) => (Number(b.start) - Number(a.start))
      || (a.bary - b.bary)
      || compare(a.cls, b.cls)
      || compare(a.name || a.cls, b.name || b.cls));
    let y = 0;
    col.forEach((n, idx) => {
      order.set(n.key, idx);
      n.w = NODE_W;
      n.h = n.kind === 'group' ? GROUP_H : NODE_H;
      n.x = columns.length * (NODE_W + COL_GAP);
      n.y = y;
      y += n.h + ROW_GAP;
    });
    columns.push({ depth, x: columns.length * (NODE_W + COL_GAP), height: Math.max(0, y - ROW_GAP), nodes: col });
    await maybeYield(signal);
  }
  // Centre every column on the tallest one, so the drawing reads as a tree, not a staircase.
  const tallest = Math.max(0, ...columns.map((c) => c.height));
  for (const c of columns) {
    const shift = (tallest - c.height) / 2;
    for (const n of c.nodes) n.y += shift;
  }
  return { columns, width: columns.length * (NODE_W + COL_GAP) - COL_GAP, height: tallest, byKey };
}

// The node under a point of the drawing (world coordinates), by the column then a binary
// search on y: cheap enough to run on every pointer move at any size.
export function hitTest(placed, x, y) {
  const stride = NODE_W + COL_GAP;
  const ci = Math.floor(x / stride);
  const col = placed.columns[ci];
  if (!col || x - col.x > NODE_W) return null;
  const nodes = col.nodes;
  let lo = 0;
  let hi = nodes.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const n = nodes[mid];
    if (y < n.y) hi = mid - 1;
    else if (y > n.y + n.h) lo = mid + 1;
    else return n;
  }
  return null;
}

// The index range of a column's nodes overlapping [top, bottom] (world coordinates): only
// those are drawn.
export function visibleRange(col, top, bottom) {
  const nodes = col.nodes;
  let lo = 0;
  let hi = nodes.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (nodes[mid].y + nodes[mid].h < top) lo = mid + 1;
    else hi = mid;
  }
  let end = lo;
  while (end < nodes.length && nodes[end].y <= bottom) end += 1;
  return [lo, end];
}
