// Date ranges: the presets the widget offers, custom ranges typed by the user, and the
// previous period of the same length that the summary compares against. Ranges are
// {start, end} with ISO 8601 UTC strings, start inclusive and end exclusive, aligned to
// whole minutes (the API answers whole minutes, and aligned ranges give equal URLs
// within a minute, so polling hits the ETag).

export const MINUTE_MS = 60_000;

/** Preset name → length in milliseconds, in the order the widget shows them. */
export const PRESETS = Object.freeze({
  '1h': 3_600_000,
  '24h': 86_400_000,
  '7d': 7 * 86_400_000,
  '30d': 30 * 86_400_000,
});

export const DEFAULT_PRESET = '24h';

const PRESET_LABELS = {
  '1h': 'Last hour',
  '24h': 'Last 24 hours',
  '7d': 'Last 7 days',
  '30d': 'Last 30 days',
};

/** True when `name` is one of PRESETS. */
export function isPreset(name) {
  return Object.prototype.hasOwnProperty.call(PRESETS, name);
}

/** Rounds a time in milliseconds down to the minute. */
export function floorMinute(ms) {
  return Math.floor(ms / MINUTE_MS) * MINUTE_MS;
}

/** Rounds a time in milliseconds up to the minute. */
export function ceilMinute(ms) {
  return Math.ceil(ms / MINUTE_MS) * MINUTE_MS;
}

/** "2026-11-21T14:05:00Z": ISO 8601 UTC without the milliseconds the API ignores. */
export function toIso(ms) {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/**
 * The range a preset covers at `now`: it ends at the next whole minute (so the current
 * minute's runs are in) and starts the preset's length before.
 * @param {string} preset one of PRESETS
 * @param {number} [now=Date.now()] milliseconds since the epoch
 * @returns {{start: string, end: string}}
 */
export function presetRange(preset, now = Date.now()) {
  const length = PRESETS[preset];
  if (length === undefined) throw new RangeError(`unknown range preset "${preset}"`);
  const end = ceilMinute(now);
  return { start: toIso(end - length), end: toIso(end) };
}

/**
 * The period of the same length that ends where `range` starts.
 * @param {{start: string, end: string}} range
 * @returns {{start: string, end: string}}
 */
export function previousRange(range) {
  const start = Date.parse(range.start);
  const end = Date.parse(range.end);
  const length = end - start;
  return { start: toIso(start - length), end: toIso(start) };
}

/** Length of a range in milliseconds. */
export function rangeLength(range) {
  return Date.parse(range.end) - Date.parse(range.start);
}

/*
 * Parses what an <input type="datetime-local"> holds ("2026-11-21T14:05", seconds
 * optional) as local time. Returns NaN when it is not such a value, so a free-typed
 * string in a browser without the picker is refused rather than guessed at.
 */
export function parseLocalDateTime(value) {
  if (typeof value !== 'string') return NaN;
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?$/.exec(value.trim());
  if (!m) return NaN;
  const [y, mo, d, h, mi, s] = m.slice(1).map((x) => (x === undefined ? 0 : Number(x)));
  const date = new Date(y, mo - 1, d, h, mi, s);
  // Date rolls 2026-02-31 over to March: refuse instead.
  if (date.getFullYear() !== y || date.getMonth() !== mo - 1 || date.getDate() !== d) return NaN;
  if (h > 23 || mi > 59 || s > 59) return NaN;
  return date.getTime();
}

/** The value for an <input type="datetime-local"> showing `iso` in local time. */
export function toLocalInput(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/**
 * Checks a custom range typed into the two datetime inputs and aligns it outwards to whole
 * minutes. Errors name the field to point at and say what to do.
 * @param {string} startValue datetime-local value
 * @param {string} endValue datetime-local value
 * @param {number} [now=Date.now()]
 * @returns {{ok: true, range: {start: string, end: string}} | {ok: false, field: 'start'|'end', error: string}}
 */
export function parseCustomRange(startValue, endValue, now = Date.now()) {
  if (!startValue) return { ok: false, field: 'start', error: 'Enter a start date and time.' };
  if (!endValue) return { ok: false, field: 'end', error: 'Enter an end date and time.' };
  const start = parseLocalDateTime(startValue);
  if (Number.isNaN(start)) {
    return { ok: false, field: 'start', error: 'The start is not a valid date and time (use YYYY-MM-DDTHH:MM).' };
  }
  const end = parseLocalDateTime(endValue);
  if (Number.isNaN(end)) {
    return { ok: false, field: 'end', error: 'The end is not a valid date and time (use YYYY-MM-DDTHH:MM).' };
  }
  if (end <= start) return { ok: false, field: 'end', error: 'The end must be after the start.' };
  if (start >= now) return { ok: false, field: 'start', error: 'The start is in the future: there are no runs to show yet.' };
  const alignedStart = floorMinute(start);
  const alignedEnd = ceilMinute(end);
  return { ok: true, range: { start: toIso(alignedStart), end: toIso(alignedEnd) } };
}

/**
 * Reads the `range` attribute: a preset name, or an explicit ISO 8601 interval
 * "2026-11-01T00:00:00Z/2026-11-08T00:00:00Z". Anything else falls back to the default.
 * @param {string | null | undefined} value
 * @returns {{preset: string} | {start: string, end: string}}
 */
export function parseRangeAttribute(value) {
  const v = typeof value === 'string' ? value.trim() : '';
  if (isPreset(v)) return { preset: v };
  const parts = v.split('/');
  if (parts.length === 2) {
    const start = Date.parse(parts[0]);
    const end = Date.parse(parts[1]);
    if (Number.isFinite(start) && Number.isFinite(end) && end > start) {
      return { start: toIso(floorMinute(start)), end: toIso(ceilMinute(end)) };
    }
  }
  return { preset: DEFAULT_PRESET };
}

/**
 * The concrete range of a selection at `now`: presets move with time, custom ranges stay.
 * @param {{preset: string} | {start: string, end: string}} selection
 * @param {number} [now=Date.now()]
 */
export function resolveRange(selection, now = Date.now()) {
  if ('preset' in selection) return presetRange(selection.preset, now);
  return { start: selection.start, end: selection.end };
}

/** A stable string for a selection, part of the poller's view key. */
export function selectionKey(selection) {
  return 'preset' in selection ? selection.preset : `${selection.start}/${selection.end}`;
}

/** Words for a selection: "Last 24 hours", or "Nov 1, 00:00 – Nov 8, 00:00". */
export function describeSelection(selection, formatTime) {
  if ('preset' in selection) return PRESET_LABELS[selection.preset] ?? selection.preset;
  return `${formatTime(selection.start)} \u2013 ${formatTime(selection.end)}`;
}

/** The label a preset button shows. */
export function presetLabel(preset) {
  return PRESET_LABELS[preset] ?? preset;
}
