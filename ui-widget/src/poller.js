// The widget's polling loop as a small state machine, kept free of the DOM so it can be
// tested with a fake fetch and fake timers.
//
// States:    idle ──setView──▶ loading ──200/304──▶ ok ◀──┐
//                                 │                 │     │ refresh every intervalMs
//                                 │                 └─────┘ (304: the data is kept)
//                                 ├──401/403──▶ unauthorized (no more polling until
//                                 │                           setView or refresh)
//                                 └──other failure──▶ error (data kept; retried with
//                                                      backoff, then back to ok)
// A view is one question the widget asks (tenant, workflow, range, status, token): its
// requests are fetched together; at most one load per view is in flight (a tick that
// finds one running is skipped; a new view aborts the old one's). Each request URL
// remembers its last ETag and body, so a 304 costs nothing. While the page is hidden no
// timer runs; when it shows again, a load that fell due meanwhile starts at once.
// A request may be optional (the regressions list, which an older agent does not serve):
// its failure leaves its data null instead of failing the view.

import { describeBadBody, describeFailure, describeNetworkError } from './api.js';

export const STATE = Object.freeze({
  IDLE: 'idle',
  LOADING: 'loading',
  OK: 'ok',
  ERROR: 'error',
  UNAUTHORIZED: 'unauthorized',
});

export const DEFAULT_INTERVAL_MS = 30_000;
export const MAX_BACKOFF_MS = 300_000;

/*
 * ETag and body per request URL, least recently used dropped first. Preset ranges move
 * every minute, so old URLs stop being asked and age out.
 */
export class EtagMemory {
  constructor(size = 32) {
    this.size = size; // most URLs remembered
    this.entries = new Map(); // url → {etag, data}, oldest first
  }

  get(url) {
    const e = this.entries.get(url);
    if (e) {
      this.entries.delete(url);
      this.entries.set(url, e);
    }
    return e ?? null;
  }

  set(url, etag, data) {
    this.entries.delete(url);
    this.entries.set(url, { etag, data });
    while (this.entries.size > this.size) this.entries.delete(this.entries.keys().next().value);
  }

  delete(url) {
    this.entries.delete(url);
  }
}

/**
 * Visibility of a document for the poller: hidden pages are not polled.
 * @param {Document} doc
 */
export function documentVisibility(doc) {
  return {
    isHidden: () => doc.visibilityState === 'hidden' || doc.hidden === true,
    subscribe(callback) {
      doc.addEventListener('visibilitychange', callback);
      return () => doc.removeEventListener('visibilitychange', callback);
    },
  };
}

/**
 * The delay before the next try after `failures` failures in a row: the refresh interval,
 * doubling with each further failure, capped at MAX_BACKOFF_MS (or the interval, if that
 * is longer), and never shorter than the server's Retry-After.
 */
export function backoffDelay(failures, intervalMs, retryAfterMs = null, maxMs = MAX_BACKOFF_MS) {
  const cap = Math.max(maxMs, intervalMs);
  const exp = Math.min(cap, intervalMs * 2 ** Math.max(0, failures - 1));
  return Math.max(exp, retryAfterMs ?? 0);
}

function isAbort(error, signal) {
  return signal.aborted || (error && typeof error === 'object' && error.name === 'AbortError');
}

/**
 * Creates a poller. Nothing happens until setView.
 * @param {object} options
 * @param {typeof fetch} options.fetch the fetch to use
 * @param {(fn: () => void, ms: number) => any} [options.setTimeout]
 * @param {(id: any) => void} [options.clearTimeout]
 * @param {() => number} [options.now] milliseconds since the epoch
 * @param {{isHidden(): boolean, subscribe(cb: () => void): () => void} | null} [options.visibility]
 * @param {number} [options.intervalMs] refresh interval
 * @param {number} [options.maxBackoffMs]
 * @param {(snapshot: object) => void} [options.onUpdate] called with each new snapshot
 * @param {EtagMemory} [options.memory]
 */
export function createPoller(options) {
  const fetchFn = options.fetch;
  const setTimer = options.setTimeout ?? ((fn, ms) => globalThis.setTimeout(fn, ms));
  const clearTimer = options.clearTimeout ?? ((id) => globalThis.clearTimeout(id));
  const now = options.now ?? (() => Date.now());
  const visibility = options.visibility ?? null;
  const maxBackoffMs = options.maxBackoffMs ?? MAX_BACKOFF_MS;
  const onUpdate = options.onUpdate ?? (() => {});
  const memory = options.memory ?? new EtagMemory();
  let intervalMs = options.intervalMs ?? DEFAULT_INTERVAL_MS;

  let view = null; // {key, requests(), apiBase, tenantId}
  let flight = null; // {key, controller} of the load in flight
  let timer = null; // pending tick
  let dueAt = 0; // when the next load is due, kept while hidden
  let failures = 0; // failed loads in a row for this view
  let lastOkAt = 0;
  let stopped = false;
  let snapshot = Object.freeze({
    state: STATE.IDLE,
    key: null,
    data: null, // {current, previous} bodies of the last good load
    error: null, // {kind, status, message} of the last failure
    updatedAt: null, // when data was last confirmed (200 or 304)
    refreshing: false, // a load is in flight
    paused: false, // hidden page: not polling
    failures: 0,
    retryAt: null, // when the next try after a failure happens
  });

  const unsubscribe = visibility ? visibility.subscribe(onVisibilityChange) : () => {};

  function hidden() {
    return visibility ? visibility.isHidden() : false;
  }

  /* The one place the snapshot changes: every transition goes through here. */
  function transition(changes) {
    snapshot = Object.freeze({ ...snapshot, ...changes });
    onUpdate(snapshot);
  }

  function cancelTimer() {
    if (timer !== null) {
      clearTimer(timer);
      timer = null;
    }
  }

  function schedule(delay) {
    cancelTimer();
    dueAt = now() + delay;
    if (stopped || !Number.isFinite(delay)) return; // an infinite interval: refresh() only
    if (hidden()) {
      if (!snapshot.paused) transition({ paused: true });
      return;
    }
    timer = setTimer(tick, delay);
  }

  function tick() {
    timer = null;
    if (hidden()) {
      transition({ paused: true });
      return;
    }
    load();
  }

  function onVisibilityChange() {
    if (stopped || !view) return;
    if (hidden()) {
      cancelTimer();
      if (!snapshot.paused) transition({ paused: true });
      return;
    }
    if (snapshot.paused) transition({ paused: false });
    if (flight || timer !== null || snapshot.state === STATE.UNAUTHORIZED) return;
    const wait = dueAt - now();
    if (wait <= 0) load();
    else if (Number.isFinite(wait)) timer = setTimer(tick, wait);
  }

  /* Fetches one request; answers {data, cached} or {failure} or {aborted}. */
  async function fetchOne(req, signal, v) {
    const remembered = memory.get(req.url);
    const headers = { ...req.headers };
    if (remembered && remembered.etag) headers['If-None-Match'] = remembered.etag;
    let res;
    try {
      res = await fetchFn(req.url, { method: 'GET', headers, signal, cache: 'no-store', credentials: 'omit' });
    } catch (error) {
      if (isAbort(error, signal)) return { aborted: true };
      return { failure: describeNetworkError(error, v.apiBase) };
    }
    try {
      if (res.status === 304) {
        if (remembered) return { data: remembered.data, cached: true };
        return { failure: describeBadBody(v.apiBase) };
      }
      if (res.ok) {
        let body;
        try {
          body = await res.json();
        } catch (error) {
          if (isAbort(error, signal)) return { aborted: true };
          return { failure: describeBadBody(v.apiBase) };
        }
        if (!body || typeof body !== 'object' || !((req.expect ?? 'count') in body)) return { failure: describeBadBody(v.apiBase) };
        const etag = res.headers && res.headers.get ? res.headers.get('ETag') : null;
        if (etag) memory.set(req.url, etag, body);
        else memory.delete(req.url);
        return { data: body, cached: false };
      }
      let body = null;
      try {
        body = await res.json();
      } catch {
        body = null; // error pages from proxies are not JSON; the status says enough
      }
      const retryAfter = res.headers && res.headers.get ? res.headers.get('Retry-After') : null;
      return {
        failure: describeFailure({ status: res.status, body, retryAfter, apiBase: v.apiBase, tenantId: v.tenantId, now: now() }),
      };
    } catch (error) {
      if (isAbort(error, signal)) return { aborted: true };
      return { failure: describeNetworkError(error, v.apiBase) };
    }
  }

  /* Loads the current view unless a load of it is already in flight. */
  async function load() {
    if (stopped || !view) return false;
    if (flight && flight.key === view.key) return false;
    if (flight) flight.controller.abort();
    cancelTimer();
    const v = view;
    const controller = new AbortController();
    const mine = { key: v.key, controller };
    flight = mine;
    // The state stays what it was (loading, ok, error) until the answers are in, so a
    // retry after an error does not flash back to "loading".
    transition({ refreshing: true, paused: false });

    let results;
    let names;
    try {
      const requests = v.requests();
      names = Object.keys(requests);
      results = await Promise.all(names.map((n) => fetchOne(requests[n], controller.signal, v)));
      results = results.map((r, i) => (r.failure && requests[names[i]].optional ? { data: null, cached: false } : r));
    } catch (error) {
      results = [{ failure: describeNetworkError(error, v.apiBase) }];
      names = ['current'];
    }
    if (flight !== mine) return false; // superseded by another view or stopped
    flight = null;
    if (controller.signal.aborted || results.some((r) => r.aborted)) {
      transition({ refreshing: false });
      return false;
    }

    const failed = results.find((r) => r.failure && r.failure.state === 'unauthorized') ?? results.find((r) => r.failure);
    if (failed) {
      const { state, kind, status, message, retryAfterMs } = failed.failure;
      const error = { kind, status, message };
      if (state === 'unauthorized') {
        failures = 0;
        cancelTimer();
        transition({ state: STATE.UNAUTHORIZED, data: null, error, refreshing: false, failures: 0, retryAt: null });
        return true;
      }
      failures += 1;
      const delay = backoffDelay(failures, intervalMs, retryAfterMs, maxBackoffMs);
      transition({ state: STATE.ERROR, error, refreshing: false, failures, retryAt: now() + delay });
      schedule(delay);
      return true;
    }

    failures = 0;
    lastOkAt = now();
    const old = snapshot.data;
    const unchanged = old && names.every((n, i) => old[n] === results[i].data);
    const data = unchanged ? old : Object.fromEntries(names.map((n, i) => [n, results[i].data]));
    transition({ state: STATE.OK, data, error: null, updatedAt: lastOkAt, refreshing: false, failures: 0, retryAt: null });
    schedule(intervalMs);
    return true;
  }

  return {
    /** The latest snapshot. */
    get snapshot() {
      return snapshot;
    },

    /**
     * Shows a view: {key, requests() → {name: {url, headers, expect?, optional?}}, apiBase,
     * tenantId} (expect: a key the answer's JSON must have, "count" by default). The same
     * key again only updates the request builder; a new key aborts the old view's load
     * and starts over (immediately, or when the page becomes visible). null stops polling.
     */
    setView(next) {
      if (stopped) return;
      if (next && view && next.key === view.key) {
        view = next;
        return;
      }
      if (flight) {
        flight.controller.abort();
        flight = null;
      }
      cancelTimer();
      failures = 0;
      view = next;
      if (!next) {
        transition({ state: STATE.IDLE, key: null, data: null, error: null, updatedAt: null, refreshing: false, paused: false, failures: 0, retryAt: null });
        return;
      }
      transition({ state: STATE.LOADING, key: next.key, data: null, error: null, updatedAt: null, refreshing: false, paused: false, failures: 0, retryAt: null });
      if (hidden()) {
        dueAt = now();
        transition({ paused: true });
        return;
      }
      load();
    },

    /** Loads now (a "try again" or "refresh" button); skipped while a load is in flight. */
    refresh() {
      return load();
    },

    /** Changes the refresh interval; a pending refresh is moved to match. */
    setIntervalMs(ms) {
      if (!(ms > 0) || ms === intervalMs) return;
      intervalMs = ms;
      if (!flight && view && snapshot.state === STATE.OK && failures === 0) {
        schedule(Math.max(0, lastOkAt + intervalMs - now()));
      }
    },

    /** Stops for good: aborts the load in flight, drops the timer and the listener. */
    stop() {
      stopped = true;
      if (flight) {
        flight.controller.abort();
        flight = null;
      }
      cancelTimer();
      unsubscribe();
    },
  };
}
