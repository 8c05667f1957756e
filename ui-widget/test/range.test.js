import { describe, expect, it } from 'vitest';
import {
  PRESETS,
  ceilMinute,
  describeSelection,
  floorMinute,
  parseCustomRange,
  parseLocalDateTime,
  parseRangeAttribute,
  presetRange,
  previousRange,
  rangeLength,
  resolveRange,
  selectionKey,
  toIso,
  toLocalInput,
} from '../src/range.js';

const NOW = Date.parse('2026-11-21T14:05:30.123Z');

describe('presetRange', () => {
  it('ends at the next whole minute and starts the preset length before', () => {
    expect(presetRange('24h', NOW)).toEqual({ start: '2026-11-20T14:06:00Z', end: '2026-11-21T14:06:00Z' });
  });

  it('covers each preset length exactly', () => {
    expect(presetRange('1h', NOW)).toEqual({ start: '2026-11-21T13:06:00Z', end: '2026-11-21T14:06:00Z' });
    expect(presetRange('7d', NOW)).toEqual({ start: '2026-11-14T14:06:00Z', end: '2026-11-21T14:06:00Z' });
    expect(presetRange('30d', NOW)).toEqual({ start: '2026-10-22T14:06:00Z', end: '2026-11-21T14:06:00Z' });
    for (const p of Object.keys(PRESETS)) expect(rangeLength(presetRange(p, NOW))).toBe(PRESETS[p]);
  });

  it('keeps a time already on a minute boundary as the end', () => {
    const onMinute = Date.parse('2026-11-21T14:05:00Z');
    expect(presetRange('1h', onMinute).end).toBe('2026-11-21T14:05:00Z');
  });

  it('gives the same range all through one minute, so polls repeat the same URL', () => {
    const a = presetRange('24h', Date.parse('2026-11-21T14:05:00.001Z'));
    const b = presetRange('24h', Date.parse('2026-11-21T14:05:59.999Z'));
    expect(a).toEqual(b);
  });

  it('refuses an unknown preset', () => {
    expect(() => presetRange('2w', NOW)).toThrow(RangeError);
  });
});

describe('minute alignment', () => {
  it('rounds down and up to whole minutes', () => {
    expect(toIso(floorMinute(NOW))).toBe('2026-11-21T14:05:00Z');
    expect(toIso(ceilMinute(NOW))).toBe('2026-11-21T14:06:00Z');
    expect(ceilMinute(Date.parse('2026-11-21T14:05:00Z'))).toBe(Date.parse('2026-11-21T14:05:00Z'));
  });

  it('writes ISO instants without milliseconds', () => {
    expect(toIso(Date.parse('2026-01-02T03:04:00Z'))).toBe('2026-01-02T03:04:00Z');
  });
});

describe('previousRange', () => {
  it('is the period of the same length that ends where the range starts', () => {
    expect(previousRange({ start: '2026-11-20T14:06:00Z', end: '2026-11-21T14:06:00Z' })).toEqual({
      start: '2026-11-19T14:06:00Z',
      end: '2026-11-20T14:06:00Z',
    });
  });

  it('works for custom lengths', () => {
    const r = { start: '2026-11-01T10:00:00Z', end: '2026-11-01T10:45:00Z' };
    const p = previousRange(r);
    expect(p).toEqual({ start: '2026-11-01T09:15:00Z', end: '2026-11-01T10:00:00Z' });
    expect(rangeLength(p)).toBe(rangeLength(r));
  });

  it('steps back 30 days for the 30-day preset', () => {
    const r = presetRange('30d', NOW);
    expect(previousRange(r)).toEqual({ start: '2026-09-22T14:06:00Z', end: '2026-10-22T14:06:00Z' });
  });
});

describe('parseCustomRange', () => {
  const later = Date.parse('2030-01-01T00:00:00Z');

  it('reads datetime-local values as local time and aligns outwards to minutes', () => {
    const r = parseCustomRange('2026-11-01T12:00:30', '2026-11-01T13:00:30', later);
    expect(r.ok).toBe(true);
    expect(r.range.start).toBe(toIso(new Date(2026, 10, 1, 12, 0, 0).getTime()));
    expect(r.range.end).toBe(toIso(new Date(2026, 10, 1, 13, 1, 0).getTime()));
  });

  it('accepts whole-minute values unchanged', () => {
    const r = parseCustomRange('2026-11-01T12:00', '2026-11-02T12:00', later);
    expect(r).toEqual({
      ok: true,
      range: { start: toIso(new Date(2026, 10, 1, 12, 0).getTime()), end: toIso(new Date(2026, 10, 2, 12, 0).getTime()) },
    });
  });

  it('asks for both ends', () => {
    expect(parseCustomRange('', '2026-11-02T12:00', later)).toMatchObject({ ok: false, field: 'start' });
    expect(parseCustomRange('2026-11-02T12:00', '', later)).toMatchObject({ ok: false, field: 'end' });
  });

  it('refuses values that are not dates', () => {
    expect(parseCustomRange('yesterday', '2026-11-02T12:00', later)).toMatchObject({ ok: false, field: 'start' });
    expect(parseCustomRange('2026-11-01T12:00', '2026-02-31T12:00', later)).toMatchObject({ ok: false, field: 'end' });
    expect(parseCustomRange('2026-11-01T25:00', '2026-11-02T12:00', later)).toMatchObject({ ok: false, field: 'start' });
  });

  it('refuses an end that is not after the start', () => {
    const r = parseCustomRange('2026-11-02T12:00', '2026-11-01T12:00', later);
    expect(r).toMatchObject({ ok: false, field: 'end' });
    expect(r.error).toMatch(/after the start/);
    expect(parseCustomRange('2026-11-02T12:00', '2026-11-02T12:00', later)).toMatchObject({ ok: false, field: 'end' });
  });

  it('refuses a start in the future', () => {
    const now = new Date(2026, 10, 1, 12, 0).getTime();
    const r = parseCustomRange('2026-11-01T13:00', '2026-11-01T14:00', now);
    expect(r).toMatchObject({ ok: false, field: 'start' });
    expect(r.error).toMatch(/future/);
  });
});

describe('datetime-local round trip', () => {
  it('shows an instant in local time and reads it back', () => {
    const iso = '2026-11-21T14:05:00Z';
    const local = toLocalInput(iso);
    expect(local).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}$/);
    expect(toIso(parseLocalDateTime(local))).toBe(iso);
  });

  it('gives an empty value for an invalid instant', () => {
    expect(toLocalInput('nope')).toBe('');
  });
});

describe('the range attribute', () => {
  it('takes a preset name', () => {
    expect(parseRangeAttribute('7d')).toEqual({ preset: '7d' });
    expect(parseRangeAttribute(' 1h ')).toEqual({ preset: '1h' });
  });

  it('takes an ISO interval, aligned to minutes', () => {
    expect(parseRangeAttribute('2026-11-01T00:00:10Z/2026-11-08T00:00:00Z')).toEqual({
      start: '2026-11-01T00:00:00Z',
      end: '2026-11-08T00:00:00Z',
    });
  });

  it('falls back to the last 24 hours for anything else', () => {
    expect(parseRangeAttribute('fortnight')).toEqual({ preset: '24h' });
    expect(parseRangeAttribute(undefined)).toEqual({ preset: '24h' });
    expect(parseRangeAttribute('2026-11-08T00:00:00Z/2026-11-01T00:00:00Z')).toEqual({ preset: '24h' });
  });

  it('resolves presets at a given time and keeps custom ranges', () => {
    expect(resolveRange({ preset: '1h' }, NOW)).toEqual(presetRange('1h', NOW));
    const custom = { start: '2026-11-01T00:00:00Z', end: '2026-11-02T00:00:00Z' };
    expect(resolveRange(custom, NOW)).toEqual(custom);
    expect(selectionKey(custom)).toBe('2026-11-01T00:00:00Z/2026-11-02T00:00:00Z');
    expect(selectionKey({ preset: '7d' })).toBe('7d');
  });

  it('describes selections in words', () => {
    expect(describeSelection({ preset: '24h' })).toBe('Last 24 hours');
    expect(describeSelection({ start: 'a', end: 'b' }, (t) => t.toUpperCase())).toBe('A \u2013 B');
  });
});
