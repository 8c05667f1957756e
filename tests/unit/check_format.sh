#!/bin/sh
# The C sources follow .clang-format (clang-format 14, Debian's clang-format): a file that
# differs fails this check with the lines it would change. Fix with:
#   clang-format -i $(git ls-files 'agent/*.[ch]' 'common/*.[ch]' 'tests/*.[ch]')
# SQL and Lua text laid out by hand sits between /* clang-format off */ and on.
set -u
root=$1
cd "$root" || exit 1
files=$(find agent common tests -name '*.[ch]' -not -path '*/node_modules/*' | sort)
[ -n "$files" ] || { echo "no C sources found under $root" >&2; exit 1; }
# shellcheck disable=SC2086  # one word per file name; none holds a space
if clang-format --dry-run --Werror $files; then
    echo "$(echo "$files" | wc -l) C files follow .clang-format"
else
    echo "the files above do not follow .clang-format; run: clang-format -i <file>" >&2
    exit 1
fi
