import { api } from '../api.js';
import { chart } from '../charts.js';
import { categoryName, featureName, rfmSegment, segmentLabel, t } from '../i18n.js';
import { card, el, num, problem, table } from '../ui.js';

// #/segments: sizes, centroids, the RFM grid. #/segments/ID: also the users of segment ID (a
// learned segment's number or an RFM segment's name), most valuable first.
export async function render(root, params, names) {
  const chosen = params[0];
  const [model, rfm] = await Promise.all([api('/v1/segments'), api('/v1/segments/rfm'), names]);
  const segs = model.segments;
  const open = (id) => el('a', { href: `#/segments/${encodeURIComponent(id)}`, 'data-segment': id, class: String(id) === chosen ? 'active' : '' },
    typeof id === 'number' ? `${id}` : rfmSegment(id));
  if (chosen !== undefined) root.append(await members(chosen, segs));
  root.append(el('div', { class: 'row' },
    card(t('segment_sizes'), chart('chart-segments', {
      xAxis: { type: 'category', data: segs.map((s) => `${s.id} ${segmentLabel(s.label)}`), axisLabel: { interval: 0, rotate: 20 } },
      yAxis: { type: 'value' },
      series: [{ type: 'bar', name: t('size'), data: segs.map((s) => s.size) }],
    }, segs.length)),
    card(t('rfm_grid'), rfmHeatmap(rfm))));

  // Centroids: one row per feature, one column per segment.
  const features = model.features || [];
  const centroid = (s, f) => (s.centroid && typeof s.centroid === 'object' ? s.centroid[f] : undefined);
  root.append(card(t('centroids'), el('div', { class: 'scroll' }, table('table-centroids', [
    { label: t('feature'), value: (f) => featureName(f) },
    ...segs.map((s) => ({ label: `${s.id} ${segmentLabel(s.label)}`, value: (f) => num(centroid(s, f)), numeric: true })),
  ], features))));

  root.append(el('div', { class: 'row' },
    card(t('segments'), el('p', { class: 'muted' }, t('drill_hint')), table('table-segments', [
      { label: t('segment'), value: (s) => open(s.id) },
      { label: t('label'), value: (s) => segmentLabel(s.label) },
      { label: t('size'), value: (s) => num(s.size), numeric: true },
      { label: t('share'), value: (s) => `${num(100 * s.share)}%`, numeric: true },
      { label: t('top_categories'), value: (s) => (s.top_categories || []).slice(0, 3).map((c) => categoryName(c.name)).join(', ') },
      { label: t('tags'), value: (s) => (s.tags || []).slice(0, 3).map((c) => c.name).join(', '), verbatim: true },
    ], segs)),
    card(t('rfm_segments'), table('table-rfm-segments', [
      { label: t('segment'), value: (s) => open(s.segment) },
      { label: t('users'), value: (s) => num(s.users), numeric: true },
    ], [...rfm.rfm_segments].sort((a, b) => b.users - a.users)))));
}

// A segment's users, a page at a time, each a link to their user page.
async function members(id, segs) {
  const learned = /^\d+$/.test(id);
  const seg = learned ? segs.find((s) => String(s.id) === id) : null;
  const name = learned ? `${t('segment')} ${id}${seg ? ' · ' + segmentLabel(seg.label) : ''}` : rfmSegment(id);
  const rows = [];
  const body = el('div', { 'data-testid': 'segment-users' });
  const title = el('p', { class: 'muted' });
  const more = el('button', {}, t('more'));
  const load = async () => {
    const page = await api(`/v1/segments/${encodeURIComponent(id)}/users?limit=50&offset=${rows.length}`);
    rows.push(...page.users);
    title.textContent = t('of_total').replace('{0}', num(rows.length)).replace('{1}', num(page.total));
    more.hidden = rows.length >= page.total;
    body.replaceChildren(table('table-segment-users', [
      { label: t('user'), value: (u) => el('a', { href: `#/user/${encodeURIComponent(u.user)}` }, u.user) },
      { label: t('rfm'), value: (u) => rfmSegment(u.rfm_segment) },
      { label: t('recency_days'), value: (u) => num(u.recency_days), numeric: true },
      { label: t('purchases'), value: (u) => num(u.frequency), numeric: true },
      { label: t('monetary'), value: (u) => num(u.monetary), numeric: true },
      { label: t('propensity'), value: (u) => num(u.propensity), numeric: true },
      { label: t('tags'), value: (u) => (u.tags || []).join(', '), verbatim: true },
    ], rows));
  };
  more.addEventListener('click', () => load().catch((e) => body.append(problem(e))));
  try {
    await load();
  } catch (e) {
    body.replaceChildren(problem(e));
    more.hidden = true;
  }
  return card(t('segment_users').replace('{0}', name), title, el('div', { class: 'scroll tall' }, body), more);
}

function rfmHeatmap(rfm) {
  const scores = ['0', '1', '2', '3', '4', '5'];
  const data = rfm.cells.map((c) => [c.f, c.r, c.users, c.mean_monetary]);
  const max = Math.max(1, ...rfm.cells.map((c) => c.users));
  return chart('chart-rfm', {
    tooltip: { trigger: 'item', formatter: (p) => `R${p.value[1]} F${p.value[0]}: ${p.value[2]} (${t('mean_monetary')} ${num(p.value[3])})` },
    grid: { left: 70, right: 90, top: 30, bottom: 30 },
    xAxis: { type: 'category', data: scores, name: t('frequency') },
    yAxis: { type: 'category', data: scores, name: t('recency') },
    visualMap: { min: 0, max, show: false, inRange: { color: ['#e7ecfb', '#3b5bdb'] } },
    series: [{ type: 'heatmap', data, label: { show: true, formatter: (p) => p.value[2] } }],
  }, data.length);
}
