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
// It creates its own database and stream and removes them at the end, also on failure.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '../..');
const DOC = path.join(ROOT, 'docs/events.md');
const LIB_SH = path.join(ROOT, 'deploy/local/lib.sh');
const STATS_PATH = '/api/v1/statistics/execution-times';
/* deploy/local/up's default EXECTIME_LOCAL_DEV_TENANTS: the tenants of the development token. */
const DEV_TENANTS = ['tenant-1', 'tenant-2', 'tenant-3'];
/* harness.c's lock: the migrations create cluster-wide roles; two at once would race. */
const SETUP_LOCK_KEY = String(0x657865637469n);
const WAIT_MS = 60_000; // ASan agent on two busy cores

const env = {
  adminUrl: process.env.EXECTIME_TEST_ADMIN_DATABASE_URL ?? '',
  redisUrl: process.env.EXECTIME_TEST_REDIS_URL ?? '',
  agentBin: path.resolve(process.env.EXECTIME_AGENT_BIN || path.join(ROOT, 'build-test/agent/exectime-agent')),
  emitBin: path.resolve(process.env.EXECTIME_EMIT_BIN || path.join(ROOT, 'build-test/common/exectime-emit')),
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

// What set-up made, for the clean-up (each part undone only if it was done).
const made = { tmpDir: null, dbName: null, stream: null, agent: null, lock: null };
const ctx = {}; // port, base, token, dbAdminUrl, envFile

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

// --- processes ----------------------------------------------------------------------------

/** Runs a command to its end; rejects with its output when it fails. */
function run(cmd, args, { input, cwd, env: childEnv, timeoutMs = 60_000 } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env: childEnv ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.stdin.on('error', () => {}); // a command that does not read its input
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${cmd}: ${error.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0 && !signal) resolve({ stdout, stderr });
      else reject(new Error(`${path.basename(cmd)} ${args.join(' ')} ended with ${signal ?? `status ${code}`}:\n${stderr}${stdout}`));
    });
    child.stdin.end(input ?? '');
  });
}

function psqlBin() {
  if (process.env.EXECTIME_PG_BIN) return path.join(process.env.EXECTIME_PG_BIN, 'psql');
  const base = '/usr/lib/postgresql';
  const versions = fs.existsSync(base) ? fs.readdirSync(base).filter((v) => fs.existsSync(path.join(base, v, 'bin/psql'))) : [];
  versions.sort((a, b) => Number(b) - Number(a));
  return versions.length ? path.join(base, versions[0], 'bin/psql') : 'psql';
}
const PSQL = psqlBin();
const PSQL_ARGS = ['-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1'];

async function psql(url, sql) {
  const { stdout } = await run(PSQL, [...PSQL_ARGS, '-d', url, '-f', '-'], { input: sql });
  return stdout.trim();
}

function pgUrl(admin, { db, user } = {}) {
  const u = new URL(admin);
  if (db !== undefined) u.pathname = '/' + db;
  if (user !== undefined) u.username = user;
  return u.href;
}

/** A psql session that holds harness.c's advisory lock until release(). */
async function takeSetupLock(adminUrl) {
  const child = spawn(PSQL, [...PSQL_ARGS, '-d', pgUrl(adminUrl, { db: 'postgres' })], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  const exited = new Promise((resolve) => child.on('close', resolve));
  await new Promise((resolve, reject) => {
    child.on('error', reject);
    child.stdout.on('data', (d) => {
      out += d;
      if (out.includes('locked')) resolve();
    });
    exited.then((code) => reject(new Error(`psql (set-up lock) ended with status ${code}: ${err}`)));
    child.stdin.write(`SELECT pg_advisory_lock(${SETUP_LOCK_KEY});\n\\echo locked\n`);
  });
  return {
    async release() {
      child.stdin.end(`SELECT pg_advisory_unlock(${SETUP_LOCK_KEY});\n\\q\n`);
      await exited;
    },
  };
}

function redisCli(...args) {
  return run('redis-cli', ['-u', env.redisUrl, ...args], { timeoutMs: 10_000 });
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function agentLogTail(lines = 60) {
  try {
    return fs.readFileSync(made.agent.logPath, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '(no agent log)';
  }
}

/** Polls `probe` until it answers a truthy value; fails with `what` after timeoutMs. */
async function waitFor(what, probe, timeoutMs = WAIT_MS, everyMs = 200) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    if (made.agent && made.agent.child.exitCode !== null) {
      throw new Error(`the agent exited (status ${made.agent.child.exitCode}) while waiting for ${what}:\n${agentLogTail()}`);
    }
    try {
      const v = await probe();
      if (v) return v;
      last = null;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${last.message}` : ''}`);
    await sleep(everyMs);
  }
}

// --- set-up and clean-up ------------------------------------------------------------------

function checkEnvironment() {
  const missing = ['EXECTIME_TEST_ADMIN_DATABASE_URL', 'EXECTIME_TEST_REDIS_URL'].filter((n) => !process.env[n]);
  if (missing.length) {
    throw new Error(
      `${missing.join(' and ')} not set: this test needs real servers. Run deploy/local/test, or set ` +
        'EXECTIME_TEST_ADMIN_DATABASE_URL (a PostgreSQL superuser URL, e.g. postgresql://postgres@127.0.0.1:55442/postgres) ' +
        'and EXECTIME_TEST_REDIS_URL (e.g. redis://127.0.0.1:56389).',
    );
  }
  if (!/^postgres(ql)?:\/\//.test(env.adminUrl)) throw new Error(`EXECTIME_TEST_ADMIN_DATABASE_URL is not a postgresql:// URL: ${env.adminUrl}`);
  for (const [name, file, hint] of [
    ['EXECTIME_AGENT_BIN', env.agentBin, 'build build-test/ first, e.g. deploy/local/test'],
    ['EXECTIME_EMIT_BIN', env.emitBin, 'build build-test/ first, e.g. deploy/local/test'],
    ['EXECTIME_PYTHON', env.python, 'apt-get install python3 python3-msgpack python3-redis'],
  ]) {
    try {
      fs.accessSync(file, fs.constants.X_OK);
    } catch {
      throw new Error(`${name}: ${file} is not an executable (${hint})`);
    }
  }
  for (const pkg of ['ioredis', 'redis', '@msgpack/msgpack']) {
    if (!fs.existsSync(path.join(HERE, 'node_modules', pkg, 'package.json'))) {
      throw new Error(`npm package ${pkg} is missing in ${HERE}/node_modules: run tests/publishers/run (it runs npm ci)`);
    }
  }
}

async function checkServers() {
  try {
    await psql(pgUrl(env.adminUrl, { db: 'postgres' }), 'SELECT 1');
  } catch (error) {
    throw new Error(`PostgreSQL at EXECTIME_TEST_ADMIN_DATABASE_URL (${env.adminUrl}) does not answer: ${error.message}`);
  }
  const pong = await redisCli('PING').catch((error) => ({ stdout: error.message }));
  if (pong.stdout.trim() !== 'PONG') {
    throw new Error(`Redis at EXECTIME_TEST_REDIS_URL (${env.redisUrl}) does not answer PING: ${pong.stdout.trim()}`);
  }
}

async function createDatabase() {
  const db = `exectime_pub_${process.pid}`;
  const maint = pgUrl(env.adminUrl, { db: 'postgres' });
  ctx.dbAdminUrl = pgUrl(env.adminUrl, { db });
  const agentUrl = pgUrl(env.adminUrl, { db, user: 'exectime_agent' }); // keeps the admin's password
  made.lock = await takeSetupLock(env.adminUrl);
  try {
    await psql(maint, `DROP DATABASE IF EXISTS ${db} WITH (FORCE);\nCREATE DATABASE ${db};`);
    made.dbName = db;
    await run(made.agentLink, ['migrate', '--database-url', ctx.dbAdminUrl], { timeoutMs: 120_000 });
    let sql =
      "SET client_min_messages = warning;\nDO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'exectime_agent') THEN " +
      'CREATE ROLE exectime_agent LOGIN; END IF; END $$;\nGRANT exectime_writer, exectime_reader TO exectime_agent;\n';
    const password = decodeURIComponent(new URL(env.adminUrl).password);
    if (password) {
      // The servers may want a password: give the agent's role the admin's (as harness.c does).
      sql += `ALTER ROLE exectime_agent PASSWORD '${password.replace(/'/g, "''")}';\n`;
    }
    await psql(maint, sql);
  } finally {
    await made.lock.release();
    made.lock = null;
  }
  return agentUrl;
}

async function startAgent(databaseUrl, secret) {
  ctx.port = await freePort();
  ctx.base = `http://127.0.0.1:${ctx.port}`;
  made.stream = `exectime-pub:${process.pid}:${Date.now().toString(36)}:events`;
  const childEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('EXECTIME_')));
  Object.assign(childEnv, {
    EXECTIME_DATABASE_URL: databaseUrl,
    EXECTIME_REDIS_URL: env.redisUrl,
    EXECTIME_STREAM: made.stream,
    EXECTIME_GROUP: 'exectime-pub',
    EXECTIME_LISTEN: `127.0.0.1:${ctx.port}`,
    EXECTIME_JWT_SECRET: secret,
    EXECTIME_FLUSH_MS: '100',
    EXECTIME_LOG_FORMAT: 'text',
  });
  const logPath = path.join(made.tmpDir, 'agent.log');
  const log = fs.openSync(logPath, 'w');
  const child = spawn(made.agentLink, ['run'], { env: childEnv, stdio: ['ignore', log, log] });
  fs.closeSync(log);
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  child.on('error', () => {}); // surfaces as the exit above
  made.agent = { child, exited, logPath };
  await waitFor('the agent to answer GET /readyz', async () => (await fetch(`${ctx.base}/readyz`)).ok);
}

/**
 * The development token exactly as deploy/local/up makes it (lib.sh's make_dev_jwt, the
 * default tenants), and a `.local/env` with the variables the doc's snippets read.
 */
async function writeLocalEnv(secret) {
  const { stdout } = await run('bash', ['-c', 'set -euo pipefail; source "$1"; shift; make_dev_jwt "$@"', 'make_dev_jwt', LIB_SH, secret, ...DEV_TENANTS]);
  ctx.token = stdout.trim();
  ctx.envFile = path.join(made.tmpDir, 'local-env');
  fs.writeFileSync(
    ctx.envFile,
    [
      `EXECTIME_API_URL=${ctx.base}`,
      `EXECTIME_REDIS_URL=${env.redisUrl}`,
      `EXECTIME_STREAM=${made.stream}`,
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
  const dir = path.join(made.tmpDir, name.replace(/[^\w]+/g, '-'));
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
  const childEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('EXECTIME_')));
  return run('bash', ['-c', 'set -a; . "$0"; set +a; exec "$@"', ctx.envFile, ...argv], { cwd: dir, env: childEnv });
}

async function cleanUp() {
  const problems = [];
  const attempt = async (what, fn) => {
    try {
      await fn();
    } catch (error) {
      problems.push(`${what}: ${error.message}`);
    }
  };
  if (made.lock) await attempt('releasing the set-up lock', () => made.lock.release());
  if (made.agent) {
    await attempt('stopping the agent', async () => {
      const { child, exited } = made.agent;
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      let timer;
      const timeout = new Promise((resolve) => (timer = setTimeout(resolve, 20_000, null)));
      let result = await Promise.race([exited, timeout]);
      clearTimeout(timer);
      if (!result) {
        child.kill('SIGKILL');
        result = await exited;
        throw new Error(`no exit within 20 s of SIGTERM:\n${agentLogTail()}`);
      }
      if (result.code !== 0) throw new Error(`exited with ${result.signal ?? `status ${result.code}`} after SIGTERM:\n${agentLogTail()}`);
    });
  }
  if (made.dbName) {
    await attempt(`dropping database ${made.dbName}`, () =>
      psql(pgUrl(env.adminUrl, { db: 'postgres' }), `DROP DATABASE IF EXISTS ${made.dbName} WITH (FORCE);`),
    );
  }
  if (made.stream) await attempt(`deleting Redis stream ${made.stream}`, () => redisCli('DEL', made.stream, `${made.stream}:dead`));
  if (made.tmpDir) fs.rmSync(made.tmpDir, { recursive: true, force: true });
  if (problems.length) throw new Error(`clean-up failed:\n${problems.join('\n')}`);
}

// A last resort should the process end without the clean-up (an uncaught error, a signal).
process.on('exit', () => {
  if (made.agent && made.agent.child.exitCode === null) made.agent.child.kill('SIGKILL');
});

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
  const { stdout: length } = await redisCli('XLEN', `${made.stream}:dead`);
  if (length.trim() === '0') return '';
  // Raw output: one line per id, field and value; the event's bytes are not worth printing.
  const lines = (await redisCli('XRANGE', `${made.stream}:dead`, '-', '+')).stdout.split('\n');
  const reasons = lines.flatMap((line, i) => (line === 'reason' ? [`reason: ${lines[i + 1]}`] : []));
  return reasons.length ? reasons.join('\n') : lines.join('\n');
}

// Missing servers, binaries or packages: one clear line, not a failure per publisher.
let snippets;
try {
  checkEnvironment();
  await checkServers();
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
  t.after(cleanUp);
  // The agent runs under a name of its own (as in harness.c): someone's
  // `pkill exectime-agent` on a shared machine does not stop it.
  made.tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'exectime-pub-'));
  made.agentLink = path.join(made.tmpDir, 'pub-agent');
  fs.symlinkSync(env.agentBin, made.agentLink);
  const secret = randomBytes(32).toString('hex'); // as deploy/local/up: openssl rand -hex 32
  const agentUrl = await createDatabase();
  await startAgent(agentUrl, secret);
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
      await waitFor(`the API to count ${want.count} runs of nightly-sync`, async () => {
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
        ctx.dbAdminUrl,
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
