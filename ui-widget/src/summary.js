// The summary cards' figures: each statistic of the current period with its change
// against the previous period of the same length (a second request, see api.js).

import {
  failureRate,
  formatChange,
  formatCount,
  formatDuration,
  formatPercent,
  formatPointChange,
  relativeChange,
} from './format.js';

/* Changes smaller than this (relative, or in rate points) are shown without colour. */
const SAME_RELATIVE = 0.005;
const SAME_POINTS = 0.00005;

/*
 * "worse" / "better" for statistics where up is bad (durations, failure rate), "neutral"
 * for the run count (more runs is neither), "same" when there is no real change.
 */
function direction(delta, upIsWorse, same) {
  if (delta === null || Math.abs(delta) < same) return 'same';
  if (!upIsWorse) return 'neutral';
  return delta > 0 ? 'worse' : 'better';
}

const percentile = (key) => (o) => (o && o.percentiles ? (o.percentiles[key] ?? null) : null);

const DURATIONS = [
  ['avg', 'Average', (o) => o?.avg_ms ?? null],
  ['median', 'Median', (o) => o?.median_ms ?? null],
  ['p95', 'p95', percentile('p95')],
  ['p99', 'p99', percentile('p99')],
  ['min', 'Min', (o) => o?.min_ms ?? null],
  ['max', 'Max', (o) => o?.max_ms ?? null],
];

const QUEUE_DURATIONS = [
  ['queue-median', 'Queue median', (q) => q?.median_ms ?? null],
  ['queue-p95', 'Queue p95', percentile('p95')],
];

/**
 * The cards for a response and the previous period's response (null when it is not
 * loaded). Each card: {key, label, value, change, direction, previous, detail?}, with
 * texts already formatted. When the response has queue data (`measure=queue_wait` and at
 * least one run with `enqueued_at`), two queue-wait cards follow the run-time ones; the
 * first says how many runs came without queue data.
 * @param {any} current the API's answer for the range shown
 * @param {any} previous the API's answer for the period before
 */
export function summaryCards(current, previous) {
  const rate = failureRate(current?.failed, current?.count);
  const prevRate = previous ? failureRate(previous.failed, previous.count) : null;
  const cards = [
    {
      key: 'runs',
      label: 'Runs',
      value: formatCount(current?.count),
      change: formatChange(current?.count, previous?.count),
      direction: direction(relativeChange(current?.count, previous?.count), false, SAME_RELATIVE),
      previous: formatCount(previous?.count),
    },
    {
      key: 'failure-rate',
      label: 'Failure rate',
      value: formatPercent(rate),
      detail: current?.count ? `${formatCount(current.failed)} failed` : null,
      change: formatPointChange(rate, prevRate),
      direction: direction(rate !== null && prevRate !== null ? rate - prevRate : null, true, SAME_POINTS),
      previous: formatPercent(prevRate),
    },
  ];
  for (const [key, label, pick] of DURATIONS) {
    const cur = pick(current);
    const prev = previous ? pick(previous) : null;
    cards.push({
      key,
      label,
      value: formatDuration(cur),
      change: formatChange(cur, prev),
      direction: direction(relativeChange(cur, prev), true, SAME_RELATIVE),
      previous: formatDuration(prev),
    });
  }
  const queue = current?.queue_wait;
  if (!queue || !(queue.count > 0)) return cards;
  const prevQueue = previous?.queue_wait?.count > 0 ? previous.queue_wait : null;
  const without = queue.runs_without_queue_data ?? 0;
  for (const [key, label, pick] of QUEUE_DURATIONS) {
    const cur = pick(queue);
    const prev = prevQueue ? pick(prevQueue) : null;
    cards.push({
      key,
      label,
      value: formatDuration(cur),
      detail:
        key === 'queue-median' && without > 0
          ? `${formatCount(without)} run${without === 1 ? '' : 's'} without queue data`
          : null,
      change: formatChange(cur, prev),
      direction: direction(relativeChange(cur, prev), true, SAME_RELATIVE),
      previous: formatDuration(prev),
    });
  }
  return cards;
}
