import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { EtagMemory, STATE, backoffDelay, createPoller } from '../src/poller.js';

const INTERVAL = 30_000;
const body = (count, extra = {}) => ({ count, failed: 0, avg_ms: 10, ...extra });

function json(status, data, headers = {}) {
  return new Response(JSON.stringify(data), { status, headers: { 'Content-Type': 'application/json', ...headers } });
}

/* A fake API: answers each request with the next queued answer for its name (the
 * `n=` query parameter), records every call, and can hold answers back. */
function fakeApi() {
  const queues = { current: [], previous: [], extra: [] };
  const calls = [];
  const held = [];
  let holding = false;
  const fetch = vi.fn((url, init) => {
    const name = new URL(url).searchParams.get('n');
    calls.push({ name, url, headers: init.headers, signal: init.signal });
    const next = queues[name].length > 1 ? queues[name].shift() : queues[name][0];
    const answer = () => (typeof next === 'function' ? next(init) : next.clone());
    if (!holding) return Promise.resolve().then(answer);
    return new Promise((resolve, reject) => {
      held.push(() => Promise.resolve().then(answer).then(resolve, reject));
      init.signal.addEventListener('abort', () => reject(new DOMException('aborted', 'AbortError')));
    });
  });
  return {
    fetch,
    calls,
    answer(name, ...responses) {
      queues[name] = responses;
    },
    both(response) {
      queues.current = [response];
      queues.previous = [response];
    },
    hold() {
      holding = true;
    },
    release() {
      holding = false;
      held.splice(0).forEach((go) => go());
    },
  };
}

function fakeVisibility(hidden = false) {
  const listeners = new Set();
  return {
    hidden,
    isHidden() {
      return this.hidden;
    },
    subscribe(cb) {
      listeners.add(cb);
      return () => listeners.delete(cb);
    },
    set(value) {
      this.hidden = value;
      listeners.forEach((cb) => cb());
    },
  };
}

function view(key = 'v1', extra = {}) {
  return {
    key,
    apiBase: 'https://s.example',
    tenantId: 't1',
    requests: () => ({
      current: { url: `https://s.example/api?n=current&k=${key}`, headers: { Authorization: 'Bearer x' } },
      previous: { url: `https://s.example/api?n=previous&k=${key}`, headers: { Authorization: 'Bearer x' } },
    }),
    ...extra,
  };
}

let api;
let visibility;
let updates;
let poller;

function start(options = {}) {
  poller = createPoller({
    fetch: api.fetch,
    setTimeout: (fn, ms) => setTimeout(fn, ms),
    clearTimeout: (id) => clearTimeout(id),
    visibility,
    intervalMs: INTERVAL,
    onUpdate: (s) => updates.push(s),
    ...options,
  });
  return poller;
}

/* Lets pending promise callbacks (the fake fetch, res.json()) run. */
const settle = () => vi.advanceTimersByTimeAsync(0);

beforeEach(() => {
  vi.useFakeTimers();
  vi.setSystemTime(Date.parse('2026-11-21T14:00:00Z'));
  api = fakeApi();
  visibility = fakeVisibility(false);
  updates = [];
});

afterEach(() => {
  poller?.stop();
  vi.useRealTimers();
});

describe('loading a view', () => {
  it('starts idle and does nothing until a view is set', async () => {
    start();
    await vi.advanceTimersByTimeAsync(5 * INTERVAL);
    expect(poller.snapshot.state).toBe(STATE.IDLE);
    expect(api.fetch).not.toHaveBeenCalled();
  });

  it('goes from loading to ok with both periods', async () => {
    api.answer('current', json(200, body(5), { ETag: '"c1"' }));
    api.answer('previous', json(200, body(4), { ETag: '"p1"' }));
    start().setView(view());
    expect(poller.snapshot.state).toBe(STATE.LOADING);
    await settle();
    const s = poller.snapshot;
    expect(s.state).toBe(STATE.OK);
    expect(s.data.current.count).toBe(5);
    expect(s.data.previous.count).toBe(4);
    expect(s.updatedAt).toBe(Date.now());
    expect(s.refreshing).toBe(false);
    expect(api.calls).toHaveLength(2);
    expect(api.calls[0].headers.Authorization).toBe('Bearer x');
    expect(api.calls[0].headers).not.toHaveProperty('If-None-Match');
  });

  it('refreshes every interval', async () => {
    api.both(json(200, body(1)));
    start().setView(view());
    await settle();
    expect(api.calls).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(INTERVAL - 1);
    expect(api.calls).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(api.calls).toHaveLength(4);
    await vi.advanceTimersByTimeAsync(INTERVAL);
    expect(api.calls).toHaveLength(6);
  });
});

describe('ETags', () => {
  it('sends If-None-Match and keeps the same data on 304', async () => {
    api.answer('current', json(200, body(5), { ETag: '"c1"' }), new Response(null, { status: 304 }));
    api.answer('previous', json(200, body(4), { ETag: '"p1"' }), new Response(null, { status: 304 }));
    start().setView(view());
    await settle();
    const first = poller.snapshot;
    await vi.advanceTimersByTimeAsync(INTERVAL);
    const second = poller.snapshot;
    expect(api.calls[2].headers['If-None-Match']).toBe('"c1"');
    expect(api.calls[3].headers['If-None-Match']).toBe('"p1"');
    expect(second.state).toBe(STATE.OK);
    expect(second.data).toBe(first.data); // same object: nothing to redraw
    expect(second.updatedAt).toBe(first.updatedAt + INTERVAL);
  });

  it('mixes a 304 for one request with new data for the other', async () => {
    api.answer('current', json(200, body(5), { ETag: '"c1"' }), json(200, body(6), { ETag: '"c2"' }));
    api.answer('previous', json(200, body(4), { ETag: '"p1"' }), new Response(null, { status: 304 }));
    start().setView(view());
    await settle();
    const previous = poller.snapshot.data.previous;
    await vi.advanceTimersByTimeAsync(INTERVAL);
    expect(poller.snapshot.data.current.count).toBe(6);
    expect(poller.snapshot.data.previous).toBe(previous);
  });

  it('remembers ETags per request URL, forgetting the least recently used', () => {
    const m = new EtagMemory(2);
    m.set('a', '"1"', 1);
    m.set('b', '"2"', 2);
    m.get('a');
    m.set('c', '"3"', 3);
    expect(m.get('b')).toBeNull();
    expect(m.get('a')).toEqual({ etag: '"1"', data: 1 });
    expect(m.get('c')).toEqual({ etag: '"3"', data: 3 });
  });

  it('does not send an ETag to another view', async () => {
    api.both(json(200, body(1), { ETag: '"same"' }));
    start().setView(view('v1'));
    await settle();
    poller.setView(view('v2'));
    await settle();
    expect(api.calls[2].url).toContain('k=v2');
    expect(api.calls[2].headers).not.toHaveProperty('If-None-Match');
  });
});

describe('hidden pages', () => {
  it('pauses while the document is hidden and resumes at once when it is due', async () => {
    api.both(json(200, body(1)));
    start().setView(view());
    await settle();
    visibility.set(true);
    expect(poller.snapshot.paused).toBe(true);
    await vi.advanceTimersByTimeAsync(10 * INTERVAL);
    expect(api.calls).toHaveLength(2);
    visibility.set(false);
    await settle();
    expect(api.calls).toHaveLength(4);
    expect(poller.snapshot.paused).toBe(false);
  });

  it('waits out the rest of the interval when shown again before the refresh is due', async () => {
    api.both(json(200, body(1)));
    start().setView(view());
    await settle();
    await vi.advanceTimersByTimeAsync(10_000);
    visibility.set(true);
    await vi.advanceTimersByTimeAsync(5_000);
    visibility.set(false);
    await settle();
    expect(api.calls).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(INTERVAL - 15_000);
    expect(api.calls).toHaveLength(4);
  });

  it('does not load a view set while hidden until the page shows', async () => {
    visibility = fakeVisibility(true);
    api.both(json(200, body(1)));
    start().setView(view());
    await vi.advanceTimersByTimeAsync(5 * INTERVAL);
    expect(api.fetch).not.toHaveBeenCalled();
    expect(poller.snapshot).toMatchObject({ state: STATE.LOADING, paused: true });
    visibility.set(false);
    await settle();
    expect(poller.snapshot.state).toBe(STATE.OK);
  });

  it('lets a load that was in flight finish, then stays paused', async () => {
    api.both(json(200, body(1)));
    api.hold();
    start().setView(view());
    visibility.set(true);
    api.release();
    await settle();
    expect(poller.snapshot).toMatchObject({ state: STATE.OK, paused: true });
    await vi.advanceTimersByTimeAsync(3 * INTERVAL);
    expect(api.calls).toHaveLength(2);
  });
});

describe('one request per view in flight', () => {
  it('skips a refresh while the view is loading', async () => {
    api.both(json(200, body(1)));
    api.hold();
    start().setView(view());
    expect(api.calls).toHaveLength(2);
    expect(await poller.refresh()).toBe(false);
    expect(await poller.refresh()).toBe(false);
    expect(api.calls).toHaveLength(2);
    api.release();
    await settle();
    expect(poller.snapshot.state).toBe(STATE.OK);
  });

  it('schedules no tick while a slow answer is pending', async () => {
    api.both(json(200, body(1)));
    start().setView(view());
    await settle();
    api.hold();
    await vi.advanceTimersByTimeAsync(INTERVAL); // second load starts and hangs
    expect(api.calls).toHaveLength(4);
    expect(poller.snapshot.refreshing).toBe(true);
    await vi.advanceTimersByTimeAsync(5 * INTERVAL);
    expect(api.calls).toHaveLength(4);
    api.release();
    await settle();
    expect(poller.snapshot).toMatchObject({ state: STATE.OK, refreshing: false });
  });

  it('aborts the old view when a new one is set, and ignores its late answer', async () => {
    api.answer('current', json(200, body(1)));
    api.answer('previous', json(200, body(1)));
    api.hold();
    start().setView(view('v1'));
    const oldSignal = api.calls[0].signal;
    api.answer('current', json(200, body(2)));
    api.answer('previous', json(200, body(2)));
    poller.setView(view('v2'));
    expect(oldSignal.aborted).toBe(true);
    api.release();
    await settle();
    expect(poller.snapshot.key).toBe('v2');
    expect(poller.snapshot.data.current.count).toBe(2);
  });

  it('keeps polling when the same view is set again', async () => {
    api.both(json(200, body(1)));
    start().setView(view('v1'));
    await settle();
    poller.setView(view('v1'));
    await settle();
    expect(api.calls).toHaveLength(2);
    expect(poller.snapshot.state).toBe(STATE.OK);
  });
});

describe('rejected tokens', () => {
  it('goes to unauthorized on 401 and stops polling', async () => {
    api.both(json(401, { error: { code: 'unauthorized', message: 'token expired' } }));
    start().setView(view());
    await settle();
    expect(poller.snapshot.state).toBe(STATE.UNAUTHORIZED);
    expect(poller.snapshot.error).toMatchObject({ kind: 'token_rejected', status: 401 });
    expect(poller.snapshot.error.message).toContain('token expired');
    expect(poller.snapshot.data).toBeNull();
    await vi.advanceTimersByTimeAsync(20 * INTERVAL);
    expect(api.calls).toHaveLength(2);
  });

  it('drops the data it had when the token is later rejected', async () => {
    api.both(json(200, body(1)));
    start().setView(view());
    await settle();
    api.both(json(401, {}));
    await vi.advanceTimersByTimeAsync(INTERVAL);
    expect(poller.snapshot).toMatchObject({ state: STATE.UNAUTHORIZED, data: null });
  });

  it('names the tenant on 403', async () => {
    api.answer('current', json(403, { error: { code: 'forbidden' } }));
    api.answer('previous', json(200, body(1)));
    start().setView(view());
    await settle();
    expect(poller.snapshot.state).toBe(STATE.UNAUTHORIZED);
    expect(poller.snapshot.error.message).toContain('t1');
  });

  it('tries again on refresh, and with a new token (a new view)', async () => {
    api.both(json(401, {}));
    start().setView(view('old-token'));
    await settle();
    api.both(json(200, body(3)));
    await poller.refresh();
    expect(poller.snapshot.state).toBe(STATE.OK);
    api.both(json(401, {}));
    poller.setView(view('other'));
    await settle();
    api.both(json(200, body(4)));
    poller.setView(view('new-token'));
    await settle();
    expect(poller.snapshot).toMatchObject({ state: STATE.OK, key: 'new-token' });
  });
});

describe('errors and backoff', () => {
  it('backs off exponentially up to the cap', () => {
    expect([1, 2, 3, 4, 5, 6, 7].map((n) => backoffDelay(n, INTERVAL))).toEqual([
      30_000, 60_000, 120_000, 240_000, 300_000, 300_000, 300_000,
    ]);
    expect(backoffDelay(1, INTERVAL, 90_000)).toBe(90_000); // Retry-After wins when longer
    expect(backoffDelay(3, 600_000)).toBe(600_000); // never faster than the interval
  });

  it('keeps the data through failures and retries with growing delays', async () => {
    api.both(json(200, body(7)));
    start().setView(view());
    await settle();
    const data = poller.snapshot.data;
    api.both(() => Promise.reject(new TypeError('Failed to fetch')));
    const times = [];
    const before = api.calls.length;
    let t = 0;
    for (let i = 0; i < 4; i++) {
      // next try is due at retryAt (or the interval for the first failure)
      const wait = i === 0 ? INTERVAL : poller.snapshot.retryAt - Date.now();
      t += wait;
      times.push(wait);
      await vi.advanceTimersByTimeAsync(wait);
      expect(poller.snapshot.state).toBe(STATE.ERROR);
      expect(poller.snapshot.data).toBe(data);
      expect(poller.snapshot.failures).toBe(i + 1);
    }
    expect(times).toEqual([30_000, 30_000, 60_000, 120_000]);
    expect(api.calls.length - before).toBe(8);
    expect(poller.snapshot.error).toMatchObject({ kind: 'network' });
    // and it recovers
    api.both(json(200, body(8)));
    await vi.advanceTimersByTimeAsync(poller.snapshot.retryAt - Date.now());
    expect(poller.snapshot).toMatchObject({ state: STATE.OK, failures: 0, error: null });
    expect(poller.snapshot.data.current.count).toBe(8);
    expect(t).toBe(240_000);
  });

  it('waits as long as Retry-After says on 503', async () => {
    api.both(json(503, { error: { code: 'unavailable' } }, { 'Retry-After': '120' }));
    start().setView(view());
    await settle();
    expect(poller.snapshot).toMatchObject({ state: STATE.ERROR, data: null });
    expect(poller.snapshot.error.kind).toBe('unavailable');
    expect(poller.snapshot.retryAt - Date.now()).toBe(120_000);
    api.both(json(200, body(1)));
    await vi.advanceTimersByTimeAsync(119_999);
    expect(api.calls).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(poller.snapshot.state).toBe(STATE.OK);
  });

  it('stays in error (not loading) while a retry is in flight', async () => {
    api.both(json(500, {}));
    start().setView(view());
    await settle();
    api.hold();
    poller.refresh();
    expect(poller.snapshot).toMatchObject({ state: STATE.ERROR, refreshing: true });
    api.release();
    await settle();
  });

  it('checks an answer for the key its request expects, and leaves an optional failure null', async () => {
    const withExtra = (expect) =>
      view('v1', {
        requests: () => ({
          ...view().requests(),
          extra: { url: 'https://s.example/api?n=extra', headers: {}, expect, optional: true },
        }),
      });
    api.both(json(200, body(5)));
    api.answer('extra', json(200, { regressions: [] }, { ETag: '"r1"' }));
    start().setView(withExtra('regressions'));
    await settle();
    expect(poller.snapshot.state).toBe(STATE.OK);
    expect(poller.snapshot.data.extra).toEqual({ regressions: [] });
    // An answer without the expected key, a 404 and a 401 of the optional request: the
    // view still shows, without it.
    for (const answer of [json(200, body(1)), json(404, { error: { message: 'no' } }), json(401, {})]) {
      poller.stop();
      api.answer('extra', answer);
      start().setView(withExtra('regressions'));
      await settle();
      expect(poller.snapshot.state).toBe(STATE.OK);
      expect(poller.snapshot.data.current.count).toBe(5);
      expect(poller.snapshot.data.extra).toBeNull();
    }
  });

  it('reports answers that are not statistics as errors', async () => {
    api.both(new Response('<html>hello</html>', { status: 200, headers: { 'Content-Type': 'text/html' } }));
    start().setView(view());
    await settle();
    expect(poller.snapshot.state).toBe(STATE.ERROR);
    expect(poller.snapshot.error.kind).toBe('bad_body');
  });
});

describe('interval and stop', () => {
  it('moves the pending refresh when the interval changes', async () => {
    api.both(json(200, body(1)));
    start().setView(view());
    await settle();
    poller.setIntervalMs(5_000);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(api.calls).toHaveLength(4);
  });

  it('refreshes only on demand with an infinite interval', async () => {
    api.both(json(200, body(1)));
    start({ intervalMs: Infinity }).setView(view());
    await settle();
    await vi.advanceTimersByTimeAsync(3_600_000);
    expect(api.calls).toHaveLength(2);
    await poller.refresh();
    expect(api.calls).toHaveLength(4);
    poller.setIntervalMs(INTERVAL); // automatic refresh back on
    await vi.advanceTimersByTimeAsync(INTERVAL);
    expect(api.calls).toHaveLength(6);
  });

  it('stops for good: aborts the load in flight and never polls again', async () => {
    api.both(json(200, body(1)));
    api.hold();
    start().setView(view());
    const signal = api.calls[0].signal;
    poller.stop();
    expect(signal.aborted).toBe(true);
    api.release();
    await vi.advanceTimersByTimeAsync(10 * INTERVAL);
    expect(api.calls).toHaveLength(2);
    visibility.set(true);
    visibility.set(false);
    await settle();
    expect(api.calls).toHaveLength(2);
  });

  it('returns to idle when the view is cleared', async () => {
    api.both(json(200, body(1)));
    start().setView(view());
    await settle();
    poller.setView(null);
    expect(poller.snapshot).toMatchObject({ state: STATE.IDLE, data: null });
    await vi.advanceTimersByTimeAsync(10 * INTERVAL);
    expect(api.calls).toHaveLength(2);
  });
});
