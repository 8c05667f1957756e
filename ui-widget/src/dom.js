// Small DOM helpers shared by the components.

/**
 * Adds a stylesheet once to the root that holds `node`: the shadow root of the custom
 * element, or the document's head when the component is used directly. Third-party CSS
 * (uPlot's) has to live there to reach into a shadow root.
 * @param {Node} node
 * @param {string} id identifies the sheet, so it is added once per root
 * @param {string} css
 */
export function ensureStyle(node, id, css) {
  if (!css || !node || typeof node.getRootNode !== 'function') return;
  const root = node.getRootNode();
  const target = root && root.host ? root : (root.head ?? node.ownerDocument?.head);
  if (!target) return;
  for (const el of target.querySelectorAll('style[data-exectime-sheet]')) {
    if (el.getAttribute('data-exectime-sheet') === id) return;
  }
  const style = node.ownerDocument.createElement('style');
  style.setAttribute('data-exectime-sheet', id);
  style.textContent = css;
  target.appendChild(style);
}

/** Chart colours when the CSS custom properties cannot be read (no layout engine). */
export const FALLBACK_COLORS = Object.freeze({
  fg: '#1f2937',
  muted: '#6b7280',
  grid: 'rgba(127, 127, 127, 0.22)',
  p50: '#2563eb',
  p95: '#d97706',
  p99: '#dc2626',
  runs: 'rgba(100, 116, 139, 0.35)',
  failed: 'rgba(220, 38, 38, 0.55)',
  histogram: '#2563eb',
  font: 'system-ui, sans-serif',
});

const COLOR_VARS = {
  fg: '--_fg',
  muted: '--_muted',
  grid: '--_grid',
  p50: '--_p50',
  p95: '--_p95',
  p99: '--_p99',
  runs: '--_runs',
  failed: '--_failed',
  histogram: '--_histogram',
  font: '--_font',
};

/**
 * The chart colours the theme resolves to on `el`: canvases cannot use CSS variables,
 * so they are read from the computed style whenever the theme changes.
 * @param {Element | null | undefined} el
 */
export function readColors(el) {
  const out = { ...FALLBACK_COLORS };
  if (!el || typeof getComputedStyle !== 'function') return out;
  const style = getComputedStyle(el);
  for (const [name, prop] of Object.entries(COLOR_VARS)) {
    const v = style.getPropertyValue(prop).trim();
    if (v && !v.startsWith('var(')) out[name] = v;
  }
  return out;
}
