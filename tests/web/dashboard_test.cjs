// The dashboard in headless Chromium (Debian's, driven by playwright-core from npm): `persona demo`
// serves the sample shop; every page is loaded and must show charts that drew something and
// tables with real numbers; a short chat runs in the assistant console; the UI switches to
// Chinese; a browser without a key is told it needs one. Every page is checked in both languages
// for what a person reads (no raw JSON, no bare item ids, no English label in Chinese). Screenshots
// of every page in both languages, and index.html with them and every check, go to --out.
//
//   node tests/web/dashboard_test.cjs --persona build/debug/apps/persona/persona --out DIR
//   node tests/web/dashboard_test.cjs --url 'http://127.0.0.1:8080/#key=...' --out DIR   (a running server)
// Exit 77 (skipped) when no Chromium is installed. NODE_PATH must reach web/node_modules.
'use strict';
const { spawn } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const args = Object.fromEntries(process.argv.slice(2).reduce((pairs, a, i, all) => (a.startsWith('--') ? [...pairs, [a.slice(2), all[i + 1]]] : pairs), []));
const outDir = args.out || path.join(os.tmpdir(), 'persona-dashboard-screens');
const browserPath = process.env.PERSONA_CHROMIUM || ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => fs.existsSync(p));
if (!browserPath) {
  console.log('SKIP: no Chromium found (scripts/install-deps installs Debian\'s chromium; or set PERSONA_CHROMIUM)');
  process.exit(77);
}
const { chromium } = require('playwright-core');

const failures = [];
const log = [];
function check(ok, what) {
  if (!ok) failures.push(what);
  log.push(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
  console.log(log[log.length - 1]);
}

// The CI artifact: every screenshot on one page, with the checks beside them.
function writeReport() {
  const shots = fs.readdirSync(outDir).filter((f) => f.endsWith('.png')).sort();
  const esc = (s) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  fs.writeFileSync(path.join(outDir, 'checks.txt'), log.join('\n') + '\n');
  fs.writeFileSync(path.join(outDir, 'index.html'), `<!doctype html><meta charset="utf-8"><title>Persona dashboard: ${failures.length ? failures.length + ' failed' : 'all checks passed'}</title>
<h1>${failures.length ? failures.length + ' check(s) failed' : 'All ' + log.length + ' checks passed'}</h1><pre>${esc(log.join('\n'))}</pre>
${shots.map((f) => `<h2>${f}</h2><img src="${f}" style="max-width:100%;border:1px solid #ccc">`).join('\n')}\n`);
}

// Starts `persona demo` and resolves with the dashboard link it prints.
function startDemo(persona) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'persona-dashboard-'));
  const child = spawn(persona, ['demo', '--size', 'small', '--dir', dir, '--port', '0'], { stdio: ['ignore', 'ignore', 'pipe'] });
  return new Promise((resolve, reject) => {
    let err = '';
    const timer = setTimeout(() => reject(new Error('persona demo printed no dashboard link in 600 s:\n' + err)), 600000);
    child.stderr.on('data', (d) => {
      err += d;
      const m = err.match(/dashboard: (\S+)/);
      if (m) {
        clearTimeout(timer);
        resolve({ child, url: m[1], dir });
      }
    });
    child.on('exit', (code) => reject(new Error(`persona demo ended (${code}) before serving:\n${err}`)));
  });
}

// Pixels of a chart's canvas that are not background: a chart that drew nothing has none.
async function inkedPixels(page, testid) {
  return page.evaluate((id) => {
    const canvas = document.querySelector(`[data-testid="${id}"] canvas`);
    if (!canvas || !canvas.width) return 0;
    const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    let n = 0;
    for (let i = 0; i < data.length; i += 4) if (data[i + 3] > 0 && (data[i] < 235 || data[i + 1] < 235 || data[i + 2] < 235)) ++n;
    return n;
  }, testid);
}

async function expectChart(page, testid) {
  const box = page.locator(`[data-testid="${testid}"]`);
  await box.waitFor({ timeout: 15000 }).catch(() => {});
  const points = Number(await box.getAttribute('data-points').catch(() => 0));
  await page.waitForFunction((id) => document.querySelector(`[data-testid="${id}"]`)?.getAttribute('data-rendered') === 'true', testid, { timeout: 15000 }).catch(() => {});
  await page.waitForTimeout(150);
  const ink = await inkedPixels(page, testid);
  check(points > 0 && ink > 200, `chart ${testid}: ${points} values, ${ink} pixels drawn`);
}

// A table with rows whose cells include at least one positive number.
async function expectTable(page, testid, minRows = 1) {
  const rows = await page.locator(`[data-testid="${testid}"] tbody tr td:not(.empty)`).count();
  const numbers = await page.locator(`[data-testid="${testid}"] tbody td`).allInnerTexts();
  const positive = numbers.some((s) => Number(s.replace(/[,%\s]/g, '')) > 0);
  const rowCount = Number(await page.locator(`[data-testid="${testid}"]`).getAttribute('data-rows'));
  check(rows > 0 && rowCount >= minRows && positive, `table ${testid}: ${rowCount} rows, numbers ${positive ? 'present' : 'missing'}`);
}

async function open(page, name) {
  await page.click(`nav a[data-page="${name}"]`);
  await page.waitForSelector(`main[data-page="${name}"]:is([data-state="ready"], [data-state="error"])`, { timeout: 60000 });
  const state = await page.getAttribute('main', 'data-state');
  const problem = state === 'error' ? await page.locator('[data-testid="problem"]').first().innerText() : '';
  check(state === 'ready', `page ${name} loaded${problem ? ': ' + problem : ''}`);
}

async function shoot(page, name) {
  await page.screenshot({ path: path.join(outDir, `${name}.png`), fullPage: true });
}

function checkTranslations() {
  const src = fs.readFileSync(path.join(__dirname, '../../web/src/i18n.js'), 'utf8');
  const block = (lang) => src.slice(src.indexOf(`  ${lang}: {`), src.indexOf('\n  },', src.indexOf(`  ${lang}: {`)));
  const keys = (lang) => new Set([...block(lang).matchAll(/(\w+): '/g)].map((m) => m[1]));
  const en = keys('en'), zh = keys('zh');
  const missing = [...en].filter((k) => !zh.has(k)).concat([...zh].filter((k) => !en.has(k)));
  check(en.size > 50 && missing.length === 0, `English and Chinese have the same ${en.size} words${missing.length ? ' (differ: ' + missing.join(', ') + ')' : ''}`);
}

// What each page must show; the same in both languages (the words differ, the numbers do not).
function pageChecksFor(lang) {
  return {
    overview: async (page) => {
      check(Number((await page.locator('[data-testid="kpi-users"] .kpi-value').innerText()).replace(/,/g, '')) > 0, 'overview shows the number of users');
      for (const c of ['chart-events', 'chart-revenue', 'chart-active', 'chart-funnel']) await expectChart(page, c);
      await expectTable(page, 'table-top-items', 5);
      await expectTable(page, 'table-top-categories', 3);
    },
    segments: async (page) => {
      for (const c of ['chart-segments', 'chart-rfm']) await expectChart(page, c);
      await expectTable(page, 'table-segments', 2);
      await expectTable(page, 'table-centroids', 3);
      // A drill-down: a segment's users, each a link to their page.
      await page.click('[data-testid="table-segments"] a[data-segment]');
      await page.waitForSelector('main[data-page="segments"][data-state="ready"] [data-testid="table-segment-users"]', { timeout: 60000 }).catch(() => {});
      await expectTable(page, 'table-segment-users', 5);
      await shoot(page, `segment-users-${lang}`);
      const first = page.locator('[data-testid="table-segment-users"] tbody a').first();
      const who = await first.innerText().catch(() => '');
      await first.click().catch(() => {});
      await page.waitForSelector('main[data-page="user"][data-state="ready"]', { timeout: 60000 }).catch(() => {});
      check(who !== '' && (await page.inputValue('#user-id').catch(() => '')) === who, `a segment's user opens their user page (${who})`);
      await open(page, 'segments');
      if (lang === 'zh') {
        const english = /\b(high|low|champions|hibernating|loyal customers|at risk|basket_value|recency_days)\b/;
        const labels = (await page.locator('[data-testid="table-segments"] tbody td:nth-child(2)').allInnerTexts()).join(' | ');
        const rfm = await page.locator('[data-testid="table-rfm-segments"]').innerText();
        check(!english.test(labels) && !english.test(rfm), `segment labels in Chinese (${(labels + ' | ' + rfm).replace(/\s+/g, ' ').slice(0, 160)})`);
        const cats = await page.locator('[data-testid="table-segments"] tbody td:nth-child(5)').allInnerTexts();
        check(cats.some((c) => /[\u4e00-\u9fff]/.test(c)), `segments' top categories in Chinese (${cats.join(' | ').slice(0, 120)})`);
      }
    },
    user: async (page) => {
      await expectTable(page, 'table-timeline', 1);
      await expectTable(page, 'table-recommendations', 5);
      await expectChart(page, 'chart-affinity');
      check((await page.locator('[data-testid="user-consent"]').innerText()).includes(lang === 'zh' ? '已同意' : 'given'), 'the user page shows consent');
      if (lang === 'zh') {
        const titles = await page.locator('[data-testid="table-recommendations"] tbody td:first-child').allInnerTexts();
        check(titles.length > 0 && titles.every((x) => /[\u4e00-\u9fff]/.test(x)), `recommended items by their Chinese titles (${titles.slice(0, 3).join(' | ')})`);
      }
    },
    demand: async (page) => {
      for (const c of ['chart-sentiment', 'chart-categories']) await expectChart(page, c);
      const forecasts = await page.locator('[data-testid="forecasts"] .chart').count();
      check(forecasts >= 1, `demand shows ${forecasts} forecasts`);
      if (forecasts) await expectChart(page, await page.locator('[data-testid="forecasts"] .chart').first().getAttribute('data-testid'));
      await expectTable(page, 'table-keywords', 10);
    },
    experiments: async (page) => {
      const listed = Number(await page.locator('[data-testid="table-experiments"]').getAttribute('data-rows').catch(() => 0));
      check(listed >= 1, `experiments are listed (${listed})`);
      await expectTable(page, 'table-variants', 2);
      await expectTable(page, 'table-comparisons', 1);
      await expectChart(page, 'chart-experiment-ctr');
      const verdict = await page.locator('[data-testid="experiment-verdict"]').innerText().catch(() => '');
      check(verdict.length > 10 && (lang !== 'zh' || /[\u4e00-\u9fff]/.test(verdict)), `experiments show a verdict in the reader's language (${verdict.slice(0, 100)})`);
    },
    models: async (page) => {
      await expectTable(page, 'table-models', 3);
      // Each model's figure beside a trivial one's, in a table (not raw JSON).
      const quality = await page.locator('[data-testid="table-quality"] tbody tr').allInnerTexts();
      check(quality.length >= 3 && quality.every((r) => /\d/.test(r) && !r.includes('{')),
        `models are compared with baselines (${quality.length} rows: ${quality.map((r) => r.replace(/\s+/g, ' ')).join(' | ').slice(0, 200)})`);
      const summary = await page.locator('[data-testid="recommender-summary"]').innerText();
      check(!/popularity_ndcg/.test(summary.split('·').slice(0, 3).join('·')) && !summary.includes('{'),
        `the recommender's summary reads as words, its headline its own figure (${summary.slice(0, 120)})`);
      await expectTable(page, 'table-history', 3);
    },
    assistant: async (page) => {
      const chats = lang === 'en'
        ? [['where is my last order?', 'last_order'], ['how long will delivery take?', 'faq'], ['recommend something for me', '']]
        : [['我的订单到哪里了？', ''], ['多久能送到？', ''], ['给我推荐点东西', '']];
      for (const [message, intent] of chats) {
        await page.fill('#chat-message', message);
        const before = await page.locator('[data-testid="chat-reply"]').count();
        await page.click('#chat-send');
        await page.waitForFunction((n) => document.querySelectorAll('[data-testid="chat-reply"]').length > n, before, { timeout: 30000 }).catch(() => {});
        const replies = page.locator('[data-testid="chat-reply"]');
        const got = await replies.count();
        const shown = got > before ? await replies.nth(got - 1).innerText() : '';
        check(got > before && shown.length > 10 && (!intent || shown.includes(intent)) && !/intent\W+unknown|意图\W+unknown/.test(shown),
          `the assistant answered "${message}" (${shown.replace(/\s+/g, ' ').slice(0, 160)})`);
      }
    },
    privacy: async (page) => {
      check((await page.locator('[data-testid="kpi-sealed"]').count()) === 1, 'privacy shows whether the store is sealed');
      if (lang === 'en') {
        await page.selectOption('#dp-statistic', 'mean');
        await page.click('#dp-run');
        // The page redraws to show the budget spent; the answer, which cost budget, must stay on it.
        await page.waitForSelector('[data-testid="table-budgets"][data-rows="1"]', { timeout: 30000 }).catch(() => {});
        await page.waitForSelector('[data-testid="dp-result"] p', { timeout: 30000 }).catch(() => {});
        await page.waitForTimeout(2000);
        const dp = await page.locator('[data-testid="dp-result"]').innerText().catch(() => '');
        check(/mean \(ε 0\.1\): [\d,.]+ .*budget left 0\.9/.test(dp), `a DP mean ran, spent budget and its answer stayed on the page (${dp})`);
      }
      await expectTable(page, 'table-budgets', 1);
      await expectChart(page, 'chart-budgets');
      check((await page.locator('[data-testid="audit-verdict"]').innerText()).length > 0, 'privacy shows the audit log\'s verdict');
    },
  };
}

// The dashboard's English words, each phrase that Chinese says differently: none may show on a
// Chinese page (outside what the shop itself wrote: [data-verbatim] keeps texts, keywords, tags).
function englishPhrases() {
  const src = fs.readFileSync(path.join(__dirname, '../../web/src/i18n.js'), 'utf8');
  const block = (lang) => src.slice(src.indexOf(`  ${lang}: {`), src.indexOf('\n  },', src.indexOf(`  ${lang}: {`)));
  const values = (lang) => Object.fromEntries([...block(lang).matchAll(/(\w+): '((?:[^'\\]|\\.)*)'/g)].map((m) => [m[1], m[2].replace(/\\'/g, "'")]));
  const en = values('en'), zh = values('zh');
  const phrases = new Set();
  for (const [key, value] of Object.entries(en)) {
    const phrase = value.split('{')[0].replace(/[(:…]+$/, '').trim();
    if (phrase.length >= 4 && /[a-z]{3}/.test(phrase) && !(zh[key] || '').includes(phrase)) phrases.add(phrase);
  }
  return [...phrases];
}

// What a person reads on the page: no raw JSON, no bare item id, and in Chinese no English label.
async function expectReadable(page, lang, name) {
  const text = await page.evaluate(() => {
    const main = document.querySelector('main').cloneNode(true);
    main.querySelectorAll('[data-verbatim], input, select, option').forEach((n) => n.remove());
    return main.innerText;
  });
  const json = text.match(/[{[]\s*"\w+"\s*:/);
  check(!json, `${name} (${lang}) shows no raw JSON${json ? ': ' + text.slice(Math.max(0, json.index - 40), json.index + 80) : ''}`);
  const ids = [...new Set(text.match(/\bP\d{5}\b/g) || [])];
  check(ids.length === 0, `${name} (${lang}) shows items by title, not id${ids.length ? ': ' + ids.slice(0, 5).join(', ') : ''}`);
  if (lang !== 'zh') return;
  const english = englishPhrases().filter((p) => new RegExp(`(^|[^A-Za-z])${p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}($|[^A-Za-z])`).test(text));
  check(english.length === 0, `${name} (zh) has no untranslated label${english.length ? ': ' + english.slice(0, 8).join(' | ') : ''}`);
}

// An A/A experiment on the demo's recommender, with two days of feedback from 150 users (each
// clicks the first item of every other list), so the experiments page has a report to show.
async function startExperiment(url) {
  const base = url.replace(/#.*$/, '').replace(/\/$/, '');
  const key = decodeURIComponent((url.match(/key=([^&]+)/) || [])[1] || '');
  const headers = { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' };
  const created = await fetch(`${base}/v1/experiments`, { method: 'POST', headers,
    body: JSON.stringify({ name: 'demo-aa', variants: { a: 'current', b: 'current' } }) });
  check(created.status === 201, `an experiment starts over the API (${created.status})`);
  const feedback = [];
  for (let u = 1; u <= 150; ++u) {
    const user = `U${String(u).padStart(6, '0')}`;
    const list = await (await fetch(`${base}/v1/users/${user}/recommendations?k=5`, { headers })).json();
    for (const day of ['2026-11-02', '2026-11-03'])
      list.recommendations.forEach((r, position) => {
        const f = { request_id: `${list.request_id}-${day}`, user, item: r.item, position, time: `${day}T12:00:00Z` };
        feedback.push({ ...f, kind: 'impression' });
        if (position === 0 && (u + day.length) % 2 === 0) feedback.push({ ...f, kind: 'click' });
        if (position === 1 && u % 3 === 0) feedback.push({ ...f, kind: 'click' });
      });
  }
  const stored = await (await fetch(`${base}/v1/feedback`, { method: 'POST', headers, body: JSON.stringify(feedback) })).json();
  check(stored.stored === feedback.length, `feedback is stored (${stored.stored} of ${feedback.length})`);
}

async function main() {
  fs.mkdirSync(outDir, { recursive: true });
  checkTranslations();
  const demo = args.url ? { url: args.url } : await startDemo(args.persona);
  const browser = await chromium.launch({ executablePath: browserPath, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
  try {
    const context = await browser.newContext({ viewport: { width: 1360, height: 900 }, locale: 'en-US' });
    const page = await context.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => m.type() === 'error' && !m.text().includes('status of 4') && errors.push(m.text()));
    await startExperiment(demo.url);
    await page.goto(demo.url);
    await page.waitForSelector('main[data-state="ready"]', { timeout: 60000 });
    check(!(await page.url()).includes('key='), 'the key is taken out of the address bar');

    // Every page in English, then in Chinese: its charts drew, its tables hold numbers, and what a
    // person reads is words in their language (no raw JSON, no bare item ids, no English in Chinese).
    for (const lang of ['en', 'zh']) {
      if (lang === 'zh') {
        await page.click('#lang');
        await page.waitForSelector('main[data-state="ready"]', { timeout: 60000 });
        const nav = await page.locator('nav').innerText();
        check(nav.includes('概览') && nav.includes('隐私') && !nav.includes('Overview'), `the UI speaks Chinese (${nav.replace(/\s+/g, ' ')})`);
      }
      for (const [name, pageChecks] of Object.entries(pageChecksFor(lang))) {
        await open(page, name);
        await pageChecks(page);
        await expectReadable(page, lang, name);
        await shoot(page, `${name}-${lang}`);
      }
    }
    check(errors.length === 0, `no script errors${errors.length ? ': ' + errors.join(' | ') : ''}`);

    const stranger = await (await browser.newContext()).newPage();
    await stranger.goto(demo.url.replace(/#.*$/, '') + '#/overview');
    await stranger.waitForSelector('main[data-state="error"]', { timeout: 30000 });
    check(await stranger.locator('#banner').isVisible(), 'a browser without a key is told it needs one');
  } finally {
    await browser.close();
    if (demo.child) {
      demo.child.kill('SIGTERM');
      const code = await new Promise((resolve) => demo.child.on('exit', (c) => resolve(c)));
      check(code === 0, `the demo's server stopped cleanly on SIGTERM (exit ${code})`);
      fs.rmSync(demo.dir, { recursive: true, force: true });
    }
  }
  writeReport();
  console.log(`screenshots and checks: ${path.join(outDir, 'index.html')}`);
  if (failures.length) {
    console.log(`${failures.length} check(s) failed`);
    process.exit(1);
  }
}

main().catch((e) => {
  console.error(e.stack || String(e));
  process.exit(1);
});
