// The workflow table and the series as CSV files, built in the browser from the API's
// answer the widget shows (no second request). RFC 4180: one header row, CRLF line ends,
// a field with a comma, a quote or a line break in quotes with quotes doubled. Numbers as
// the API gave them (milliseconds, JavaScript's shortest form, which reads back as the
// same double); an absent or null value is an empty field. The columns are those of
// `exectime-agent query --format csv` (docs/operations.md), less its scope column.

/** One field, quoted when it must be. */
export function csvField(value) {
  if (value === null || value === undefined) return '';
  const text = typeof value === 'number' ? (Number.isFinite(value) ? String(value) : '') : String(value);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** A header and rows (arrays of values) as one CSV text ending in CRLF. */
export function toCsv(header, rows) {
  return [header, ...rows].map((row) => row.map(csvField).join(',')).join('\r\n') + '\r\n';
}

/** The percentile keys of an answer, in its order (p50, p95, p99.9 ...). */
export function percentileKeys(answer) {
  const p = answer?.percentiles;
  return p && typeof p === 'object' ? Object.keys(p) : [];
}

const STATS = ['count', 'failed', 'avg_ms', 'median_ms', 'min_ms', 'max_ms'];

function statsOf(row, keys, withMedian) {
  const cells = STATS.filter((k) => withMedian || k !== 'median_ms').map((k) => row?.[k]);
  return cells.concat(keys.map((k) => row?.percentiles?.[k]));
}

/** The per-workflow rows of an answer (group_by=workflow), in the API's order. */
export function workflowsCsv(answer) {
  const keys = percentileKeys(answer);
  const header = ['tenant_id', 'workflow_id', ...STATS, ...keys];
  const rows = (answer?.workflows ?? []).map((w) => [answer.tenant_id, w.workflow_id, ...statsOf(w, keys, true)]);
  return toCsv(header, rows);
}

/** The series of an answer (interval=...), one row per bucket, empty ones included. */
export function seriesCsv(answer) {
  const keys = percentileKeys(answer);
  const header = ['tenant_id', 'workflow_id', 'bucket_start', ...STATS.filter((k) => k !== 'median_ms'), ...keys];
  const rows = (answer?.series ?? []).map((b) => [answer.tenant_id, answer.workflow_id, b.bucket_start, ...statsOf(b, keys, false)]);
  return toCsv(header, rows);
}

/** Letters, digits, dot, dash and underscore; anything else becomes "_". */
function safePart(text) {
  return String(text ?? '').replace(/[^A-Za-z0-9._-]+/g, '_');
}

/**
 * The file name of a download: exectime-TENANT[-WORKFLOW]-KIND-START-END.csv, times in
 * UTC without colons (exectime-t1-workflows-20261121T0000Z-20261128T0000Z.csv).
 */
export function csvFileName(kind, answer) {
  const stamp = (iso) => safePart(String(iso ?? '').replace(/[-:]/g, '').replace(/(T\d{4})00Z$/, '$1Z'));
  const parts = ['exectime', safePart(answer?.tenant_id)];
  if (answer?.workflow_id !== null && answer?.workflow_id !== undefined) parts.push(safePart(answer.workflow_id));
  parts.push(kind, stamp(answer?.start_date), stamp(answer?.end_date));
  return parts.join('-') + '.csv';
}

/**
 * Offers text as a file: a Blob URL on a temporary link with `download`, clicked. The link
 * goes into `parent` (inside the widget's shadow root it works as well as in the page).
 */
export function downloadCsv(text, fileName, parent) {
  const url = URL.createObjectURL(new Blob([text], { type: 'text/csv;charset=utf-8' }));
  const link = document.createElement('a');
  link.href = url;
  link.download = fileName;
  link.hidden = true;
  parent.appendChild(link);
  link.click();
  link.remove();
  // The browser has taken the URL when click() returns in Chromium and Firefox; Safari
  // reads it a moment later, so it is let go after a while rather than at once.
  setTimeout(() => URL.revokeObjectURL(url), 30_000);
}
