// tests/js/agent_harness.mjs — what the Node.js tests that run a real exectime-agent share
// (tests/publishers/publishers.test.mjs, ui-widget/e2e/dashboard.e2e.mjs): the test
// servers named by EXECTIME_TEST_ADMIN_DATABASE_URL and EXECTIME_TEST_REDIS_URL, commands
// (psql, redis-cli), and one agent per test with what it needs.
//
// Ownership: createAgentHarness() makes a temporary directory and an agent harness that
// owns, once made, a database of the test's own (created under harness.c's set-up lock,
// migrated, the agent's role granted), a Redis stream, the agent process (on a free port of
// 127.0.0.1) and that directory; harness.cleanUp() undoes each part that was done, also
// after a failure, and a process exit kills an agent still running. What a test makes
// besides (pages, browsers, sessions) stays the test's, handed to cleanUp() to undo first.
//
// Errors: every function throws, or its promise rejects with, an Error whose message says
// what failed and how to fix it: the command with its status and output, the variable to
// set, the agent's last log lines when it exited early. cleanUp() tries every step and then
// throws one Error listing the steps that failed.
//
// Node.js built-ins only, imported by relative path: neither package needs an npm
// dependency for it, and ui-widget's published files do not include it.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

/* harness.c's lock: the migrations create cluster-wide roles; two at once would race. */
const SETUP_LOCK_KEY = String(0x657865637469n);
const AGENT_STOP_MS = 20_000;

// --- processes ----------------------------------------------------------------------------

/** Runs a command to its end; rejects with its output when it fails. */
export function run(cmd, args, { input, cwd, env, timeoutMs = 60_000 } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env: env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
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
      if (code === 0 && !signal) resolve({ code, stdout, stderr });
      else reject(new Error(`${path.basename(cmd)} ${args.join(' ')} ended with ${signal ?? `status ${code}`}:\n${stderr}${stdout}`));
    });
    child.stdin.end(input ?? '');
  });
}

/** The process's environment without the EXECTIME_ variables (the test's own settings). */
export function environmentWithoutExectimeVariables() {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('EXECTIME_')));
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A port of 127.0.0.1 free a moment ago. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// --- PostgreSQL and Redis -----------------------------------------------------------------

function psqlBin() {
  if (process.env.EXECTIME_PG_BIN) return path.join(process.env.EXECTIME_PG_BIN, 'psql');
  const base = '/usr/lib/postgresql';
  const versions = fs.existsSync(base) ? fs.readdirSync(base).filter((v) => fs.existsSync(path.join(base, v, 'bin/psql'))) : [];
  versions.sort((a, b) => Number(b) - Number(a));
  return versions.length ? path.join(base, versions[0], 'bin/psql') : 'psql';
}
const PSQL = psqlBin();
const PSQL_ARGS = ['-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1'];

/** Runs SQL (several statements allowed, each in its own transaction); answers psql's output. */
export async function psql(url, sql) {
  const { stdout } = await run(PSQL, [...PSQL_ARGS, '-d', url, '-f', '-'], { input: sql });
  return stdout.trim();
}

/** The admin URL pointed at another database and/or user (the password stays). */
export function pgUrl(admin, { db, user } = {}) {
  const u = new URL(admin);
  if (db !== undefined) u.pathname = '/' + db;
  if (user !== undefined) u.username = user;
  return u.href;
}

/** A psql session that has run `takeSql` and runs `releaseSql` at release(). */
export async function holdSession(url, takeSql, releaseSql) {
  const child = spawn(PSQL, [...PSQL_ARGS, '-d', url], { stdio: ['pipe', 'pipe', 'pipe'] });
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
    exited.then((code) => reject(new Error(`psql (${takeSql}) ended with status ${code}: ${err}`)));
    child.stdin.write(`${takeSql}\n\\echo locked\n`);
  });
  return {
    async release() {
      child.stdin.end(`${releaseSql}\n\\q\n`);
      await exited;
    },
  };
}

export function redisCli(redisUrl, ...args) {
  return run('redis-cli', ['-u', redisUrl, ...args], { timeoutMs: 10_000 });
}

// --- the test's environment ---------------------------------------------------------------

/**
 * The test servers and binaries as the environment names them; the binaries default to
 * root's build-test/ (what deploy/local/test builds). Read, not checked: see
 * checkTestEnvironment().
 */
export function testEnvironment(root) {
  return {
    adminUrl: process.env.EXECTIME_TEST_ADMIN_DATABASE_URL ?? '',
    redisUrl: process.env.EXECTIME_TEST_REDIS_URL ?? '',
    agentBin: path.resolve(process.env.EXECTIME_AGENT_BIN || path.join(root, 'build-test/agent/exectime-agent')),
    emitBin: path.resolve(process.env.EXECTIME_EMIT_BIN || path.join(root, 'build-test/common/exectime-emit')),
  };
}

/**
 * Throws unless both server variables are set and the agent, the emitter and each of
 * `moreExecutables` ([variable, file, how to get it]) are executables.
 */
export function checkTestEnvironment(env, moreExecutables = []) {
  const missing = ['EXECTIME_TEST_ADMIN_DATABASE_URL', 'EXECTIME_TEST_REDIS_URL'].filter((n) => !process.env[n]);
  if (missing.length) {
    throw new Error(
      `${missing.join(' and ')} not set: this test needs real servers. Run deploy/local/test, or set ` +
        'EXECTIME_TEST_ADMIN_DATABASE_URL (a PostgreSQL superuser URL, e.g. postgresql://postgres@127.0.0.1:55442/postgres) ' +
        'and EXECTIME_TEST_REDIS_URL (e.g. redis://127.0.0.1:56389).',
    );
  }
  if (!/^postgres(ql)?:\/\//.test(env.adminUrl)) throw new Error(`EXECTIME_TEST_ADMIN_DATABASE_URL is not a postgresql:// URL: ${env.adminUrl}`);
  const buildHint = 'build build-test/ first, e.g. deploy/local/test';
  for (const [name, file, hint] of [['EXECTIME_AGENT_BIN', env.agentBin, buildHint], ['EXECTIME_EMIT_BIN', env.emitBin, buildHint], ...moreExecutables]) {
    try {
      fs.accessSync(file, fs.constants.X_OK);
    } catch {
      throw new Error(`${name}: ${file} is not an executable (${hint})`);
    }
  }
}

/** Throws unless PostgreSQL answers a query and Redis a PING. */
export async function checkTestServers(env) {
  try {
    await psql(pgUrl(env.adminUrl, { db: 'postgres' }), 'SELECT 1');
  } catch (error) {
    throw new Error(`PostgreSQL at EXECTIME_TEST_ADMIN_DATABASE_URL (${env.adminUrl}) does not answer: ${error.message}`);
  }
  const pong = await redisCli(env.redisUrl, 'PING').catch((error) => ({ stdout: error.message }));
  if (pong.stdout.trim() !== 'PONG') {
    throw new Error(`Redis at EXECTIME_TEST_REDIS_URL (${env.redisUrl}) does not answer PING: ${pong.stdout.trim()}`);
  }
}

// --- one agent with its database and stream -----------------------------------------------

/**
 * A harness for one agent: `tag` (lower-case letters and digits) names what it makes
 * (database exectime_TAG_PID, stream exectime-TAG:…, group exectime-TAG, TAG-agent);
 * waitMs is waitFor()'s default patience. Makes the temporary directory at once.
 */
export function createAgentHarness({ tag, adminUrl, redisUrl, agentBin, waitMs }) {
  if (!/^[a-z0-9]+$/.test(tag)) throw new Error(`createAgentHarness: tag ${JSON.stringify(tag)} is not lower-case letters and digits`);
  return new AgentHarness({ tag, adminUrl, redisUrl, agentBin, waitMs });
}

class AgentHarness {
  tmpDir; // removed by cleanUp()
  dbName = null; // set once created: cleanUp() drops it
  dbAdminUrl = null; // the test's database as the admin
  stream = null; // set once the agent is started: cleanUp() deletes it and its :dead stream
  port = null;
  base = null; // http://127.0.0.1:PORT
  #config;
  #agentLink;
  #setupLock = null; // psql session holding the set-up lock, while it is held
  #agent = null; // {child, exited: Promise<{code, signal}>, logPath}

  constructor(config) {
    this.#config = config;
    // The agent runs under a name of its own (as in harness.c): someone's
    // `pkill exectime-agent` on a shared machine does not stop it.
    this.tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), `exectime-${config.tag}-`));
    this.#agentLink = path.join(this.tmpDir, `${config.tag}-agent`);
    fs.symlinkSync(config.agentBin, this.#agentLink);
    // A last resort should the process end without the clean-up (an uncaught error, a signal).
    process.on('exit', () => {
      if (this.#agent && this.#agent.child.exitCode === null) this.#agent.child.kill('SIGKILL');
    });
  }

  /**
   * Creates and migrates the test's database under the set-up lock and lets the role
   * exectime_agent use it; answers the agent's URL of it.
   */
  async createDatabase() {
    const { tag, adminUrl } = this.#config;
    const db = `exectime_${tag}_${process.pid}`;
    const maint = pgUrl(adminUrl, { db: 'postgres' });
    this.dbAdminUrl = pgUrl(adminUrl, { db });
    const agentUrl = pgUrl(adminUrl, { db, user: 'exectime_agent' }); // keeps the admin's password
    this.#setupLock = await holdSession(maint, `SELECT pg_advisory_lock(${SETUP_LOCK_KEY});`, `SELECT pg_advisory_unlock(${SETUP_LOCK_KEY});`);
    try {
      await psql(maint, `DROP DATABASE IF EXISTS ${db} WITH (FORCE);\nCREATE DATABASE ${db};`);
      this.dbName = db;
      await run(this.#agentLink, ['migrate', '--database-url', this.dbAdminUrl], { timeoutMs: 120_000 });
      let sql =
        "SET client_min_messages = warning;\nDO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'exectime_agent') THEN " +
        'CREATE ROLE exectime_agent LOGIN; END IF; END $$;\nGRANT exectime_writer, exectime_reader TO exectime_agent;\n';
      const password = decodeURIComponent(new URL(adminUrl).password);
      if (password) {
        // The servers may want a password: give the agent's role the admin's (as harness.c does).
        sql += `ALTER ROLE exectime_agent PASSWORD '${password.replace(/'/g, "''")}';\n`;
      }
      await psql(maint, sql);
    } finally {
      const lock = this.#setupLock;
      this.#setupLock = null;
      await lock.release();
    }
    return agentUrl;
  }

  /**
   * Starts `exectime-agent run` on a free port and a new stream, with the database URL,
   * the JWT secret and the test's own `env` (EXECTIME_ variables); its output goes to
   * logPath. Resolves once GET /readyz answers 200.
   */
  async startAgent({ databaseUrl, secret, env = {}, logPath = path.join(this.tmpDir, 'agent.log') }) {
    const { tag, redisUrl } = this.#config;
    this.port = await freePort();
    this.base = `http://127.0.0.1:${this.port}`;
    this.stream = `exectime-${tag}:${process.pid}:${Date.now().toString(36)}:events`;
    const childEnv = {
      ...environmentWithoutExectimeVariables(),
      EXECTIME_DATABASE_URL: databaseUrl,
      EXECTIME_REDIS_URL: redisUrl,
      EXECTIME_STREAM: this.stream,
      EXECTIME_GROUP: `exectime-${tag}`,
      EXECTIME_LISTEN: `127.0.0.1:${this.port}`,
      EXECTIME_JWT_SECRET: secret,
      EXECTIME_FLUSH_MS: '100',
      EXECTIME_LOG_FORMAT: 'text',
      ...env,
    };
    const log = fs.openSync(logPath, 'w');
    const child = spawn(this.#agentLink, ['run'], { env: childEnv, stdio: ['ignore', log, log] });
    fs.closeSync(log);
    const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
    child.on('error', () => {}); // surfaces as the exit above
    this.#agent = { child, exited, logPath };
    await this.waitFor('the agent to answer GET /readyz', async () => (await fetch(`${this.base}/readyz`)).ok);
  }

  agentLogTail(lines = 60) {
    try {
      return fs.readFileSync(this.#agent.logPath, 'utf8').split('\n').slice(-lines).join('\n');
    } catch {
      return '(no agent log)';
    }
  }

  /**
   * Polls `probe` until it answers a truthy value (and answers that); fails with `what`
   * after timeoutMs, or at once with the agent's log when the agent has exited.
   */
  async waitFor(what, probe, timeoutMs = this.#config.waitMs, everyMs = 200) {
    const deadline = Date.now() + timeoutMs;
    let last;
    for (;;) {
      if (this.#agent && this.#agent.child.exitCode !== null) {
        throw new Error(`the agent exited (status ${this.#agent.child.exitCode}) while waiting for ${what}:\n${this.agentLogTail()}`);
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

  /* SIGTERM, then SIGKILL after AGENT_STOP_MS; fails unless it exited 0 in time. */
  async #stopAgent() {
    const { child, exited } = this.#agent;
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    let timer;
    const timeout = new Promise((resolve) => (timer = setTimeout(resolve, AGENT_STOP_MS, null)));
    let result = await Promise.race([exited, timeout]);
    clearTimeout(timer);
    if (!result) {
      child.kill('SIGKILL');
      result = await exited;
      throw new Error(`no exit within ${AGENT_STOP_MS / 1000} s of SIGTERM:\n${this.agentLogTail()}`);
    }
    if (result.code !== 0) throw new Error(`exited with ${result.signal ?? `status ${result.code}`} after SIGTERM:\n${this.agentLogTail()}`);
  }

  /**
   * Undoes the test's own steps first (`before`: [what, async fn] pairs, in order), then
   * what this harness made: the set-up lock, the agent (it must exit 0 on SIGTERM), the
   * database, the stream, the temporary directory. Every step is tried; throws one Error
   * naming those that failed. logTimings prints how long each step took (stderr).
   */
  async cleanUp({ before = [], logTimings = false } = {}) {
    const { adminUrl, redisUrl } = this.#config;
    const steps = [...before];
    if (this.#setupLock) steps.push(['releasing the set-up lock', () => this.#setupLock.release()]);
    if (this.#agent) steps.push(['stopping the agent', () => this.#stopAgent()]);
    if (this.dbName) {
      steps.push([`dropping database ${this.dbName}`, () => psql(pgUrl(adminUrl, { db: 'postgres' }), `DROP DATABASE IF EXISTS ${this.dbName} WITH (FORCE);`)]);
    }
    if (this.stream) steps.push([`deleting Redis stream ${this.stream}`, () => redisCli(redisUrl, 'DEL', this.stream, `${this.stream}:dead`)]);
    const problems = [];
    for (const [what, fn] of steps) {
      const t0 = Date.now();
      try {
        await fn();
        if (logTimings) console.error(`clean-up: ${what} took ${Date.now() - t0} ms`);
      } catch (error) {
        problems.push(`${what}: ${error.message}`);
      }
    }
    fs.rmSync(this.tmpDir, { recursive: true, force: true });
    if (problems.length) throw new Error(`clean-up failed:\n${problems.join('\n')}`);
  }
}
