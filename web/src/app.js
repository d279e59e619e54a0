// Persona's dashboard: a hash-routed single page over the server's API (docs/api.md).
import './style.css';
import { api, ApiError, hasKey, setKey, takeKeyFromLocation } from './api.js';
import { disposeCharts } from './charts.js';
import { language, setCategoryNames, setLanguage, t } from './i18n.js';
import { el, problem } from './ui.js';
import * as overview from './pages/overview.js';
import * as segments from './pages/segments.js';
import * as user from './pages/user.js';
import * as demand from './pages/demand.js';
import * as models from './pages/models.js';
import * as experiments from './pages/experiments.js';
import * as assistant from './pages/assistant.js';
import * as privacy from './pages/privacy.js';

const pages = { overview, segments, user, demand, models, experiments, assistant, privacy };

function nav(current) {
  document.getElementById('nav').replaceChildren(...Object.keys(pages).map((name) =>
    el('a', { href: `#/${name}`, class: name === current ? 'active' : '', 'data-page': name }, t(name))));
}

function translateStatic() {
  document.getElementById('key').placeholder = t('api_key');
  document.getElementById('save-key').textContent = t('use_key');
  document.getElementById('lang').textContent = language() === 'zh' ? 'English' : '中文';
}

// The catalogue's Chinese category names, once (again after a failure, e.g. before a key was given).
let categories = null;
function loadCategories() {
  if (!categories) categories = api('/v1/categories').then((r) => setCategoryNames(r.categories)).catch(() => { categories = null; });
  return categories;
}

let rendering = 0;
async function show() {
  const [name, ...params] = (location.hash.replace(/^#\/?/, '') || 'overview').split('/').map(decodeURIComponent);
  const page = pages[name] ? name : 'overview';
  const root = document.getElementById('page');
  const banner = document.getElementById('banner');
  const mine = ++rendering;
  disposeCharts();
  nav(page);
  translateStatic();
  root.replaceChildren(el('h1', {}, t(page)));
  root.setAttribute('data-page', page);
  root.setAttribute('data-state', 'loading');
  banner.hidden = true;
  try {
    // The category names load beside the page's own data: pages that show categories wait for both.
    await pages[page].render(root, params, loadCategories());
    if (mine === rendering) root.setAttribute('data-state', 'ready');
  } catch (e) {
    if (mine !== rendering) return;
    if (e instanceof ApiError && e.status === 401) {
      banner.textContent = t('need_key') + (hasKey() ? ` (${e.message})` : '');
      banner.hidden = false;
    }
    root.append(problem(e));
    root.setAttribute('data-state', 'error');
  }
}

takeKeyFromLocation();
setLanguage(language());
document.getElementById('save-key').addEventListener('click', () => {
  const input = document.getElementById('key');
  setKey(input.value.trim());
  input.value = '';
  show();
});
document.getElementById('lang').addEventListener('click', () => {
  setLanguage(language() === 'zh' ? 'en' : 'zh');
  show();
});
window.addEventListener('hashchange', show);
show();
