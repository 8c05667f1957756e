// End-to-end test of the dashboard: a real agent (build-test/), real PostgreSQL and Redis,
// the built widget (dist/) in Debian's Chromium driven by playwright-core.
//
//   cd ui-widget && npm run build && npm run test:e2e
//
// Needs (deploy/local/test sets them):
//   EXECTIME_TEST_ADMIN_DATABASE_URL  PostgreSQL superuser URL, e.g. postgresql://postgres@127.0.0.1:55442/postgres
//   EXECTIME_TEST_REDIS_URL           redis://127.0.0.1:56389
// Optional:
//   EXECTIME_AGENT_BIN   (default ../build-test/agent/exectime-agent)
//   EXECTIME_EMIT_BIN    (default ../build-test/common/exectime-emit)
//   EXECTIME_CHROMIUM    (default /usr/bin/chromium)
//   EXECTIME_E2E_UPDATE_SCREENSHOT=1  also copy the light screenshot to docs/dashboard.png
//                                     (done anyway when that file is missing)
//   EXECTIME_E2E_DEBUG=1  a screenshot of every view checked (e2e-artifacts/debug-*.png)
//
// It creates its own database and Redis stream, starts the agent on a free port with the
// dashboard, publishes runs with exectime-emit, and checks that what the page shows
// (cards, workflow table) is what the API answers for the same question, formatted by
// src/format.js; the regressions list (one workflow made slower than in the day before)
// and its marked row; then range presets, the status filter, drilling into a workflow, a
// rejected token and both themes (screenshots in e2e-artifacts/). Last, embedding from
// other origins: a page served by this script on another port, listed in the agent's
// EXECTIME_CORS_ORIGINS, loads the widget module from the agent and shows its figures,
// revalidates with the ETag and waits as long as a 503's Retry-After asks; a page of an
// origin not listed is refused the module. Everything it made is removed at the end,
// also when a check fails (the database, stream and agent by tests/js/agent_harness.mjs).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import {
  NONE,
  failureRate,
  formatChange,
  formatCount,
  formatDuration,
  formatPercent,
  formatPointChange,
} from '../src/format.js';
import {
  checkTestEnvironment,
  checkTestServers,
  createAgentHarness,
  holdSession,
  psql,
  run,
  sleep,
  testEnvironment,
} from '../../tests/js/agent_harness.mjs';

const WIDGET_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ROOT = path.resolve(WIDGET_DIR, '..');
const DIST = path.join(WIDGET_DIR, 'dist');
const ARTIFACTS = path.join(WIDGET_DIR, 'e2e-artifacts');
const DOCS_SCREENSHOT = path.join(ROOT, 'docs', 'dashboard.png');

const STATS_PATH = '/api/v1/statistics/execution-times';
const REGRESSIONS_PATH = '/api/v1/statistics/regressions';
const TENANT = 'tenant-1'; // exectime-emit --tenants 1
const SPREAD_RUNS = 3000; // over the past 0.9 days
const RECENT_RUNS = 300; // finished now: the last hour has data
const TOTAL_RUNS = SPREAD_RUNS + RECENT_RUNS; // in the last 24 hours
/* Fast runs of one workflow about 30 hours ago: in the 24 hours before the default view,
 * so that workflow's p95 (50 ms or more, exectime-emit's medians) rose: a regression. */
const SLOWER_WORKFLOW = 'wf-1';
const EARLIER_RUNS = 60; // above the API's default min_runs (50)
const EARLIER_DURATION_MS = 10;
const ALL_RUNS = TOTAL_RUNS + EARLIER_RUNS;
const PRESET_MS = { '1h': 3_600_000, '24h': 86_400_000, '7d': 7 * 86_400_000, '30d': 30 * 86_400_000 };
const VIEW_TIMEOUT_MS = 15_000;
/* An API query waiting this long (for a lock the test holds) is answered 503. */
const API_STATEMENT_TIMEOUT_MS = 2000;
const RETRY_AFTER_S = 5; // what agent/stats_response.c sends with a 503
const DEBUG = process.env.EXECTIME_E2E_DEBUG === '1';
const WAIT_MS = 30_000; // for the agent's readiness and the waits that name no time of their own

const env = {
  ...testEnvironment(ROOT),
  chromium: process.env.EXECTIME_CHROMIUM || '/usr/bin/chromium',
};

let harness = null; // the agent, its database and stream (tests/js/agent_harness.mjs)

// What set-up made besides, for the clean-up (each part undone only if it was done).
const made = {
  browser: null,
  embedders: [], // http.Server of the pages of other origins
  tableLock: null, // psql session locking the rollups (the 503 check)
};

const ctx = {}; // secret, token, listedOrigin, unlistedOrigin

// --- tokens and the API -----------------------------------------------------------------

function signJwt(claims, secret) {
  const part = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const unsigned = `${part({ alg: 'HS256', typ: 'JWT' })}.${part(claims)}`;
  return `${unsigned}.${createHmac('sha256', secret).update(unsigned).digest('base64url')}`;
}

function tokenFor(secret, { expIn = 3600 } = {}) {
  const now = Math.floor(Date.now() / 1000);
  return signJwt({ sub: 'e2e', role: 'authenticated', tenant_ids: [TENANT], iat: now, exp: now + expIn }, secret);
}

async function api(params) {
  const url = new URL(STATS_PATH, harness.base);
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null) url.searchParams.set(k, String(v));
  const res = await fetch(url, { headers: { Authorization: `Bearer ${ctx.token}` } });
  const body = await res.text();
  assert.equal(res.status, 200, `GET ${url} answered ${res.status}: ${body}`);
  return JSON.parse(body);
}

const apiCache = new Map();

/**
 * The API's answers to the question behind a widget request (its range, status and
 * workflow), asked by this script in its own words: the summary with the per-workflow
 * table, and the previous period of the same length.
 */
async function expectedFor(question) {
  const key = JSON.stringify(question);
  if (apiCache.has(key)) return apiCache.get(key);
  const common = {
    tenant_id: TENANT,
    workflow_id: question.workflowId,
    status: question.status,
    percentiles: '50,95,99',
  };
  const start = Date.parse(question.start);
  const end = Date.parse(question.end);
  const iso = (ms) => new Date(ms).toISOString().replace('.000Z', 'Z');
  const [current, previous] = await Promise.all([
    api({
      ...common,
      start_date: question.start,
      end_date: question.end,
      measure: 'run,queue_wait',
      ...(question.workflowId ? {} : { group_by: 'workflow', sort: 'p95', limit: 200 }),
    }),
    api({ ...common, start_date: iso(start - (end - start)), end_date: question.start }),
  ]);
  const value = { current, previous };
  apiCache.set(key, value);
  return value;
}

/* The cards as the widget should show them, from the API's numbers and src/format.js. */
function expectedCards(cur, prev) {
  const rate = failureRate(cur.failed, cur.count);
  const prevRate = failureRate(prev.failed, prev.count);
  const cards = {
    runs: { value: formatCount(cur.count), previous: formatCount(prev.count), change: formatChange(cur.count, prev.count) },
    'failure-rate': {
      value: formatPercent(rate),
      detail: `${formatCount(cur.failed)} failed`,
      previous: formatPercent(prevRate),
      change: formatPointChange(rate, prevRate),
    },
  };
  const durations = {
    avg: (o) => o.avg_ms,
    median: (o) => o.median_ms,
    p95: (o) => o.percentiles?.p95 ?? null,
    p99: (o) => o.percentiles?.p99 ?? null,
    min: (o) => o.min_ms,
    max: (o) => o.max_ms,
  };
  for (const [key, pick] of Object.entries(durations)) {
    cards[key] = { value: formatDuration(pick(cur)), previous: formatDuration(pick(prev)), change: formatChange(pick(cur), pick(prev)) };
  }
  // Queue wait beside run time, when the range has runs with queue data; the previous
  // period's summary is asked without it, so there is nothing to compare with.
  const queue = cur.queue_wait;
  if (queue?.count > 0) {
    const without = queue.runs_without_queue_data;
    cards['queue-median'] = {
      value: formatDuration(queue.median_ms),
      detail: without > 0 ? `${formatCount(without)} run${without === 1 ? '' : 's'} without queue data` : null,
      previous: NONE,
      change: NONE,
    };
    cards['queue-p95'] = { value: formatDuration(queue.percentiles?.p95 ?? null), previous: NONE, change: NONE };
  }
  return cards;
}

function expectedRows(workflows) {
  return workflows.map((w) => [
    w.workflow_id,
    formatCount(w.count),
    formatPercent(failureRate(w.failed, w.count)),
    formatDuration(w.avg_ms),
    formatDuration(w.median_ms ?? w.percentiles?.p50),
    formatDuration(w.percentiles?.p95),
    formatDuration(w.percentiles?.p99),
    formatDuration(w.max_ms),
  ]);
}

// --- the page -------------------------------------------------------------------------------

/** What the widget shows, read from its shadow root in one go. */
function readWidget(page) {
  return page.evaluate(() => {
    const host = document.querySelector('exectime-stats');
    const root = host?.shadowRoot?.querySelector('.exectime');
    if (!root) return null;
    const text = (el) => (el ? el.textContent.trim().replace(/[ \t\n]+/g, ' ') : null);
    const cards = {};
    for (const card of root.querySelectorAll('.card')) {
      const change = card.querySelector('.change');
      const bare = change.cloneNode(true);
      bare.querySelectorAll('.visually-hidden, .arrow, .vs').forEach((e) => e.remove());
      cards[card.dataset.stat] = {
        label: text(card.querySelector('dt')),
        value: card.querySelector('.value').textContent.trim(),
        detail: card.querySelector('.detail')?.textContent.trim() ?? null,
        previous: change.getAttribute('title').replace(/^.*?: /, ''),
        change: bare.textContent.trim(),
      };
    }
    // A cell's figure, or the workflow's name without the regression mark beside it.
    const rows = [...root.querySelectorAll('section.workflows tbody tr')].map((tr) =>
      [...tr.children].map((c) => (c.querySelector('button.link') ?? c).textContent.trim()),
    );
    // Axis labels of the histogram (SVG) that stick out of it, cut off.
    const clipped = [];
    for (const svg of root.querySelectorAll('.plot svg')) {
      const width = svg.width.baseVal.value;
      for (const t of svg.querySelectorAll('text')) {
        const box = t.getBBox();
        if (box.x < -0.5 || box.x + box.width > width + 0.5) clipped.push(t.textContent);
      }
    }
    return {
      busy: root.getAttribute('aria-busy') === 'true',
      clipped,
      scheme: root.dataset.scheme,
      background: getComputedStyle(root).backgroundColor,
      pressed: [...root.querySelectorAll('.segmented button[aria-pressed="true"]')].map((b) => b.firstChild.textContent.trim()),
      status: root.querySelector('select')?.value ?? null,
      scope: text(root.querySelector('.title .crumb')),
      back: !!root.querySelector('.title button.back'),
      meta: text(root.querySelector('.meta')),
      panel: text(root.querySelector('.panel h3')),
      panelText: text(root.querySelector('.panel')),
      hasTable: !!root.querySelector('section.workflows'),
      cards,
      rows,
    };
  });
}

/** Records the statistics requests a page makes: the last "current", "previous" and
 * "regressions" URL. */
function trackRequests(page) {
  const seen = { current: null, previous: null, regressions: null };
  page.on('request', (req) => {
    const url = new URL(req.url());
    if (url.pathname === REGRESSIONS_PATH) seen.regressions = url;
    if (url.pathname !== STATS_PATH) return;
    // The widget asks for the series (interval) only for the range shown.
    seen[url.searchParams.has('interval') ? 'current' : 'previous'] = url;
  });
  return seen;
}

function questionOf(url) {
  const p = url.searchParams;
  return {
    start: p.get('start_date'),
    end: p.get('end_date'),
    status: p.get('status') ?? 'all',
    workflowId: p.get('workflow_id') ?? null,
  };
}

/**
 * Waits until the widget shows, for the view described by `want` ({preset, status,
 * workflowId}), exactly what the API answers for the range the widget asked for. Retries
 * while the page is still loading or refreshing; fails with the last difference.
 * @returns the question, the API's answer and what was shown
 */
async function checkView(page, seen, want) {
  const deadline = Date.now() + VIEW_TIMEOUT_MS;
  let problem = 'nothing read yet';
  for (;;) {
    const before = seen.current?.href;
    const shown = await readWidget(page);
    const url = seen.current;
    if (shown && !shown.busy && url && url.href === before && seen.previous) {
      problem = await compareView(shown, url, seen.previous, want);
      if (!problem) {
        if (DEBUG) await page.screenshot({ path: path.join(ARTIFACTS, `debug-${Object.values(want).join('-')}.png`) });
        return { question: questionOf(url), shown, ...(await expectedFor(questionOf(url))) };
      }
    } else {
      problem = shown ? (shown.busy ? 'still loading' : 'no statistics request seen yet') : 'no widget on the page';
    }
    if (Date.now() > deadline) {
      const msg = typeof problem === 'string' ? problem : JSON.stringify(problem, null, 2);
      const shot = path.join(ARTIFACTS, `failed-${Object.values(want).join('-')}.png`);
      await page.screenshot({ path: shot }).catch(() => {});
      throw new Error(`the widget never showed the API's figures for ${JSON.stringify(want)} (page: ${shot}): ${msg}`);
    }
    await sleep(150);
  }
}

/* Null when the widget shows what the API says for `want`, else what differs. */
async function compareView(shown, url, previousUrl, want) {
  const q = questionOf(url);
  const length = PRESET_MS[want.preset];
  // The question the widget asked: the view's range, minute-aligned, ending at the next
  // whole minute; the previous period right before it.
  const start = Date.parse(q.start);
  const end = Date.parse(q.end);
  if (end - start !== length) return `asked for ${q.start}/${q.end}, not ${want.preset}`;
  if (start % 60_000 || end % 60_000) return `range ${q.start}/${q.end} is not minute-aligned`;
  if (end < Date.now() - 120_000 || end > Date.now() + 61_000) return `range ends at ${q.end}, not about now`;
  if (q.status !== (want.status ?? 'all')) return `asked for status ${q.status}`;
  if (q.workflowId !== (want.workflowId ?? null)) return `asked for workflow ${q.workflowId}`;
  if (url.searchParams.get('tenant_id') !== TENANT) return `asked for tenant ${url.searchParams.get('tenant_id')}`;
  const pq = questionOf(previousUrl);
  if (pq.end !== q.start || Date.parse(pq.end) - Date.parse(pq.start) !== length) {
    return `previous period ${pq.start}/${pq.end} does not end where ${q.start}/${q.end} starts`;
  }
  if (shown.pressed.join() !== want.preset) return `pressed preset ${shown.pressed.join() || 'none'}`;
  if (shown.status !== (want.status ?? 'all')) return `status select shows ${shown.status}`;

  const { current, previous } = await expectedFor(q);
  const diff = {};
  const cards = expectedCards(current, previous);
  if (current.count === 0) {
    if (shown.panel !== 'No runs in this range') diff.panel = { shown: shown.panel, want: 'No runs in this range' };
  } else {
    for (const [key, card] of Object.entries(cards)) {
      const s = shown.cards[key];
      for (const field of Object.keys(card)) {
        if (!s || s[field] !== card[field]) diff[`${key}.${field}`] = { shown: s?.[field], api: card[field] };
      }
    }
  }
  if (shown.clipped.length) diff.clippedLabels = shown.clipped;
  if (want.workflowId) {
    if (shown.hasTable) diff.table = 'a workflow table is shown inside one workflow';
    if (shown.scope !== `Workflow ${want.workflowId}`) diff.scope = shown.scope;
    if (!shown.back) diff.back = 'no back button';
  } else {
    const rows = expectedRows(current.workflows ?? []);
    if (JSON.stringify(shown.rows) !== JSON.stringify(rows)) diff.rows = { shown: shown.rows, api: rows };
    if (shown.scope !== 'All workflows') diff.scope = shown.scope;
  }
  return Object.keys(diff).length ? { url: url.href, diff } : null;
}

// --- set-up and clean-up ----------------------------------------------------------------------

function checkEnvironment() {
  checkTestEnvironment(env, [['EXECTIME_CHROMIUM', env.chromium, 'apt-get install chromium']]);
  for (const file of ['dashboard.html', 'exectime-widget.js']) {
    if (!fs.existsSync(path.join(DIST, file))) throw new Error(`${path.join(DIST, file)} is missing: run npm run build first`);
  }
}

/*
 * A page of another origin embedding the widget as the README shows: the module from the
 * agent, the element pointed at the agent. It refreshes only when asked (refresh-seconds
 * 0), so the checks decide when requests go out; the script element's error event (a
 * refused module) is kept in window.widgetLoadError.
 */
function embedderPage() {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>embedder</title><link rel="icon" href="data:,">
<script type="module" src="${harness.base}/widget/exectime-widget.js" onerror="window.widgetLoadError = true"></script>
</head><body>
<exectime-stats api-base="${harness.base}" token="${ctx.token}" tenant-id="${TENANT}" refresh-seconds="0"></exectime-stats>
</body></html>
`;
}

/** Serves embedderPage() at / on a free port of 127.0.0.1; answers its origin. */
async function startEmbedder() {
  const server = http.createServer((req, res) => {
    if (req.url !== '/') {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' }).end(embedderPage());
  });
  made.embedders.push(server);
  await new Promise((resolve, reject) => {
    server.on('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  return `http://127.0.0.1:${server.address().port}`;
}

async function publish() {
  const connection = ['--redis-url', env.redisUrl, '--stream', harness.stream];
  const common = [...connection, '--rate', '0', '--tenants', '1', '--workflows', '8', '--batch', '100'];
  // Most of the spread runs carry enqueued_at, the recent ones none: the queue-wait cards
  // show, with the runs without queue data counted.
  await run(env.emitBin, [...common, '--count', String(SPREAD_RUNS), '--seed', '7', '--spread-days', '0.9', '--queue-share', '0.7']);
  await run(env.emitBin, [...common, '--count', String(RECENT_RUNS), '--seed', '8']);
  const earlier = Date.now() - 30 * 3_600_000;
  for (let i = 0; i < EARLIER_RUNS; i++) {
    const finishedAt = new Date(earlier + i * 1000).toISOString();
    await run(env.emitBin, [
      ...connection,
      ...['--tenant', TENANT, '--workflow', SLOWER_WORKFLOW, '--run', `earlier-${i}`],
      ...['--duration-ms', String(EARLIER_DURATION_MS), '--finished-at', finishedAt],
    ]);
  }
  let raw = 0;
  await harness.waitFor(
    `${ALL_RUNS} raw rows in PostgreSQL`,
    async () => {
      raw = Number(await psql(harness.dbAdminUrl, 'SELECT count(*) FROM exectime.execution_time_statistics'));
      assert.ok(raw <= ALL_RUNS, `${raw} raw rows, more than the ${ALL_RUNS} sent`);
      return raw === ALL_RUNS;
    },
    30_000,
  ).catch((error) => {
    throw new Error(`${error.message} (have ${raw})`);
  });
  // The rollups answer the API; they are written with the raw rows, but make sure.
  await harness.waitFor(`the API to count ${TOTAL_RUNS} runs`, async () => (await api({ tenant_id: TENANT })).count === TOTAL_RUNS, 10_000);
}

async function cleanUp() {
  if (!harness) return; // nothing was made
  const before = [];
  if (made.browser) before.push(['closing Chromium', () => made.browser.close()]);
  if (made.tableLock) before.push(['releasing the rollup lock', () => made.tableLock.release()]);
  for (const server of made.embedders) {
    before.push(['stopping an embedder page server', () => new Promise((resolve) => server.close(resolve))]);
  }
  await harness.cleanUp({ before, logTimings: DEBUG });
}

// --- the test ---------------------------------------------------------------------------------

let page;
let seen;
const pageErrors = [];

async function setUp() {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  harness = createAgentHarness({ tag: 'e2e', ...env, waitMs: WAIT_MS });
  const databaseUrl = await harness.createDatabase();
  // Two pages of other origins (other ports): the agent lists the first only.
  ctx.listedOrigin = await startEmbedder();
  ctx.unlistedOrigin = await startEmbedder();
  ctx.secret = randomBytes(32).toString('base64url'); // 43 characters
  await harness.startAgent({
    databaseUrl,
    secret: ctx.secret,
    env: {
      EXECTIME_UI_DIR: DIST,
      EXECTIME_CORS_ORIGINS: ctx.listedOrigin,
      EXECTIME_API_STATEMENT_TIMEOUT_MS: String(API_STATEMENT_TIMEOUT_MS),
    },
    logPath: path.join(ARTIFACTS, 'agent.log'),
  });
  ctx.token = tokenFor(ctx.secret);
  await publish();

  made.browser = await chromium.launch({
    executablePath: env.chromium,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  const context = await made.browser.newContext({ viewport: { width: 1280, height: 900 }, colorScheme: 'light', locale: 'en-US' });
  page = await context.newPage();
  page.on('pageerror', (error) => pageErrors.push(`uncaught: ${error.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') pageErrors.push(`console: ${msg.text()} (${msg.location().url})`);
  });
  page.on('response', (res) => {
    if (res.status() >= 400) pageErrors.push(`HTTP ${res.status()}: ${res.url()}`);
  });
  seen = trackRequests(page);
}

/* The checks, run in this order on one page (each builds on the view the last one left). */
const steps = [];
const step = (name, fn) => steps.push([name, fn]);

step('the dashboard page loads the widget with the token from the URL', async () => {
  const response = await page.goto(`${harness.base}/#token=${ctx.token}`);
  // Served under a strict policy (agent/static_assets.c, docs/security.md): the page works
  // only if its inline script's hash is listed; any violation is a console error here.
  const headers = response.headers();
  assert.match(headers['content-security-policy'] ?? '', /script-src 'self' 'sha256-[A-Za-z0-9+/=]+';/);
  assert.match(headers['content-security-policy'], /object-src 'none'; base-uri 'none';.*frame-ancestors 'self'/);
  assert.equal(headers['x-content-type-options'], 'nosniff');
  assert.equal(headers['referrer-policy'], 'no-referrer');
  // The page moves the token into sessionStorage and out of the address bar.
  assert.equal(new URL(page.url()).hash, '');
  await page.locator('exectime-stats .card[data-stat="runs"] .value').waitFor({ timeout: VIEW_TIMEOUT_MS });
  const tenantAttr = await page.locator('exectime-stats').getAttribute('tenant-id');
  assert.equal(tenantAttr, TENANT);
});

step('24h (the default): cards and workflow table equal the API', async () => {
  const { current, shown } = await checkView(page, seen, { preset: '24h' });
  assert.equal(current.count, TOTAL_RUNS);
  assert.equal(shown.cards.runs.value, formatCount(TOTAL_RUNS));
  assert.equal(shown.rows.length, 8);
  assert.match(shown.meta, /^Last 24 hours/);
  // Queue wait beside run time: the spread runs carry it, the recent ones do not.
  assert.ok(current.queue_wait.count > 0 && current.queue_wait.runs_without_queue_data >= RECENT_RUNS, JSON.stringify(current.queue_wait));
  assert.equal(shown.cards['queue-median'].detail, `${formatCount(current.queue_wait.runs_without_queue_data)} runs without queue data`);
});

step('the regressions list names the slower workflow, as the API does, and its row is marked', async () => {
  const list = page.locator(`exectime-stats section.regressions li[data-workflow="${SLOWER_WORKFLOW}"]`);
  await list.waitFor({ timeout: VIEW_TIMEOUT_MS });
  const current = seen.current;
  const asked = seen.regressions;
  assert.ok(asked, 'no regressions request seen');
  assert.equal(asked.searchParams.get('start_date'), current.searchParams.get('start_date'));
  assert.equal(asked.searchParams.get('end_date'), current.searchParams.get('end_date'));
  assert.equal(asked.searchParams.get('metric'), 'p95');
  const res = await fetch(new URL(asked.pathname + asked.search, harness.base), { headers: { Authorization: `Bearer ${ctx.token}` } });
  assert.equal(res.status, 200);
  const answer = await res.json();
  assert.deepEqual(
    answer.regressions.map((r) => r.workflow_id),
    [SLOWER_WORKFLOW],
  );
  const r = answer.regressions[0];
  assert.equal(r.previous_count, EARLIER_RUNS);
  assert.ok(Math.abs(r.previous - EARLIER_DURATION_MS) <= EARLIER_DURATION_MS * 0.01, `previous p95 ${r.previous} ms`);
  assert.ok(r.current > r.previous * 1.2 && r.confidence > 0.9, JSON.stringify(r));
  const shown = await page.evaluate(() => {
    const root = document.querySelector('exectime-stats').shadowRoot;
    const text = (el) => el.textContent.trim().replace(/\s+/g, ' ');
    return {
      items: [...root.querySelectorAll('section.regressions li')].map((li) => [li.dataset.workflow, text(li)]),
      marked: [...root.querySelectorAll('section.workflows tbody tr.regressed th button')].map(text),
      listAboveTable: !!(
        root.querySelector('section.regressions').compareDocumentPosition(root.querySelector('section.workflows')) & Node.DOCUMENT_POSITION_FOLLOWING
      ),
    };
  });
  assert.deepEqual(shown.items.map(([id]) => id), [SLOWER_WORKFLOW]);
  const item = shown.items[0][1].replace(/\u00a0/g, ' ');
  for (const part of [formatDuration(r.previous), formatDuration(r.current), `${formatCount(r.current_count)} runs`]) {
    assert.ok(item.includes(part.replace(/\u00a0/g, ' ')), `the list shows "${item}", without "${part}"`);
  }
  assert.deepEqual(shown.marked, [SLOWER_WORKFLOW]);
  assert.ok(shown.listAboveTable, 'the list is not above the workflow table');
});

/** Reads CSV as RFC 4180 says (quotes doubled, CRLF after every record) into arrays of fields. */
function readCsv(text) {
  const records = [];
  let i = 0;
  while (i < text.length) {
    const fields = [];
    for (;;) {
      let field = '';
      if (text[i] === '"') {
        let j = i + 1;
        for (;;) {
          assert.ok(j < text.length, 'an unclosed quote in the CSV');
          if (text[j] === '"' && text[j + 1] === '"') j += 2;
          else if (text[j] === '"') break;
          else j++;
        }
        field = text.slice(i + 1, j).replace(/""/g, '"');
        i = j + 1;
      } else {
        while (i < text.length && !',\r\n'.includes(text[i])) field += text[i++];
      }
      fields.push(field);
      if (text[i] === ',') {
        i++;
        continue;
      }
      assert.equal(text.slice(i, i + 2), '\r\n', `a CSV record not ended by CRLF at ${i}`);
      i += 2;
      break;
    }
    records.push(fields);
  }
  return records;
}

/** Clicks the widget's "Download CSV" button of `kind` and returns the file's name and records. */
async function downloadCsvOf(kind) {
  const [file] = await Promise.all([
    page.waitForEvent('download', { timeout: VIEW_TIMEOUT_MS }),
    page.locator(`exectime-stats button[data-download="${kind}"]`).click(),
  ]);
  const name = file.suggestedFilename();
  const records = readCsv(fs.readFileSync(await file.path(), 'utf8'));
  await file.delete();
  return { name, records };
}

step('"Download CSV": the workflow table and the series as files holding the API\'s rows', async () => {
  await checkView(page, seen, { preset: '24h' });
  const stamp = '(\\d{4})(\\d{2})(\\d{2})T(\\d{2})(\\d{2})Z';
  const cell = (v) => (v === null || v === undefined ? '' : String(v));
  for (const kind of ['workflows', 'series']) {
    const { name, records } = await downloadCsvOf(kind);
    // The file names the tenant, what it holds and the range; the API, asked the widget's
    // question for that range, answers the same rows.
    const m = name.match(new RegExp(`^exectime-${TENANT}-${kind}-${stamp}-${stamp}\\.csv$`));
    assert.ok(m, `file name ${name}`);
    const iso = (p) => `${p[0]}-${p[1]}-${p[2]}T${p[3]}:${p[4]}:00Z`;
    const params = Object.fromEntries(seen.current.searchParams);
    const answer = await api({ ...params, start_date: iso(m.slice(1, 6)), end_date: iso(m.slice(6, 11)) });
    const keys = Object.keys(answer.percentiles);
    const stats = kind === 'workflows' ? ['count', 'failed', 'avg_ms', 'median_ms', 'min_ms', 'max_ms'] : ['count', 'failed', 'avg_ms', 'min_ms', 'max_ms'];
    const first = kind === 'workflows' ? ['tenant_id', 'workflow_id'] : ['tenant_id', 'workflow_id', 'bucket_start'];
    assert.deepEqual(records[0], [...first, ...stats, ...keys]);
    const rows = kind === 'workflows' ? answer.workflows : answer.series;
    assert.ok(kind === 'workflows' ? rows.length === 8 : rows.length > 0, `${kind}: ${rows.length} rows`);
    assert.equal(records.length, 1 + rows.length, `${kind}: ${records.length - 1} rows, the API has ${rows.length}`);
    rows.forEach((row, i) => {
      const lead = kind === 'workflows' ? [TENANT, row.workflow_id] : [TENANT, '', row.bucket_start];
      const want = [...lead, ...stats.map((k) => cell(row[k])), ...keys.map((k) => cell(row.percentiles[k]))];
      assert.deepEqual(records[i + 1], want, `${kind} row ${i + 1}`);
      stats.forEach((k, c) => assert.equal(records[i + 1][lead.length + c] === '' ? null : Number(records[i + 1][lead.length + c]), row[k] ?? null));
    });
  }
});

step('themes: light and dark follow the system, the theme attribute overrides; screenshots', async () => {
  await page.locator('exectime-stats .plot canvas').first().waitFor();
  await page.locator('exectime-stats svg rect.bar').first().waitFor();
  let shown = await readWidget(page);
  assert.equal(shown.scheme, 'light');
  assert.equal(shown.background, 'rgb(255, 255, 255)');
  const light = path.join(ARTIFACTS, 'dashboard-light.png');
  await page.screenshot({ path: light });

  const scheme = (want) =>
    page.waitForFunction((w) => document.querySelector('exectime-stats').shadowRoot.querySelector('.exectime').dataset.scheme === w, want, {
      timeout: 5000,
    });
  const setTheme = (value) => page.locator('exectime-stats').evaluate((el, v) => (v ? el.setAttribute('theme', v) : el.removeAttribute('theme')), value);

  await page.emulateMedia({ colorScheme: 'dark' });
  await scheme('dark');
  shown = await readWidget(page);
  assert.equal(shown.background, 'rgb(15, 23, 42)');
  await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-dark.png') });

  // theme="light" wins over a dark system; theme="dark" over a light one.
  await setTheme('light');
  await scheme('light');
  await page.emulateMedia({ colorScheme: 'light' });
  await setTheme('dark');
  await scheme('dark');
  assert.equal((await readWidget(page)).background, 'rgb(15, 23, 42)');
  await setTheme(null);
  await scheme('light');

  const size = fs.statSync(light).size;
  assert.ok(size < 300_000, `the light screenshot is ${size} bytes, over 300 kB`);
  if (process.env.EXECTIME_E2E_UPDATE_SCREENSHOT === '1' || !fs.existsSync(DOCS_SCREENSHOT)) {
    fs.copyFileSync(light, DOCS_SCREENSHOT);
  }
});

step('range presets 1h and 7d: the cards follow the API', async () => {
  const oneHour = page.getByRole('button', { name: '1h (last hour)' });
  await oneHour.click();
  const hour = await checkView(page, seen, { preset: '1h' });
  // Under the mouse, the pressed preset keeps the accent (its text is the accent's foreground).
  await oneHour.hover();
  const colors = await oneHour.evaluate((b) => ({ bg: getComputedStyle(b).backgroundColor, fg: getComputedStyle(b).color }));
  assert.deepEqual(colors, { bg: 'rgb(29, 78, 216)', fg: 'rgb(255, 255, 255)' }, 'the pressed preset under the mouse');
  assert.ok(hour.current.count >= RECENT_RUNS && hour.current.count < TOTAL_RUNS, `1h: ${hour.current.count} runs`);
  assert.ok(hour.previous.count > 0, 'the hour before has runs (spread over 0.9 days)');
  assert.notEqual(hour.shown.cards.runs.change, NONE);
  assert.match(hour.shown.meta, /^Last hour/);

  await page.getByRole('button', { name: '7d (last 7 days)' }).click();
  const week = await checkView(page, seen, { preset: '7d' });
  assert.equal(week.current.count, ALL_RUNS);
  assert.equal(week.previous.count, 0);
  assert.equal(week.shown.cards.runs.change, NONE); // nothing to compare with
});

step('status filter "failed": the cards and table follow the API', async () => {
  await page.getByRole('button', { name: '7d (last 7 days)' }).click(); // where the last step left it
  await page.locator('exectime-stats select').selectOption('failed');
  const failed = await checkView(page, seen, { preset: '7d', status: 'failed' });
  assert.ok(failed.current.count > 0 && failed.current.count < TOTAL_RUNS / 5, `${failed.current.count} failed runs`);
  assert.equal(failed.shown.cards['failure-rate'].value, '100%');
  assert.match(failed.shown.meta, /Failed/);

  await page.locator('exectime-stats select').selectOption('all');
  await checkView(page, seen, { preset: '7d' });
});

step('choosing a workflow row drills into it; back returns to all workflows', async () => {
  const first = (await checkView(page, seen, { preset: '7d' })).shown;
  const workflowId = first.rows[0][0];
  // A click on the row (not on the name's button).
  await page.locator('exectime-stats section.workflows tbody tr').first().locator('td').first().click();
  const one = await checkView(page, seen, { preset: '7d', workflowId });
  assert.equal(one.current.workflow_id, workflowId);
  const all = await api({ tenant_id: TENANT, start_date: one.question.start, end_date: one.question.end, group_by: 'workflow', limit: 200 });
  const row = all.workflows.find((w) => w.workflow_id === workflowId);
  assert.equal(one.current.count, row.count, 'the workflow view counts what its table row counted');

  await page.getByRole('button', { name: /All workflows/ }).click();
  const back = await checkView(page, seen, { preset: '7d' });
  assert.equal(back.shown.rows.length, 8);
});

step('no uncaught errors or console errors on the dashboard page', () => {
  assert.deepEqual(pageErrors, []);
});

step('a token with a wrong signature or an expired one shows "Token rejected"', async () => {
  const other = await page.context().browser().newContext({ viewport: { width: 1280, height: 900 } });
  try {
    const p = await other.newPage();
    const cases = [
      ['wrong signature', tokenFor(randomBytes(32).toString('base64url'))],
      ['expired', tokenFor(ctx.secret, { expIn: -3600 })],
    ];
    for (const [what, token] of cases) {
      const statuses = [];
      p.on('response', (r) => {
        if (new URL(r.url()).pathname === STATS_PATH) statuses.push(r.status());
      });
      await p.goto('about:blank');
      await p.goto(`${harness.base}/#token=${token}`);
      const panel = p.locator('exectime-stats .panel.danger');
      await panel.waitFor({ timeout: VIEW_TIMEOUT_MS });
      assert.equal(await panel.locator('h3').textContent(), 'Token rejected', what);
      assert.match(await panel.textContent(), /The API rejected the token/, what);
      assert.equal(await p.locator('exectime-stats .card').count(), 0, what);
      assert.ok(statuses.length > 0 && statuses.every((s) => s === 401), `${what}: statuses ${statuses}`);
      p.removeAllListeners('response');
    }
  } finally {
    await other.close();
  }
});

/*
 * How the page p fares with the widget module from the agent: {response} when it was
 * allowed, {failed: reason} when not (Chromium reports a response that fails the CORS
 * check as a failed request, not as a response).
 */
function bundleOutcome(p) {
  const url = `${harness.base}/widget/exectime-widget.js`;
  return new Promise((resolve) => {
    p.on('response', (res) => res.url() === url && resolve({ response: res }));
    p.on('requestfailed', (req) => req.url() === url && resolve({ failed: req.failure()?.errorText ?? 'failed' }));
  });
}

step('a page of a listed origin loads the widget module from the agent; it shows the API\'s figures', async () => {
  const context = await page.context().browser().newContext({ viewport: { width: 1280, height: 900 }, colorScheme: 'light' });
  try {
    const p = await context.newPage();
    const errors = [];
    p.on('pageerror', (error) => errors.push(`uncaught: ${error.message}`));
    p.on('console', (msg) => {
      if (msg.type() === 'error') errors.push(`console: ${msg.text()}`);
    });
    const embedSeen = trackRequests(p);
    const stats = []; // [status, If-None-Match sent] of each statistics answer
    p.on('response', async (res) => {
      if (new URL(res.url()).pathname === STATS_PATH) stats.push([res.status(), (await res.request().allHeaders())['if-none-match'] ?? null]);
    });
    const bundle = bundleOutcome(p);
    await p.goto(`${ctx.listedOrigin}/`);
    const { response, failed } = await bundle;
    assert.equal(failed, undefined, 'the browser refused the widget module');
    const headers = response.headers();
    assert.equal(headers['access-control-allow-origin'], ctx.listedOrigin);
    assert.match(headers.vary ?? '', /Origin/);

    const { current } = await checkView(p, embedSeen, { preset: '24h' });
    assert.equal(current.count, TOTAL_RUNS);
    assert.ok(stats.length >= 2 && stats.every(([status]) => status === 200), `answers ${JSON.stringify(stats)}`);

    // Refresh: the widget read the ETag (exposed to this origin), so it asks with
    // If-None-Match and gets bodiless 304s.
    const before = stats.length;
    await p.getByRole('button', { name: 'Refresh', exact: true }).click();
    await harness.waitFor('two more statistics answers', () => stats.length >= before + 2, 10_000, 50);
    for (const [status, inm] of stats.slice(before)) {
      assert.equal(status, 304, `after Refresh: ${JSON.stringify(stats.slice(before))}`);
      assert.match(inm ?? '', /^"[0-9a-f]+"$/);
    }

    // A 503 (the rollups locked past the API's statement timeout): the widget read
    // Retry-After (exposed too) and says when it tries again.
    made.tableLock = await holdSession(
      harness.dbAdminUrl,
      'BEGIN; LOCK TABLE exectime.rollup_minute, exectime.rollup_hour, exectime.rollup_day IN ACCESS EXCLUSIVE MODE;',
      'ROLLBACK;',
    );
    try {
      await p.getByRole('button', { name: 'Refresh', exact: true }).click();
      const banner = p.locator('exectime-stats .banner');
      await banner.waitFor({ timeout: API_STATEMENT_TIMEOUT_MS + VIEW_TIMEOUT_MS });
      assert.match(await banner.textContent(), new RegExp(`unavailable right now\\. The widget tries again in ${RETRY_AFTER_S} s\\.`));
      assert.equal(stats.at(-1)[0], 503);
    } finally {
      const lock = made.tableLock;
      made.tableLock = null;
      await lock.release();
    }
    assert.deepEqual(errors.filter((e) => !/status of 503/.test(e)), []);
  } finally {
    await context.close();
  }
});

step('a page of an origin not listed is refused the widget module', async () => {
  const context = await page.context().browser().newContext({ viewport: { width: 1280, height: 900 } });
  try {
    const p = await context.newPage();
    const messages = [];
    p.on('console', (msg) => messages.push(msg.text()));
    let statsRequests = 0;
    p.on('request', (req) => {
      if (new URL(req.url()).pathname === STATS_PATH) statsRequests++;
    });
    const bundle = bundleOutcome(p);
    await p.goto(`${ctx.unlistedOrigin}/`);
    const { response, failed } = await bundle;
    assert.ok(failed, `the module was allowed (HTTP ${response?.status()})`);
    await p.waitForFunction(() => window.widgetLoadError === true, null, { timeout: 5000 });
    assert.equal(await p.evaluate(() => customElements.get('exectime-stats')), undefined);
    assert.equal(await p.evaluate(() => document.querySelector('exectime-stats').shadowRoot), null);
    assert.ok(messages.some((text) => /CORS/.test(text)), `no CORS refusal in the console: ${JSON.stringify(messages)}`);
    assert.equal(statsRequests, 0);
  } finally {
    await context.close();
  }
});

// Missing servers or binaries: one clear line, not a failure per check.
try {
  checkEnvironment();
  await checkTestServers(env);
} catch (error) {
  console.error(`e2e: ${error.message}`);
  process.exit(1);
}

test('dashboard end to end', { timeout: 180_000 }, async (t) => {
  t.after(cleanUp);
  const started = Date.now();
  await setUp();
  t.diagnostic(`set-up (database, agent, ${ALL_RUNS} runs, Chromium) took ${Date.now() - started} ms`);
  for (const [name, fn] of steps) await t.test(name, fn);
});
