import { api } from '../api.js';
import { chart, countPoints, lineSeries } from '../charts.js';
import { categoryName, t } from '../i18n.js';
import { card, el, num, table } from '../ui.js';

export async function render(root, params, names) {
  const [d] = await Promise.all([api('/v1/demand?weeks=12'), names]);
  // The newest week holds only the days up to the data's last: its label says so.
  if (d.weeks.length && d.last_week_days > 0 && d.last_week_days < 7)
    d.weeks[d.weeks.length - 1] += ` (${t('partial_week').replace('{0}', d.last_week_days)})`;
  const source = (s) => t({ model: 'from_model', data: 'from_data', items: 'items_source' }[s] || 'from_data');
  const sentiment = Object.entries(d.sentiment).map(([name, data]) => ({ name, type: 'bar', stack: 's', data }));
  // Demand categories are the catalogue's when they come from the items the texts are about.
  const demandName = (name) => (d.category_source === 'items' ? categoryName(name) : name);
  const categories = Object.entries(d.categories).map(([name, data]) => ({ name: demandName(name), type: 'bar', stack: 'c', data }));
  root.append(el('div', { class: 'row' },
    card(`${t('sentiment_weekly')} (${source(d.sentiment_source)})`, chart('chart-sentiment', {
      legend: {}, xAxis: { type: 'category', data: d.weeks }, yAxis: { type: 'value' }, series: sentiment,
    }, countPoints(sentiment), 280, t('empty_texts'))),
    card(`${t('categories_weekly')} (${source(d.category_source)})`, chart('chart-categories', {
      legend: { type: 'scroll' }, xAxis: { type: 'category', data: d.weeks }, yAxis: { type: 'value' }, series: categories,
    }, countPoints(categories), 280, t('empty_texts')))));

  const forecasts = d.forecasts.map((f) => {
    const dates = [...f.history.map((h) => h.date), ...f.forecast.map((h) => h.date)];
    const hist = f.history.map((h) => h.value);
    const pad = f.history.map(() => null);
    const series = [
      lineSeries(t('history'), [...hist, ...f.forecast.map(() => null)]),
      lineSeries(t('forecast'), [...pad.slice(1), hist[hist.length - 1], ...f.forecast.map((h) => Number(h.value.toFixed(2)))], { lineStyle: { type: 'dashed' } }),
    ];
    const b = f.backtest || {};
    // MAE, the error the method was chosen by (sMAPE misleads on days without sales).
    const smape = b.mae !== undefined ? ` · ${t('backtest')} ${num(b.mae)} (${t('seasonal_naive')} ${num(b.seasonal_naive_mae)})` : '';
    const method = f.method ? ` · ${t('method_' + f.method.replace(/-/g, '_'))}` : '';
    return card(`${categoryName(f.category)}${method}${smape}`, chart(`chart-forecast-${f.category}`, {
      legend: {}, xAxis: { type: 'category', data: dates }, yAxis: { type: 'value' }, series,
    }, countPoints(series), 220));
  });
  root.append(el('h2', { class: 'section' }, t('forecasts')), el('div', { class: 'grid', 'data-testid': 'forecasts' }, forecasts));

  const top = d.keywords.slice(0, 15).reverse();
  root.append(el('div', { class: 'row' },
    card(t('keywords'), chart('chart-keywords', {
      tooltip: { trigger: 'item' },
      grid: { left: 110, right: 24, top: 10, bottom: 24 },
      xAxis: { type: 'value' },
      yAxis: { type: 'category', data: top.map((k) => k.word) },
      series: [{ type: 'bar', name: t('score'), data: top.map((k) => k.score) }],
    }, top.length, 360)),
    card(t('keywords'), el('div', { class: 'scroll' }, table('table-keywords', [
      { label: t('word'), value: (k) => k.word, verbatim: true },
      { label: t('score'), value: (k) => num(k.score), numeric: true },
    ], d.keywords)))));
}
