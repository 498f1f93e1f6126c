#!/bin/bash
# Run every libFuzzer target for a while (issue 10: fuzzing in CI).
#
#   scripts/run-fuzz.sh [SECONDS]     (default 20 per target; FUZZ_BUILD_DIR=build-fuzz)
#
# Configures FUZZ_BUILD_DIR with CC=clang when needed (Debian's clang; the
# targets are built with -fsanitize=fuzzer,address,undefined, see
# tests/fuzz/meson.build), builds only the fuzz targets, and runs each over
# a scratch corpus seeded from tests/fuzz/corpus-NAME for SECONDS. A crash, a
# leak, a timeout or any sanitizer report fails the target; its input is kept
# as FUZZ_BUILD_DIR/fuzz-artifacts/NAME-crash-* (add it to the corpus as a
# regression input once fixed). Writes FUZZ_BUILD_DIR/junit/fuzz.xml (one case
# per target, with its executions) for scripts/count-results.py, and prints
# one line per target: NAME: N runs, OK|FAILED. Exit status 1 if any failed.
# A longer run of one target: scripts/run-fuzz.sh 3600 config
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1
SECONDS_PER=${1:-20}
shift || true
TARGETS=("$@")
[[ ${#TARGETS[@]} -gt 0 ]] || TARGETS=(proto json-scan status config lab conda http mig-parted)
DIR=${FUZZ_BUILD_DIR:-build-fuzz}

if ! command -v clang >/dev/null; then
        echo "run-fuzz: clang is missing (apt-get install clang; scripts/install-deps.sh)" >&2
        exit 1
fi
if [[ ! -f "$DIR/build.ninja" ]]; then
        CC=clang meson setup "$DIR" -Dwerror=false -Db_lundef=false >/dev/null || exit 1
fi
bins=()
for t in "${TARGETS[@]}"; do bins+=("tests/fuzz/fuzz-$t-libfuzzer"); done
ninja -C "$DIR" "${bins[@]}" || exit 1

mkdir -p "$DIR/junit" "$DIR/fuzz-artifacts"
xml="$DIR/junit/fuzz.xml"
cases=""
failed=0
for t in "${TARGETS[@]}"; do
        scratch=$(mktemp -d /tmp/gk-fuzz-corpus.XXXXXX)
        log="$DIR/fuzz-artifacts/$t.log"
        # -timeout: one input may take at most 10 s; -rss_limit_mb bounds memory.
        "$DIR/tests/fuzz/fuzz-$t-libfuzzer" -max_total_time="$SECONDS_PER" -timeout=10 \
                -rss_limit_mb=2048 -print_final_stats=1 \
                -artifact_prefix="$DIR/fuzz-artifacts/$t-" \
                "$scratch" "tests/fuzz/corpus-$t" >"$log" 2>&1
        rc=$?
        rm -rf "$scratch"
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
        if [[ $rc -eq 0 ]] && ! grep -qE "ERROR: (AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|libFuzzer)|runtime error:" "$log"; then
                echo "fuzz-$t: ${runs:-?} runs in ${SECONDS_PER} s, OK"
                cases+="<testcase classname=\"fuzz\" name=\"fuzz-$t (${runs:-?} runs)\"/>"
        else
                echo "fuzz-$t: ${runs:-?} runs, FAILED (exit $rc); see $log" >&2
                grep -E "ERROR|SUMMARY|runtime error|invariant" "$log" | head -5 >&2
                cases+="<testcase classname=\"fuzz\" name=\"fuzz-$t\"><failure message=\"exit $rc\"/></testcase>"
                failed=$((failed + 1))
        fi
done
printf '<?xml version="1.0"?>\n<testsuites><testsuite name="fuzz">%s</testsuite></testsuites>\n' \
        "$cases" >"$xml"
[[ $failed -eq 0 ]]
