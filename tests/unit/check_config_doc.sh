#!/bin/sh
# docs/configuration.md must hold exactly the table the agent generates from its settings.
set -eu
agent=$1
doc=$2
expected=$("$agent" config-markdown)
actual=$(sed -n '/^| variable | flag/,/^$/p' "$doc" | sed '/^$/d')
if [ "$expected" != "$actual" ]; then
    echo "docs/configuration.md is out of date; regenerate its table with:" >&2
    echo "  exectime-agent config-markdown" >&2
    printf '%s\n' "$expected" > /tmp/expected.$$
    printf '%s\n' "$actual" | diff -u - /tmp/expected.$$ >&2 || true
    rm -f /tmp/expected.$$
    exit 1
fi
echo "docs/configuration.md matches the settings table"
