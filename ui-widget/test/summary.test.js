import { describe, expect, it } from 'vitest';
import { summaryCards } from '../src/summary.js';

const current = {
  count: 1120,
  failed: 22,
  avg_ms: 880,
  median_ms: 790,
  min_ms: 3.1,
  max_ms: 92_000,
  percentiles: { p50: 790, p95: 2100, p99: 5000 },
};
const previous = {
  count: 1000,
  failed: 10,
  avg_ms: 1000,
  median_ms: 790,
  min_ms: 3.1,
  max_ms: 46_000,
  percentiles: { p50: 790, p95: 2000, p99: 5500 },
};

const byKey = (cards) => Object.fromEntries(cards.map((c) => [c.key, c]));
const plain = (s) => s.replace(/\u00a0/g, ' ');

describe('comparison with the previous period', () => {
  const cards = byKey(summaryCards(current, previous));

  it('shows the eight statistics in order', () => {
    expect(summaryCards(current, previous).map((c) => c.label)).toEqual([
      'Runs',
      'Failure rate',
      'Average',
      'Median',
      'p95',
      'p99',
      'Min',
      'Max',
    ]);
  });

  it('gives the run count change without judging it', () => {
    expect(cards.runs).toMatchObject({ value: '1,120', change: '+12%', direction: 'neutral', previous: '1,000' });
  });

  it('compares failure rates in percentage points; up is worse', () => {
    expect(cards['failure-rate'].value).toBe('1.96%');
    expect(plain(cards['failure-rate'].change)).toBe('+0.96 pp');
    expect(cards['failure-rate'].direction).toBe('worse');
    expect(cards['failure-rate'].detail).toBe('22 failed');
  });

  it('marks slower durations worse and faster ones better', () => {
    expect(cards.avg).toMatchObject({ change: '\u221212%', direction: 'better' });
    expect(cards.p95).toMatchObject({ change: '+5%', direction: 'worse' });
    expect(cards.p99).toMatchObject({ change: '\u22129.1%', direction: 'better' });
    expect(cards.max).toMatchObject({ change: '+100%', direction: 'worse' });
    expect(plain(cards.max.value)).toBe('1.53 min');
  });

  it('shows unchanged statistics as 0% without colour', () => {
    expect(cards.median).toMatchObject({ change: '0%', direction: 'same' });
    expect(cards.min).toMatchObject({ change: '0%', direction: 'same' });
  });

  it('shows dashes while the previous period is not loaded', () => {
    for (const c of summaryCards(current, null)) {
      expect(c.change).toBe('\u2014');
      expect(c.direction).toBe('same');
    }
  });

  it('shows dashes when the previous period had no runs', () => {
    const empty = { count: 0, failed: 0, avg_ms: null, median_ms: null, min_ms: null, max_ms: null, percentiles: { p50: null } };
    const c = byKey(summaryCards(current, empty));
    expect(c.runs.change).toBe('\u2014');
    expect(c['failure-rate'].change).toBe('\u2014');
    expect(c.p95.change).toBe('\u2014');
    expect(c.p95.previous).toBe('\u2014');
  });
});

describe('queue wait beside run time', () => {
  const queued = {
    ...current,
    queue_wait: {
      count: 1000,
      runs_without_queue_data: 120,
      avg_ms: 900,
      median_ms: 40_000,
      min_ms: 1,
      max_ms: 90_000,
      percentiles: { p50: 40_000, p95: 61_000, p99: 80_000 },
    },
  };

  it('adds the queue-wait cards after the run-time ones when the tenant has queue data', () => {
    const cards = summaryCards(queued, previous);
    expect(cards.map((c) => c.key).slice(-2)).toEqual(['queue-median', 'queue-p95']);
    const byK = byKey(cards);
    expect(plain(byK['queue-median'].value)).toBe('40 s');
    expect(byK['queue-median'].detail).toBe('120 runs without queue data');
    expect(plain(byK['queue-p95'].value)).toBe('1.02 min');
    expect(byK['queue-p95'].detail).toBeNull();
  });

  it('compares with the previous period only when that has queue data', () => {
    expect(byKey(summaryCards(queued, previous))['queue-median'].direction).toBe('same');
    const before = { ...previous, queue_wait: { ...queued.queue_wait, median_ms: 20_000 } };
    expect(byKey(summaryCards(queued, before))['queue-median']).toMatchObject({ change: '+100%', direction: 'worse' });
  });

  it('shows no queue cards without queue data', () => {
    expect(summaryCards(current, previous)).toHaveLength(8);
    const none = { ...current, queue_wait: { ...queued.queue_wait, count: 0, runs_without_queue_data: 1120 } };
    expect(summaryCards(none, previous)).toHaveLength(8);
  });

  it('says "1 run" for one run without queue data', () => {
    const one = { ...queued, queue_wait: { ...queued.queue_wait, runs_without_queue_data: 1 } };
    expect(byKey(summaryCards(one, null))['queue-median'].detail).toBe('1 run without queue data');
  });
});
