#!/bin/sh
# Build and run every gpukeeper benchmark, printing the results
# (docs/benchmarks.md says what each measures and records a run).
#
#   bench/run.sh                  build into ./build (or $BUILD_DIR) and run all
#   BUILD_DIR=build-bench bench/run.sh
#
# The build directory is set up with the project's defaults when it does not
# exist yet. Run it as root: bench-enforce, bench-metrics and bench-env make
# (and remove) users of their own, gkbench-NN and gkbench-env-NN. Exit
# status: 0 all targets met, 2 a target missed, 1 a benchmark could not measure (or the
# build failed).
set -eu

cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}

if [ ! -f "$BUILD_DIR/build.ninja" ]; then
        meson setup "$BUILD_DIR"
fi
ninja -C "$BUILD_DIR" bench/bench-tick bench/bench-enforce bench/bench-status bench/bench-lease \
        bench/bench-env bench/bench-metrics bench/bench-mig bench-fence bench/bench-share src/daemon/gpukeeperd src/cli/gpukeeper sim/libnvidia-ml-sim.so

echo "== machine"
echo "cpus:    $(nproc) ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | sort -u | paste -sd ';' -))"
echo "kernel:  $(uname -sr)"
echo "load:    $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min)"
meson introspect --buildoptions "$BUILD_DIR" | python3 -c '
import json, sys
opts = {o["name"]: o["value"] for o in json.load(sys.stdin)}
print("build:   buildtype=%s b_sanitize=%s b_ndebug=%s" % (
    opts.get("buildtype"), opts.get("b_sanitize"), opts.get("b_ndebug")))'

status=0
for bench in bench-tick bench-enforce bench-status bench-lease bench-env bench-metrics bench-mig bench-fence bench-share; do
        echo
        echo "== $bench"
        echo "load:    $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min)"
        rc=0
        "$BUILD_DIR/bench/$bench" || rc=$?
        # Anything but met (0) or missed (2), a crash included, is "could
        # not measure"; keep the worst outcome: 1 over 2 over 0.
        if [ "$rc" -ne 0 ] && [ "$rc" -ne 2 ]; then
                rc=1
        fi
        if [ "$rc" -eq 1 ] || [ "$status" -eq 0 ]; then
                status=$rc
        fi
done
exit "$status"
