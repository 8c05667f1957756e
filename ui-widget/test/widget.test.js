// @vitest-environment jsdom
// The component and the custom element in a DOM without layout: uPlot needs a canvas,
// so it is replaced by a recorder; the API is a fake fetch.
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { flushSync, mount, unmount } from 'svelte';

vi.mock('uplot', () => {
  class FakePlot {
    static instances = [];
    static paths = { bars: () => () => null };
    constructor(opts, data, el) {
      this.opts = opts;
      this.data = data;
      el.appendChild(document.createElement('canvas'));
      FakePlot.instances.push(this);
    }
    setData(data) {
      this.data = data;
    }
    setSize(size) {
      this.size = size;
    }
    destroy() {
      this.destroyed = true;
    }
  }
  return { default: FakePlot };
});

const summary = (count, extra = {}) => ({
  tenant_id: 't1',
  workflow_id: null,
  status: 'all',
  start_date: '2026-11-20T14:06:00Z',
  end_date: '2026-11-21T14:06:00Z',
  count,
  failed: count ? 12 : 0,
  avg_ms: count ? 812.4 : null,
  median_ms: count ? 790.1 : null,
  min_ms: count ? 3.1 : null,
  max_ms: count ? 92000 : null,
  percentiles: count ? { p50: 790.1, p95: 2100, p99: 5000.3 } : { p50: null, p95: null, p99: null },
  relative_error: 0.01,
  coarsened: false,
  ...extra,
});

const full = (count = 1234) =>
  summary(count, {
    interval: 'hour',
    series: [
      { bucket_start: '2026-11-21T12:00:00Z', count: 600, failed: 5, percentiles: { p50: 700, p95: 2000, p99: 4000 } },
      { bucket_start: '2026-11-21T13:00:00Z', count: 634, failed: 7, percentiles: { p50: 800, p95: 2200, p99: 6000 } },
    ],
    histogram: [
      { le_ms: 5, count: 34 },
      { le_ms: 800, count: 1000 },
      { le_ms: 90000, count: 200 },
    ],
    workflows: [
      { workflow_id: 'wf-a', count: 1000, failed: 2, avg_ms: 500, median_ms: 450, min_ms: 3, max_ms: 9000, percentiles: { p50: 450, p95: 3000, p99: 8000 } },
      { workflow_id: 'wf-b', count: 234, failed: 10, avg_ms: 2000, median_ms: 1900, min_ms: 50, max_ms: 92000, percentiles: { p50: 1900, p95: 2100, p99: 90000 } },
    ],
  });

let answer; // (url) → Response
let calls;

function jsonResponse(status, body, headers = {}) {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json', ETag: '"x"', ...headers } });
}

const regressionsAnswer = (regressions) => ({
  tenant_id: 't1',
  metric: 'p95',
  unit: 'ms',
  status: 'all',
  start_date: '2026-11-20T14:06:00Z',
  end_date: '2026-11-21T14:06:00Z',
  previous_start_date: '2026-11-19T14:06:00Z',
  previous_end_date: '2026-11-20T14:06:00Z',
  coarsened: false,
  threshold_percent: 20,
  min_runs: 50,
  relative_error: 0.01,
  workflows_compared: 2,
  regressions,
  regressions_total: regressions.length,
});

const wfbRegression = {
  workflow_id: 'wf-b',
  previous: 1400,
  current: 2100,
  change_percent: 50,
  previous_count: 200,
  current_count: 234,
  previous_failed: 3,
  current_failed: 10,
  confidence: 0.9999,
  impact: 163800,
};

const isRegressions = (url) => new URL(url).pathname.endsWith('/regressions');

function defaultAnswer(url) {
  const q = new URL(url).searchParams;
  if (isRegressions(url)) return jsonResponse(200, regressionsAnswer([]));
  if (!q.has('interval')) return jsonResponse(200, summary(1000)); // the previous period
  if (q.get('workflow_id')) {
    const body = full(234);
    body.workflow_id = q.get('workflow_id');
    delete body.workflows;
    return jsonResponse(200, body);
  }
  return jsonResponse(200, full());
}

beforeAll(() => {
  window.matchMedia = (query) => ({
    matches: false,
    media: query,
    addEventListener() {},
    removeEventListener() {},
  });
});

beforeEach(async () => {
  calls = [];
  answer = defaultAnswer;
  vi.stubGlobal(
    'fetch',
    vi.fn(async (url, init) => {
      calls.push({ url, params: new URL(url).searchParams, headers: init.headers });
      return answer(url);
    }),
  );
  await import('../src/index.js');
});

afterEach(() => {
  document.body.replaceChildren();
  vi.unstubAllGlobals();
});

function element(attrs = {}) {
  const el = document.createElement('exectime-stats');
  for (const [k, v] of Object.entries({ 'api-base': 'https://stats.example', token: 'tok', 'tenant-id': 't1', ...attrs })) {
    el.setAttribute(k, v);
  }
  document.body.append(el);
  return el;
}

const text = (node) => (node?.textContent ?? '').replace(/\u00a0/g, ' ').replace(/\s+/g, ' ').trim();
const q = (el, sel) => el.shadowRoot.querySelector(sel);
const qa = (el, sel) => [...el.shadowRoot.querySelectorAll(sel)];
const buttonNamed = (el, name) => qa(el, 'button').find((b) => text(b).startsWith(name));

async function loaded(el) {
  await vi.waitFor(() => expect(q(el, '[data-stat="runs"] .value')).not.toBeNull());
}

describe('<exectime-stats>', () => {
  it('registers the element once and exposes the component', async () => {
    const mod = await import('../src/index.js');
    expect(customElements.get('exectime-stats')).toBeTypeOf('function');
    expect(mod.defineExectimeStats()).toBe(customElements.get('exectime-stats'));
    expect(mod.default).toBe(mod.ExectimeStats);
  });

  it('asks the API for both periods with the token and shows the summary', async () => {
    const el = element();
    await loaded(el);
    expect(calls).toHaveLength(3);
    const current = calls.find((c) => c.params.has('interval'));
    const previous = calls.find((c) => !c.params.has('interval') && !isRegressions(c.url));
    const regressions = calls.find((c) => isRegressions(c.url));
    expect(regressions.params.get('metric')).toBe('p95');
    expect(regressions.params.get('start_date')).toBe(current.params.get('start_date'));
    expect(regressions.headers.Authorization).toBe('Bearer tok');
    expect(current.url).toMatch(/^https:\/\/stats\.example\/api\/v1\/statistics\/execution-times\?/);
    expect(current.headers.Authorization).toBe('Bearer tok');
    expect(current.params.get('tenant_id')).toBe('t1');
    expect(current.params.get('group_by')).toBe('workflow');
    expect(current.params.get('include')).toBe('histogram');
    expect(Date.parse(previous.params.get('end_date'))).toBe(Date.parse(current.params.get('start_date')));

    expect(text(q(el, '[data-stat="runs"] .value'))).toBe('1,234');
    expect(text(q(el, '[data-stat="runs"] .change'))).toContain('+23%');
    expect(text(q(el, '[data-stat="p95"] .value'))).toBe('2.1 s');
    expect(text(q(el, '[data-stat="max"] .value'))).toBe('1.53 min');
    // 12 of 1,234 failed against 12 of 1,000 before: a lower rate
    expect(q(el, '[data-stat="failure-rate"] .change').classList.contains('better')).toBe(true);
  });

  it('injects its styles into its own shadow root', async () => {
    const el = element();
    await loaded(el);
    const css = qa(el, 'style').map((s) => s.textContent).join('\n');
    expect(css).toContain(':host');
    expect(css).toContain('--exectime-bg');
  });

  it('labels the charts for screen readers', async () => {
    const el = element();
    await loaded(el);
    const [timeChart] = qa(el, '.plot[role="img"]');
    expect(timeChart.getAttribute('aria-label')).toMatch(/p50, p95 and p99/);
    const summaryText = el.shadowRoot.getElementById(timeChart.getAttribute('aria-describedby'));
    expect(text(summaryText)).toContain('Busiest hour: 634 runs');
    const svg = q(el, 'svg[role="img"]');
    expect(svg.getAttribute('aria-label')).toMatch(/logarithmic/);
    expect(text(el.shadowRoot.getElementById(svg.getAttribute('aria-describedby')))).toContain('1,234 runs');
    expect(qa(el, 'svg rect.bar').length).toBeGreaterThan(3);
  });

  it('sorts the workflow table with the header buttons', async () => {
    const el = element();
    await loaded(el);
    const rows = () => qa(el, 'tbody tr th').map(text);
    expect(rows()).toEqual(['wf-a', 'wf-b']); // p95 descending
    const runsHeader = qa(el, 'thead th').find((th) => text(th).startsWith('Runs'));
    runsHeader.querySelector('button').click();
    flushSync();
    expect(runsHeader.getAttribute('aria-sort')).toBe('descending');
    expect(rows()).toEqual(['wf-a', 'wf-b']);
    runsHeader.querySelector('button').click();
    flushSync();
    expect(runsHeader.getAttribute('aria-sort')).toBe('ascending');
    expect(rows()).toEqual(['wf-b', 'wf-a']);
    const p99Header = qa(el, 'thead th').find((th) => text(th).startsWith('p99'));
    p99Header.querySelector('button').click();
    flushSync();
    expect(rows()).toEqual(['wf-b', 'wf-a']);
  });

  it('says how many workflows the table leaves out, from workflows_total', async () => {
    answer = (url) => {
      const q = new URL(url).searchParams;
      if (!isRegressions(url) && q.has('interval') && !q.get('workflow_id')) {
        return jsonResponse(200, { ...full(), workflows_total: 1234 });
      }
      return defaultAnswer(url);
    };
    const el = element();
    await loaded(el);
    const note = qa(el, 'section.workflows p.note').map(text).join(' ');
    expect(note).toMatch(/The 2 workflows with the highest p95 of 1,234 are listed/);
  });

  it('lists the regressions above the workflow table and marks their rows', async () => {
    answer = (url) => (isRegressions(url) ? jsonResponse(200, regressionsAnswer([wfbRegression])) : defaultAnswer(url));
    const el = element();
    await loaded(el);
    await vi.waitFor(() => expect(q(el, 'section.regressions li')).not.toBeNull());
    const list = q(el, 'section.regressions');
    const table = q(el, 'section.workflows');
    expect(list.compareDocumentPosition(table) & Node.DOCUMENT_POSITION_FOLLOWING).toBeTruthy();
    const item = text(q(el, 'section.regressions li[data-workflow="wf-b"]'));
    expect(item).toContain('1.4 s');
    expect(item).toContain('2.1 s');
    expect(item).toContain('+50%');
    expect(item).toContain('confidence 99%');
    const marked = qa(el, 'tbody tr.regressed th').map((th) => text(th.querySelector('button')));
    expect(marked).toEqual(['wf-b']);
    expect(text(q(el, 'tbody tr.regressed .mark'))).toContain('slower than the previous period');
    q(el, 'section.regressions li button').click();
    await vi.waitFor(() => expect(calls.some((c) => c.params.get('workflow_id') === 'wf-b')).toBe(true));
  });

  it('says so when nothing regressed, and shows the statistics without an endpoint for it', async () => {
    let el = element();
    await loaded(el);
    await vi.waitFor(() => expect(text(q(el, 'section.regressions'))).toContain('No regressions'));
    expect(qa(el, 'tbody tr.regressed')).toHaveLength(0);
    el.remove();
    answer = (url) => (isRegressions(url) ? jsonResponse(404, { error: { code: 'not_found', message: 'no such endpoint' } }) : defaultAnswer(url));
    el = element();
    await loaded(el);
    expect(q(el, 'section.regressions')).toBeNull();
    expect(q(el, '[role="alert"]')).toBeNull();
    expect(qa(el, 'tbody tr')).toHaveLength(2);
  });

  it('drills into a workflow and comes back', async () => {
    const el = element();
    await loaded(el);
    qa(el, 'tbody tr th button')[1].click(); // wf-b
    await vi.waitFor(() => expect(calls.some((c) => c.params.get('workflow_id') === 'wf-b')).toBe(true));
    await vi.waitFor(() => expect(text(q(el, '.crumb'))).toContain('wf-b'));
    await vi.waitFor(() => expect(q(el, '[data-stat="runs"] .value')).not.toBeNull());
    expect(q(el, 'table')).toBeNull();
    const back = buttonNamed(el, '← All workflows');
    expect(el.shadowRoot.activeElement).toBe(back);
    back.click();
    await vi.waitFor(() => expect(q(el, 'table')).not.toBeNull());
  });

  it('switches range presets and sends the new range', async () => {
    const el = element();
    await loaded(el);
    const seven = buttonNamed(el, '7d');
    seven.click();
    await vi.waitFor(() => expect(calls.length).toBeGreaterThanOrEqual(4));
    const last = calls.filter((c) => c.params.has('interval')).at(-1);
    const length = Date.parse(last.params.get('end_date')) - Date.parse(last.params.get('start_date'));
    expect(length).toBe(7 * 86_400_000);
    expect(seven.getAttribute('aria-pressed')).toBe('true');
    expect(buttonNamed(el, '24h').getAttribute('aria-pressed')).toBe('false');
  });

  it('filters by status', async () => {
    const el = element();
    await loaded(el);
    const select = q(el, 'select');
    select.value = 'failed';
    select.dispatchEvent(new Event('change', { bubbles: true }));
    await vi.waitFor(() => expect(calls.filter((c) => c.params.get('status') === 'failed')).toHaveLength(3));
  });

  it('checks a custom range before using it', async () => {
    const el = element();
    await loaded(el);
    buttonNamed(el, 'Custom').click();
    await vi.waitFor(() => expect(q(el, 'form.custom')).not.toBeNull());
    const [from, to] = qa(el, 'form.custom input');
    expect(el.shadowRoot.activeElement).toBe(from);
    const set = (input, value) => {
      input.value = value;
      input.dispatchEvent(new Event('input', { bubbles: true }));
    };
    set(from, '2026-11-02T12:00');
    set(to, '2026-11-01T12:00');
    q(el, 'form.custom').dispatchEvent(new Event('submit', { cancelable: true }));
    flushSync();
    expect(text(q(el, '.field-error'))).toMatch(/after the start/);
    expect(to.getAttribute('aria-invalid')).toBe('true');
    set(to, '2026-11-03T12:00');
    q(el, 'form.custom').dispatchEvent(new Event('submit', { cancelable: true }));
    await vi.waitFor(() =>
      expect(calls.some((c) => c.params.get('start_date') === new Date(2026, 10, 2, 12).toISOString().replace('.000', ''))).toBe(true),
    );
    expect(q(el, 'form.custom')).toBeNull();
    expect(buttonNamed(el, 'Custom').getAttribute('aria-pressed')).toBe('true');
    expect(el.shadowRoot.activeElement).toBe(buttonNamed(el, 'Custom'));
  });

  it('closes the custom range form with Escape', async () => {
    const el = element();
    await loaded(el);
    buttonNamed(el, 'Custom').click();
    await vi.waitFor(() => expect(q(el, 'form.custom')).not.toBeNull());
    q(el, 'form.custom input').dispatchEvent(new KeyboardEvent('keydown', { key: 'Escape', bubbles: true }));
    await vi.waitFor(() => expect(q(el, 'form.custom')).toBeNull());
    expect(el.shadowRoot.activeElement).toBe(buttonNamed(el, 'Custom'));
    expect(buttonNamed(el, '24h').getAttribute('aria-pressed')).toBe('true');
  });

  it('says what to do when the token is rejected', async () => {
    answer = () => jsonResponse(401, { error: { code: 'unauthorized', message: 'token expired' } });
    const el = element();
    await vi.waitFor(() => expect(text(q(el, '.panel.danger h3'))).toBe('Token rejected'));
    expect(text(q(el, '.panel.danger'))).toContain('token expired');
    expect(text(q(el, '.panel.danger'))).toContain('token attribute');
  });

  it('says access is denied for a tenant the token may not see', async () => {
    answer = () => jsonResponse(403, { error: { code: 'forbidden' } });
    const el = element({ 'tenant-id': 'other' });
    await vi.waitFor(() => expect(text(q(el, '.panel.danger h3'))).toBe('Access denied'));
    expect(text(q(el, '.panel.danger'))).toContain('\u201cother\u201d');
  });

  it('recovers when a fresh token is set', async () => {
    answer = () => jsonResponse(401, {});
    const el = element();
    await vi.waitFor(() => expect(q(el, '.panel.danger')).not.toBeNull());
    answer = defaultAnswer;
    el.setAttribute('token', 'fresh');
    await loaded(el);
    expect(calls.at(-1).headers.Authorization).toBe('Bearer fresh');
  });

  it('explains an unavailable API and offers to try again', async () => {
    answer = () => jsonResponse(503, { error: { code: 'unavailable' } }, { 'Retry-After': '30' });
    const el = element();
    await vi.waitFor(() => expect(text(q(el, '.panel.danger h3'))).toBe('Statistics unavailable'));
    expect(text(q(el, '.panel.danger'))).toContain('30 s');
    answer = defaultAnswer;
    buttonNamed(el, 'Try again now').click();
    await loaded(el);
  });

  it('shows an empty state when nothing ran', async () => {
    answer = (url) =>
      new URL(url).searchParams.has('interval')
        ? jsonResponse(200, summary(0, { series: [], histogram: [], workflows: [] }))
        : jsonResponse(200, summary(40));
    const el = element();
    await vi.waitFor(() => expect(text(q(el, '.panel.empty'))).toContain('No runs in this range'));
    expect(text(q(el, '.panel.empty'))).toContain('There were 40 in the previous 24 hours');
  });

  it('waits for a token before asking anything', async () => {
    const el = element({ token: '' });
    await vi.waitFor(() => expect(text(q(el, '.panel.notice'))).toContain('Waiting for a token'));
    expect(calls).toHaveLength(0);
    el.token = 'late'; // as a property: stays out of the attributes
    await loaded(el);
    expect(el.getAttribute('token')).toBe('');
    expect(calls[0].headers.Authorization).toBe('Bearer late');
  });

  it('follows the theme attribute', async () => {
    const el = element({ theme: 'dark' });
    await vi.waitFor(() => expect(q(el, '.exectime')?.dataset.scheme).toBe('dark'));
    el.setAttribute('theme', 'light');
    await vi.waitFor(() => expect(q(el, '.exectime').dataset.scheme).toBe('light'));
    el.setAttribute('theme', 'auto'); // matchMedia says light here
    await vi.waitFor(() => expect(q(el, '.exectime').dataset.scheme).toBe('light'));
  });

  it('stops polling when removed from the page', async () => {
    const el = element({ 'refresh-seconds': '5' });
    await loaded(el);
    el.remove();
    await Promise.resolve();
    const n = calls.length;
    await new Promise((r) => setTimeout(r, 50));
    expect(calls.length).toBe(n);
    expect(el.shadowRoot.querySelector('.exectime')).toBeNull();
  });
});

describe('ExectimeStats as a Svelte component', () => {
  it('mounts with props and puts its styles in the document head', async () => {
    const { default: ExectimeStats } = await import('../src/index.js');
    const target = document.createElement('div');
    document.body.append(target);
    const app = mount(ExectimeStats, { target, props: { apiBase: 'https://stats.example', token: 'tok', workflowId: 'wf-a' } });
    await vi.waitFor(() => expect(target.querySelector('[data-stat="runs"]')).not.toBeNull());
    expect(calls.every((c) => c.params.get('workflow_id') === 'wf-a')).toBe(true);
    expect(target.querySelector('button.back')).toBeNull(); // fixed by the host: no way back
    expect([...document.head.querySelectorAll('style')].some((s) => s.textContent.includes('--exectime-bg'))).toBe(true);
    unmount(app);
  });
});
