#!/bin/bash
# Check that a man page renders without a single groff/man warning.
# Usage: scripts/check-man.sh PAGE...   (run by `meson test --suite docs`)
#
# man -l renders the file as man(1) would; --warnings turns on groff's
# warnings (bad macros, unknown escapes, lines that cannot be broken). Any
# output on stderr fails the check, since groff exits 0 after most warnings.
set -uo pipefail

[[ $# -gt 0 ]] || { echo "usage: $0 PAGE..." >&2; exit 64; }
status=0
for page in "$@"; do
        if [[ ! -r "$page" ]]; then
                echo "check-man: cannot read $page" >&2
                status=1
                continue
        fi
        errors=$(MANWIDTH=80 LC_ALL=C.UTF-8 man --warnings -E UTF-8 -l -Tutf8 "$page" 2>&1 >/dev/null)
        rc=$?
        if [[ $rc -ne 0 || -n "$errors" ]]; then
                echo "check-man: $page (man exited $rc):" >&2
                echo "$errors" >&2
                status=1
        fi
done
exit $status
