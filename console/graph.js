// The impact drawing on a <canvas>: pan by dragging, zoom with the wheel or the +/- keys,
// hover for a tooltip, click a CI to highlight the path that explains it, click a group to
// expand it. Only what is on screen is drawn, labels only when they are large enough to
// read, and a frame is drawn only when something changed, so thousands of nodes stay fluid.

import {
  buildModel, buildView, layout, hitTest, visibleRange, NODE_W, GROUP_THRESHOLD,
} from './graph-layout.js';

const COLORS = {
  DOWN: { fill: '#fde8e8', stroke: '#c62828', text: '#7f1d1d' },
  DEGRADED: { fill: '#fff4dc', stroke: '#c77700', text: '#6b3f00' },
  DEPENDENCY: { fill: '#e6f0fb', stroke: '#1f5fa8', text: '#123c6b' },
};
const EDGE = '#9aa4b2';
const HIGHLIGHT = '#111827';
const MIN_SCALE = 0.002; // A column of thousands of CIs must fit on screen.
const MAX_SCALE = 3;

function colorOf(state) {
  return COLORS[state] || COLORS.DEPENDENCY;
}

export class ImpactGraph {
  // `canvas` is drawn on; `tooltip` is a positioned element shown on hover; `onSelect(node)`
  // is told about clicks on a CI; `onStatus(text)` about layout progress.
  constructor(canvas, { tooltip, onSelect, onStatus } = {}) {
    this.canvas = canvas;
    this.ctx = canvas.getContext('2d');
    this.tooltip = tooltip;
    this.onSelect = onSelect || (() => {});
    this.onStatus = onStatus || (() => {});
    this.model = null;
    this.placed = null;
    this.view = null;
    this.expanded = new Set();
    this.expandAll = false;
    this.selected = null; // CI id
    this.highlight = new Set(); // view edge keys on the selected CI's path
    this.t = { scale: 1, x: 20, y: 20 };
    this.dirty = false;
    this.frame = 0;
    this.controller = null;
    this.listeners = [];
    this.resize = this.resize.bind(this);
    this.bindEvents();
    if (typeof ResizeObserver !== 'undefined') {
      this.observer = new ResizeObserver(this.resize);
      this.observer.observe(canvas.parentElement || canvas);
    }
    this.resize();
  }

  // Replaces the drawing with a new impact report's affected CIs.
  async setData(affectedCis) {
    this.cancel();
    this.controller = new AbortController();
    const { signal } = this.controller;
    this.expanded = new Set();
    this.selected = null;
    this.highlight = new Set();
    this.onStatus(`Preparing ${affectedCis.length} CIs…`);
    try {
      this.model = await buildModel(affectedCis, { signal });
      await this.relayout(signal, true);
    } catch (err) {
      if (err.name !== 'AbortError') throw err;
    }
  }

  get size() {
    return this.model ? this.model.nodes.size : 0;
  }

  get groupable() {
    return this.size > GROUP_THRESHOLD;
  }

  setExpandAll(on) {
    this.expandAll = on;
    this.expanded = new Set();
    this.restart(true);
  }

  toggleGroup(key) {
    if (this.expanded.has(key)) this.expanded.delete(key);
    else this.expanded.add(key);
    this.restart(false);
  }

  // Selects a CI from outside (the table): highlights its path and brings it into view.
  // A CI hidden in a group has its group expanded first, so it can be seen.
  select(ciId) {
    this.selected = ciId;
    const key = this.view ? this.view.keyOf.get(ciId) : null;
    const show = () => {
      this.computeHighlight();
      const node = this.nodeOfCi(ciId);
      if (node) this.centreOn(node);
      this.requestDraw();
    };
    if (key && key.startsWith('g|')) {
      this.expanded.add(key);
      this.restart(false).then(show);
    } else {
      show();
    }
  }

  restart(fit) {
    if (!this.model) return Promise.resolve();
    this.cancel();
    this.controller = new AbortController();
    return this.relayout(this.controller.signal, fit).catch((err) => {
      if (err.name !== 'AbortError') console.error(err);
    });
  }

  cancel() {
    if (this.controller) this.controller.abort();
    this.controller = null;
  }

  async relayout(signal, fit) {
    const n = this.model.nodes.size;
    this.onStatus(`Laying out ${n} CIs…`);
    const view = await buildView(this.model, { expandAll: this.expandAll, expanded: this.expanded, signal });
    const placed = await layout(view, { signal });
    if (signal.aborted) return;
    this.view = view;
    this.placed = placed;
    this.buildEdgePaths();
    this.computeHighlight();
    if (fit) this.fit();
    const groups = view.nodes.filter((v) => v.kind === 'group').length;
    this.onStatus(groups
      ? `${n} CIs drawn as ${view.nodes.length} nodes (${groups} groups of one class at one depth: click a group to expand it).`
      : `${n} CIs drawn.`);
    this.requestDraw();
  }

  // Edges become a few Path2D objects (by line width) built once per layout: stroking one
  // path of thousands of curves is far cheaper than thousands of strokes.
  buildEdgePaths() {
    const buckets = new Map();
    const byKey = this.placed.byKey;
    this.edgeGeometry = new Map();
    for (const e of this.view.edges) {
      const a = byKey.get(e.from);
      const b = byKey.get(e.to);
      if (!a || !b) continue;
      const width = e.count > 1 ? Math.min(6, 1 + Math.log2(e.count)) : 1;
      const rounded = Math.round(width);
      if (!buckets.has(rounded)) buckets.set(rounded, new Path2D());
      const geo = this.curve(a, b);
      this.edgeGeometry.set(e.key, geo);
      const p = buckets.get(rounded);
      p.moveTo(geo[0], geo[1]);
      p.bezierCurveTo(geo[2], geo[3], geo[4], geo[5], geo[6], geo[7]);
    }
    this.edgePaths = [...buckets.entries()];
  }

  // A smooth curve from the right side of `a` to the left side of `b` (or an arc when both
  // sit in one column).
  curve(a, b) {
    const ay = a.y + a.h / 2;
    const by = b.y + b.h / 2;
    if (a.x === b.x) {
      const x = a.x + a.w;
      return [x, ay, x + 60, ay, x + 60, by, x, by];
    }
    const x1 = a.x + a.w;
    const x2 = b.x;
    const mid = (x1 + x2) / 2;
    return [x1, ay, mid, ay, mid, by, x2, by];
  }

  nodeOfCi(ciId) {
    if (!this.view) return null;
    const key = this.view.keyOf.get(ciId);
    return key ? this.placed.byKey.get(key) : null;
  }

  // The view edges along the selected CI's path (several relationships may share one edge
  // between groups).
  computeHighlight() {
    this.highlight = new Set();
    if (!this.selected || !this.model || !this.view) return;
    const node = this.model.nodes.get(this.selected);
    if (!node) return;
    for (const rel of node.path) {
      const s = this.view.keyOf.get(rel.source.id);
      const t = this.view.keyOf.get(rel.target.id);
      if (!s || !t) continue;
      this.highlight.add(`${s}>${t}`);
      this.highlight.add(`${t}>${s}`);
    }
  }

  fit() {
    if (!this.placed) return;
    const { width, height } = this.cssSize();
    const pad = 24;
    const w = Math.max(1, this.placed.width);
    const hgt = Math.max(1, this.placed.height);
    const scale = Math.max(MIN_SCALE, Math.min(1.2, (width - 2 * pad) / w, (height - 2 * pad) / hgt));
    this.t = { scale, x: (width - w * scale) / 2, y: (height - hgt * scale) / 2 };
    this.requestDraw();
  }

  centreOn(node) {
    const { width, height } = this.cssSize();
    const scale = Math.max(this.t.scale, 0.8);
    this.t = { scale, x: width / 2 - (node.x + node.w / 2) * scale, y: height / 2 - (node.y + node.h / 2) * scale };
  }

  zoomAt(factor, cx, cy) {
    const scale = Math.max(MIN_SCALE, Math.min(MAX_SCALE, this.t.scale * factor));
    const k = scale / this.t.scale;
    this.t = { scale, x: cx - (cx - this.t.x) * k, y: cy - (cy - this.t.y) * k };
    this.requestDraw();
  }

  cssSize() {
    return { width: this.canvas.clientWidth || 800, height: this.canvas.clientHeight || 500 };
  }

  resize() {
    const dpr = (typeof window !== 'undefined' && window.devicePixelRatio) || 1;
    const { width, height } = this.cssSize();
    this.canvas.width = Math.round(width * dpr);
    this.canvas.height = Math.round(height * dpr);
    this.requestDraw();
  }

  requestDraw() {
    if (this.dirty || !this.ctx) return;
    this.dirty = true;
    this.frame = requestAnimationFrame(() => {
      this.dirty = false;
      this.draw();
    });
  }

  draw() {
    const ctx = this.ctx;
    if (!ctx) return;
    const dpr = this.canvas.width / (this.canvas.clientWidth || this.canvas.width);
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, this.canvas.width, this.canvas.height);
    if (!this.placed) return;
    const { scale, x, y } = this.t;
    ctx.setTransform(dpr * scale, 0, 0, dpr * scale, dpr * x, dpr * y);
    const { width, height } = this.cssSize();
    // The visible part of the drawing, in world coordinates.
    const left = -x / scale;
    const top = -y / scale;
    const right = left + width / scale;
    const bottom = top + height / scale;

    ctx.lineWidth = 1 / Math.max(scale, 0.5);
    ctx.strokeStyle = EDGE;
    for (const [w, path] of this.edgePaths) {
      ctx.lineWidth = w / Math.max(scale, 0.5);
      ctx.stroke(path);
    }
    if (this.highlight.size) {
      ctx.strokeStyle = HIGHLIGHT;
      ctx.lineWidth = 3 / Math.max(scale, 0.5);
      ctx.beginPath();
      for (const key of this.highlight) {
        const g = this.edgeGeometry.get(key);
        if (!g) continue;
        ctx.moveTo(g[0], g[1]);
        ctx.bezierCurveTo(g[2], g[3], g[4], g[5], g[6], g[7]);
      }
      ctx.stroke();
    }

    const visible = [];
    for (const col of this.placed.columns) {
      if (col.x > right || col.x + NODE_W < left) continue;
      const [from, to] = visibleRange(col, top, bottom);
      for (let i = from; i < to; i += 1) visible.push(col.nodes[i]);
    }
    // Fill and stroke by colour: a handful of paths instead of one per node.
    for (const state of Object.keys(COLORS)) {
      const c = COLORS[state];
      const path = new Path2D();
      let any = false;
      for (const n of visible) {
        if ((n.state || 'DEPENDENCY') !== state) continue;
        path.rect(n.x, n.y, n.w, n.h);
        any = true;
      }
      if (!any) continue;
      ctx.fillStyle = c.fill;
      ctx.fill(path);
      ctx.strokeStyle = c.stroke;
      ctx.lineWidth = 1 / Math.max(scale, 0.5);
      ctx.stroke(path);
    }
    // Starting CIs and the selection get a heavy border.
    ctx.strokeStyle = HIGHLIGHT;
    for (const n of visible) {
      const isSelected = n.kind === 'ci' && n.id === this.selected;
      if (!n.start && !isSelected) continue;
      ctx.lineWidth = (isSelected ? 3 : 2) / Math.max(scale, 0.5);
      ctx.strokeRect(n.x, n.y, n.w, n.h);
    }
    // Labels only when readable (about 9 px or more on screen) and not too many.
    if (scale * 12 >= 9 && visible.length <= 4000) {
      ctx.textBaseline = 'middle';
      for (const n of visible) this.label(ctx, n);
    }
  }

  label(ctx, n) {
    const c = colorOf(n.state);
    ctx.fillStyle = c.text;
    const pad = 6;
    // Cut labels are measured once per node and kept: measuring is the costly part.
    if (n.kind === 'group') {
      if (!n.labels) {
        const parts = [];
        if (n.states.DOWN) parts.push(`${n.states.DOWN} down`);
        if (n.states.DEGRADED) parts.push(`${n.states.DEGRADED} degraded`);
        if (n.states.DEPENDENCY) parts.push(`${n.states.DEPENDENCY} dependency`);
        ctx.font = 'bold 12px system-ui, sans-serif';
        const first = fitText(ctx, `${n.count} × ${n.cls}`, n.w - 2 * pad);
        ctx.font = '11px system-ui, sans-serif';
        n.labels = [first, fitText(ctx, `${parts.join(' · ')}  ⊕`, n.w - 2 * pad)];
      }
      ctx.font = 'bold 12px system-ui, sans-serif';
      ctx.fillText(n.labels[0], n.x + pad, n.y + 13);
      ctx.font = '11px system-ui, sans-serif';
      ctx.fillText(n.labels[1], n.x + pad, n.y + 29);
    } else {
      ctx.font = '12px system-ui, sans-serif';
      if (!n.labels) n.labels = [fitText(ctx, n.name, n.w - 2 * pad)];
      ctx.fillText(n.labels[0], n.x + pad, n.y + n.h / 2);
    }
  }

  // Screen point (relative to the canvas) to drawing coordinates.
  toWorld(px, py) {
    return [(px - this.t.x) / this.t.scale, (py - this.t.y) / this.t.scale];
  }

  on(target, type, fn, opts) {
    target.addEventListener(type, fn, opts);
    this.listeners.push(() => target.removeEventListener(type, fn, opts));
  }

  bindEvents() {
    const canvas = this.canvas;
    let drag = null;
    const local = (e) => {
      const r = canvas.getBoundingClientRect();
      return [e.clientX - r.left, e.clientY - r.top];
    };
    this.on(canvas, 'wheel', (e) => {
      e.preventDefault();
      const [px, py] = local(e);
      this.zoomAt(Math.exp(-e.deltaY * 0.0015), px, py);
    }, { passive: false });
    this.on(canvas, 'pointerdown', (e) => {
      const [px, py] = local(e);
      drag = { px, py, x: this.t.x, y: this.t.y, moved: false };
      canvas.setPointerCapture(e.pointerId);
    });
    this.on(canvas, 'pointermove', (e) => {
      const [px, py] = local(e);
      if (drag) {
        const dx = px - drag.px;
        const dy = py - drag.py;
        if (Math.abs(dx) + Math.abs(dy) > 3) drag.moved = true;
        if (drag.moved) {
          this.t = { ...this.t, x: drag.x + dx, y: drag.y + dy };
          this.hideTooltip();
          this.requestDraw();
        }
        return;
      }
      this.hover(px, py);
    });
    this.on(canvas, 'pointerup', (e) => {
      const wasDrag = drag && drag.moved;
      drag = null;
      if (wasDrag) return;
      const [px, py] = local(e);
      this.click(px, py, e.shiftKey);
    });
    this.on(canvas, 'pointerleave', () => this.hideTooltip());
    this.on(canvas, 'keydown', (e) => {
      const { width, height } = this.cssSize();
      const step = 60;
      const keys = {
        '+': () => this.zoomAt(1.25, width / 2, height / 2),
        '=': () => this.zoomAt(1.25, width / 2, height / 2),
        '-': () => this.zoomAt(0.8, width / 2, height / 2),
        0: () => this.fit(),
        ArrowLeft: () => this.pan(step, 0),
        ArrowRight: () => this.pan(-step, 0),
        ArrowUp: () => this.pan(0, step),
        ArrowDown: () => this.pan(0, -step),
      };
      if (keys[e.key]) {
        e.preventDefault();
        keys[e.key]();
      }
    });
  }

  pan(dx, dy) {
    this.t = { ...this.t, x: this.t.x + dx, y: this.t.y + dy };
    this.requestDraw();
  }

  hover(px, py) {
    if (!this.placed || !this.tooltip) return;
    const node = hitTest(this.placed, ...this.toWorld(px, py));
    if (!node) {
      this.hideTooltip();
      this.canvas.style.cursor = 'grab';
      return;
    }
    this.canvas.style.cursor = 'pointer';
    const lines = node.kind === 'group'
      ? [`${node.count} × ${node.cls} at depth ${node.depth}`,
        Object.entries(node.states).filter(([, c]) => c).map(([s, c]) => `${c} ${s.toLowerCase()}`).join(', '),
        'Click to expand']
      : [node.name, `${node.cls} · ${node.state.toLowerCase()} · depth ${node.depth}`,
        node.group ? 'Click to select; shift-click folds its group' : 'Click to show its path'];
    this.tooltip.replaceChildren(...lines.map((l, i) => {
      const div = document.createElement('div');
      if (i === 0) div.className = 'tip-title';
      div.textContent = l;
      return div;
    }));
    this.tooltip.hidden = false;
    this.tooltip.style.left = `${Math.round(px + 14)}px`;
    this.tooltip.style.top = `${Math.round(py + 14)}px`;
  }

  hideTooltip() {
    if (this.tooltip) this.tooltip.hidden = true;
  }

  click(px, py, shift) {
    if (!this.placed) return;
    const node = hitTest(this.placed, ...this.toWorld(px, py));
    if (!node) return;
    if (node.kind === 'group') {
      this.toggleGroup(node.key);
      return;
    }
    if (node.group && shift) {
      this.toggleGroup(node.group);
      return;
    }
    this.selected = node.id;
    this.computeHighlight();
    this.requestDraw();
    this.onSelect(this.model.nodes.get(node.id));
  }

  destroy() {
    this.cancel();
    cancelAnimationFrame(this.frame);
    this.listeners.forEach((off) => off());
    if (this.observer) this.observer.disconnect();
  }
}

// Cuts a label to a width, with an ellipsis.
function fitText(ctx, text, max) {
  if (ctx.measureText(text).width <= max) return text;
  let lo = 0;
  let hi = text.length;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (ctx.measureText(`${text.slice(0, mid)}…`).width <= max) lo = mid;
    else hi = mid - 1;
  }
  return `${text.slice(0, lo)}…`;
}
