// The README is a test: every ```sh block after "## Examples" runs as written, in order, in one
// fresh directory, each block as one bash script that stops at the first command that fails.
// $P is the persona binary under test (the README's own `P=` line is left out), and the
// README's ports 8080 (persona serve) and 6380 (a Redis of its own) become free ones; a Redis
// a failed block left running is stopped. Commands that read ../shared/data (real data sets,
// minutes each) are long: they run with --long (CI) when the data is there, and are listed as
// skipped otherwise.
//
//   node tests/readme/readme_test.cjs --persona build/debug/apps/persona/persona [--long]
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const net = require('net');
const os = require('os');
const path = require('path');

const argv = process.argv.slice(2);
const persona = path.resolve(argv[argv.indexOf('--persona') + 1]);
const long = argv.includes('--long') || process.env.PERSONA_README_LONG === '1';
const repo = path.resolve(__dirname, '../..');
const shared = path.resolve(repo, '../shared');
// The suite's PostgreSQL (tests/support/pg_server.h), reached as a reader's own server would be:
// libpq's PGHOST and PGUSER.
const pgDir = process.env.PERSONA_TEST_PG_DIR || '';
const pgEnv = pgDir ? { PGHOST: pgDir, PGUSER: 'postgres' } : {};

// The ```sh blocks of the Examples section, continuation lines joined.
function exampleBlocks(markdown) {
  const from = markdown.indexOf('\n## Examples');
  const blocks = [];
  const re = /```sh\n([\s\S]*?)```/g;
  for (let m; (m = re.exec(markdown));) {
    if (m.index < from) continue;
    const lines = [];
    for (const raw of m[1].split('\n')) {
      if (lines.length && lines[lines.length - 1].endsWith('\\')) lines[lines.length - 1] = lines[lines.length - 1].slice(0, -1) + ' ' + raw.trim();
      else lines.push(raw);
    }
    blocks.push(lines.filter((l) => l.trim() && !l.trim().startsWith('#')));
  }
  return blocks;
}

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function main() {
  const blocks = exampleBlocks(fs.readFileSync(path.join(repo, 'README.md'), 'utf8'));
  const haveData = fs.existsSync(path.join(shared, 'data'));
  // The README's relative paths: ../shared/data beside the working directory, tests/ in it.
  const top = fs.mkdtempSync(path.join(os.tmpdir(), 'persona-readme-'));
  const work = path.join(top, 'work');
  fs.mkdirSync(work);
  if (haveData) fs.symlinkSync(shared, path.join(top, 'shared'));
  fs.symlinkSync(path.join(repo, 'tests'), path.join(work, 'tests'));
  const port = await freePort();
  const redisPort = await freePort();  // the README's own Redis (6380)
  let failed = 0, ran = 0;
  const skipped = [], skippedFiles = [];
  try {
    for (const [i, block] of blocks.entries()) {
      const commands = [];
      for (const line of block) {
        if (/^P=/.test(line)) continue;
        // PostgreSQL examples run against the suite's server (CTest's fixture; PGHOST below), and
        // are skipped without one, except under CI=true, where they fail as written.
        if (/postgresql:|createdb/.test(line) && !pgDir && process.env.CI !== 'true') {
          skipped.push(line);
          continue;
        }
        if ((line.includes('../shared/data') || skippedFiles.some((f) => line.includes(f))) && !(long && haveData)) {
          skipped.push(line);
          // What it writes is not there for the lines after it: they are skipped too.
          for (const m of line.matchAll(/(?:>|\s-o|--out|--store)\s+(\S+)/g)) skippedFiles.push(m[1]);
          continue;
        }
        commands.push(line.replace(/8080/g, String(port)).replace(/6380/g, String(redisPort)).replace(/^(\$P serve .*?)(\s+&|\s*#|$)/, `$1 --port ${port}$2`));
      }
      if (!commands.length) continue;
      ran += commands.length;
      // Each command echoed before it runs; the first failure ends the block and names itself.
      const script = ['set -e', 'trap \'echo "README command failed (exit $?): $BASH_COMMAND" >&2\' ERR',
        ...commands.map((c) => `echo "\\$ ${c.replace(/["\\$`]/g, '\\$&')}" >&2\n${c}`),
        'wait'].join('\n');
      const t0 = Date.now();
      const r = spawnSync('bash', ['-c', script], {
        cwd: work, env: { ...process.env, P: persona, PERSONA_MODELS: '', ...pgEnv }, encoding: 'utf8', timeout: 1800000, maxBuffer: 1 << 28,
      });
      const seconds = ((Date.now() - t0) / 1000).toFixed(1);
      const ok = r.status === 0;
      if (!ok) failed += 1;
      console.log(`${ok ? 'ok  ' : 'FAIL'} block ${i + 1} (${commands.length} commands, ${seconds} s)`);
      if (!ok) console.log(`${(r.stderr || '').slice(-4000)}\n${(r.stdout || '').slice(-2000)}${r.error ? '\n' + r.error : ''}`);
    }
  } finally {
    spawnSync('pkill', ['-KILL', '-f', `redis-server [^ ]*:${redisPort}`]);
    fs.rmSync(top, { recursive: true, force: true });
  }
  for (const s of skipped)
    console.log(`skipped (${/postgresql:|createdb/.test(s) ? 'needs the suite\'s PostgreSQL' : 'long: needs ../shared/data and --long'}): ${s.trim()}`);
  console.log(`${ran} README commands run, ${skipped.length} skipped, ${failed} block(s) failed`);
  process.exit(failed ? 1 : 0);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
