// The publisher examples of docs/events.md, run as they stand against a real agent, real
// PostgreSQL and real Redis, and counted through the statistics API.
//
//   tests/publishers/run          (the meson test test_publishers: npm ci when needed, then this)
//
// Needs (deploy/local/test sets the servers, meson test the binaries):
//   EXECTIME_TEST_ADMIN_DATABASE_URL  PostgreSQL superuser URL, e.g. postgresql://postgres@127.0.0.1:55442/postgres
//   EXECTIME_TEST_REDIS_URL           redis://127.0.0.1:56389
//   EXECTIME_AGENT_BIN, EXECTIME_EMIT_BIN  (default build-test/agent/exectime-agent, build-test/common/exectime-emit)
//   EXECTIME_PYTHON                   (default /usr/bin/python3: Debian's, with python3-msgpack and python3-redis)
//
// Every block of docs/events.md right after a `<!-- snippet: NAME -->` line is written to a
// file, unchanged, in a directory laid out as a reader would lay it out (publish-run.mjs
// next to try-publish.mjs, node_modules from this directory, build/common/exectime-emit).
// Each publisher runs there like the doc says, with the variables of a `.local/env`
// sourced by bash (`set -a; . .local/env; set +a`) that point at this test's agent; the
// doc's own curl block (check-api.sh) then must show its runs under a token made like
// deploy/local/up's development token. Every js and python block of the doc must be such
// a snippet, and every snippet must be run here, so the doc cannot drift from what works.
//
// It creates its own database, stream and agent (tests/js/agent_harness.mjs) and removes
// them at the end, also on failure.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  checkTestEnvironment,
  checkTestServers,
  createAgentHarness,
  environmentWithoutExectimeVariables,
  psql,
  redisCli,
  run,
  testEnvironment,
} from '../js/agent_harness.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '../..');
const DOC = path.join(ROOT, 'docs/events.md');
const LIB_SH = path.join(ROOT, 'deploy/local/lib.sh');
const STATS_PATH = '/api/v1/statistics/execution-times';
/* deploy/local/up's default EXECTIME_LOCAL_DEV_TENANTS: the tenants of the development token. */
const DEV_TENANTS = ['tenant-1', 'tenant-2', 'tenant-3'];
const WAIT_MS = 60_000; // ASan agent on two busy cores

const env = {
  ...testEnvironment(ROOT),
  python: process.env.EXECTIME_PYTHON || '/usr/bin/python3',
};

/*
 * The publishers, in the order they run: which snippets make up each one's directory (file
 * name there: snippet name), the command the doc gives, and the runs the doc says it
 * publishes (workflow nightly-sync of tenant-1).
 */
const TWO_RUNS = [
  { status: 'success', durationMs: 1250, startedAt: true },
  { status: 'failed', durationMs: 2500, startedAt: false }, // started_at left out: nil
];
const PUBLISHERS = [
  {
    name: 'Node.js: ioredis + @msgpack/msgpack',
    files: { 'publish-run.mjs': 'ioredis/publish-run.mjs', 'try-publish.mjs': 'node/try-publish.mjs' },
    command: [process.execPath, 'try-publish.mjs'],
    runs: TWO_RUNS,
  },
  {
    name: 'Node.js: node-redis + @msgpack/msgpack',
    files: { 'publish-run.mjs': 'node-redis/publish-run.mjs', 'try-publish.mjs': 'node/try-publish.mjs' },
    command: [process.execPath, 'try-publish.mjs'],
    runs: TWO_RUNS,
  },
  {
    name: 'Python: python3-redis + python3-msgpack',
    files: { 'publish_run.py': 'python/publish_run.py' },
    command: [env.python, 'publish_run.py'],
    runs: TWO_RUNS,
  },
  {
    name: 'shell: exectime-emit',
    files: { 'emit-one.sh': 'emit-one.sh' },
    command: ['bash', '-euo', 'pipefail', 'emit-one.sh'],
    runs: [{ status: 'success', durationMs: 1250, startedAt: null }], // null: not checked
  },
];
const CHECK_SNIPPET = 'check-api.sh';

let harness = null; // the agent, its database and stream (tests/js/agent_harness.mjs)
const ctx = {}; // token, envFile

// --- the doc's snippets -------------------------------------------------------------------

/**
 * The snippets of a markdown text: name -> code, for every fenced block right after a
 * `<!-- snippet: NAME -->` line. Fails on a js or python block without one (untested code
 * in the doc) and on a name used twice.
 */
function extractSnippets(markdown) {
  const snippets = new Map();
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\w*)\s*$/.exec(lines[i]);
    if (!open) continue;
    const end = lines.findIndex((line, j) => j > i && /^```\s*$/.test(line));
    assert.ok(end > i, `docs/events.md:${i + 1}: a code block that is never closed`);
    const marker = /^<!-- snippet: ([\w./-]+) -->$/.exec(lines[i - 1] ?? '');
    if (marker) {
      assert.ok(!snippets.has(marker[1]), `docs/events.md:${i}: snippet ${marker[1]} twice`);
      snippets.set(marker[1], lines.slice(i + 1, end).join('\n') + '\n');
    } else {
      assert.ok(
        !['js', 'javascript', 'mjs', 'python', 'py'].includes(open[1]),
        `docs/events.md:${i + 1}: a ${open[1]} block without a <!-- snippet: NAME --> line before it: ` +
          'every publisher example must be one this test runs',
      );
    }
    i = end;
  }
  return snippets;
}

// --- set-up ------------------------------------------------------------------------------

function checkEnvironment() {
  checkTestEnvironment(env, [['EXECTIME_PYTHON', env.python, 'apt-get install python3 python3-msgpack python3-redis']]);
  for (const pkg of ['ioredis', 'redis', '@msgpack/msgpack']) {
    if (!fs.existsSync(path.join(HERE, 'node_modules', pkg, 'package.json'))) {
      throw new Error(`npm package ${pkg} is missing in ${HERE}/node_modules: run tests/publishers/run (it runs npm ci)`);
    }
  }
}

/**
 * The development token exactly as deploy/local/up makes it (lib.sh's make_dev_jwt, the
 * default tenants), and a `.local/env` with the variables the doc's snippets read.
 */
async function writeLocalEnv(secret) {
  const { stdout } = await run('bash', ['-c', 'set -euo pipefail; source "$1"; shift; make_dev_jwt "$@"', 'make_dev_jwt', LIB_SH, secret, ...DEV_TENANTS]);
  ctx.token = stdout.trim();
  ctx.envFile = path.join(harness.tmpDir, 'local-env');
  fs.writeFileSync(
    ctx.envFile,
    [
      `EXECTIME_API_URL=${harness.base}`,
      `EXECTIME_REDIS_URL=${env.redisUrl}`,
      `EXECTIME_STREAM=${harness.stream}`,
      `EXECTIME_DEV_TOKEN=${ctx.token}`,
      '',
    ].join('\n'),
  );
}

/**
 * A directory laid out as a reader would: the snippet files under their own names (and the
 * doc's curl block), the locked npm packages, and build/common/exectime-emit as in a
 * checkout.
 */
function makeWorkDir(name, files, snippets) {
  const dir = path.join(harness.tmpDir, name.replace(/[^\w]+/g, '-'));
  fs.mkdirSync(path.join(dir, 'build/common'), { recursive: true });
  fs.symlinkSync(path.join(HERE, 'node_modules'), path.join(dir, 'node_modules'));
  fs.symlinkSync(env.emitBin, path.join(dir, 'build/common/exectime-emit'));
  for (const [file, snippet] of Object.entries({ ...files, [CHECK_SNIPPET]: CHECK_SNIPPET })) {
    assert.ok(snippets.has(snippet), `docs/events.md has no <!-- snippet: ${snippet} --> block`);
    fs.writeFileSync(path.join(dir, file), snippets.get(snippet));
  }
  return dir;
}

/** Runs argv in dir after `set -a; . .local/env; set +a`, as the doc says. */
function runWithLocalEnv(dir, argv) {
  return run('bash', ['-c', 'set -a; . "$0"; set +a; exec "$@"', ctx.envFile, ...argv], { cwd: dir, env: environmentWithoutExectimeVariables() });
}

// --- the checks ---------------------------------------------------------------------------

/** The doc's check-api.sh, run as written: its JSON answer. */
async function askApiAsTheDocSays(dir) {
  const { stdout } = await runWithLocalEnv(dir, ['bash', '-euo', 'pipefail', CHECK_SNIPPET]);
  try {
    return JSON.parse(stdout);
  } catch {
    throw new Error(`${CHECK_SNIPPET} printed no JSON: ${stdout}`);
  }
}

/** The reasons of the dead letters so far, one a line ("" when there are none). */
async function deadLetters() {
  const { stdout: length } = await redisCli(env.redisUrl, 'XLEN', `${harness.stream}:dead`);
  if (length.trim() === '0') return '';
  // Raw output: one line per id, field and value; the event's bytes are not worth printing.
  const lines = (await redisCli(env.redisUrl, 'XRANGE', `${harness.stream}:dead`, '-', '+')).stdout.split('\n');
  const reasons = lines.flatMap((line, i) => (line === 'reason' ? [`reason: ${lines[i + 1]}`] : []));
  return reasons.length ? reasons.join('\n') : lines.join('\n');
}

// Missing servers, binaries or packages: one clear line, not a failure per publisher.
let snippets;
try {
  checkEnvironment();
  await checkTestServers(env);
  snippets = extractSnippets(fs.readFileSync(DOC, 'utf8'));
  const used = new Set([CHECK_SNIPPET, ...PUBLISHERS.flatMap((p) => Object.values(p.files))]);
  const unused = [...snippets.keys()].filter((name) => !used.has(name));
  if (unused.length) throw new Error(`docs/events.md has snippets this test does not run: ${unused.join(', ')}`);
  if (!snippets.has(CHECK_SNIPPET)) throw new Error(`docs/events.md has no <!-- snippet: ${CHECK_SNIPPET} --> block`);
} catch (error) {
  console.error(`test_publishers: ${error.message}`);
  process.exit(1);
}

test('the publisher examples of docs/events.md, run as written', { timeout: 240_000 }, async (t) => {
  t.after(() => harness?.cleanUp());
  harness = createAgentHarness({ tag: 'pub', ...env, waitMs: WAIT_MS });
  const secret = randomBytes(32).toString('hex'); // as deploy/local/up: openssl rand -hex 32
  const databaseUrl = await harness.createDatabase();
  await harness.startAgent({ databaseUrl, secret });
  await writeLocalEnv(secret);

  const want = { count: 0, failed: 0, durations: [] };
  for (const publisher of PUBLISHERS) {
    await t.test(publisher.name, async () => {
      const dir = makeWorkDir(publisher.name, publisher.files, snippets);
      await runWithLocalEnv(dir, publisher.command);
      want.count += publisher.runs.length;
      want.failed += publisher.runs.filter((r) => r.status === 'failed').length;
      want.durations.push(...publisher.runs.map((r) => r.durationMs));

      let answer;
      let dead = '';
      await harness.waitFor(`the API to count ${want.count} runs of nightly-sync`, async () => {
        answer = await askApiAsTheDocSays(dir);
        dead = await deadLetters();
        return answer.count >= want.count || dead;
      }).catch((error) => {
        throw new Error(`${error.message}\nlast answer: ${JSON.stringify(answer)}`);
      });
      assert.equal(dead, '', 'dead letters (events the agent refused)');
      assert.equal(answer.tenant_id, 'tenant-1');
      assert.equal(answer.workflow_id, 'nightly-sync');
      assert.equal(answer.count, want.count, 'runs counted');
      assert.equal(answer.failed, want.failed, 'failed runs counted');
      assert.equal(answer.min_ms, Math.min(...want.durations), 'min_ms');
      assert.equal(answer.max_ms, Math.max(...want.durations), 'max_ms');
    });
  }

  await t.test('what was stored: timestamps given, or started_at left out (nil)', async () => {
    const rows = (
      await psql(
        harness.dbAdminUrl,
        "SELECT status, duration_us, started_at IS NULL FROM exectime.execution_time_statistics WHERE tenant_id = 'tenant-1' ORDER BY finished_at, run_id",
      )
    )
      .split('\n')
      .map((line) => line.split('|'));
    const expected = PUBLISHERS.flatMap((p) => p.runs);
    assert.equal(rows.length, expected.length, `rows: ${JSON.stringify(rows)}`);
    for (const [i, run] of expected.entries()) {
      const [status, durationUs, startedNull] = rows[i];
      assert.equal(status, run.status, `row ${i}: status`);
      assert.equal(Number(durationUs), run.durationMs * 1000, `row ${i}: duration_us`);
      if (run.startedAt !== null) assert.equal(startedNull, run.startedAt ? 'f' : 't', `row ${i}: started_at is null`);
    }
  });
});
