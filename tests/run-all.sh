#!/bin/bash
# Run every gpukeeper test, twice: on the normal build and on a build with
# AddressSanitizer + UndefinedBehaviorSanitizer. As root (the integration
# tests create Linux users and start processes as them): sudo tests/run-all.sh
#
# Steps: install missing Debian packages; for each build directory, configure
# if needed, build, run the meson tests (unit + docs suites: cmocka writes one
# JUnit file per group into <builddir>/junit/) and the pytest integration
# suite (JUnit into the same directory), each under scripts/reap-strays.py,
# which counts a process either left running as a failed step (a server a
# test starts must be stopped by it). scripts/count-results.py then counts
# individual cases from those files and prints the last line,
# `N passed, N failed` (", N skipped" when any). The exit status is non-zero if
# anything failed, a build failed, or no test ran.
#
# Then a third build, --buildtype=release (what packagers build), is only
# built, not tested; a build failure there counts as a failed step. Then the
# fuzz targets run FUZZ_SECONDS (10) each in a clang build, FUZZ_BUILD_DIR
# (build-fuzz): scripts/run-fuzz.sh.
#
# BUILD_DIR, ASAN_BUILD_DIR and RELEASE_BUILD_DIR override the build
# directories (relative to the repository root, or absolute).
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1
BUILD_DIR=${BUILD_DIR:-build}
ASAN_BUILD_DIR=${ASAN_BUILD_DIR:-build-asan}
PYTHON=/usr/bin/python3   # Debian's, which has python3-pytest (not a pyenv shim)

# Python must not leave root-owned __pycache__ directories in the checkout.
export PYTHONDONTWRITEBYTECODE=1

step() { printf '\n==== %s\n' "$*"; }

scripts/install-deps.sh || exit 1

failed_steps=()

# A probe for LeakSanitizer: it stops the process with ptrace-like calls and
# reports "LeakSanitizer does not work under ptrace" (or finds nothing) where
# the container forbids that, e.g. under strace/gdb or a seccomp profile
# without ptrace. Leak detection stays on wherever it works.
lsan_works() {
        local dir rc out
        dir=$(mktemp -d /tmp/gk-lsan-probe.XXXXXX)
        printf '%s\n' '#include <stdlib.h>' \
                '__attribute__((noinline)) static void leak(void) { void *volatile p = malloc(33); (void)p; }' \
                'int main(void) { for (int i = 0; i < 8; i++) leak(); return 0; }' >"$dir/leak.c"
        if ! gcc -fsanitize=address -g -o "$dir/leak" "$dir/leak.c" 2>"$dir/cc.log"; then
                cat "$dir/cc.log" >&2
                rm -rf "$dir"
                return 1
        fi
        out=$(ASAN_OPTIONS=detect_leaks=1 "$dir/leak" 2>&1)
        rc=$?
        rm -rf "$dir"
        [[ $rc -ne 0 && "$out" == *"detected memory leaks"* ]]
}

# reaping WHAT REPORT COMMAND...: run COMMAND as a child subreaper
# (scripts/reap-strays.py); whatever it started and left running (a server a
# test did not stop, however it detached) is listed, killed, and counted as
# a failed step. Returns COMMAND's exit status.
reaping() {
        local what=$1 report=$2 rc n
        shift 2
        "$PYTHON" scripts/reap-strays.py --report "$report" -- "$@"
        rc=$?
        if [[ -s "$report" ]]; then
                n=$(wc -l <"$report")
                failed_steps+=("$what: $n process(es) left running: $(head -c 300 "$report" | tr '\n' ';')")
        fi
        return $rc
}

# run_suite NAME BUILDDIR [MESON SETUP OPTIONS...]: build and test one build dir.
run_suite() {
        local name=$1 dir=$2
        shift 2

        # cmocka refuses to overwrite an XML file (it falls back to stderr),
        # and results of an earlier run must not be counted again, even when
        # this build fails: start each run empty.
        rm -rf "$dir/junit" "$dir/meson-logs/testlog.json"

        step "$name: build ($dir)"
        if [[ ! -f "$dir/build.ninja" ]]; then
                if ! meson setup "$dir" "$@"; then
                        failed_steps+=("$name: meson setup $dir")
                        return
                fi
        elif [[ $# -gt 0 ]]; then
                # Keep an existing directory's options in line with what we test.
                meson configure "$dir" "$@" >/dev/null || { failed_steps+=("$name: meson configure $dir"); return; }
        fi
        if ! ninja -C "$dir"; then
                failed_steps+=("$name: ninja -C $dir")
                return
        fi

        mkdir -p "$dir/junit"

        step "$name: unit tests (meson test -C $dir)"
        # Failures are counted from the JUnit files and testlog.json below.
        reaping "$name: unit tests" "$dir/junit/strays-unit.txt" \
                meson test -C "$dir" --suite unit --suite docs --print-errorlogs --num-processes 2

        step "$name: integration tests (pytest tests/integration, GK_BUILD_DIR=$dir)"
        GK_BUILD_DIR=$dir reaping "$name: integration tests" "$dir/junit/strays-integration.txt" \
                "$PYTHON" -m pytest tests/integration -v \
                --junitxml="$dir/junit/pytest-integration.xml" -o junit_suite_name="integration-$name"
        local rc=$?
        # pytest: 0 all passed, 1 some failed (counted from the XML), 5 none
        # collected (count-results then reports zero); anything else means the
        # run itself broke (usage error, internal error, interrupted).
        if [[ $rc -ne 0 && $rc -ne 1 && $rc -ne 5 ]]; then
                failed_steps+=("$name: pytest exited $rc")
        fi
}

start=$SECONDS

unset ASAN_OPTIONS UBSAN_OPTIONS
run_suite normal "$BUILD_DIR"

# Sanitizers: stop at the first error of either kind, with a stack trace.
# b_lundef=false: with Clang a sanitized shared object (the NVML simulator)
# leaves the runtime's symbols to the executable that loads it, and meson
# warns that b_sanitize with b_lundef=true "will probably not work"; with GCC
# it changes nothing, so the script works for CC=clang as well.
# werror=false only here:
# GCC's manual warns that sanitizer instrumentation raises false-positive
# warnings (e.g. -Wformat-overflow sees a NULL destination behind UBSan's null
# checks) and recommends against -Werror with sanitizers. The normal build
# above keeps every warning an error, so no warning gets through.
leaks=1
if ! lsan_works; then
        echo "run-all: LeakSanitizer does not work here (it did not report a known leak;" \
             "it needs ptrace, which a container or a tracer can forbid); running the" \
             "sanitizer build with detect_leaks=0, every other check on" >&2
        leaks=0
fi
export ASAN_OPTIONS="detect_leaks=$leaks:halt_on_error=1:abort_on_error=0:detect_stack_use_after_return=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
export LSAN_OPTIONS="print_suppressions=0"
run_suite sanitizers "$ASAN_BUILD_DIR" -Db_sanitize=address,undefined -Db_lundef=false -Dwerror=false
unset ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS

# The release build packagers make (-O3, -Werror): build only, since its
# code is the normal build's at a higher optimisation level, and -O3 finds
# warnings (truncation, maybe-uninitialised, dangling pointers) -O2 does not.
# A failed setup or build is a failure step.
RELEASE_BUILD_DIR=${RELEASE_BUILD_DIR:-build-release}
step "release: build ($RELEASE_BUILD_DIR, --buildtype=release, build only)"
if [[ ! -f "$RELEASE_BUILD_DIR/build.ninja" ]]; then
        meson setup "$RELEASE_BUILD_DIR" --buildtype=release ||
                failed_steps+=("release: meson setup $RELEASE_BUILD_DIR")
else
        meson configure "$RELEASE_BUILD_DIR" --buildtype=release >/dev/null ||
                failed_steps+=("release: meson configure $RELEASE_BUILD_DIR")
fi
if [[ -f "$RELEASE_BUILD_DIR/build.ninja" ]] && ! ninja -C "$RELEASE_BUILD_DIR"; then
        failed_steps+=("release: ninja -C $RELEASE_BUILD_DIR")
fi

# Fuzzing: every libFuzzer target for FUZZ_SECONDS (10) in a clang build;
# each target is one case in the count (scripts/run-fuzz.sh).
FUZZ_BUILD_DIR=${FUZZ_BUILD_DIR:-build-fuzz}
rm -rf "$FUZZ_BUILD_DIR/junit"
step "fuzzing (scripts/run-fuzz.sh ${FUZZ_SECONDS:-10}, $FUZZ_BUILD_DIR)"
if ! FUZZ_BUILD_DIR=$FUZZ_BUILD_DIR scripts/run-fuzz.sh "${FUZZ_SECONDS:-10}"; then
        [[ -f "$FUZZ_BUILD_DIR/junit/fuzz.xml" ]] || failed_steps+=("fuzz: scripts/run-fuzz.sh")
fi

step "results ($((SECONDS - start)) s)"
fail_args=()
for s in "${failed_steps[@]}"; do
        fail_args+=(--fail "$s")
done
"$PYTHON" scripts/count-results.py "$BUILD_DIR" "$ASAN_BUILD_DIR" "$FUZZ_BUILD_DIR" "${fail_args[@]}"
