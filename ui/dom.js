// dom.js — building the page from data. Every string from the registry goes in as text
// (text nodes, textContent, attribute values through setAttribute): never as HTML.

const SAFE_ATTRS = new Set(['class', 'href', 'id', 'title', 'type', 'value', 'placeholder',
  'name', 'for', 'role', 'colspan', 'min', 'max', 'step', 'autocomplete', 'aria-label',
  'data-test', 'data-section', 'data-value', 'selected', 'disabled', 'hidden', 'open']);

// h('tag.class1.class2', {attr: value}, child...) — children are nodes, strings (text),
// numbers, arrays, null/false (skipped).
export function h(spec, attrs, ...children) {
  const [tag, ...classes] = spec.split('.');
  const el = document.createElement(tag || 'div');
  if (classes.length) el.className = classes.join(' ');
  if (attrs !== null && attrs !== undefined && attrs !== false &&
      (typeof attrs !== 'object' || attrs instanceof Node || Array.isArray(attrs))) {
    children.unshift(attrs);
    attrs = null;
  }
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'onclick' || k === 'onsubmit' || k === 'onchange' || k === 'oninput') {
      el.addEventListener(k.slice(2), v);
    } else if (k === 'class') {
      el.className = [el.className, v].filter(Boolean).join(' ');
    } else if (SAFE_ATTRS.has(k)) {
      if (k === 'href' && !/^(#|\/)/.test(String(v))) throw new Error('unsafe link ' + v);
      el.setAttribute(k, v === true ? '' : String(v));
    } else {
      throw new Error('attribute not allowed: ' + k);
    }
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

export function replace(el, ...children) {
  clear(el);
  return append(el, children);
}

// An SVG element (charts).
const SVGNS = 'http://www.w3.org/2000/svg';
export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined) continue;
    if (/^on/i.test(k) || k === 'href') throw new Error('attribute not allowed: ' + k);
    el.setAttribute(k, String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

// ---- formatting -------------------------------------------------------------------------
export function bytes(n) {
  if (n === null || n === undefined) return '—';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0, v = Number(n);
  while (v >= 1024 && i < u.length - 1) { v /= 1024; i++; }
  return (i ? v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0) : String(v)) + ' ' + u[i];
}

export function num(n) {
  return n === null || n === undefined ? '—' : Number(n).toLocaleString('en-US');
}

export function pct(x, digits = 1) {
  return x === null || x === undefined ? '—' : Number(x).toFixed(digits) + ' %';
}

export function when(t) {
  if (!t) return '—';
  const d = new Date(t * 1000);
  return d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
}

export function ago(t) {
  if (!t) return 'never';
  const s = Math.max(0, Math.round(Date.now() / 1000 - t));
  if (s < 60) return s + ' s ago';
  if (s < 3600) return Math.floor(s / 60) + ' min ago';
  if (s < 86400) return Math.floor(s / 3600) + ' h ago';
  return Math.floor(s / 86400) + ' d ago';
}

export function time(t) {
  return h('time', {title: when(t)}, ago(t));
}

export function shortDigest(d) {
  return d ? d.replace(/^sha256:/, '').slice(0, 12) : '—';
}

// A link inside the console: #/segment/segment with each segment URI-encoded.
export function link(parts, ...children) {
  return h('a', {href: '#/' + parts.map(encodeURIComponent).join('/')}, ...children);
}

export function badge(state) {
  return h('span.badge.state-' + String(state || 'none').replace(/[^a-z-]/g, ''), state || '—');
}

export function table(headers, rows, opts = {}) {
  return h('table' + (opts.cls ? '.' + opts.cls : ''), opts.test ? {'data-test': opts.test} : null,
    h('thead', h('tr', headers.map((x) => h('th', x)))),
    h('tbody', rows.length ? rows : h('tr', h('td.muted', {colspan: headers.length},
      opts.empty || 'nothing yet'))));
}

export function card(title, ...body) {
  return h('section.card', title ? h('h2', title) : null, ...body);
}

export function stat(label, value, test, sub) {
  return h('div.stat', h('div.stat-value', test ? {'data-test': test} : null, value),
    h('div.stat-label', label), sub ? h('div.stat-sub', sub) : null);
}
