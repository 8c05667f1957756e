import { describe, expect, it } from 'vitest';
import { describeHistogram, describeSeries, logTicks, rebinHistogram, seriesColumns } from '../src/charts.js';

const series = [
  { bucket_start: '2026-11-21T00:00:00Z', count: 10, failed: 1, percentiles: { p50: 100, p95: 400, p99: 900 } },
  { bucket_start: '2026-11-21T01:00:00Z', count: 0, failed: 0, percentiles: { p50: null, p95: null, p99: null } },
  { bucket_start: '2026-11-21T02:00:00Z', count: 30, failed: 0, percentiles: { p50: 120, p95: 2500, p99: 4000 } },
];

describe('seriesColumns', () => {
  it('gives uPlot columns in seconds, with gaps for empty buckets', () => {
    const [xs, runs, failed, p50, p95, p99] = seriesColumns(series);
    expect(xs).toEqual([1795219200, 1795222800, 1795226400]);
    expect(runs).toEqual([10, 0, 30]);
    expect(failed).toEqual([1, 0, 0]);
    expect(p50).toEqual([100, null, 120]);
    expect(p95).toEqual([400, null, 2500]);
    expect(p99).toEqual([900, null, 4000]);
  });

  it('copes with a missing series', () => {
    expect(seriesColumns(undefined)).toEqual([[], [], [], [], [], []]);
  });
});

describe('describeSeries', () => {
  it('sums up the chart for screen readers', () => {
    const text = describeSeries(series, 'hour').replace(/\u00a0/g, ' ');
    expect(text).toContain('2 hours with runs.');
    expect(text).toContain('p95 ranged from 400 ms to 2.5 s');
    expect(text).toContain('(p99 4 s)');
    expect(text).toContain('Busiest hour: 30 runs');
    expect(text).toContain('1 failed in total.');
  });

  it('says so when nothing ran', () => {
    expect(describeSeries([], 'day')).toBe('No runs in any day of this range.');
  });
});

describe('rebinHistogram', () => {
  it('merges fine bins into five per decade on a log scale', () => {
    const bins = rebinHistogram([
      { le_ms: 1.0, count: 2 }, // (0.63, 1]
      { le_ms: 1.1, count: 3 }, // (1, 1.58]
      { le_ms: 1.5, count: 4 }, // (1, 1.58]
      { le_ms: 3.0, count: 1 }, // (2.51, 3.98]
    ]);
    expect(bins.map((b) => b.count)).toEqual([2, 7, 0, 1]);
    expect(bins[0].lo).toBeCloseTo(10 ** -0.2);
    expect(bins[0].hi).toBeCloseTo(1);
    expect(bins[3].hi).toBeCloseTo(10 ** 0.6);
  });

  it('ignores empty and invalid bins', () => {
    expect(rebinHistogram([{ le_ms: 0, count: 3 }, { le_ms: 5, count: 0 }])).toEqual([]);
    expect(rebinHistogram(null)).toEqual([]);
  });

  it('describes the distribution in words', () => {
    const bins = rebinHistogram([
      { le_ms: 1.1, count: 3 },
      { le_ms: 30, count: 1 },
    ]);
    const text = describeHistogram(bins).replace(/\u00a0/g, ' ');
    expect(text).toContain('4 runs between 1 ms and 39.8 ms');
    expect(text).toContain('1 ms to 1.58 ms: 3 runs (75%)');
    expect(describeHistogram([])).toBe('No runs to show.');
  });
});

describe('logTicks', () => {
  it('puts ticks on powers of ten, with 2 and 5 steps over few decades', () => {
    expect(logTicks(0.5, 2000)).toEqual([1, 10, 100, 1000]);
    expect(logTicks(1.5, 60)).toEqual([2, 5, 10, 20, 50]);
    expect(logTicks(0, 10)).toEqual([]);
  });
});
