#!/bin/sh
# exectime-emit against the test Redis, as a shell user or a load test drives it: one event,
# generated load (batches, several tenants and streams, history, pacing), the environment's
# URL and stream, and every mistake refused with exit 2 naming the flag (1 for Redis errors).
# Counts are checked with redis-cli; what the agent makes of the events is test_ingest's.
set -u
emit=$1
: "${EXECTIME_TEST_REDIS_URL:?EXECTIME_TEST_REDIS_URL is not set: run deploy/local/test}"
url=$EXECTIME_TEST_REDIS_URL
hostport=${url#redis://}
host=${hostport%%:*}
port=${hostport##*:}
port=${port%%/*}
prefix="exectime-emit-check:$$"
fail=0
cli() { redis-cli -h "$host" -p "$port" "$@"; }
check() { # check WHAT WANT GOT
    if [ "$2" != "$3" ]; then
        echo "FAIL: $1: want $2, got $3" >&2
        fail=1
    fi
}
expect_status() { # expect_status STATUS PATTERN ARGS...
    want=$1 pattern=$2
    shift 2
    out=$("$emit" --redis-url "$url" --stream "$prefix:bad" "$@" 2>&1)
    got=$?
    if [ "$got" -ne "$want" ] || ! printf '%s\n' "$out" | grep -q -- "$pattern"; then
        echo "FAIL: exectime-emit $*: status $got (want $want): $out" >&2
        fail=1
    fi
}

"$emit" --redis-url "$url" --stream "$prefix:one" --tenant t1 --workflow wf --run r1 \
    --status failed --duration-ms 12.5 --finished-at 2026-11-01T12:00:00Z 2>/dev/null
check "one event" 1 "$(cli XLEN "$prefix:one")"
"$emit" --redis-url "$url" --stream "$prefix:one" --tenant t1 --workflow wf \
    --duration-us 1500 2>/dev/null
check "a second, default run id and time" 2 "$(cli XLEN "$prefix:one")"

"$emit" --redis-url "$url" --stream "$prefix:one" --tenant t1 --workflow wf \
    --duration-ms 2000 --queue-wait-ms 40000 2>/dev/null
check "a third, with a queue wait" 3 "$(cli XLEN "$prefix:one")"
cli XREVRANGE "$prefix:one" + - COUNT 1 | grep -q enqueued_at
check "the third carries enqueued_at" 0 "$?"

"$emit" --redis-url "$url" --stream "$prefix:queued" --count 50 --queue-share 0.5 \
    --seed 3 2>/dev/null
check "generator with --queue-share" 50 "$(cli XLEN "$prefix:queued")"

"$emit" --redis-url "$url" --stream "$prefix:gen" --count 200 --batch 10 --tenants 2 \
    --workflows 5 --seed 7 --spread-days 3 --failure-rate 0.1 2>/dev/null
check "200 events in entries of 10" 20 "$(cli XLEN "$prefix:gen")"

"$emit" --redis-url "$url" --stream "$prefix:a,$prefix:b" --count 10 --rate 2000 2>/dev/null
check "round robin, stream a" 5 "$(cli XLEN "$prefix:a")"
check "round robin, stream b" 5 "$(cli XLEN "$prefix:b")"

EXECTIME_REDIS_URL=$url EXECTIME_STREAM=$prefix:env "$emit" --count 3 2>/dev/null
check "EXECTIME_REDIS_URL and EXECTIME_STREAM" 3 "$(cli XLEN "$prefix:env")"

# Until a signal: --rate without --count stops cleanly on SIGTERM (exit 0).
"$emit" --redis-url "$url" --stream "$prefix:sig" --rate 200 2>/dev/null &
pid=$!
sleep 1
kill -TERM "$pid"
wait "$pid"
check "stopped by SIGTERM: exit status" 0 "$?"

expect_status 2 '--tenant' --workflow wf --duration-ms 1
expect_status 2 '--duration' --tenant t --workflow wf
expect_status 2 '--status' --tenant t --workflow wf --duration-ms 1 --status maybe
expect_status 2 '--duration-ms' --tenant t --workflow wf --duration-ms -3
expect_status 2 'conflicts' --tenant t --workflow wf --duration-ms 1 --duration-us 1
expect_status 2 '--finished-at' --tenant t --workflow wf --duration-ms 1 --finished-at yesterday
expect_status 2 '--count' --count many
expect_status 2 '--batch' --count 10 --batch 0
expect_status 2 '--failure-rate' --count 10 --failure-rate 2
expect_status 2 '--queue-wait-ms' --tenant t --workflow wf --duration-ms 1 --queue-wait-ms -1
expect_status 2 '--queue-share' --count 10 --queue-share 1.5
expect_status 2 'generator flag' --tenant t --workflow wf --duration-ms 1 --queue-share 0.5
expect_status 2 '' --count 10 --tenant t --workflow wf --duration-ms 1
expect_status 2 'unknown flag' --no-such-flag
expect_status 2 'needs a value' --count
expect_status 2 'unexpected argument' extra
out=$("$emit" --redis-url "rediss://x" --count 1 2>&1)
check "a bad URL is a usage error ($out)" 2 "$?"
out=$("$emit" --redis-url "redis://127.0.0.1:1" --stream "$prefix:x" --count 1 2>&1)
check "an unreachable Redis is exit 1 ($out)" 1 "$?"

# Database number (SELECT), a refused password (AUTH), a key of another type (XADD refused).
"$emit" --redis-url "$url/2" --stream "$prefix:db2" --count 4 2>/dev/null
check "redis://…/2 selects database 2" 4 "$(cli -n 2 XLEN "$prefix:db2")"
cli -n 2 DEL "$prefix:db2" >/dev/null
out=$("$emit" --redis-url "redis://:wrong-password@$hostport" --stream "$prefix:x" --count 1 2>&1)
check "a refused AUTH is exit 1" 1 "$?"
printf '%s\n' "$out" | grep -q "AUTH refused" || { echo "FAIL: AUTH error: $out" >&2; fail=1; }
printf '%s\n' "$out" | grep -q "wrong-password" && { echo "FAIL: the password leaks: $out" >&2; fail=1; }
cli SET "$prefix:string" x >/dev/null
out=$("$emit" --redis-url "$url" --stream "$prefix:string" --count 1 2>&1)
check "XADD to a string key is exit 1" 1 "$?"
printf '%s\n' "$out" | grep -q "WRONGTYPE" || { echo "FAIL: XADD error: $out" >&2; fail=1; }

cli DEL "$prefix:string" "$prefix:one" "$prefix:gen" "$prefix:a" "$prefix:b" "$prefix:env" "$prefix:sig" \
    "$prefix:bad" >/dev/null
[ "$fail" -eq 0 ] && echo "exectime-emit publishes and refuses as documented"
exit "$fail"
