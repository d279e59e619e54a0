import { api } from '../api.js';
import { chart } from '../charts.js';
import { t } from '../i18n.js';
import { card, el, num, table } from '../ui.js';

const METRICS = ['ctr', 'conversion', 'revenue_per_impression'];
const percent = (x) => `${num(100 * x)}%`;
const signedPercent = (x) => `${x >= 0 ? '+' : ''}${num(100 * x)}%`;
const format = (key, ...args) => args.reduce((s, a, i) => s.replace(`{${i}}`, a), t(key));

// The verdict in the reader's language, from the report's figures (the server's own verdict is English).
function verdict(r) {
  if (!r.days) return t('x_verdict_no_feedback');
  if (r.sample_ratio.mismatch) return format('x_verdict_srm', num(r.sample_ratio.p));
  const found = r.comparisons.filter((c) => c.significant);
  if (found.length)
    return found.map((c) => format(c.effect > 0 ? 'x_verdict_beats' : 'x_verdict_worse', c.variant, c.against,
      t('x_' + c.metric), signedPercent(c.relative), num(c.p))).join('; ');
  const ctr = r.comparisons.find((c) => c.metric === 'ctr');
  if (ctr) return format('x_verdict_undecided', ctr.variant, ctr.against, percent(ctr.mde_relative));
  return t('x_verdict_too_little');
}

export async function render(root, params) {
  const { experiments, running } = await api('/v1/experiments');
  if (!experiments.length) {
    root.append(card(t('experiments'), el('p', { 'data-testid': 'no-experiments' }, t('x_none'))));
    return;
  }
  const chosen = params[0] || running[0] || experiments[experiments.length - 1].name;
  root.append(card(t('experiments'), table('table-experiments', [
    { label: t('name'), value: (e) => el('a', { href: `#/experiments/${encodeURIComponent(e.name)}` }, e.name), verbatim: true },
    { label: t('x_surface'), value: (e) => t('x_surface_' + e.surface) },
    { label: t('x_status'), value: (e) => t('x_' + e.status) + (e.promoted ? ` · ${format('x_promoted', e.promoted)}` : '') },
    { label: t('created'), value: (e) => new Date(e.created * 1000).toISOString().slice(0, 16).replace('T', ' ') },
    { label: t('x_variants'), value: (e) => e.variants.map((v) => `${v.name} ${percent(v.share)} (${v.version})`).join(' · '), verbatim: true },
  ], experiments)));

  const r = await api(`/v1/experiments/${encodeURIComponent(chosen)}/report`);
  root.append(card(format('x_report', r.name),
    el('p', { class: 'verdict', 'data-testid': 'experiment-verdict' }, verdict(r)),
    el('p', { class: 'muted', 'data-testid': 'experiment-srm' },
      `${t('x_days')}: ${num(r.days)} · ${r.sample_ratio.mismatch ? t('x_srm_broken') : t('x_srm_ok')} (χ² ${num(r.sample_ratio.chi2)}, p ${num(r.sample_ratio.p)})`)));

  const series = [{
    name: t('x_ctr'), type: 'bar', data: r.variants.map((v) => +(100 * v.ctr.value).toFixed(3)),
  }, {
    name: t('x_interval'), type: 'line', showSymbol: true, symbol: 'triangle', lineStyle: { opacity: 0 },
    data: r.variants.map((v) => +(100 * v.ctr.high).toFixed(3)),
  }];
  root.append(card(t('x_variants'), el('div', { class: 'scroll' }, table('table-variants', [
    { label: t('x_variant'), value: (v) => v.name, verbatim: true },
    { label: t('users'), value: (v) => num(v.users), numeric: true },
    { label: t('x_impressions'), value: (v) => num(v.impressions), numeric: true },
    { label: t('x_clicks'), value: (v) => num(v.clicks), numeric: true },
    { label: t('purchases'), value: (v) => num(v.purchases), numeric: true },
    { label: t('x_ctr'), value: (v) => `${percent(v.ctr.value)} (${percent(Math.max(0, v.ctr.low))}–${percent(v.ctr.high)})`, numeric: true },
    { label: t('x_conversion'), value: (v) => percent(v.conversion.value), numeric: true },
    { label: t('x_revenue_per_impression'), value: (v) => num(v.revenue_per_impression.value), numeric: true },
  ], r.variants))));
  root.append(card(t('x_ctr_by_variant'), chart('chart-experiment-ctr', {
    legend: {}, xAxis: { type: 'category', data: r.variants.map((v) => v.name) }, yAxis: { type: 'value', name: '%' }, series,
  }, r.variants.some((v) => v.impressions > 0) ? r.variants.length : 0, 240)));

  root.append(card(t('x_comparisons'), el('p', { class: 'muted' }, t('x_sequential_note')), table('table-comparisons', [
    { label: t('x_variant'), value: (c) => `${c.variant} / ${c.against}`, verbatim: true },
    { label: t('metrics'), value: (c) => t('x_' + c.metric) },
    { label: t('x_effect'), value: (c) => signedPercent(c.relative), numeric: true },
    { label: t('x_interval'), value: (c) => `${num(c.low)} – ${num(c.high)}`, numeric: true },
    { label: 'p', value: (c) => num(c.p), numeric: true },
    { label: t('x_significant'), value: (c) => (c.significant ? t('yes') : t('no')) },
    { label: t('x_mde'), value: (c) => `±${percent(c.mde_relative)}`, numeric: true },
  ], r.comparisons.filter((c) => METRICS.includes(c.metric)), t('x_too_little_short'))));
}
