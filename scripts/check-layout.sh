#!/bin/bash
# Check the layering of src/ (ARCHITECTURE.md, "Layout"): arrows point down.
# Usage: scripts/check-layout.sh [SRCDIR]   (run by `meson test --suite unit`)
#
# Fails, naming file:line and the include, when
#   - a file under src/ outside src/daemon/ includes a daemon/ header
#     (src/cli/ too: the CLI talks to the daemon through its socket only);
#   - a file under src/policy/ includes anything but system headers, basic/,
#     policy/ and the plain-struct headers listed in POLICY_PLAIN_STRUCTS.
set -uo pipefail

src=${1:-$(dirname "$0")/../src}
[[ -d $src/daemon && -d $src/policy ]] || { echo "check-layout: $src is not the source tree" >&2; exit 64; }

# Headers of plain data the pure policy code reads, allowed in src/policy/:
# the GPU snapshot's structs (gpu/inventory.h declares the snapshot, taking
# it is gpu/'s business).
POLICY_PLAIN_STRUCTS=("gpu/inventory.h")

status=0
fail() {
        echo "check-layout: $1" >&2
        status=1
}

# #include "x/y.h" or <x/y.h> lines: FILE:LINE:HEADER.
includes() {
        grep -HnE '^[[:space:]]*#[[:space:]]*include[[:space:]]*["<][^">]+[">]' "$@" |
                sed -E 's/^([^:]+):([0-9]+):[[:space:]]*#[[:space:]]*include[[:space:]]*["<]([^">]+)[">].*/\1:\2:\3/'
}

mapfile -t files < <(find "$src" -name '*.[ch]' ! -path "$src/daemon/*" | sort)
while IFS=: read -r file line header; do
        [[ $header == daemon/* ]] &&
                fail "$file:$line: includes $header; nothing below src/daemon/ may include a daemon header"
done < <(includes "${files[@]}")

mapfile -t files < <(find "$src/policy" -name '*.[ch]' | sort)
while IFS=: read -r file line header; do
        [[ $header != */* ]] && continue # a system header (<stdint.h>) or a sibling
        [[ $header == basic/* || $header == policy/* ]] && continue
        [[ $header == sys/* || $header == linux/* || $header == arpa/* || $header == netinet/* ]] && continue
        allowed=0
        for h in "${POLICY_PLAIN_STRUCTS[@]}"; do
                [[ $header == "$h" ]] && allowed=1
        done
        ((allowed)) ||
                fail "$file:$line: includes $header; src/policy/ uses only basic/ and plain structs"
done < <(includes "${files[@]}")

((status == 0)) && echo "check-layout: src/ keeps its layers"
exit $status
