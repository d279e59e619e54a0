import { api, ApiError } from '../api.js';
import { chart } from '../charts.js';
import { categoryName, eventType, reason, rfmSegment, t } from '../i18n.js';
import { card, el, itemName, num, problem, table } from '../ui.js';

export async function render(root, params, names) {
  const user = params[0] || sessionStorage.getItem('persona.user') || 'U000042';
  sessionStorage.setItem('persona.user', user);
  const input = el('input', { id: 'user-id', value: user, placeholder: t('user_id') });
  const go = () => { location.hash = '#/user/' + encodeURIComponent(input.value.trim()); };
  input.addEventListener('keydown', (e) => { if (e.key === 'Enter') go(); });
  root.append(el('div', { class: 'toolbar' }, el('label', {}, t('user_id'), ' ', input), el('button', { onclick: go }, t('show'))));

  const enc = encodeURIComponent(user);
  const [profile, events, recs] = await Promise.all([
    api(`/v1/users/${enc}/profile`).catch((e) => e),
    api(`/v1/users/${enc}/events?limit=100`),
    api(`/v1/users/${enc}/recommendations?k=10`).catch((e) => e),
    names,
  ]);
  const consent = events.consent;
  const word = (v) => (v ? t('given') : t('refused'));
  root.append(el('div', { class: 'kpis' },
    el('div', { class: 'kpi', 'data-testid': 'user-consent' },
      el('div', { class: 'kpi-value small' }, `${t('personalisation')}: ${word(consent.personalisation)} · ${t('analytics')}: ${word(consent.analytics)}`),
      el('div', { class: 'kpi-label' }, t('consent'))),
    el('div', { class: 'kpi', 'data-testid': 'user-events-total' }, el('div', { class: 'kpi-value' }, num(events.total)), el('div', { class: 'kpi-label' }, t('events')))));

  if (profile instanceof ApiError) root.append(card(t('profile'), problem(profile)));
  else root.append(profileCards(profile));

  const recList = recs instanceof ApiError ? [] : recs.recommendations;
  root.append(el('div', { class: 'row' },
    card(t('recommendations'), recs instanceof ApiError ? problem(recs) : table('table-recommendations', [
      { label: t('item'), value: (r) => itemName(r) },
      { label: t('category'), value: (r) => categoryName(r.category) },
      { label: t('score'), value: (r) => num(r.score), numeric: true },
      { label: t('reason'), value: (r) => reason(r.reason, r.because) },
    ], recList)),
    card(t('timeline'), el('div', { class: 'scroll tall' }, table('table-timeline', [
      { label: t('time'), value: (e) => e.time.replace('T', ' ').replace('Z', '') },
      { label: t('type'), value: (e) => eventType(e.type) },
      { label: t('item'), value: (e) => (e.item ? itemName(e) : '') },
      { label: t('category'), value: (e) => categoryName(e.category) },
      { label: t('value'), value: (e) => num(e.value), numeric: true },
    ], events.events)))));
}

function profileCards(p) {
  const rfm = p.rfm || {};
  const cats = (p.affinity && p.affinity.categories) || [];
  const brands = (p.affinity && p.affinity.brands) || [];
  const facts = [
    [t('segment'), p.segment], [t('rfm'), rfm.segment ? rfmSegment(rfm.segment) : rfm.segment], [t('recency_days'), rfm.recency_days],
    [t('purchases'), rfm.frequency], [t('monetary'), rfm.monetary], [t('propensity'), p.propensity],
    [t('events'), p.activity && p.activity.events],
  ];
  return el('div', { class: 'row' },
    card(t('profile'),
      table('table-profile', [{ label: t('feature'), value: (f) => f[0] }, { label: t('value'), value: (f) => num(f[1]), numeric: true }], facts),
      el('div', { class: 'tags', 'data-testid': 'user-tags', 'data-verbatim': true }, (p.tags || []).map((tag) => el('span', { class: 'tag' }, tag)))),
    card(t('affinities'), chart('chart-affinity', {
      tooltip: { trigger: 'item' },
      grid: { left: 110, right: 24, top: 16, bottom: 24 },
      xAxis: { type: 'value', max: 1 },
      yAxis: { type: 'category', data: cats.map((c) => categoryName(c.name)).reverse() },
      series: [{ type: 'bar', name: t('share'), data: cats.map((c) => Number(c.share.toFixed(3))).reverse() }],
    }, cats.length, 240),
    el('p', { class: 'muted' }, `${t('brands')}: ${brands.slice(0, 5).map((b) => `${b.name} ${num(100 * b.share)}%`).join(', ') || '—'}`)));
}
