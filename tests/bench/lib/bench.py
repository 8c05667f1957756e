#!/usr/bin/env python3
"""tests/bench/lib/bench.py — helpers of tests/bench/run (load, measurement, report).

Subcommands (each prints one JSON object on stdout; progress goes to stderr):

  probe      publish N generated events into a throwaway stream as fast as Redis takes
             them (pipelined XADD, one event per entry) and report the publisher's own rate
  burst      generate N events in memory, then publish them pipelined and wait until the
             agent's exectime_events_inserted_total has grown by N: publish start to visible
  prefill    publish N events and exit (the stream is then consumed by an agent started later)
  wait       wait until exectime_events_inserted_total has grown by N since --t0-count,
             measuring from --t0 (wall clock) — the prefilled-stream variant
  steady     publish at a fixed rate for a fixed time with marker events, and sample their
             publish-to-visible latency by polling the raw table
  naive      time a SQL statement (EXPLAIN ANALYZE's Execution Time), median of --reps
  sizes      bytes stored per run (raw table partitions, rollup tables)
  report     read the results (JSON lines), print the table, write bench-results.json

The generator follows exectime-emit's: tenants tenant-1..T picked with Zipf skew s = 0.5,
workflows wf-1..W with Zipf s = 1.0 (wf-1 gets 1/H(W) of the runs, 13% at W = 1,000),
log-normal durations with a per-workflow median (50 ms to 5 s, log-uniform) and spread,
1% heavy tail (x20), 3% failed, 1% cancelled, 1% timeout.
"""
import argparse
import bisect
import json
import math
import os
import random
import re
import resource
import selectors
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import msgpack


def log(msg):
    print(f"    {msg}", file=sys.stderr, flush=True)


def die(msg):
    print(f"error: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


def now_us():
    return time.time_ns() // 1000


# --- load generator -----------------------------------------------------------------------

def zipf_cdf(n, s):
    w = [1.0 / (k ** s) for k in range(1, n + 1)]
    tot = sum(w)
    acc, cdf = 0.0, []
    for x in w:
        acc += x
        cdf.append(acc / tot)
    cdf[-1] = 1.0
    return cdf


class Generator:
    def __init__(self, tenants, workflows, seed, spread_days=0.0, failure_rate=0.03):
        self.rng = random.Random(seed)
        self.seed = seed
        self.tenants = tenants
        self.workflows = workflows
        self.tcdf = zipf_cdf(tenants, 0.5)
        self.wcdf = zipf_cdf(workflows, 1.0)
        self.spread_us = int(spread_days * 86400e6)
        self.f = failure_rate
        self.profiles = {}
        self.counter = 0
        self.tnames = [f"tenant-{t}" for t in range(1, tenants + 1)]
        self.wnames = [f"wf-{w}" for w in range(1, workflows + 1)]

    def profile(self, t, w):
        key = (t, w)
        p = self.profiles.get(key)
        if p is None:
            r = random.Random(self.seed * 1000003 + t * 100003 + w)
            lo, hi = math.log(50000.0), math.log(5000000.0)
            p = (math.exp(lo + r.random() * (hi - lo)), 0.3 + 0.5 * r.random())
            self.profiles[key] = p
        return p

    def event(self, finished_us, run_id=None, tenant=None, workflow=None):
        rng = self.rng
        t = bisect.bisect_right(self.tcdf, rng.random()) if tenant is None else tenant
        w = bisect.bisect_right(self.wcdf, rng.random()) if workflow is None else workflow
        t = min(t, self.tenants - 1)
        w = min(w, self.workflows - 1)
        median, sigma = self.profile(t, w)
        d = median * math.exp(sigma * rng.gauss(0.0, 1.0))
        if rng.random() < 0.01:
            d *= 20.0
        u = rng.random()
        f = self.f
        status = "success"
        if u < f:
            status = "failed"
            d *= 0.2 + 0.8 * rng.random()
        elif u < f * 4 / 3:
            status = "cancelled"
            d *= rng.random()
        elif u < f * 5 / 3:
            status = "timeout"
            d = median * 10.0
        d = int(min(max(d, 1.0), 2592000e6))
        if self.spread_us:
            finished_us -= int(rng.random() * self.spread_us)
        self.counter += 1
        if run_id is None:
            run_id = f"{self.seed}-{self.counter}"
        return msgpack.packb({"v": 1, "tenant_id": self.tnames[t], "workflow_id": self.wnames[w],
                              "run_id": run_id, "status": status, "finished_at": finished_us,
                              "duration_us": d})


def xadd(stream_b, payload):
    """RESP of XADD <stream> * event <payload>."""
    return b"*5\r\n$4\r\nXADD\r\n$%d\r\n%s\r\n$1\r\n*\r\n$5\r\nevent\r\n$%d\r\n%s\r\n" % (
        len(stream_b), stream_b, len(payload), payload)


# --- Redis: a raw pipelining connection ----------------------------------------------------

def parse_redis_url(url):
    m = re.match(r"^redis://(?:([^:@/]*)(?::([^@/]*))?@)?([^:/]+)(?::(\d+))?(?:/(\d+))?/?$", url)
    if not m:
        die(f"cannot parse the Redis URL {url!r} (expected redis://host:port[/db])")
    user, password, host, port, db = m.groups()
    return host, int(port or 6379), user, password, int(db or 0)


class Replies:
    """Counts XADD replies (a bulk string: two CRLFs) and spots error replies ("\\r\\n-")."""

    def __init__(self):
        self.crlf = 0
        self.tail = b""
        self.first = True

    def feed(self, data):
        if self.first and data:
            if data[:1] == b"-":
                die(f"Redis refused a command: {data[:200]!r}")
            self.first = False
        chunk = self.tail + data
        if b"\r\n-" in chunk:
            i = chunk.index(b"\r\n-")
            die(f"Redis refused a command: {chunk[i + 2:i + 200]!r}")
        self.crlf += data.count(b"\r\n") + (1 if self.tail[-1:] == b"\r" and data[:1] == b"\n" else 0)
        self.tail = chunk[-2:]

    @property
    def replies(self):
        return self.crlf // 2


def redis_connect(url):
    host, port, user, password, db = parse_redis_url(url)
    try:
        s = socket.create_connection((host, port), timeout=10)
    except OSError as e:
        die(f"cannot connect to Redis at {host}:{port}: {e}")
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def cmd(*args):
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = a.encode() if isinstance(a, str) else a
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        s.sendall(out)
        r = s.recv(65536)
        if r.startswith(b"-"):
            die(f"Redis: {r.decode(errors='replace').strip()}")
        return r

    if password:
        cmd("AUTH", *( [user, password] if user else [password]))
    if db:
        cmd("SELECT", str(db))
    return s


def send_all(sock, buf, expect):
    """Writes buf (pipelined commands) while reading replies; returns when all `expect` came."""
    sock.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(sock, selectors.EVENT_READ | selectors.EVENT_WRITE)
    view = memoryview(buf)
    off = 0
    rep = Replies()
    while rep.replies < expect:
        for key, ev in sel.select(timeout=30):
            if ev & selectors.EVENT_WRITE and off < len(view):
                try:
                    off += sock.send(view[off:off + (1 << 20)])
                except BlockingIOError:
                    pass
                if off >= len(view):
                    sel.modify(sock, selectors.EVENT_READ)
            if ev & selectors.EVENT_READ:
                data = sock.recv(1 << 20)
                if not data:
                    die("Redis closed the connection while publishing")
                rep.feed(data)
    sel.unregister(sock)
    sock.setblocking(True)


def generate(n, tenants, workflows, seed, spread_days, stream):
    g = Generator(tenants, workflows, seed, spread_days)
    sb = stream.encode()
    t = now_us()
    parts = []
    for i in range(n):
        if i % 20000 == 0:
            t = now_us()  # "finished now": stamped while generating, seconds before publishing
        parts.append(xadd(sb, g.event(t)))
    return b"".join(parts)


# --- process CPU --------------------------------------------------------------------------

TCK = os.sysconf("SC_CLK_TCK")


def proc_stat(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
    except OSError:
        return None
    fields = s[s.rindex(")") + 2:].split()
    # fields[0] is state (field 3); utime 14, stime 15, cutime 16, cstime 17, ppid 4
    return {"ppid": int(fields[1]), "utime": int(fields[11]), "stime": int(fields[12]),
            "cutime": int(fields[13]), "cstime": int(fields[14])}


def cpu_agent(pid):
    st = proc_stat(pid)
    return 0.0 if st is None else (st["utime"] + st["stime"]) / TCK


def cpu_cluster(postmaster):
    """CPU seconds of a PostgreSQL cluster: the postmaster, its live children, and the
    children that exited (the postmaster reaps them: its cutime + cstime)."""
    if not postmaster:
        return 0.0
    st = proc_stat(postmaster)
    if st is None:
        return 0.0
    total = st["utime"] + st["stime"] + st["cutime"] + st["cstime"]
    for d in os.listdir("/proc"):
        if d.isdigit():
            c = proc_stat(int(d))
            if c is not None and c["ppid"] == postmaster:
                total += c["utime"] + c["stime"]
    return total / TCK


def vm_hwm_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


# --- the agent's counter --------------------------------------------------------------------

def inserted(metrics_url):
    try:
        with urllib.request.urlopen(metrics_url, timeout=5) as r:
            body = r.read().decode()
    except OSError as e:
        return None, str(e)
    m = re.search(r"^exectime_events_inserted_total (\d+)", body, re.M)
    if not m:
        die(f"{metrics_url} has no exectime_events_inserted_total")
    return int(m.group(1)), None


def wait_inserted(metrics_url, target, agent_pid, stall_s=60.0, poll_s=0.05):
    """Polls until inserted >= target; returns the wall time at which it was seen."""
    last, last_change = -1, time.time()
    while True:
        n, err = inserted(metrics_url)
        t = time.time()
        if n is not None and n >= target:
            return t, n
        if agent_pid and proc_stat(agent_pid) is None:
            die("the agent exited during the measurement (see its log)")
        if n != last:
            last, last_change = n, t
        elif t - last_change > stall_s:
            dead = ""
            try:
                with urllib.request.urlopen(metrics_url, timeout=5) as r:
                    m = re.search(r"^exectime_dead_lettered_total (\d+)", r.read().decode(), re.M)
                    dead = f", {m.group(1)} entries dead-lettered" if m else ""
            except OSError:
                pass
            die(f"no progress for {stall_s:.0f} s: {n} of {target} events inserted"
                f" ({err or 'agent answering'}{dead}; see the agent's log)")
        time.sleep(poll_s)


def snapshot(args):
    return {"t": time.time(), "agent_cpu": cpu_agent(args.agent_pid),
            "pg_cpu": cpu_cluster(args.postmaster)}


def resources(before, after, n, agent_pid):
    d = lambda k: after[k] - before[k]
    return {"agent_cpu_s": round(d("agent_cpu"), 3), "pg_cpu_s": round(d("pg_cpu"), 3),
            "agent_cpu_s_per_m": round(d("agent_cpu") / n * 1e6, 2),
            "pg_cpu_s_per_m": round(d("pg_cpu") / n * 1e6, 2),
            "agent_vmhwm_kib": vm_hwm_kib(agent_pid)}


# --- subcommands ----------------------------------------------------------------------------

def cmd_probe(args):
    t0 = time.time()
    buf = generate(args.count, args.tenants, args.workflows, args.seed, args.spread_days, args.stream)
    gen_s = time.time() - t0
    sock = redis_connect(args.redis_url)
    t0 = time.time()
    send_all(sock, buf, args.count)
    secs = time.time() - t0
    sock.close()
    print(json.dumps({"events": args.count, "generate_s": round(gen_s, 3), "publish_s": round(secs, 3),
                      "events_per_s": round(args.count / secs), "bytes_per_entry": round(len(buf) / args.count)}))


def cmd_prefill(args):
    buf = generate(args.count, args.tenants, args.workflows, args.seed, args.spread_days, args.stream)
    sock = redis_connect(args.redis_url)
    t0 = time.time()
    send_all(sock, buf, args.count)
    secs = time.time() - t0
    sock.close()
    print(json.dumps({"events": args.count, "publish_s": round(secs, 3)}))


def cmd_burst(args):
    buf = generate(args.count, args.tenants, args.workflows, args.seed, args.spread_days, args.stream)
    base, err = inserted(args.metrics_url)
    if base is None:
        die(f"cannot read {args.metrics_url}: {err}")
    sock = redis_connect(args.redis_url)
    before = snapshot(args)
    send_all(sock, buf, args.count)
    pub_s = time.time() - before["t"]
    sock.close()
    t_vis, n = wait_inserted(args.metrics_url, base + args.count, args.agent_pid)
    after = snapshot(args)
    secs = t_vis - before["t"]
    out = {"events": args.count, "publish_s": round(pub_s, 3), "seconds": round(secs, 3),
           "events_per_s": round(args.count / secs)}
    out.update(resources(before, after, args.count, args.agent_pid))
    print(json.dumps(out))


def cmd_wait(args):
    before = {"t": args.t0, "agent_cpu": 0.0, "pg_cpu": args.t0_pg_cpu}
    t_vis, n = wait_inserted(args.metrics_url, args.count, args.agent_pid)
    after = snapshot(args)
    secs = t_vis - args.t0
    out = {"events": args.count, "seconds": round(secs, 3), "events_per_s": round(args.count / secs)}
    out.update(resources(before, after, args.count, args.agent_pid))
    print(json.dumps(out))


def cmd_pgcpu(args):
    print(f"{time.time():.6f} {cpu_cluster(args.postmaster):.3f}")


class Psql:
    """One long-lived psql process: a query costs a round trip, not a fork."""

    def __init__(self, url):
        self.p = subprocess.Popen(["psql", "-qAtX", url], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True, bufsize=1)

    def query(self, sql):
        self.p.stdin.write(sql.rstrip().rstrip(";") + ";\n\\echo __END__\n")
        self.p.stdin.flush()
        rows = []
        while True:
            line = self.p.stdout.readline()
            if not line:
                die("psql exited while polling (see above)")
            line = line.rstrip("\n")
            if line == "__END__":
                return rows
            rows.append(line)

    def close(self):
        self.p.stdin.close()
        self.p.wait()


def cmd_steady(args):
    """Publishes --rate events/s for --seconds: every 10 ms the events due so far, each
    finished "now" (its finished_at is its publish time, its run_id "<publish µs>-<n>").
    Every 100 ms one of them is a marker (workflow wf-1, run_id "mark-<seq>"), whose publish
    time is kept. A poller thread asks the raw table every --poll-ms for the markers not
    seen yet (primary-key lookups through one psql session); a marker's visibility time is
    the start of the first query that returned it (that query's snapshot saw its commit),
    so a latency is late by at most one poll period."""
    g = Generator(args.tenants, args.workflows, args.seed)
    sb = args.stream.encode()
    marks = {}      # seq -> publish wall time (s)
    seen = {}       # seq -> latency (s)
    lock = threading.Lock()
    done = threading.Event()
    start_us = now_us()
    polls = []

    def poller():
        db = Psql(args.db_url)
        db.query("SET application_name = 'exectime-bench-poller'")
        while True:
            with lock:
                pending = [k for k in marks if k not in seen]
            if done.is_set() and not pending:
                break
            if pending:
                names = ",".join(f"'mark-{k}'" for k in pending)
                t = time.time()
                rows = db.query(
                    "SELECT run_id FROM exectime.execution_time_statistics WHERE tenant_id = 'tenant-1'"
                    f" AND run_id IN ({names}) AND finished_at >= to_timestamp({start_us / 1e6})")
                polls.append(time.time() - t)
                with lock:
                    for r in rows:
                        k = int(r.split("-")[1])
                        seen.setdefault(k, t - marks[k])
            if stop_poll.is_set():
                break
            time.sleep(args.poll_ms / 1000.0)
        db.close()

    stop_poll = threading.Event()
    base, err = inserted(args.metrics_url)
    if base is None:
        die(f"cannot read {args.metrics_url}: {err}")
    sock = redis_connect(args.redis_url)
    sock.setblocking(False)
    th = threading.Thread(target=poller, daemon=True)
    th.start()
    before = snapshot(args)
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.time()
    sent = 0
    seq = 0
    next_mark = t0
    rep = Replies()
    out = bytearray()
    behind_max = 0
    while True:
        t = time.time()
        el = t - t0
        if el >= args.seconds:
            break
        due = int(el * args.rate) - sent
        if due > 0:
            us = now_us()
            parts = []
            for i in range(due):
                parts.append(xadd(sb, g.event(us, run_id=f"{us}-{sent + i}")))
            if t >= next_mark:
                parts.append(xadd(sb, g.event(us, run_id=f"mark-{seq}", tenant=0, workflow=0)))
                with lock:
                    marks[seq] = time.time()
                seq += 1
                next_mark += 0.1
                due += 1
            out += b"".join(parts)
            sent += due
        # write what the socket takes, read what came back
        while out:
            try:
                k = sock.send(out)
                del out[:k]
            except BlockingIOError:
                break
        try:
            while True:
                data = sock.recv(1 << 20)
                if not data:
                    die("Redis closed the connection")
                rep.feed(data)
        except BlockingIOError:
            pass
        behind_max = max(behind_max, sent - rep.replies)
        time.sleep(max(0.0, 0.01 - (time.time() - t)))
    pub_s = time.time() - t0
    sock.setblocking(True)
    if out:
        sock.sendall(bytes(out))
    while rep.replies < sent:
        rep.feed(sock.recv(1 << 20))
    sock.close()
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    # wait until everything published is visible, then for the last markers
    t_vis, _ = wait_inserted(args.metrics_url, base + sent, args.agent_pid, stall_s=60)
    after = snapshot(args)
    done.set()
    th.join(timeout=30)
    stop_poll.set()
    lat = sorted(seen.values())
    q = lambda p: lat[min(len(lat) - 1, max(0, math.ceil(p * len(lat)) - 1))] * 1000 if lat else None
    res = {"rate": args.rate, "seconds": args.seconds, "events": sent,
           "published_per_s": round(sent / pub_s), "markers": len(marks), "markers_seen": len(seen),
           "latency_p50_ms": q(0.5), "latency_p99_ms": q(0.99), "latency_max_ms": q(1.0),
           "poll_ms_mean": round(sum(polls) / len(polls) * 1000 + args.poll_ms, 1) if polls else None,
           "drain_s": round(t_vis - (t0 + pub_s), 3),
           "publisher_cpu_s": round(ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime, 2),
           "publisher_in_flight_max": behind_max}
    for k in ("latency_p50_ms", "latency_p99_ms", "latency_max_ms"):
        if res[k] is not None:
            res[k] = round(res[k], 1)
    res.update(resources(before, after, sent, args.agent_pid))
    print(json.dumps(res))


def cmd_naive(args):
    db = Psql(args.db_url)
    db.query("SET max_parallel_workers_per_gather = DEFAULT")
    times = []
    for _ in range(args.reps):
        rows = db.query("EXPLAIN (ANALYZE, FORMAT JSON) " + args.sql)
        plan = json.loads("\n".join(rows))
        times.append(plan[0]["Execution Time"])
    db.close()
    times.sort()
    print(json.dumps({"naive_ms": round(times[len(times) // 2], 1), "naive_all_ms": times}))


def cmd_sizes(args):
    db = Psql(args.db_url)
    rows = db.query("""
SELECT coalesce(sum(pg_total_relation_size(c.oid)) FILTER (WHERE c.oid IN
           (SELECT relid FROM pg_partition_tree('exectime.execution_time_statistics'))), 0),
       coalesce(sum(pg_total_relation_size(c.oid)) FILTER (WHERE c.relname LIKE '%rollup%'), 0),
       (SELECT count(*) FROM exectime.execution_time_statistics)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'exectime' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
   OR c.oid IN (SELECT relid FROM pg_partition_tree('exectime.execution_time_statistics'))""")
    db.close()
    raw, rollup, runs = (int(x) for x in rows[0].split("|"))
    print(json.dumps({"runs": runs, "raw_bytes": raw, "rollup_bytes": rollup,
                      "raw_bytes_per_run": round(raw / runs, 1) if runs else None,
                      "rollup_bytes_per_run": round(rollup / runs, 1) if runs else None}))


# --- report -----------------------------------------------------------------------------------

GOALS = {
    "ingest_live_1t": ">= 100k events/s",
    "ingest_history": ">= 30k events/s",
    "freshness": "p99 < 1 s (at 50k/s, 5 min)",
    "api:tenant_30d:10m:c8": "p99 < 5 ms, >= 2,000 req/s",
    "api:tenant_30d:10m:c1": "p50 < 1 ms",
    "api:group_by_workflow_30d:10m": "p99 < 30 ms",
    "api:tenant_30d:10m:ratio": ">= 1,000x",
    "rss": "< 64 MiB",
}


def fmt(x, nd=0, unit=""):
    if x is None:
        return "-"
    if isinstance(x, (int, float)):
        if nd == 0:
            return f"{x:,.0f}{unit}"
        return f"{x:,.{nd}f}{unit}"
    return str(x)


def ms(x):
    if x is None:
        return "-"
    return f"{x:.2f}" if x < 10 else f"{x:.1f}" if x < 100 else f"{x:,.0f}"


def cmd_report(args):
    results = []
    with open(args.results) as f:
        for line in f:
            if line.strip():
                results.append(json.loads(line))
    meta = json.loads(open(args.meta).read()) if args.meta else {}
    lines = []
    w = lines.append
    w(f"exectime benchmark — {meta.get('date', '')}  {meta.get('machine', '')}  mode: {meta.get('mode', '')}")
    w(f"commit {meta.get('commit', '?')}; build {meta.get('build', '?')}")
    ingest = [r for r in results if r["kind"] in ("ingest", "probe")]
    hwm = []
    if ingest:
        w("")
        w(f"{'ingest / publisher':<44} {'events':>9} {'seconds':>8} {'events/s':>9} {'agent s/M':>9} {'pg s/M':>7} {'RSS MiB':>7}  goal")
        for r in ingest:
            goal = GOALS.get(r["name"], "")
            if r["kind"] == "probe":
                w(f"{r['label']:<44} {fmt(r['events']):>9} {r['publish_s']:>8.2f} {fmt(r['events_per_s']):>9} {'':>9} {'':>7} {'':>7}  > 300k (must not limit)")
                continue
            rss = r.get("agent_vmhwm_kib")
            if rss:
                hwm.append(rss)
            w(f"{r['label']:<44} {fmt(r['events']):>9} {r['seconds']:>8.2f} {fmt(r['events_per_s']):>9} "
              f"{r['agent_cpu_s_per_m']:>9.1f} {r['pg_cpu_s_per_m']:>7.1f} {(rss or 0) / 1024:>7.1f}  {goal}")
    fr = [r for r in results if r["kind"] == "steady"]
    for r in fr:
        w("")
        w(f"freshness at {fmt(r['rate'])} events/s for {r['seconds']:g} s (published {fmt(r['published_per_s'])}/s, "
          f"{r['markers_seen']}/{r['markers']} markers, poll period ~{r['poll_ms_mean']} ms):")
        w(f"  publish-to-visible p50 {ms(r['latency_p50_ms'])} ms, p99 {ms(r['latency_p99_ms'])} ms, "
          f"max {ms(r['latency_max_ms'])} ms; drained {r['drain_s']:.2f} s after the last publish; "
          f"agent {r['agent_cpu_s_per_m']:.1f} s/M, PostgreSQL {r['pg_cpu_s_per_m']:.1f} s/M   goal: {GOALS['freshness']}")
        if r.get("agent_vmhwm_kib"):
            hwm.append(r["agent_vmhwm_kib"])
    sizes = [r for r in results if r["kind"] == "sizes"]
    if sizes:
        w("")
        w(f"{'bytes stored per run':<44} {'runs':>11} {'raw B/run':>10} {'rollup B/run':>12}")
        for r in sizes:
            w(f"{r['label']:<44} {fmt(r['runs']):>11} {fmt(r['raw_bytes_per_run'], 1):>10} {fmt(r['rollup_bytes_per_run'], 1):>12}")
    fills = [r for r in results if r["kind"] == "fill"]
    for r in fills:
        w(f"(database of {r['size']} runs: {r['how']})")
    api = [r for r in results if r["kind"] == "api"]
    if api:
        w("")
        w(f"{'API (wrk -t1)':<34} {'size':>4} {'c1 p50':>7} {'c1 p99':>7} {'c1 req/s':>8} {'c8 p50':>7} {'c8 p99':>7} {'c8 req/s':>8} "
          f"{'naive ms':>9} {'÷c1 p50':>8} {'÷c8 p50':>8}  goal")
        for r in api:
            c1, c8 = r.get("c1") or {}, r.get("c8") or {}
            goal = []
            key = f"api:{r['question']}:{r['size']}"
            for sfx in (":c1", ":c8", "", ":ratio"):
                if key + sfx in GOALS:
                    goal.append(GOALS[key + sfx])
            w(f"{r['label']:<34} {r['size']:>4} {ms(c1.get('p50_ms')):>7} {ms(c1.get('p99_ms')):>7} {fmt(c1.get('rps')):>8} "
              f"{ms(c8.get('p50_ms')):>7} {ms(c8.get('p99_ms')):>7} {fmt(c8.get('rps')):>8} "
              f"{fmt(r.get('naive_ms'), 0):>9} {fmt(r.get('ratio'), 0, 'x'):>8} {fmt(r.get('ratio_c8'), 0, 'x'):>8}  {'; '.join(goal)}")
    hwm += [r["agent_vmhwm_kib"] for r in results if r["kind"] == "api_rss" and r.get("agent_vmhwm_kib")]
    if hwm:
        w("")
        w(f"agent peak RSS (VmHWM) over all runs: {max(hwm) / 1024:.1f} MiB   goal: {GOALS['rss']}")
    text = "\n".join(lines)
    print(text)
    with open(args.out, "w") as f:
        json.dump({"meta": meta, "goals": GOALS, "results": results, "table": text}, f, indent=1)
        f.write("\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)

    def load_opts(p):
        p.add_argument("--redis-url", required=True)
        p.add_argument("--stream", required=True)
        p.add_argument("--count", type=int, required=True)
        p.add_argument("--tenants", type=int, default=1)
        p.add_argument("--workflows", type=int, default=1000)
        p.add_argument("--spread-days", type=float, default=0.0)
        p.add_argument("--seed", type=int, default=42)

    def agent_opts(p):
        p.add_argument("--metrics-url", required=True)
        p.add_argument("--agent-pid", type=int, required=True)
        p.add_argument("--postmaster", type=int, default=0)

    p = sub.add_parser("probe"); load_opts(p); p.set_defaults(fn=cmd_probe)
    p = sub.add_parser("prefill"); load_opts(p); p.set_defaults(fn=cmd_prefill)
    p = sub.add_parser("burst"); load_opts(p); agent_opts(p); p.set_defaults(fn=cmd_burst)
    p = sub.add_parser("wait"); agent_opts(p)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--t0", type=float, required=True)
    p.add_argument("--t0-pg-cpu", type=float, required=True)
    p.set_defaults(fn=cmd_wait)
    p = sub.add_parser("pgcpu"); p.add_argument("--postmaster", type=int, required=True); p.set_defaults(fn=cmd_pgcpu)
    p = sub.add_parser("steady"); agent_opts(p)
    p.add_argument("--redis-url", required=True)
    p.add_argument("--stream", required=True)
    p.add_argument("--db-url", required=True)
    p.add_argument("--rate", type=float, default=20000)
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--poll-ms", type=float, default=20)
    p.add_argument("--tenants", type=int, default=1)
    p.add_argument("--workflows", type=int, default=1000)
    p.add_argument("--seed", type=int, default=7)
    p.set_defaults(fn=cmd_steady)
    p = sub.add_parser("naive")
    p.add_argument("--db-url", required=True)
    p.add_argument("--sql", required=True)
    p.add_argument("--reps", type=int, default=3)
    p.set_defaults(fn=cmd_naive)
    p = sub.add_parser("sizes"); p.add_argument("--db-url", required=True); p.set_defaults(fn=cmd_sizes)
    p = sub.add_parser("report")
    p.add_argument("--results", required=True)
    p.add_argument("--meta")
    p.add_argument("--out", required=True)
    p.set_defaults(fn=cmd_report)
    args = ap.parse_args()
    args.fn(args)


if __name__ == "__main__":
    main()
