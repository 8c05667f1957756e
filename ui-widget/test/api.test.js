import { describe, expect, it } from 'vitest';
import {
  describeBadBody,
  describeFailure,
  describeNetworkError,
  endpoint,
  parseRetryAfter,
  requestHeaders,
  statsUrl,
  viewRequests,
  regressionsUrl,
} from '../src/api.js';

const params = (url) => Object.fromEntries(new URL(url, 'http://page.example').searchParams);

describe('statsUrl', () => {
  it('appends the endpoint path to the base, with or without a trailing slash', () => {
    expect(endpoint('https://stats.example.com')).toBe('https://stats.example.com/api/v1/statistics/execution-times');
    expect(endpoint('https://example.com/exectime/')).toBe('https://example.com/exectime/api/v1/statistics/execution-times');
  });

  it('is relative to the page when the base is empty', () => {
    expect(statsUrl('', {})).toBe('/api/v1/statistics/execution-times');
    expect(statsUrl(undefined, { tenantId: 't1' })).toBe('/api/v1/statistics/execution-times?tenant_id=t1');
  });

  it('names every parameter as the API spells it', () => {
    const url = statsUrl('https://s.example', {
      tenantId: 't1',
      workflowId: 'wf 1/a',
      start: '2026-11-21T00:00:00Z',
      end: '2026-11-22T00:00:00Z',
      status: 'failed',
      percentiles: [50, 95, 99],
      interval: 'auto',
      groupBy: 'workflow',
      sort: 'p95',
      limit: 200,
      include: 'histogram',
    });
    expect(params(url)).toEqual({
      tenant_id: 't1',
      workflow_id: 'wf 1/a',
      start_date: '2026-11-21T00:00:00Z',
      end_date: '2026-11-22T00:00:00Z',
      status: 'failed',
      percentiles: '50,95,99',
      interval: 'auto',
      group_by: 'workflow',
      sort: 'p95',
      limit: '200',
      include: 'histogram',
    });
    expect(url).toContain('workflow_id=wf+1%2Fa');
  });

  it('leaves out empty parameters and the default status', () => {
    const url = statsUrl('https://s.example', { tenantId: '', workflowId: undefined, status: 'all', percentiles: [] });
    expect(url).toBe('https://s.example/api/v1/statistics/execution-times');
  });
});

describe('requestHeaders', () => {
  it('sends the bearer token and the ETag when known', () => {
    expect(requestHeaders('abc', '"e1"')).toEqual({
      Accept: 'application/json',
      Authorization: 'Bearer abc',
      'If-None-Match': '"e1"',
    });
    expect(requestHeaders('abc')).not.toHaveProperty('If-None-Match');
  });
});

describe('viewRequests', () => {
  const range = { start: '2026-11-20T14:06:00Z', end: '2026-11-21T14:06:00Z' };

  it('asks the current period for series, histogram and the workflow table', () => {
    const { current } = viewRequests({ apiBase: 'https://s.example', token: 'tok', tenantId: 't1', status: 'all', range });
    expect(params(current.url)).toEqual({
      tenant_id: 't1',
      start_date: range.start,
      end_date: range.end,
      percentiles: '50,95,99',
      interval: 'auto',
      include: 'histogram',
      measure: 'run,queue_wait',
      group_by: 'workflow',
      sort: 'p95',
      limit: '200',
    });
    expect(current.headers.Authorization).toBe('Bearer tok');
  });

  it('asks the previous period of the same length for the summary only', () => {
    const { previous } = viewRequests({ apiBase: '', token: 'tok', status: 'failed', range });
    expect(params(previous.url)).toEqual({
      start_date: '2026-11-19T14:06:00Z',
      end_date: '2026-11-20T14:06:00Z',
      status: 'failed',
      percentiles: '50,95,99',
    });
    expect(previous.headers.Authorization).toBe('Bearer tok');
  });

  it('asks for the regressions of the same range over all workflows, as an optional request', () => {
    const { regressions } = viewRequests({ apiBase: 'https://s.example/', token: 'tok', tenantId: 't1', status: 'success', range });
    expect(regressions.url).toMatch(/^https:\/\/s\.example\/api\/v1\/statistics\/regressions\?/);
    expect(params(regressions.url)).toEqual({
      tenant_id: 't1',
      start_date: range.start,
      end_date: range.end,
      status: 'success',
      metric: 'p95',
    });
    expect(regressions.expect).toBe('regressions');
    expect(regressions.optional).toBe(true);
    expect(regressions.headers.Authorization).toBe('Bearer tok');
  });

  it('regressionsUrl leaves out what the API defaults', () => {
    expect(regressionsUrl('', { status: 'all' })).toBe('/api/v1/statistics/regressions');
    expect(params(regressionsUrl('', { metric: 'failure_rate', minRuns: 10, threshold: 0 }))).toEqual({
      metric: 'failure_rate',
      min_runs: '10',
      threshold: '0',
    });
  });

  it('drops the workflow table when one workflow is shown', () => {
    const { current, previous, regressions } = viewRequests({ apiBase: '', token: 't', workflowId: 'wf-1', range });
    expect(regressions).toBeUndefined();
    expect(params(current.url)).toMatchObject({ workflow_id: 'wf-1', interval: 'auto' });
    expect(params(current.url)).not.toHaveProperty('group_by');
    expect(params(previous.url)).toMatchObject({ workflow_id: 'wf-1' });
  });
});

describe('describeFailure', () => {
  it('treats 401 as a rejected token and says to set a fresh one', () => {
    const f = describeFailure({ status: 401, body: { error: { code: 'unauthorized', message: 'token expired' } } });
    expect(f.state).toBe('unauthorized');
    expect(f.kind).toBe('token_rejected');
    expect(f.message).toContain('token expired');
    expect(f.message).toMatch(/token attribute/);
  });

  it('treats 403 as a tenant the token may not see, naming the tenant', () => {
    const f = describeFailure({ status: 403, body: null, tenantId: 't9' });
    expect(f.state).toBe('unauthorized');
    expect(f.kind).toBe('forbidden');
    expect(f.message).toContain('\u201ct9\u201d');
    expect(f.message).toMatch(/tenant-id/);
  });

  it('names the parameter the API refused', () => {
    const f = describeFailure({
      status: 400,
      body: { error: { code: 'invalid_parameter', message: 'more than 10000 buckets', parameter: 'interval' } },
    });
    expect(f.state).toBe('error');
    expect(f.message).toContain('parameter interval');
    expect(f.message).toContain('more than 10000 buckets.');
  });

  it('points at api-base when nothing answers at the path', () => {
    const f = describeFailure({ status: 404, apiBase: 'https://wrong.example' });
    expect(f.message).toContain('https://wrong.example/api/v1/statistics/execution-times');
    expect(f.message).toMatch(/api-base/);
  });

  it('reads Retry-After on 503 and says when the next try is', () => {
    const f = describeFailure({ status: 503, retryAfter: '20' });
    expect(f.state).toBe('error');
    expect(f.kind).toBe('unavailable');
    expect(f.retryAfterMs).toBe(20_000);
    expect(f.message).toContain('20 s');
  });

  it('reports other statuses with the API message', () => {
    const f = describeFailure({ status: 500, body: { error: { message: 'boom' } } });
    expect(f).toMatchObject({ state: 'error', kind: 'http_error', status: 500 });
    expect(f.message).toContain('HTTP 500: boom.');
  });
});

describe('network and body errors', () => {
  it('explains unreachable APIs, including CORS', () => {
    const f = describeNetworkError(new TypeError('Failed to fetch'), 'https://s.example');
    expect(f).toMatchObject({ state: 'error', kind: 'network', status: 0 });
    expect(f.message).toContain('https://s.example');
    expect(f.message).toContain('EXECTIME_CORS_ORIGINS');
  });

  it('explains answers that are not statistics', () => {
    expect(describeBadBody('https://s.example').message).toMatch(/not statistics JSON/);
  });
});

describe('parseRetryAfter', () => {
  it('reads seconds and HTTP dates', () => {
    expect(parseRetryAfter('5')).toBe(5000);
    const now = Date.parse('2026-11-21T14:00:00Z');
    expect(parseRetryAfter('Sat, 21 Nov 2026 14:00:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfter(null)).toBeNull();
    expect(parseRetryAfter('soon')).toBeNull();
  });
});
