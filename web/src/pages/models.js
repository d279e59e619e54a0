import { api } from '../api.js';
import { chart } from '../charts.js';
import { metricName, modelKind, modelTask, t } from '../i18n.js';
import { card, el, num, problem, table } from '../ui.js';

// A model's figures as (name, number) pairs, nested objects one level deep ("validation.ndcg").
function figures(metrics) {
  const out = [];
  for (const [k, v] of Object.entries(metrics || {})) {
    if (typeof v === 'number') out.push([k, v]);
    else if (v && typeof v === 'object' && !Array.isArray(v))
      for (const [k2, v2] of Object.entries(v)) if (typeof v2 === 'number') out.push([`${k}.${k2}`, v2]);
  }
  return out;
}

// The figure that says how good a model is (not a setting such as alpha or k): the first of these.
const QUALITY = [/ndcg/, /auc/, /accuracy/, /(^|\.)f1/, /hit_rate/, /(^|\.)map/, /rmse/, /smape/];
function headline(metrics) {
  // Baselines saved beside a model's figures (majority_accuracy, popularity_ndcg_at_10) are not its own.
  const all = figures(metrics).filter(([k]) => !/^(majority|popularity)_/.test(k));
  for (const q of QUALITY) {
    const found = all.find(([k]) => q.test(k));
    if (found) return found;
  }
  return undefined;
}

function figureText(metrics) {
  return figures(metrics).slice(0, 6).map(([k, v]) => `${metricName(k)} ${num(v)}`).join(' · ');
}

export async function render(root) {
  const m = await api('/v1/models');
  if (m.recommend) {
    const status = el('div', { 'data-testid': 'retrain-status' });
    const retrain = async () => {
      try {
        await api('/v1/models/recommend/retrain', { method: 'POST' });
        status.replaceChildren(el('p', { class: 'ok' }, t('retrain_started')));
      } catch (e) {
        status.replaceChildren(problem(e));
      }
    };
    const method = m.recommend.metrics && m.recommend.metrics.method ? methodText(m.recommend.metrics.method) : '';
    const best = headline(m.recommend.metrics);
    root.append(card(t('recommender'),
      el('p', { 'data-testid': 'recommender-summary' },
        [`${t('items')}: ${num(m.recommend.items)}`, method, best ? `${metricName(best[0])} ${num(best[1])}` : '', figureText(m.recommend.metrics.validation)]
          .filter((x) => x).join(' · ')),
      el('button', { onclick: retrain }, t('retrain')), status));
  }

  // The training history: each model file's quality figure over time.
  const history = m.history.map((h) => ({ ...h, headline: headline(h.metrics) }));
  const byFile = new Map();
  for (const h of [...history].reverse().filter((x) => x.headline)) {
    const name = `${h.file} · ${metricName(h.headline[0])}`;
    if (!byFile.has(name)) byFile.set(name, []);
    byFile.get(name).push([h.created, h.headline[1]]);
  }
  const series = [...byFile].map(([name, data]) => ({ name, type: 'line', data }));
  root.append(el('div', { class: 'row' },
    card(t('training_history'), chart('chart-history', {
      legend: {}, xAxis: { type: 'time' }, yAxis: { type: 'value' }, series,
    }, series.reduce((n, s) => n + s.data.length, 0), 260)),
    card(t('training_history'), el('div', { class: 'scroll' }, table('table-history', [
      { label: t('created'), value: (h) => h.created.replace('T', ' ').replace('Z', '') },
      { label: t('file'), value: (h) => h.file, verbatim: true },
      { label: t('metrics'), value: (h) => (h.headline ? metricName(h.headline[0]) : '') },
      { label: t('value'), value: (h) => (h.headline ? num(h.headline[1]) : '—'), numeric: true },
    ], history)))));

  root.append(card(t('model_quality'), table('table-quality', [
    { label: t('file'), value: (q) => q.file, verbatim: true },
    { label: t('measure'), value: (q) => q.measure },
    { label: t('value'), value: (q) => num(q.value), numeric: true },
    { label: t('baseline'), value: (q) => q.baseline, numeric: true },
    { label: t('note'), value: (q) => q.note },
  ], m.files.map(quality).filter((q) => q))));

  root.append(card(t('model_files'), table('table-models', [
    { label: t('file'), value: (f) => f.file, verbatim: true },
    { label: t('kind'), value: (f) => modelKind(f.kind) },
    { label: t('task'), value: (f) => modelTask(f.task) },
    { label: t('created'), value: (f) => f.created.replace('T', ' ').replace('Z', '') },
    { label: 'KiB', value: (f) => num(f.bytes / 1024), numeric: true },
    { label: t('metrics'), value: (f) => figureText(f.metrics) },
  ], m.files)));
}

// How good a model is, beside what a trivial one scores: the row a person reads first.
function quality(f) {
  const x = f.metrics || {};
  const row = (measure, value, baseline, note = '') => ({ file: f.file, measure, value, baseline, note });
  if (f.kind === 'text-classifier' && typeof x.validation_accuracy === 'number') {
    const base = typeof x.majority_accuracy === 'number' ? `${num(x.majority_accuracy)} (${t('baseline_majority')})` : '—';
    const note = x.validation_accuracy >= 0.999
      ? t('perfect_caveat').replace('{0}', x.validation_texts ? num(x.validation_texts) : '?') : '';
    return row(t('validation_accuracy'), x.validation_accuracy, base, note);
  }
  if (f.kind === 'tabular-classifier') {
    const auc = typeof x.test_auc === 'number' ? [metricName('test_auc'), x.test_auc] : typeof x.cv_auc === 'number' ? [metricName('cv_auc'), x.cv_auc] : null;
    if (auc) return row(auc[0], auc[1], `0.5 (${t('baseline_random')})`,
      typeof x.base_rate === 'number' ? `${t('base_rate')} ${num(x.base_rate)}` : '');
  }
  if (f.kind === 'recommender' && x.validation && typeof x.validation.ndcg_at_10 === 'number')
    return row(metricName('ndcg_at_10'), x.validation.ndcg_at_10,
      typeof x.popularity_ndcg_at_10 === 'number' ? `${num(x.popularity_ndcg_at_10)} (${t('baseline_popularity')})` : '—');
  return null;
}

// A recommender's method as a person reads it: "user-knn (alpha 0.5, users 100)".
function methodText(spec) {
  const params = Object.entries(spec).filter(([k, v]) => k !== 'method' && typeof v !== 'object').map(([k, v]) => `${metricName(k)} ${num(v)}`);
  return params.length ? `${spec.method} (${params.join(', ')})` : spec.method;
}
