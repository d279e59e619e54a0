import { api } from '../api.js';
import { chart } from '../charts.js';
import { featureName, rfmSegment, segmentLabel, t } from '../i18n.js';
import { card, el, num, table } from '../ui.js';

export async function render(root) {
  const [model, rfm] = await Promise.all([api('/v1/segments'), api('/v1/segments/rfm')]);
  const segs = model.segments;
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
    card(t('segments'), table('table-segments', [
      { label: t('segment'), value: (s) => s.id },
      { label: t('label'), value: (s) => segmentLabel(s.label) },
      { label: t('size'), value: (s) => num(s.size), numeric: true },
      { label: t('share'), value: (s) => `${num(100 * s.share)}%`, numeric: true },
      { label: t('top_categories'), value: (s) => (s.top_categories || []).slice(0, 3).map((c) => c.name).join(', ') },
      { label: t('tags'), value: (s) => (s.tags || []).slice(0, 3).map((c) => c.name).join(', ') },
    ], segs)),
    card(t('rfm_segments'), table('table-rfm-segments', [
      { label: t('segment'), value: (s) => rfmSegment(s.segment) },
      { label: t('users'), value: (s) => num(s.users), numeric: true },
    ], [...rfm.rfm_segments].sort((a, b) => b.users - a.users)))));
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
