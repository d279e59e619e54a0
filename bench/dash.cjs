// bench/run DASH: how long a person waits for each dashboard page of `persona demo` (the default
// shop: ~10,000 users, 1M events), in headless Chromium (Debian's, driven by playwright-core).
// Time to first full render: from the click in the navigation to the page's data loaded and its
// charts drawn (main[data-state="ready"], every chart data-rendered). Three passes:
//   first     the first visit of each page, right after the server said it was ready
//   again     the same pages once more (what a person clicking around sees)
//   after-ingest  the overview and demand pages after one event was posted (data changed:
//             aggregates computed again on request, the worst case for a live feed)
// Prints one JSON line per page and pass, then a summary line against the 1 s goal.
//
//   node bench/dash.cjs --persona build/release/apps/persona/persona [--size default] [--dir D]
// NODE_PATH must reach web/node_modules. Exit 77 without Chromium.
'use strict';
const { spawn } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const args = Object.fromEntries(process.argv.slice(2).reduce((pairs, a, i, all) => (a.startsWith('--') ? [...pairs, [a.slice(2), all[i + 1]]] : pairs), []));
const browserPath = process.env.PERSONA_CHROMIUM || ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => fs.existsSync(p));
const emit = (o) => console.log(JSON.stringify(o));
if (!browserPath) {
  emit({ task: 'DASH', skipped: 'no Chromium (scripts/install-deps installs Debian\'s chromium; or set PERSONA_CHROMIUM)' });
  process.exit(77);
}
const { chromium } = require('playwright-core');
const PAGES = ['overview', 'segments', 'user', 'demand', 'models', 'assistant', 'privacy'];
const GOAL_S = 1;

function startDemo(persona, size, dir) {
  const t0 = Date.now();
  const child = spawn(persona, ['demo', '--size', size, '--dir', dir, '--port', '0'], { stdio: ['ignore', 'ignore', 'pipe'] });
  return new Promise((resolve, reject) => {
    let err = '';
    child.stderr.on('data', (d) => {
      err += d;
      const m = err.match(/dashboard: (\S+)/);
      if (m) resolve({ child, url: m[1], demo_s: (Date.now() - t0) / 1000 });
    });
    child.on('exit', (code) => reject(new Error(`persona demo ended (${code}) before serving:\n${err.slice(-2000)}`)));
  });
}

// Seconds from the click to the page ready with every chart drawn.
async function timePage(page, name) {
  const t0 = Date.now();
  await page.click(`nav a[data-page="${name}"]`);
  await page.waitForSelector(`main[data-page="${name}"]:is([data-state="ready"], [data-state="error"])`, { timeout: 300000 });
  await page.waitForFunction(() => [...document.querySelectorAll('[data-rendered]')].every((c) => c.getAttribute('data-rendered') === 'true'),
    null, { timeout: 60000 }).catch(() => {});
  const seconds = (Date.now() - t0) / 1000;
  return { seconds, state: await page.getAttribute('main', 'data-state') };
}

async function main() {
  const size = args.size || 'default';
  const dir = args.dir || fs.mkdtempSync(path.join(os.tmpdir(), 'persona-dash-'));
  const demo = await startDemo(args.persona, size, dir);
  const key = new URL(demo.url).hash.match(/key=([^&]+)/)[1];
  const browser = await chromium.launch({ executablePath: browserPath, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
  const results = [];
  try {
    const page = await (await browser.newContext({ viewport: { width: 1360, height: 900 } })).newPage();
    const t0 = Date.now();
    await page.goto(demo.url);
    await page.waitForSelector('main[data-state="ready"], main[data-state="error"]', { timeout: 300000 });
    await page.waitForFunction(() => [...document.querySelectorAll('[data-rendered]')].every((c) => c.getAttribute('data-rendered') === 'true'),
      null, { timeout: 60000 }).catch(() => {});
    // The link opens the overview: its first visit is the landing, from the address to every chart.
    const landing = { seconds: (Date.now() - t0) / 1000, state: await page.getAttribute('main', 'data-state') };
    const first = await page.getAttribute('main', 'data-page');
    results.push({ pass: 'first', page: first, ...landing });
    emit({ task: 'DASH', system: 'persona', pass: 'first', page: first, seconds: landing.seconds, state: landing.state, size, landing: true });
    for (const pass of ['first', 'again']) {
      for (const name of PAGES) {
        if (pass === 'first' && name === first) continue;
        const r = await timePage(page, name);
        results.push({ pass, page: name, ...r });
        emit({ task: 'DASH', system: 'persona', pass, page: name, seconds: r.seconds, state: r.state, size });
      }
    }
    const origin = new URL(demo.url).origin;
    const posted = await page.evaluate(async ([origin, key]) => {
      const r = await fetch(origin + '/v1/events', { method: 'POST', headers: { Authorization: 'Bearer ' + key, 'Content-Type': 'application/json' },
        body: JSON.stringify([{ user: 'UDASH1', item: 'P00001', type: 'view', timestamp: new Date().toISOString() }]) });
      return r.status;
    }, [origin, key]);
    for (const name of ['overview', 'demand']) {
      await timePage(page, name === 'overview' ? 'models' : 'overview');  // leave the page first
      const r = await timePage(page, name);
      results.push({ pass: 'after-ingest', page: name, ...r });
      emit({ task: 'DASH', system: 'persona', pass: 'after-ingest', page: name, seconds: r.seconds, state: r.state, size, ingest_status: posted });
    }
  } finally {
    await browser.close();
    demo.child.kill('SIGTERM');
    await new Promise((resolve) => demo.child.on('exit', resolve));
    if (!args.dir) fs.rmSync(dir, { recursive: true, force: true });
  }
  const worst = (pass) => Math.max(...results.filter((r) => r.pass === pass).map((r) => r.seconds));
  const failed = results.filter((r) => r.state !== 'ready').map((r) => `${r.pass}/${r.page}`);
  emit({ task: 'DASH', ratio: { goal_s: GOAL_S, worst_first_s: worst('first'), worst_again_s: worst('again'),
    worst_after_ingest_s: worst('after-ingest'), worst_first_to_goal: worst('first') / GOAL_S }, pages_not_ready: failed,
    demo_s: demo.demo_s, cpus: os.cpus().length, cpu_model: os.cpus()[0] && os.cpus()[0].model });
}

main().catch((e) => {
  emit({ task: 'DASH', error: String(e && e.stack || e) });
  process.exit(1);
});
