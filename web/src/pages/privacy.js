import { api } from '../api.js';
import { chart } from '../charts.js';
import { categoryName, t } from '../i18n.js';
import { card, el, kpi, num, problem, table } from '../ui.js';

export async function render(root) {
  const p = await api('/v1/privacy');
  root.append(el('div', { class: 'kpis' },
    kpi('kpi-erasures', t('erasures'), p.erasures),
    kpi('kpi-refuse-personalisation', `${t('consent_refusals')}: ${t('personalisation')}`, p.consent_refused.personalisation),
    kpi('kpi-refuse-analytics', `${t('consent_refusals')}: ${t('analytics')}`, p.consent_refused.analytics),
    el('div', { class: 'kpi', 'data-testid': 'kpi-sealed' }, el('div', { class: 'kpi-value' }, p.sealed ? t('yes') : t('no')), el('div', { class: 'kpi-label' }, t('sealed')))));

  root.append(el('div', { class: 'row' },
    card(t('dp_budgets'),
      chart('chart-budgets', {
        legend: {}, xAxis: { type: 'category', data: p.budgets.map((b) => b.analyst) }, yAxis: { type: 'value' },
        series: [{ name: t('budget'), type: 'bar', data: p.budgets.map((b) => b.budget) },
          { name: t('spent'), type: 'bar', data: p.budgets.map((b) => Number(b.spent.toFixed(4))) }],
      }, p.budgets.length * 2, 220),
      table('table-budgets', [
        { label: t('analyst'), value: (b) => b.analyst },
        { label: t('budget'), value: (b) => num(b.budget), numeric: true },
        { label: t('spent'), value: (b) => num(b.spent), numeric: true },
        { label: t('queries'), value: (b) => num(b.queries), numeric: true },
        { label: t('last'), value: (b) => b.last },
      ], p.budgets)),
    el('div', {}, card(t('dp_query'), dpForm()), card(t('erase_user'), eraseForm()))));

  const a = p.audit;
  const verdict = a.intact === undefined ? t('no_audit') : `${a.intact ? t('intact') : t('broken')} · ${t('total')} ${num(a.total)}`;
  root.append(card(t('audit_log'),
    el('p', { class: a.intact === false ? 'bad' : 'muted', 'data-testid': 'audit-verdict' }, verdict),
    el('div', { class: 'scroll tall' }, table('table-audit', [
      { label: '#', value: (e) => e.seq, numeric: true },
      { label: t('time'), value: (e) => (typeof e.time === 'number' ? new Date(e.time * 1000).toISOString() : String(e.time ?? '')) },
      { label: t('actor'), value: (e) => e.actor },
      { label: t('action'), value: (e) => e.action },
      { label: t('details'), value: (e) => JSON.stringify(e.details) },
    ], a.entries))));
}

// The answers of this session's DP queries, newest first: they cost budget, so they stay on the
// page when it redraws to show the budget spent (they used to vanish with the redraw).
const dpAnswers = [];

// A differentially private statistic, charged to this key's budget (the page then shows it spent).
function dpForm() {
  const statistic = el('select', { id: 'dp-statistic' }, ['count', 'sum', 'mean', 'quantile', 'histogram'].map((s) => el('option', { value: s }, t('st_' + s))));
  const epsilon = el('input', { id: 'dp-epsilon', type: 'number', value: '0.1', step: '0.05', min: '0.01', style: 'width:90px' });
  const upper = el('input', { id: 'dp-upper', type: 'number', value: '1000', style: 'width:90px' });
  const say = (a) => `${a.time} · ${t('st_' + a.statistic)} (ε ${a.epsilon}): ${a.value} · ${t('budget_left')} ${num(a.left)}`;
  const out = el('div', { 'data-testid': 'dp-result' }, dpAnswers.map((a) => el('p', { class: 'ok' }, say(a))));
  const run = async () => {
    const body = { statistic: statistic.value, epsilon: Number(epsilon.value), upper: Number(upper.value), by: 'category' };
    try {
      const r = await api('/v1/stats/dp', { method: 'POST', body });
      const res = r.result;
      const value = res.value !== undefined ? `${num(res.value)} (±${num(res.noise_scale ?? res.ci95 ?? 0)})`
        : Object.entries(res.buckets || {}).slice(0, 6).map(([k, v]) => `${categoryName(k)} ${num(typeof v === 'object' ? v.value : v)}`).join(' · ');
      dpAnswers.unshift({ time: new Date().toLocaleTimeString(), statistic: statistic.value, epsilon: epsilon.value, value, left: r.budget_left });
      dpAnswers.splice(10);
      window.dispatchEvent(new HashChangeEvent('hashchange'));  // the budgets, spent; the answers stay
    } catch (e) {
      out.replaceChildren(problem(e));
    }
  };
  return el('div', {},
    el('div', { class: 'toolbar' }, statistic, el('label', {}, 'ε ', epsilon), el('label', {}, t('upper'), ' ', upper),
      el('button', { id: 'dp-run', onclick: run }, t('run'))),
    el('p', { class: 'muted' }, t('dp_note')), out);
}

function eraseForm() {
  const user = el('input', { id: 'erase-user', placeholder: t('user_id') });
  const out = el('div', { 'data-testid': 'erase-result' });
  const erase = async () => {
    const id = user.value.trim();
    if (!id || !confirm(t('erase_confirm'))) return;
    try {
      let r = await api('/v1/users/' + encodeURIComponent(id), { method: 'DELETE' });
      const say = () => out.replaceChildren(el('p', { class: 'ok' }, `${t('erased')} ${r.receipt || '—'}`),
        el('p', { class: 'muted', 'data-testid': 'erase-status' },
          r.status === 'retraining' ? t('erase_retraining') : r.retrain_error ? t('erase_model_removed') : t('erase_complete')));
      say();
      // The data is gone at once; the recommender retrains in the background: follow it.
      while (r.status === 'retraining' && r.status_url && out.isConnected) {
        await new Promise((done) => setTimeout(done, 1000));
        r = await api(r.status_url);
        say();
      }
    } catch (e) {
      out.replaceChildren(problem(e));
    }
  };
  return el('div', {}, el('div', { class: 'toolbar' }, user, el('button', { class: 'danger', onclick: erase }, t('erase'))), out);
}
