// Charts with Apache ECharts (bundled by esbuild into echarts.js, src/echarts-bundle.js: no CDN,
// works offline). The library arrives in its own async script; charts wait for it.
import { t } from './i18n.js';
import { el } from './ui.js';

const library = new Promise((resolve, reject) => {
  if (window.PersonaECharts) return resolve(window.PersonaECharts);
  window.addEventListener('persona-echarts', () => resolve(window.PersonaECharts), { once: true });
  const script = document.getElementById('echarts-script');
  if (script) script.addEventListener('error', () => reject(new Error('echarts.js did not load')), { once: true });
});

const live = new Set();
window.addEventListener('resize', () => live.forEach((c) => c.resize()));

// A chart in a box; data-points (the number of values drawn) lets tests see it holds real data.
// Without data it says why (`empty`, or that nothing is stored for it yet) instead of blank axes.
export function chart(testid, option, points, height = 280, empty = '') {
  if (!points) {
    return el('div', { class: 'chart empty', 'data-testid': testid, 'data-points': 0, 'data-rendered': 'true' },
      el('p', { class: 'muted' }, empty || t('chart_empty')));
  }
  const box = el('div', { class: 'chart', 'data-testid': testid, 'data-points': points, style: `height:${height}px` });
  library.then((echarts) => requestAnimationFrame(() => {
    if (!box.isConnected) return;  // the page was left meanwhile
    const c = echarts.init(box, null, { renderer: 'canvas' });
    // A legend sits above the plot, never over the axis labels.
    const legend = option.legend ? { type: 'scroll', top: 0, left: 'center', ...option.legend } : undefined;
    c.setOption({ animation: false, tooltip: { trigger: 'axis' }, grid: { left: 56, right: 24, top: legend ? 40 : 20, bottom: 30, containLabel: false }, ...option, legend });
    live.add(c);
    box.setAttribute('data-rendered', 'true');
  }), (e) => box.replaceChildren(el('p', { class: 'muted' }, e.message)));
  return box;
}

// Drops every chart of the page being left.
export function disposeCharts() {
  live.forEach((c) => c.dispose());
  live.clear();
}

export function lineSeries(name, data, extra = {}) {
  return { name, type: 'line', showSymbol: false, data, ...extra };
}

export function countPoints(seriesList) {
  return seriesList.reduce((n, s) => n + s.data.filter((v) => v !== null && v !== undefined).length, 0);
}
