#!/bin/bash
# Tests of scripts/check-layout.sh on small trees of its own: a clean tree
# passes; each kind of layering break fails with its file:line named.
# Usage: test-check-layout.sh CHECK-LAYOUT-SCRIPT
set -uo pipefail

check=$1
tmp=$(mktemp -d /tmp/gk-test-layout-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
failures=0

# tree NAME: a minimal clean src/ under $tmp/NAME.
tree() {
        local t=$tmp/$1
        mkdir -p "$t"/{basic,daemon,policy,metrics,cli,config}
        printf '#include <stdint.h>\n#include "basic/macro.h"\n' >"$t/basic/macro.h"
        printf '#include "daemon/daemon.h"\n#include "metrics/http.h"\n' >"$t/daemon/daemon.c"
        printf '#include <stdbool.h>\n#include <sys/types.h>\n#include "basic/macro.h"\n#include "policy/idle.h"\n#include "gpu/inventory.h"\n' >"$t/policy/idle.c"
        printf '#include "metrics/source.h"\n#include "store/store.h"\n' >"$t/metrics/api.c"
        echo "$t"
}

# expect NAME WANT-RC [TEXT]: run the check on tree NAME; its exit code must
# be WANT-RC and its stderr must hold TEXT.
expect() {
        local out rc
        out=$("$check" "$tmp/$1" 2>&1)
        rc=$?
        if [[ $rc -ne $2 ]]; then
                echo "FAIL $1: exit $rc, wanted $2: $out"
                failures=$((failures + 1))
        elif [[ -n ${3:-} && $out != *"$3"* ]]; then
                echo "FAIL $1: output lacks '$3': $out"
                failures=$((failures + 1))
        else
                echo "ok $1"
        fi
}

tree clean >/dev/null
expect clean 0 "keeps its layers"

# broken NAME FILE CONTENT TEXT: a clean tree NAME with FILE (below src/)
# holding CONTENT must fail, naming FILE's path and then TEXT.
broken() {
        local t
        t=$(tree "$1")
        printf '%b' "$3" >"$t/$2"
        expect "$1" 1 "$t/$2:$4"
}

broken metrics-daemon metrics/http.c '#include "basic/macro.h"\n  #  include "daemon/daemon.h"\n' \
        "2: includes daemon/daemon.h"
broken cli-daemon cli/lease.c '#include <daemon/leases.h>\n' "1: includes daemon/leases.h"
broken config-daemon config/config.h '#pragma once\n#include "daemon/daemon.h"\n' \
        "2: includes daemon/daemon.h"
broken policy-store policy/allocate.h '#include "basic/macro.h"\n#include "store/lease-store.h"\n' \
        "2: includes store/lease-store.h; src/policy/"

expect not-a-tree 64

((failures == 0)) || { echo "$failures failed"; exit 1; }
