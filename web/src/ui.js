// Small DOM helpers. Data from the API is only ever set as text, never parsed as HTML.
import { language } from './i18n.js';

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

const numberFormat = new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 });
export function num(v) {
  if (v === undefined || v === null || v === '') return '—';
  return typeof v === 'number' ? numberFormat.format(v) : String(v);
}

// A table: columns [{label, value: row => text, numeric, verbatim}], rows any[]. A verbatim
// column holds the shop's own words (tags, keywords, file names): not translated.
export function table(testid, columns, rows, empty = '—') {
  const body = rows.length
    ? rows.map((r) => el('tr', {}, columns.map((c) => el('td', { class: c.numeric ? 'n' : '', 'data-verbatim': c.verbatim }, c.value(r)))))
    : [el('tr', {}, el('td', { colspan: columns.length, class: 'empty' }, empty))];
  return el('table', { 'data-testid': testid, 'data-rows': rows.length },
    el('thead', {}, el('tr', {}, columns.map((c) => el('th', { class: c.numeric ? 'n' : '' }, c.label)))),
    el('tbody', {}, body));
}

export function card(title, ...children) {
  return el('section', { class: 'card' }, el('h2', {}, title), ...children);
}

export function kpi(testid, label, value) {
  return el('div', { class: 'kpi', 'data-testid': testid }, el('div', { class: 'kpi-value' }, num(value)), el('div', { class: 'kpi-label' }, label));
}

export function problem(err) {
  return el('div', { class: 'problem', 'data-testid': 'problem' }, err && err.message ? err.message : String(err));
}

// An item as a person reads it: its title in the reader's language, the id on hover. `r` is an
// API answer's item: {item (or name), title, title_zh}.
export function itemName(r) {
  const id = r.item || r.name;
  const title = (language() === 'zh' && r.title_zh) || r.title;
  return title ? el('span', { title: id, 'data-item': id }, title) : id;
}
