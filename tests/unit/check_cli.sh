#!/bin/sh
# The command lines (exectime-agent, exectime-emit) as an operator meets them: every way of asking for help or the
# version answers at once, exit 0, without touching a database (the URL below refuses
# connections, so a command that tried to migrate or run would fail), and a mistake exits 2.
set -u
agent=$1
emit=$2
export EXECTIME_DATABASE_URL=postgresql://nobody@127.0.0.1:1/none
fail=0
extra_env=
expect() { # expect STATUS PATTERN ARGS... : exit status and a line of stdout+stderr
    want_status=$1 pattern=$2
    shift 2
    out=$(env $extra_env "$agent" "$@" 2>&1)
    status=$?
    if [ "$status" -ne "$want_status" ] || ! printf '%s\n' "$out" | grep -q -- "$pattern"; then
        echo "FAIL: exectime-agent $*: status $status (want $want_status), output:" >&2
        printf '%s\n' "$out" | head -5 >&2
        fail=1
    fi
}
expect 0 '^usage: exectime-agent \[COMMAND\]' -h
expect 0 '^usage: exectime-agent \[COMMAND\]' --help
expect 0 '^usage: exectime-agent \[COMMAND\]' help
expect 0 '^exectime-agent [0-9]' --version
expect 0 '^exectime-agent [0-9]' version
for command in run migrate verify rollup-rebuild query version help; do
    expect 0 "^usage: exectime-agent .*$command" "$command" --help
    expect 0 "^usage: exectime-agent .*$command" "$command" -h
    expect 0 "^usage: exectime-agent .*$command" help "$command"
done
expect 0 'EXECTIME_DATABASE_URL_FILE' migrate --help
# A bad environment value does not keep help from answering, but stops a real command.
extra_env=EXECTIME_BATCH_MAX=abc
expect 0 '^usage' --help
expect 2 'EXECTIME_BATCH_MAX' migrate
extra_env=
expect 2 'unknown command "frobnicate"' frobnicate
expect 2 '--bogus: unknown flag' --bogus
expect 2 'verify, rollup-rebuild and query' run --tenant t
expect 2 'database-url-file: cannot read' --database-url-file /nonexistent migrate
expect 1 'exectime-agent migrate:' migrate
expect 2 '--from: "yesterday" is not an RFC 3339 time' verify --from yesterday
expect 2 '--to: "soon"' rollup-rebuild --to soon
expect 2 '--from must be before --to' verify --from 2026-02-01 --to 2026-01-01
expect 0 '^| `EXECTIME_REDIS_URL`' config-markdown
expect 2 'verify: cannot connect' verify
# query is a client of the API: the database's settings do not matter (not even a bad
# one), and its help lists the exit statuses scripts rely on.
expect 0 '^  3  401 or 403' query --help
expect 0 'EXECTIME_API_URL' help query
expect 2 'are flags of query' verify --format csv
expect 2 '--format: "xml"' query --format xml
expect 2 '--from: "yesterday" is not an RFC 3339 time' query --from yesterday
expect 2 'https:// is not supported' query --url https://example.com
expect 5 'cannot connect to 127.0.0.1 port 1' query --url http://127.0.0.1:1
extra_env="EXECTIME_BATCH_MAX=abc EXECTIME_API_URL=http://127.0.0.1:1"
expect 5 'cannot connect' query
extra_env="EXECTIME_API_URL=ftp://x"
expect 2 'EXECTIME_API_URL: "ftp://x" is not an http://' query
extra_env=
expect 2 'verify: cannot connect' rollup-rebuild --tenant t1 --from 2026-01-01
# exectime-emit, the publisher for shells and tests: the same habits.
emit_out=$("$emit" --version 2>&1) && printf '%s\n' "$emit_out" | grep -q '^exectime-emit [0-9]' ||
    { echo "FAIL: exectime-emit --version: $emit_out" >&2; fail=1; }
"$emit" --help | grep -q -- '--version' || { echo "FAIL: exectime-emit --help" >&2; fail=1; }
[ "$fail" -eq 0 ] && echo "exectime-agent's command line answers as documented"
exit "$fail"
