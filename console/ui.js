// Small shared helpers for building the DOM. Text always goes in as text nodes (never as
// HTML), so names and attribute values coming from the CMDB cannot inject markup.

// Creates an element: `h('a', { href: '#/x', class: 'link' }, 'text', child)`. Attributes
// starting with `on` become listeners; `dataset`-style keys are written as given
// (`'data-test': 'x'`); `null`/`false` children and attributes are skipped.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (key === 'class') {
      el.className = value;
    } else if (key === 'value' && 'value' in el) {
      el.value = value;
    } else if (key === 'checked' || key === 'selected' || key === 'disabled') {
      el[key] = Boolean(value);
    } else {
      el.setAttribute(key, value === true ? '' : String(value));
    }
  }
  append(el, children);
  return el;
}

// Appends children, flattening arrays and turning strings and numbers into text nodes.
export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

// Replaces an element's children, skipping `null`/`false` as `h()` does (the DOM's own
// `replaceChildren` would show them as the text "null").
export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

// Dates as people read them, in the browser's locale and time zone; the full ISO value
// stays available in the `datetime` attribute and the tooltip.
export function time(iso) {
  if (!iso) return h('span', { class: 'muted' }, '—');
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return h('span', {}, iso);
  return h('time', { datetime: iso, title: iso }, fmtDate(iso));
}

export function fmtDate(iso) {
  if (!iso) return '—';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  return date.toLocaleString(undefined, {
    year: 'numeric', month: 'short', day: '2-digit', hour: '2-digit', minute: '2-digit',
  });
}

// A compact, readable rendering of a JSON value (attributes, audit states).
export function fmtValue(value) {
  if (value === undefined) return '—';
  if (value === null) return 'null';
  if (typeof value === 'string') return value;
  return JSON.stringify(value);
}

export function valueCell(value) {
  const text = fmtValue(value);
  const muted = value === undefined || value === null;
  return h('code', { class: muted ? 'value muted' : 'value' }, text);
}

// Enum values (`IN_SERVICE`) as words (`in service`).
export function words(enumValue) {
  return enumValue ? String(enumValue).toLowerCase().replace(/_/g, ' ') : '—';
}

// A coloured label for a state, risk or priority; the colour class is derived from the
// value so the stylesheet decides the palette.
export function badge(value, { title } = {}) {
  if (value === null || value === undefined || value === '') return h('span', { class: 'muted' }, '—');
  const key = String(value).toLowerCase().replace(/[^a-z0-9]+/g, '-');
  return h('span', { class: `badge badge-${key}`, title }, String(value).replace(/_/g, ' '));
}

export function ciHref(id) {
  return `#/ci/${encodeURIComponent(id)}`;
}

// A link to a CI page, with its class in muted text when known.
export function ciLink(ci, { showClass = true } = {}) {
  if (!ci) return h('span', { class: 'muted' }, 'unknown CI');
  return h('span', { class: 'ci-ref' },
    h('a', { href: ciHref(ci.id) }, ci.name),
    showClass && ci.ciClass ? h('span', { class: 'muted small' }, ` (${ci.ciClass.name})`) : null);
}

// Shows an ApiError (or any error) readably: each message with its code, and the input field
// or result path it concerns when the server names one.
export function errorBox(err, { title = 'Something went wrong' } = {}) {
  const errors = err && err.errors ? err.errors : [{ message: String(err && err.message ? err.message : err), code: 'ERROR' }];
  return h('div', { class: 'error-box', role: 'alert', 'data-test': 'error' },
    h('strong', {}, title),
    h('ul', {}, errors.map((e) => h('li', {},
      h('span', { class: 'error-code' }, e.code || 'ERROR'), ' ',
      h('span', {}, e.message),
      e.field ? h('span', { class: 'muted small' }, ` (field: ${e.field})`) : null,
      e.path ? h('span', { class: 'muted small' }, ` (at: ${e.path})`) : null))));
}

export function loading(text = 'Loading…') {
  return h('p', { class: 'loading', role: 'status' }, text);
}

export function empty(text) {
  return h('p', { class: 'empty muted' }, text);
}

// A section with a heading, used by every page for its blocks.
export function section(title, ...children) {
  const id = `s-${title.toLowerCase().replace(/[^a-z0-9]+/g, '-')}`;
  return h('section', { class: 'card', 'aria-labelledby': id }, h('h2', { id }, title), ...children);
}

// A plain table: `columns` are `{ label, cell: (row) => node|string, class }`.
export function table(columns, rows, { rowAttrs, caption } = {}) {
  return h('div', { class: 'table-wrap' },
    h('table', {},
      caption ? h('caption', { class: 'sr-only' }, caption) : null,
      h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col', class: c.class }, c.label)))),
      h('tbody', {}, rows.map((row) => h('tr', rowAttrs ? rowAttrs(row) : {},
        columns.map((c) => h('td', { class: c.class }, c.cell(row))))))));
}

// A definition list of label/value pairs; values may be nodes or text.
export function fields(pairs) {
  return h('dl', { class: 'fields' }, pairs
    .filter((p) => p)
    .map(([label, value]) => [h('dt', {}, label), h('dd', {}, value === null || value === undefined || value === '' ? h('span', { class: 'muted' }, '—') : value)]));
}

// Delays `fn` until calls stop for `ms`: the as-you-type search must not send one request
// per keystroke.
export function debounce(fn, ms) {
  let timer = null;
  const debounced = (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
  debounced.cancel = () => clearTimeout(timer);
  return debounced;
}

// Previous/next buttons for a Relay connection. Forward pages use `after`, backward ones
// `before` with `last`, so no offset is ever needed; `onPage` receives the new cursor args.
export function pager(connection, onPage, { label = 'items', pageSize } = {}) {
  const { pageInfo, totalCount } = connection;
  const shown = (connection.nodes || connection.edges || []).length;
  return h('nav', { class: 'pager', 'aria-label': `${label} pages` },
    h('span', { class: 'muted', 'data-test': 'total-count' }, `${totalCount} ${label}${shown ? `, ${shown} shown` : ''}`),
    h('button', {
      type: 'button', class: 'secondary', disabled: !pageInfo.hasPreviousPage, 'data-test': 'page-prev',
      onclick: () => onPage({ before: pageInfo.startCursor, last: pageSize }),
    }, '‹ Previous'),
    h('button', {
      type: 'button', class: 'secondary', disabled: !pageInfo.hasNextPage, 'data-test': 'page-next',
      onclick: () => onPage({ after: pageInfo.endCursor, first: pageSize }),
    }, 'Next ›'));
}

// A labelled form control: the label wraps nothing, so `for` ties it to the control.
let controlSeq = 0;
export function labelled(labelText, control, hint) {
  if (!control.id) {
    controlSeq += 1;
    control.id = `ctl-${controlSeq}`;
  }
  return h('div', { class: 'control' },
    h('label', { for: control.id }, labelText),
    control,
    hint ? h('small', { class: 'muted' }, hint) : null);
}

// A <select> from `[value, label]` pairs (or plain values), with the current one selected.
export function select(options, current, attrs = {}) {
  return h('select', attrs, options.map((o) => {
    const [value, label] = Array.isArray(o) ? o : [o, words(o)];
    return h('option', { value, selected: String(value) === String(current ?? '') }, label);
  }));
}

export function setTitle(text) {
  document.title = text ? `${text} · cmdb` : 'cmdb';
}

// Announces a short message to screen readers (results counts after a search).
export function announce(text) {
  const live = document.getElementById('live');
  if (live) live.textContent = text;
}

// The fields that changed between two states of an audited entity, flattened one level
// into objects (`attributes.cpu_count`), leaving out the bookkeeping every write touches.
const BOOKKEEPING = new Set(['updated_at', 'updatedAt', 'version', 'provenance']);

export function diffStates(before, after) {
  const flat = (state) => {
    const out = new Map();
    if (!state || typeof state !== 'object') return out;
    for (const [key, value] of Object.entries(state)) {
      if (BOOKKEEPING.has(key)) continue;
      if (value && typeof value === 'object' && !Array.isArray(value)) {
        const entries = Object.entries(value);
        if (entries.length === 0) out.set(key, value);
        for (const [sub, subValue] of entries) out.set(`${key}.${sub}`, subValue);
      } else {
        out.set(key, value);
      }
    }
    return out;
  };
  const a = flat(before);
  const b = flat(after);
  const keys = [...new Set([...a.keys(), ...b.keys()])].sort();
  return keys
    .filter((k) => JSON.stringify(a.get(k)) !== JSON.stringify(b.get(k)))
    .map((k) => ({ field: k, before: a.get(k), after: b.get(k) }));
}

// An audit trail (a connection of AuditEvent) as a list: who, when, what, and for each
// event the changed fields with their value before and after.
export function historyList(connection) {
  const events = connection.nodes || [];
  if (!events.length) return empty('No recorded change.');
  return h('ol', { class: 'history' }, events.map((ev) => {
    const changes = diffStates(ev.before, ev.after);
    const summary = h('div', { class: 'history-head' },
      badge(ev.action), ' ', time(ev.occurredAt), ' by ', h('strong', {}, ev.actor),
      ev.source ? h('span', { class: 'muted' }, ` (source ${ev.source})`) : null,
      h('span', { class: 'muted small' }, ` · ${changes.length} field${changes.length === 1 ? '' : 's'}`));
    const rows = table([
      { label: 'Field', cell: (c) => h('code', {}, c.field) },
      { label: 'Before', cell: (c) => valueCell(c.before) },
      { label: 'After', cell: (c) => valueCell(c.after) },
    ], changes, { caption: 'Changed fields' });
    // Creations list every field: keep them folded so the trail stays readable.
    const body = ev.action === 'CREATE' || changes.length > 12
      ? h('details', {}, h('summary', {}, 'Show fields'), rows)
      : rows;
    return h('li', { 'data-test': 'history-event' }, summary, changes.length ? body : null);
  }));
}
