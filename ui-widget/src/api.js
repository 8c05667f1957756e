// The statistics API as the widget uses it: the query URLs for a view, the request
// headers, and what each failure means for the person looking at the widget (see
// docs/api.md for the API itself).

import { previousRange } from './range.js';

export const STATS_PATH = '/api/v1/statistics/execution-times';
export const REGRESSIONS_PATH = '/api/v1/statistics/regressions';

/** The percentile the regressions list compares (the API's default threshold and min_runs apply). */
export const REGRESSION_METRIC = 'p95';

/** The status filter's choices, in the API's words. */
export const STATUSES = Object.freeze([
  { value: 'all', label: 'All runs' },
  { value: 'success', label: 'Succeeded' },
  { value: 'failed', label: 'Failed' },
  { value: 'cancelled', label: 'Cancelled' },
  { value: 'timeout', label: 'Timed out' },
]);

/** The percentiles the widget asks for: the chart draws these three. */
export const PERCENTILES = Object.freeze([50, 95, 99]);

/** How many workflows the table asks for (the API sorts them by p95, worst first). */
export const WORKFLOW_LIMIT = 200;

/**
 * The endpoint's URL under `apiBase` ("https://stats.example.com", or a path prefix behind
 * a proxy, "https://example.com/exectime"). An empty base means the page's own origin.
 * @param {string} apiBase
 */
export function endpoint(apiBase, path = STATS_PATH) {
  const base = (apiBase ?? '').trim().replace(/\/+$/, '');
  return base + path;
}

function withQuery(url, params) {
  const search = new URLSearchParams();
  for (const [name, value] of params) {
    if (value !== undefined && value !== null && value !== '') search.append(name, String(value));
  }
  const qs = search.toString();
  return url + (qs ? '?' + qs : '');
}

/**
 * The query URL for one request. Parameters left undefined, null or empty are omitted,
 * as are defaults the API applies itself (status "all"), so equal questions make equal
 * URLs and the ETag memory can match them.
 * @param {string} apiBase
 * @param {{tenantId?: string, workflowId?: string, start?: string, end?: string,
 *          status?: string, percentiles?: number[], interval?: string, groupBy?: string,
 *          sort?: string, limit?: number, include?: string, measure?: string}} q
 */
export function statsUrl(apiBase, q) {
  const params = [
    ['tenant_id', q.tenantId],
    ['workflow_id', q.workflowId],
    ['start_date', q.start],
    ['end_date', q.end],
    ['status', q.status === 'all' ? undefined : q.status],
    ['percentiles', q.percentiles?.length ? q.percentiles.join(',') : undefined],
    ['interval', q.interval],
    ['group_by', q.groupBy],
    ['sort', q.sort],
    ['limit', q.limit === undefined || q.limit === null ? undefined : String(q.limit)],
    ['include', q.include],
    ['measure', q.measure],
  ];
  return withQuery(endpoint(apiBase), params);
}

/**
 * The regressions list's URL: the workflows whose `metric` rose against the period of the
 * same length before `start` (docs/api.md), as statsUrl omits what is left out.
 * @param {string} apiBase
 * @param {{tenantId?: string, start?: string, end?: string, status?: string, metric?: string,
 *          minRuns?: number, threshold?: number}} q
 */
export function regressionsUrl(apiBase, q) {
  return withQuery(endpoint(apiBase, REGRESSIONS_PATH), [
    ['tenant_id', q.tenantId],
    ['start_date', q.start],
    ['end_date', q.end],
    ['status', q.status === 'all' ? undefined : q.status],
    ['metric', q.metric],
    ['min_runs', q.minRuns === undefined || q.minRuns === null ? undefined : String(q.minRuns)],
    ['threshold', q.threshold === undefined || q.threshold === null ? undefined : String(q.threshold)],
  ]);
}

/**
 * Headers for a request: the bearer token, and If-None-Match when an ETag is known.
 * @param {string} token JWT
 * @param {string | null} [etag]
 */
export function requestHeaders(token, etag) {
  const headers = { Accept: 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (etag) headers['If-None-Match'] = etag;
  return headers;
}

/**
 * The requests behind one view of the widget: `current` (summary, series, histogram and,
 * over all workflows, the per-workflow table), `previous` (the summary of the period
 * of the same length just before, for the change figures) and, over all workflows,
 * `regressions` (optional: an agent without the endpoint leaves it null).
 * @param {{apiBase: string, token: string, tenantId?: string, workflowId?: string,
 *          status?: string, range: {start: string, end: string}}} view
 * @returns {{current: {url: string, headers: object}, previous: {url: string, headers: object},
 *            regressions?: {url: string, headers: object, expect: string, optional: boolean}}}
 */
export function viewRequests(view) {
  const common = {
    tenantId: view.tenantId,
    workflowId: view.workflowId,
    status: view.status,
    percentiles: PERCENTILES,
  };
  const headers = requestHeaders(view.token);
  const prev = previousRange(view.range);
  return {
    current: {
      url: statsUrl(view.apiBase, {
        ...common,
        start: view.range.start,
        end: view.range.end,
        interval: 'auto',
        include: 'histogram',
        // Queue wait beside run time; the previous period's summary stays run-time only,
        // so it keeps being answered from the agent's day cache.
        measure: 'run,queue_wait',
        ...(view.workflowId ? {} : { groupBy: 'workflow', sort: 'p95', limit: WORKFLOW_LIMIT }),
      }),
      headers,
    },
    previous: {
      url: statsUrl(view.apiBase, { ...common, start: prev.start, end: prev.end }),
      headers,
    },
    ...(view.workflowId
      ? {}
      : {
          regressions: {
            url: regressionsUrl(view.apiBase, {
              tenantId: view.tenantId,
              start: view.range.start,
              end: view.range.end,
              status: view.status,
              metric: REGRESSION_METRIC,
            }),
            headers,
            expect: 'regressions',
            optional: true,
          },
        }),
  };
}

/**
 * Milliseconds a Retry-After header asks to wait (seconds or an HTTP date), or null.
 * @param {string | null | undefined} value
 * @param {number} [now=Date.now()]
 */
export function parseRetryAfter(value, now = Date.now()) {
  if (value === null || value === undefined || value === '') return null;
  const v = String(value).trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  if (Number.isNaN(at)) return null;
  return Math.max(0, at - now);
}

function apiMessage(body) {
  const m = body && typeof body === 'object' && body.error && body.error.message;
  return typeof m === 'string' && m ? m : null;
}

function sentence(text) {
  const t = text.trim();
  return /[.!?]$/.test(t) ? t : t + '.';
}

/**
 * What a failed answer means: `state` is "unauthorized" for a rejected token (401) or a
 * tenant the token may not see (403) — waiting will not fix those — and "error" for the
 * rest; `message` says what happened and what to do.
 * @param {{status: number, body?: any, retryAfter?: string | null, apiBase?: string,
 *          tenantId?: string, now?: number}} failure
 * @returns {{state: 'unauthorized' | 'error', kind: string, status: number,
 *            message: string, retryAfterMs: number | null}}
 */
export function describeFailure(failure) {
  const { status, body } = failure;
  const detail = apiMessage(body);
  const retryAfterMs = parseRetryAfter(failure.retryAfter, failure.now);
  const result = (state, kind, message) => ({ state, kind, status, message, retryAfterMs });

  if (status === 401) {
    return result(
      'unauthorized',
      'token_rejected',
      `The API rejected the token${detail ? ` (${detail.replace(/\.$/, '')})` : ''}. ` +
        'Set the token attribute to a fresh JWT from your identity provider: tokens expire (see their exp claim) ' +
        "and must be signed with the agent's EXECTIME_JWT_SECRET or key.",
    );
  }
  if (status === 403) {
    const tenant = failure.tenantId ? `tenant \u201c${failure.tenantId}\u201d` : "this token's tenant";
    return result(
      'unauthorized',
      'forbidden',
      `This token may not read ${tenant}. ` +
        'Set tenant-id to a tenant the token allows, or ask for a token that includes this tenant.',
    );
  }
  if (status === 400) {
    const param = body && body.error && body.error.parameter;
    return result(
      'error',
      'invalid_parameter',
      `The API refused the request${param ? ` (parameter ${param})` : ''}: ${sentence(detail ?? 'invalid parameter')} ` +
        'Check the widget\u2019s attributes and the selected range.',
    );
  }
  if (status === 404 || status === 405) {
    return result(
      'error',
      'not_found',
      `No statistics API answers at ${endpoint(failure.apiBase)}. ` +
        'Set api-base to the exectime agent\u2019s address (the widget adds the /api/v1/\u2026 path).',
    );
  }
  if (status === 503) {
    const wait = retryAfterMs !== null ? ` The widget tries again in ${Math.max(1, Math.round(retryAfterMs / 1000))} s.` : ' The widget keeps trying.';
    return result('error', 'unavailable', `The statistics database is unavailable right now.${wait}`);
  }
  return result(
    'error',
    'http_error',
    `The API answered HTTP ${status}${detail ? `: ${sentence(detail)}` : '.'} The widget keeps trying.`,
  );
}

/**
 * What a request that got no answer at all means (fetch threw: offline, DNS, refused
 * connection, TLS, or a CORS refusal, which browsers report the same way).
 * @param {unknown} error
 * @param {string} [apiBase]
 */
export function describeNetworkError(error, apiBase) {
  const where = apiBase && apiBase.trim() ? apiBase.trim() : 'this page\u2019s origin';
  const reason = error && typeof error === 'object' && 'message' in error && error.message ? ` (${error.message})` : '';
  return {
    state: 'error',
    kind: 'network',
    status: 0,
    retryAfterMs: null,
    message:
      `Could not reach the statistics API at ${where}${reason}. ` +
      'Check api-base, that the agent is running, and that EXECTIME_CORS_ORIGINS lists this page\u2019s origin. The widget keeps trying.',
  };
}

/** What an answer that is not the JSON the API sends means. */
export function describeBadBody(apiBase) {
  return {
    state: 'error',
    kind: 'bad_body',
    status: 200,
    retryAfterMs: null,
    message: `The answer from ${endpoint(apiBase)} is not statistics JSON. Check that api-base points at the exectime agent.`,
  };
}
