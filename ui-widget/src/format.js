// Number formatting for people: durations in the unit that suits their size, rates,
// counts and changes against the previous period. Every function answers "—" for a value
// that is missing (the API sends null statistics when a range has no runs).

export const NONE = '\u2014'; // em dash: "no value"
const NBSP = '\u00a0'; // keeps "12 ms" on one line
const MINUS = '\u2212'; // a real minus sign, as wide as "+"

const MS_PER_UNIT = [
  // [unit, milliseconds per unit, the value in this unit at which the next unit takes over]
  ['µs', 0.001, 1000],
  ['ms', 1, 1000],
  ['s', 1000, 60],
  ['min', 60000, 60],
  ['h', 3600000, Infinity],
];

const formatters = new Map();

/* One cached Intl.NumberFormat per option set: creating them is slow, and a table of
 * a thousand workflows formats thousands of numbers on each refresh. */
function numberFormat(options) {
  const key = JSON.stringify(options);
  let f = formatters.get(key);
  if (!f) {
    f = new Intl.NumberFormat('en-US', options);
    formatters.set(key, f);
  }
  return f;
}

function isNumber(v) {
  return typeof v === 'number' && Number.isFinite(v);
}

/*
 * Rounds to `digits` significant digits, halves away from zero. The nudge makes decimal
 * halves that binary cannot hold exactly (1.005 is 1.00499…) round up as people expect.
 */
function roundSignificant(v, digits) {
  if (v === 0) return 0;
  const magnitude = Math.floor(Math.log10(Math.abs(v)));
  const factor = 10 ** (digits - 1 - magnitude);
  return (Math.sign(v) * Math.round(Math.abs(v) * factor * (1 + 1e-12))) / factor;
}

/**
 * Splits a duration in milliseconds into a value and a unit (µs, ms, s, min, h), picking
 * the unit after rounding so that 999.96 ms reads "1 s", not "1000 ms".
 * @param {number} ms duration in milliseconds (>= 0)
 * @param {number} [digits=3] significant digits kept
 * @returns {{value: number, unit: string} | null}
 */
export function durationParts(ms, digits = 3) {
  if (!isNumber(ms)) return null;
  const negative = ms < 0;
  const abs = Math.abs(ms);
  let i = 0;
  while (i < MS_PER_UNIT.length - 1 && abs >= MS_PER_UNIT[i + 1][1]) i++;
  let value = roundSignificant(abs / MS_PER_UNIT[i][1], digits);
  if (i < MS_PER_UNIT.length - 1 && value >= MS_PER_UNIT[i][2]) {
    // 59.96 s rounds to 60 s: that is 1 min (0.9993 min would read oddly).
    i++;
    value = Math.max(1, roundSignificant(abs / MS_PER_UNIT[i][1], digits));
  }
  // Hours keep whole numbers past 1000 (3 significant digits would read 1,230 h for 1,234 h).
  if (value >= 1000) value = Math.round(abs / MS_PER_UNIT[i][1]);
  return { value: negative ? -value : value, unit: MS_PER_UNIT[i][0] };
}

/**
 * A duration for humans: "812 µs", "3.1 ms", "59.9 s", "1.53 min", "2 h".
 * @param {number | null | undefined} ms milliseconds
 * @param {number} [digits=3] significant digits
 */
export function formatDuration(ms, digits = 3) {
  const p = durationParts(ms, digits);
  if (!p) return NONE;
  const text = numberFormat({ maximumFractionDigits: 6 }).format(Math.abs(p.value));
  return (p.value < 0 ? MINUS : '') + text + NBSP + p.unit;
}

/**
 * A count with thousands separators: 1234567 → "1,234,567".
 * @param {number | null | undefined} n
 */
export function formatCount(n) {
  if (!isNumber(n)) return NONE;
  return numberFormat({ maximumFractionDigits: 0 }).format(n);
}

/**
 * A ratio as a percentage with up to 3 significant digits and at most 2 decimals:
 * 0.0123 → "1.23%", 0.5 → "50%", 0.00001 → "<0.01%".
 * @param {number | null | undefined} ratio 0..1
 */
export function formatPercent(ratio) {
  if (!isNumber(ratio)) return NONE;
  const pct = ratio * 100;
  if (pct > 0 && pct < 0.01) return '<0.01%';
  const rounded = pct >= 100 ? Math.round(pct) : roundSignificant(pct, 3);
  return numberFormat({ maximumFractionDigits: 2 }).format(rounded) + '%';
}

/**
 * The failure rate of a count, or null when there were no runs.
 * @param {number | null | undefined} failed
 * @param {number | null | undefined} count
 */
export function failureRate(failed, count) {
  if (!isNumber(count) || count <= 0 || !isNumber(failed)) return null;
  return failed / count;
}

/**
 * The relative change from `previous` to `current` (0.12 for +12%), or null when it has
 * no meaning: a value is missing or the previous one is zero while the current is not.
 * @param {number | null | undefined} current
 * @param {number | null | undefined} previous
 */
export function relativeChange(current, previous) {
  if (!isNumber(current) || !isNumber(previous)) return null;
  if (previous === 0) return current === 0 ? 0 : null;
  return (current - previous) / Math.abs(previous);
}

function signed(text, negative, zero) {
  if (zero) return text;
  return (negative ? MINUS : '+') + text;
}

/**
 * A relative change for humans: "+12%", "−3%", "+4.5%", "0%", or "—" when there is no
 * previous value to compare with.
 * @param {number | null | undefined} current
 * @param {number | null | undefined} previous
 */
export function formatChange(current, previous) {
  const r = relativeChange(current, previous);
  if (r === null) return NONE;
  const pct = Math.abs(r * 100);
  const digits = pct < 10 ? 1 : 0;
  const rounded = Number(pct.toFixed(digits));
  if (rounded === 0) return '0%';
  const text = numberFormat({ maximumFractionDigits: digits }).format(rounded) + '%';
  return signed(text, r < 0, false);
}

/**
 * The change between two rates in percentage points: "+1.2 pp", "−0.5 pp", "0 pp", "—".
 * Failure rates compare better this way: 0% → 2% has no relative change.
 * @param {number | null | undefined} currentRatio 0..1
 * @param {number | null | undefined} previousRatio 0..1
 */
export function formatPointChange(currentRatio, previousRatio) {
  if (!isNumber(currentRatio) || !isNumber(previousRatio)) return NONE;
  const d = (currentRatio - previousRatio) * 100;
  const abs = Math.abs(d);
  const rounded = abs >= 10 ? Math.round(abs) : Number(abs.toFixed(abs >= 1 ? 1 : 2));
  if (rounded === 0) return '0' + NBSP + 'pp';
  return signed(numberFormat({ maximumFractionDigits: 2 }).format(rounded) + NBSP + 'pp', d < 0, false);
}

/**
 * A timestamp for labels, in the viewer's time zone: "Nov 21, 14:05". Dates that span
 * days are shown with the day; `withYear` adds the year for ranges across years.
 * @param {string | number | Date} t
 * @param {{withYear?: boolean, withSeconds?: boolean}} [opts]
 */
export function formatTime(t, opts = {}) {
  const d = t instanceof Date ? t : new Date(t);
  if (Number.isNaN(d.getTime())) return NONE;
  const options = {
    month: 'short',
    day: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
    hourCycle: 'h23',
  };
  if (opts.withYear) options.year = 'numeric';
  if (opts.withSeconds) options.second = '2-digit';
  return new Intl.DateTimeFormat('en-US', options).format(d);
}

/**
 * The workflow id under which the API reports a tenant's runs past its workflow limit
 * (EXECTIME_MAX_WORKFLOWS_PER_TENANT); no real workflow can have it.
 */
export const OVERFLOW_WORKFLOW_ID = '(overflow)';

/** What the dashboard shows for a workflow id: the reserved overflow id gets words. */
export function workflowLabel(id) {
  return id === OVERFLOW_WORKFLOW_ID ? 'Other workflows (over the limit)' : String(id);
}
