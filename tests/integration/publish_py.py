#!/usr/bin/env python3
"""Publishes run events the way a Python worker would, for the integration tests.

msgpack from Debian's python3-msgpack, XADD with python3-redis. finished_at and started_at
are msgpack timestamps (ext -1) in all three forms (32-bit seconds, 64-bit with
nanoseconds, 96-bit), there is no duration_us (the agent computes finished - started after
flooring each timestamp to microseconds), some ids are integers, some statuses are the
aliases "succeeded" and "canceled", and one unknown key rides along. The events depend only
on the arguments, so two runs publish the same events.

Writes one manifest line per valid event to --manifest, tab-separated: tenant, run_id,
finished_us, workflow_id, status, duration_us, started_us - what the agent must store.
Also publishes one invalid event per run (a 96-bit finished_at in the year 2514), which
the agent must dead-letter. Exit status 0, or 1 with one line on stderr.
"""

import argparse
import struct
import sys

try:
    import msgpack
    import redis
except ImportError as exc:  # the packages come from deploy/packages.txt
    sys.exit(f"publish_py.py: {exc}: install python3-msgpack and python3-redis")

# (wire value, stored value)
STATUSES = [
    ("success", "success"),
    ("succeeded", "success"),
    ("failed", "failed"),
    ("cancelled", "cancelled"),
    ("canceled", "cancelled"),
    ("timeout", "timeout"),
]
THIRTY_DAYS_S = 30 * 86400
CHUNKS = [1, 1, 3, 1, 2]  # events per stream entry, cycled: singles and arrays


class Raw:
    """Bytes spliced into the map as they are (msgpack has no 96-bit form for these)."""

    def __init__(self, data):
        self.data = data


def timestamp(sec, nsec, form):
    """A msgpack timestamp in the given form: 32, 64 or 96 (bits of payload); 64 falls
    back to 32 for whole seconds, as msgpack-python packs them."""
    if form == 96:
        # msgpack-python writes this form only past 2514; a valid time in it is legal too.
        return Raw(b"\xc7\x0c\xff" + struct.pack(">IQ", nsec, sec))
    data = msgpack.packb(msgpack.Timestamp(sec, nsec))
    want = b"\xd6\xff" if nsec == 0 else b"\xd7\xff"  # whole seconds pack in 32 bits
    if not data.startswith(want):
        sys.exit(f"publish_py.py: msgpack packed a {form}-bit timestamp as {data[:2].hex()}")
    return Raw(data)


def pack_map(fields):
    packer = msgpack.Packer(use_bin_type=True)
    out = bytearray(packer.pack_map_header(len(fields)))
    for key, value in fields:
        out += packer.pack(key)
        out += value.data if isinstance(value, Raw) else packer.pack(value)
    return bytes(out)


def to_us(sec, nsec):
    return sec * 1_000_000 + nsec // 1000


FORMS = (32, 64, 96)


def make_event(i, tenant, base_s):
    """Event i: (msgpack map bytes, manifest line)."""
    fin_s = base_s - i * 53
    fin_form = FORMS[i % 3]
    fin_ns = 0 if fin_form == 32 else (i * 7_919_123 + 1) % 1_000_000_000
    st_form = FORMS[(i // 3) % 3]
    kind = (i // 9) % 4
    if kind == 0:  # the same instant: 0 µs
        st_s, st_ns = fin_s, fin_ns
    elif kind == 1:  # 1 ns before a second: floors to the µs before it
        st_s, st_ns = fin_s - 1, 999_999_999
    elif kind == 2:  # 30 days, the longest run accepted
        st_s, st_ns = fin_s - THIRTY_DAYS_S, fin_ns
    else:  # seconds to hours, nanoseconds that floor differently
        st_s, st_ns = fin_s - (i * 7_577) % 20_000, (i * 104_729_999) % 1_000_000_000
    if st_form == 32:
        st_ns = 0
    fin_us = to_us(fin_s, fin_ns)
    if to_us(st_s, st_ns) > fin_us:
        st_s -= 1
    if fin_us - to_us(st_s, st_ns) > THIRTY_DAYS_S * 1_000_000:
        st_s += 1
    st_us = to_us(st_s, st_ns)
    wire_status, status = STATUSES[i % len(STATUSES)]
    workflow = 4200 + i % 3 if i % 4 == 0 else f"py-wf-{i % 5}"
    run = 10**12 + i if i % 2 == 0 else f"py-run-{i}"
    fields = [
        ("v", 1),
        ("tenant_id", tenant),
        ("workflow_id", workflow),
        ("run_id", run),
        ("status", wire_status),
        ("finished_at", timestamp(fin_s, fin_ns, fin_form)),
        ("started_at", timestamp(st_s, st_ns, st_form)),
        ("worker", {"lang": "python", "pid": 1}),  # unknown key: ignored
    ]
    line = f"{tenant}\t{run}\t{fin_us}\t{workflow}\t{status}\t{fin_us - st_us}\t{st_us}\n"
    return pack_map(fields), line


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--redis-url", required=True)
    ap.add_argument("--stream", required=True)
    ap.add_argument("--tenant", required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--base-s", type=int, required=True, help="finished_at of event 0 (s)")
    ap.add_argument("--manifest", required=True)
    args = ap.parse_args()

    client = redis.Redis.from_url(args.redis_url)
    packer = msgpack.Packer(use_bin_type=True)
    lines = []
    i = chunk = 0
    while i < args.count:
        n = min(CHUNKS[chunk % len(CHUNKS)], args.count - i)
        chunk += 1
        maps = []
        for k in range(i, i + n):
            data, line = make_event(k, args.tenant, args.base_s)
            maps.append(data)
            lines.append(line)
        payload = maps[0] if n == 1 else packer.pack_array_header(n) + b"".join(maps)
        client.xadd(args.stream, {"event": payload, "source": "python"})
        i += n

    future = pack_map([
        ("v", 1),
        ("tenant_id", args.tenant),
        ("workflow_id", "py-wf-future"),
        ("run_id", "py-run-future"),
        ("status", "success"),
        ("finished_at", Raw(b"\xc7\x0c\xff" + struct.pack(">IQ", 5, 2**34 + 5))),
        ("duration_us", 1),
    ])
    client.xadd(args.stream, {"event": future})

    with open(args.manifest, "w", encoding="utf-8") as f:
        f.writelines(lines)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except redis.RedisError as exc:
        sys.exit(f"publish_py.py: redis: {exc}")
