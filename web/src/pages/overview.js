import { api } from '../api.js';
import { chart, countPoints, lineSeries } from '../charts.js';
import { categoryName, t } from '../i18n.js';
import { card, el, itemName, kpi, num, table } from '../ui.js';

export async function render(root, params, names) {
  const [stats, timeline] = await Promise.all([api('/v1/stats'), api('/v1/stats/timeline?days=90'), names]);
  root.append(el('div', { class: 'kpis' },
    kpi('kpi-users', t('users'), stats.users), kpi('kpi-items', t('items'), stats.items),
    kpi('kpi-events', t('events'), stats.events), kpi('kpi-revenue', t('revenue'), stats.revenue),
    kpi('kpi-texts', t('texts'), stats.texts), kpi('kpi-rejects', t('rejects'), stats.rejects)));

  const types = Object.entries(timeline.events).map(([type, data]) => lineSeries(t('ev_' + type), data));
  root.append(card(t('events_per_day'), chart('chart-events', {
    legend: {}, xAxis: { type: 'category', data: timeline.days }, yAxis: { type: 'value' }, series: types,
  }, countPoints(types))));

  const money = [{ name: t('revenue'), type: 'bar', data: timeline.revenue }];
  const people = [lineSeries(t('active_users'), timeline.active_users), lineSeries(t('new_users'), timeline.new_users)];
  root.append(el('div', { class: 'row' },
    card(t('revenue_per_day'), chart('chart-revenue', {
      xAxis: { type: 'category', data: timeline.days }, yAxis: { type: 'value' }, series: money,
    }, countPoints(money))),
    card(t('active_users'), chart('chart-active', {
      legend: {}, xAxis: { type: 'category', data: timeline.days }, yAxis: { type: 'value' }, series: people,
    }, countPoints(people)))));

  // Each step with its share of the first (viewers): the conversion a person reads a funnel for.
  const first = timeline.funnel.length ? timeline.funnel[0].users : 0;
  const steps = timeline.funnel.map((s) => ({
    name: `${t('ev_' + s.step)} · ${first ? num((100 * s.users) / first) : 0}%`, value: s.users }));
  root.append(el('div', { class: 'row' },
    card(t('funnel'), chart('chart-funnel', {
      tooltip: { trigger: 'item' },
      series: [{ type: 'funnel', sort: 'none', left: '10%', width: '80%', label: { formatter: '{b}: {c}' }, data: steps }],
    }, steps.length)),
    card(t('top_items'), table('table-top-items', [
      { label: t('item'), value: (r) => itemName(r) },
      { label: t('events'), value: (r) => num(r.count), numeric: true },
    ], stats.top_items))));
  root.append(card(t('top_categories'), table('table-top-categories', [
    { label: t('category'), value: (r) => categoryName(r.name) },
    { label: t('events'), value: (r) => num(r.count), numeric: true },
  ], stats.top_categories)));
}
