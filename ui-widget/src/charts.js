// Data shaping for the charts, and the words that describe them to screen readers. Kept
// apart from the components so it can be tested without a DOM.

import { formatCount, formatDuration, formatTime } from './format.js';

/**
 * uPlot's columns from the API's series: [x (seconds), runs, failed, p50, p95, p99].
 * Empty buckets keep their place with null percentiles, so the lines break there.
 * @param {Array<{bucket_start: string, count: number, failed: number, percentiles: object}>} series
 */
export function seriesColumns(series) {
  const rows = Array.isArray(series) ? series : [];
  const xs = [];
  const runs = [];
  const failed = [];
  const p50 = [];
  const p95 = [];
  const p99 = [];
  for (const b of rows) {
    const t = Date.parse(b.bucket_start);
    if (Number.isNaN(t)) continue;
    const p = b.percentiles ?? {};
    const empty = !b.count;
    xs.push(t / 1000);
    runs.push(b.count ?? 0);
    failed.push(b.failed ?? 0);
    p50.push(empty ? null : (p.p50 ?? null));
    p95.push(empty ? null : (p.p95 ?? null));
    p99.push(empty ? null : (p.p99 ?? null));
  }
  return [xs, runs, failed, p50, p95, p99];
}

const INTERVAL_WORDS = { minute: 'minute', hour: 'hour', day: 'day' };

/**
 * A sentence or three that say what the time chart shows.
 * @param {Array} series the API's series
 * @param {string} [interval] the API's interval
 */
export function describeSeries(series, interval) {
  const rows = (Array.isArray(series) ? series : []).filter((b) => b.count > 0);
  const per = INTERVAL_WORDS[interval] ?? 'bucket';
  if (!rows.length) return `No runs in any ${per} of this range.`;
  let worst = rows[0];
  let busiest = rows[0];
  let minP95 = Infinity;
  let failures = 0;
  for (const b of rows) {
    const p95 = b.percentiles?.p95;
    if (typeof p95 === 'number') {
      if (!(worst.percentiles?.p95 >= p95)) worst = b;
      minP95 = Math.min(minP95, p95);
    }
    if (b.count > busiest.count) busiest = b;
    failures += b.failed ?? 0;
  }
  const parts = [
    `${rows.length} ${per}${rows.length === 1 ? '' : 's'} with runs.`,
  ];
  if (Number.isFinite(minP95)) {
    parts.push(
      `p95 ranged from ${formatDuration(minP95)} to ${formatDuration(worst.percentiles.p95)}, highest at ${formatTime(worst.bucket_start)}` +
        (typeof worst.percentiles.p99 === 'number' ? ` (p99 ${formatDuration(worst.percentiles.p99)}).` : '.'),
    );
  }
  parts.push(`Busiest ${per}: ${formatCount(busiest.count)} runs at ${formatTime(busiest.bucket_start)}.`);
  parts.push(`${formatCount(failures)} failed in total.`);
  return parts.join(' ');
}

/**
 * Merges the API's fine histogram bins (upper bounds `le_ms`, about 2% apart) into
 * `perDecade` bins per factor of ten, for drawing on a log axis. Bin k covers
 * (10^(k/perDecade), 10^((k+1)/perDecade)] milliseconds; empty bins between the first
 * and the last are kept so the bars sit where they belong.
 * @param {Array<{le_ms: number, count: number}>} bins
 * @param {number} [perDecade=5]
 * @returns {Array<{lo: number, hi: number, count: number}>}
 */
export function rebinHistogram(bins, perDecade = 5) {
  const counts = new Map();
  let first = Infinity;
  let last = -Infinity;
  for (const b of Array.isArray(bins) ? bins : []) {
    if (!(b.count > 0) || !(b.le_ms > 0) || !Number.isFinite(b.le_ms)) continue;
    // 1e-9 keeps a bound that is exactly a bin edge (1 ms) in the bin it closes.
    const k = Math.ceil(Math.log10(b.le_ms) * perDecade - 1e-9) - 1;
    counts.set(k, (counts.get(k) ?? 0) + b.count);
    first = Math.min(first, k);
    last = Math.max(last, k);
  }
  const out = [];
  for (let k = first; k <= last; k++) {
    out.push({ lo: 10 ** (k / perDecade), hi: 10 ** ((k + 1) / perDecade), count: counts.get(k) ?? 0 });
  }
  return out;
}

/**
 * Tick positions for a log duration axis between lo and hi ms: the powers of ten, plus
 * the 2× and 5× steps when there are few decades.
 */
export function logTicks(lo, hi) {
  if (!(lo > 0) || !(hi > lo)) return [];
  const from = Math.floor(Math.log10(lo));
  const to = Math.ceil(Math.log10(hi));
  const steps = to - from <= 2 ? [1, 2, 5] : [1];
  const ticks = [];
  for (let e = from; e <= to; e++) {
    for (const s of steps) {
      const v = s * 10 ** e;
      if (v >= lo * 0.999 && v <= hi * 1.001) ticks.push(v);
    }
  }
  return ticks;
}

/**
 * What the histogram shows, in words.
 * @param {Array<{lo: number, hi: number, count: number}>} bins from rebinHistogram
 */
export function describeHistogram(bins) {
  const filled = bins.filter((b) => b.count > 0);
  if (!filled.length) return 'No runs to show.';
  const total = filled.reduce((s, b) => s + b.count, 0);
  let peak = filled[0];
  for (const b of filled) if (b.count > peak.count) peak = b;
  const share = Math.round((peak.count / total) * 100);
  return (
    `${formatCount(total)} runs between ${formatDuration(filled[0].lo)} and ${formatDuration(filled[filled.length - 1].hi)}. ` +
    `The most common durations were ${formatDuration(peak.lo)} to ${formatDuration(peak.hi)}: ${formatCount(peak.count)} runs (${share}%).`
  );
}
