import { describe, expect, it } from 'vitest';
import {
  durationParts,
  failureRate,
  formatChange,
  formatCount,
  formatDuration,
  formatPercent,
  formatPointChange,
  relativeChange,
  workflowLabel,
  OVERFLOW_WORKFLOW_ID,
} from '../src/format.js';

// The formatters put a no-break space between number and unit; compare with plain spaces.
const plain = (s) => s.replace(/\u00a0/g, ' ');
const dur = (ms, digits) => plain(formatDuration(ms, digits));

describe('formatDuration picks the unit by magnitude', () => {
  it('keeps 999 µs in microseconds', () => {
    expect(dur(0.999)).toBe('999 µs');
  });

  it('switches to milliseconds at 1 ms', () => {
    expect(dur(1)).toBe('1 ms');
  });

  it('moves up a unit when rounding reaches the next one', () => {
    expect(dur(0.9996)).toBe('1 ms'); // 999.6 µs rounds to 1000 µs
    expect(dur(999.96)).toBe('1 s');
    expect(dur(59_960)).toBe('1 min'); // not "60 s", not "0.999 min"
    expect(dur(3_599_000)).toBe('1 h');
  });

  it('keeps 59.9 s in seconds', () => {
    expect(dur(59_900)).toBe('59.9 s');
  });

  it('switches to minutes at 1 min and hours at 1 h', () => {
    expect(dur(60_000)).toBe('1 min');
    expect(dur(3_600_000)).toBe('1 h');
  });

  it('keeps three significant digits and drops trailing zeros', () => {
    expect(dur(812.4)).toBe('812 ms');
    expect(dur(3.1)).toBe('3.1 ms');
    expect(dur(2100)).toBe('2.1 s');
    expect(dur(92_000)).toBe('1.53 min');
    expect(dur(0.0031)).toBe('3.1 µs');
    expect(dur(12.345)).toBe('12.3 ms');
    expect(dur(1.005)).toBe('1.01 ms');
  });

  it('honours fewer significant digits for axis labels', () => {
    expect(dur(1234, 2)).toBe('1.2 s');
  });

  it('shows long durations in whole hours with separators', () => {
    expect(dur(1234 * 3_600_000)).toBe('1,234 h');
  });

  it('shows zero as 0 µs and missing values as a dash', () => {
    expect(dur(0)).toBe('0 µs');
    expect(formatDuration(null)).toBe('\u2014');
    expect(formatDuration(undefined)).toBe('\u2014');
    expect(formatDuration(NaN)).toBe('\u2014');
  });

  it('reports parts for callers that style the unit apart', () => {
    expect(durationParts(1500)).toEqual({ value: 1.5, unit: 's' });
    expect(durationParts(null)).toBeNull();
  });
});

describe('formatCount', () => {
  it('groups thousands', () => {
    expect(formatCount(1234567)).toBe('1,234,567');
    expect(formatCount(0)).toBe('0');
    expect(formatCount(999)).toBe('999');
  });

  it('shows a dash for missing counts', () => {
    expect(formatCount(null)).toBe('\u2014');
  });
});

describe('formatPercent', () => {
  it('keeps up to three significant digits and two decimals', () => {
    expect(formatPercent(0.0123)).toBe('1.23%');
    expect(formatPercent(0.5)).toBe('50%');
    expect(formatPercent(0.12345)).toBe('12.3%');
    expect(formatPercent(1)).toBe('100%');
    expect(formatPercent(0)).toBe('0%');
  });

  it('does not round a tiny rate down to zero', () => {
    expect(formatPercent(0.00001)).toBe('<0.01%');
  });

  it('shows a dash for a missing rate', () => {
    expect(formatPercent(null)).toBe('\u2014');
  });

  it('computes failure rates only when there were runs', () => {
    expect(failureRate(12, 1234)).toBeCloseTo(0.00972, 5);
    expect(failureRate(0, 0)).toBeNull();
    expect(failureRate(null, 10)).toBeNull();
  });
});

describe('formatChange', () => {
  it('writes increases with a plus sign and decreases with a minus sign', () => {
    expect(formatChange(112, 100)).toBe('+12%');
    expect(formatChange(97, 100)).toBe('\u22123%');
  });

  it('keeps one decimal under 10%', () => {
    expect(formatChange(103.44, 100)).toBe('+3.4%');
    expect(formatChange(90.5, 100)).toBe('\u22129.5%');
  });

  it('says 0% for no change and for a change that rounds away', () => {
    expect(formatChange(100, 100)).toBe('0%');
    expect(formatChange(100.01, 100)).toBe('0%');
    expect(formatChange(0, 0)).toBe('0%');
  });

  it('shows a dash when there is nothing to compare with', () => {
    expect(formatChange(100, 0)).toBe('\u2014');
    expect(formatChange(100, null)).toBe('\u2014');
    expect(formatChange(null, 100)).toBe('\u2014');
  });

  it('separates thousands in large changes', () => {
    expect(formatChange(12_345, 1)).toBe('+1,234,400%');
  });

  it('exposes the raw relative change', () => {
    expect(relativeChange(150, 100)).toBeCloseTo(0.5);
    expect(relativeChange(5, 0)).toBeNull();
  });
});

describe('formatPointChange', () => {
  it('compares rates in percentage points', () => {
    expect(plain(formatPointChange(0.02, 0))).toBe('+2 pp');
    expect(plain(formatPointChange(0.01, 0.015))).toBe('\u22120.5 pp');
    expect(plain(formatPointChange(0.3, 0.1))).toBe('+20 pp');
    expect(plain(formatPointChange(0.1, 0.1))).toBe('0 pp');
    expect(formatPointChange(0.1, null)).toBe('\u2014');
  });
});

describe('workflowLabel', () => {
  it('names the overflow id as the workflows over the limit', () => {
    expect(OVERFLOW_WORKFLOW_ID).toBe('(overflow)');
    expect(workflowLabel('(overflow)')).toBe('Other workflows (over the limit)');
  });
  it('shows any other id as it is', () => {
    expect(workflowLabel('nightly-sync')).toBe('nightly-sync');
    expect(workflowLabel('(overflow) ')).toBe('(overflow) ');
    expect(workflowLabel(9001)).toBe('9001');
  });
});
