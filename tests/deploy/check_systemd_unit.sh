#!/bin/sh
# The systemd unit that `meson install` installs (the build tree's exectime-agent.service,
# made from deploy/systemd/exectime-agent.service.in):
#   1. `systemd-analyze verify` accepts it without a single warning (it exits 0 even for an
#      unknown key or a misspelt system call group, so any output fails the check). The
#      unit names the installed binary, which need not exist yet: the check verifies a copy
#      whose ExecStart= names the freshly built agent instead;
#   2. `systemd-analyze security --offline=true` rates its exposure 2.0 or below (the
#      threshold is in tenths: 20).
# Needs no running systemd (Debian 12's systemd 252 has --offline and --threshold).
# Usage: check_systemd_unit.sh UNIT AGENT_BINARY [THRESHOLD_TENTHS]
set -eu
unit=$1
agent=$(realpath "$2")
threshold=${3:-20}

command -v systemd-analyze >/dev/null 2>&1 || {
    echo "systemd-analyze not found: install the Debian package systemd (deploy/packages.txt)" >&2
    exit 1
}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
name=$(basename "$unit")

grep -q '^ExecStart=/[^ ]*/exectime-agent run$' "$unit" || {
    echo "$unit: ExecStart= is not '<bindir>/exectime-agent run'" >&2
    exit 1
}
sed "s|^ExecStart=[^ ]*|ExecStart=$agent|" "$unit" >"$work/$name"
out=$(systemd-analyze verify --man=no "$work/$name" 2>&1) && status=0 || status=$?
if [ "$status" -ne 0 ] || [ -n "$out" ]; then
    echo "systemd-analyze verify does not accept $unit (status $status):" >&2
    printf '%s\n' "$out" >&2
    exit 1
fi
echo "systemd-analyze verify: no complaint"

out=$(systemd-analyze security --offline=true --threshold="$threshold" "$unit" 2>&1) &&
    status=0 || status=$?
level=$(printf '%s\n' "$out" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
if [ "$status" -ne 0 ] || [ -z "$level" ]; then
    printf '%s\n' "$out" | grep -E '✗|→' >&2 || printf '%s\n' "$out" >&2
    echo "$unit: exposure ${level:-unknown} is above $((threshold / 10)).$((threshold % 10)) (systemd-analyze security, status $status)" >&2
    exit 1
fi
echo "systemd-analyze security: exposure $level (at most $((threshold / 10)).$((threshold % 10)))"
