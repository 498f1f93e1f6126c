#!/bin/bash
# Build gpukeeper and leave a running daemon to try it out: sudo scripts/demo.sh
#
# Installs missing Debian packages, builds into build/ (BUILD_DIR overrides),
# then starts gpukeeperd in the background with its own config, socket, SQLite
# database and log under the demo state directory (/run/gpukeeper-demo;
# GPUKEEPER_DEMO_DIR overrides), and shows `gpukeeper status`. With an NVIDIA
# driver installed it reads the real GPUs; without one it uses the NVML
# simulator and the lab file sim/labs/lab4.json, and says so. The PIDs in that
# lab are made up, so the demo starts one real idle process per lab process
# (as the user who ran sudo, else nobody) and runs the simulator on a copy of
# the lab that names their PIDs: status then shows real owners and commands.
# Those jobs hold leases (as their owner would have asked for), and one more
# job runs on a free GPU without a lease: the daemon (enforce mode, 30 s
# grace) warns about it and then stops it, while the leased jobs live on. A
# small keeper drops the processes that exited from the lab copy, as the
# driver frees their memory, so no GPU shows "(exited)" memory forever.
#
#   sudo scripts/demo.sh          (re)start the demo daemon
#   sudo scripts/demo.sh stop     stop it
#
# Running it again stops the previous demo daemon first and gives back the
# leases its jobs held.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-build}
case "$BUILD_DIR" in /*) ;; *) BUILD_DIR="$ROOT/$BUILD_DIR" ;; esac
DEFAULT_DEMO_DIR=/run/gpukeeper-demo
DEMO_DIR=${GPUKEEPER_DEMO_DIR:-$DEFAULT_DEMO_DIR}
GKD="$BUILD_DIR/src/daemon/gpukeeperd"
GK="$BUILD_DIR/src/cli/gpukeeper"
SIM_LIB="$BUILD_DIR/sim/libnvidia-ml-sim.so"
SIM_LAB="$ROOT/sim/labs/lab4.json"
CONFIG="$DEMO_DIR/gpukeeper.yaml"
SOCKET="$DEMO_DIR/gpukeeper.sock"
LOG="$DEMO_DIR/gpukeeperd.log"
PIDFILE="$DEMO_DIR/gpukeeperd.pid"
DEMO_LAB="$DEMO_DIR/lab.json"
JOBS_FILE="$DEMO_DIR/jobs.pids"
JOB_SCRIPT="$DEMO_DIR/train.py"
KEEPER_PIDFILE="$DEMO_DIR/labkeeper.pid"
# The ids of the leases the demo's jobs hold: the database keeps them across
# a restart (as it keeps every lease), and the next start gives them back.
LEASES_FILE="$DEMO_DIR/leases"
# The job started without a lease, on the lab's free GPU (GPU 1 of lab4.json).
UNLEASED_GPU=GPU-a7d03c6e-91f2-4b5a-8e47-c2d9f60b1e88
GRACE=30s
PYTHON=/usr/bin/python3
START_TIMEOUT_S=15

die() {
        echo "demo: $*" >&2
        exit 1
}

show_log_tail() {
        if [[ -s "$LOG" ]]; then
                echo "---- last lines of $LOG ----" >&2
                tail -n 25 "$LOG" >&2
                echo "----" >&2
        fi
}

# The PID of the running demo daemon, or nothing. The PID file alone is not
# trusted: the process must still be a gpukeeperd started with our config.
demo_pid() {
        local pid cmdline
        [[ -r "$PIDFILE" ]] || return 0
        pid=$(<"$PIDFILE")
        [[ "$pid" =~ ^[0-9]+$ ]] || return 0
        cmdline=$(cmdline_of "$pid")
        if [[ "$cmdline" == *gpukeeperd*"--config $CONFIG"* ]]; then
                echo "$pid"
        fi
}

# The command line of process $1, or nothing when it is gone (no error: a
# job the daemon stopped is gone, and that is the point of the demo).
cmdline_of() {
        { tr '\0' ' ' <"/proc/$1/cmdline"; } 2>/dev/null || true
}

# Whether process $1 still runs: one that exited is gone, or a zombie until
# whoever adopted it (init, a subreaper) reaps it.
running() {
        local stat
        stat=$({ cat "/proc/$1/stat"; } 2>/dev/null) || return 1
        stat=${stat##*) }
        [[ "${stat%% *}" != [ZX] ]]
}

# Kill the demo's stand-in GPU jobs (only processes still running our script)
# and the lab keeper.
stop_jobs() {
        local pid
        if [[ -r "$KEEPER_PIDFILE" ]]; then
                pid=$(<"$KEEPER_PIDFILE")
                if [[ "$pid" =~ ^[0-9]+$ && "$(cmdline_of "$pid")" == *demo-labkeeper* ]]; then
                        kill -TERM "$pid" 2>/dev/null || true
                fi
                rm -f "$KEEPER_PIDFILE"
        fi
        [[ -r "$JOBS_FILE" ]] || return 0
        while read -r pid; do
                [[ "$pid" =~ ^[0-9]+$ ]] || continue
                if [[ "$(cmdline_of "$pid")" == *"$JOB_SCRIPT"* ]]; then
                        kill -TERM "$pid" 2>/dev/null || true
                fi
        done <"$JOBS_FILE"
        rm -f "$JOBS_FILE"
}

# Start one idle process per process in sim/labs/lab4.json, as user $1, and
# write a copy of the lab with their PIDs in place of the made-up ones.
start_jobs() {
        local owner=$1 n i
        local -a pids=()
        n=$("$PYTHON" -c 'import json, sys
print(sum(len(g.get("processes", [])) for g in json.load(open(sys.argv[1]))["gpus"]))' "$SIM_LAB") || return 1
        printf '%s\n' '"""A stand-in GPU job of scripts/demo.sh: it only sleeps."""' \
                'import time' 'time.sleep(7 * 86400)' >"$JOB_SCRIPT"
        chmod 0644 "$JOB_SCRIPT"
        for ((i = 1; i <= n + 1; i++)); do
                (exec setpriv --reuid="$owner" --regid="$(id -g "$owner")" --init-groups \
                        setsid "$PYTHON" "$JOB_SCRIPT" --job "$i" </dev/null >/dev/null 2>&1) &
                pids+=("$!")
        done
        printf '%s\n' "${pids[@]}" >"$JOBS_FILE"
                # The full lab (jobs, and the unleased one on $UNLEASED_GPU) goes to
        # $DEMO_LAB.full; the daemon starts on a copy without processes, so
        # the jobs appear only once their leases are held (lease_jobs).
        "$PYTHON" -c 'import json, os, sys
lab = json.load(open(sys.argv[1]))
pids = iter(int(p) for p in sys.argv[4:])
lab["comment"] = "Copy of " + sys.argv[1] + " by scripts/demo.sh, with the PIDs of real demo processes."
for g in lab["gpus"]:
    for p in g.get("processes", []):
        p["pid"] = next(pids)
for g in lab["gpus"]:
    if g["uuid"] == sys.argv[3]:
        g.setdefault("processes", []).append({"pid": next(pids), "used_mib": 4096, "sm_util": 60})
def write(path, data):
    with open(path + ".tmp", "w") as f:
        json.dump(data, f, indent=1)
    os.rename(path + ".tmp", path)
write(sys.argv[2] + ".full", lab)
empty = json.loads(json.dumps(lab))
for g in empty["gpus"]:
    g["processes"] = []
write(sys.argv[2], empty)' "$SIM_LAB" "$DEMO_LAB" "$UNLEASED_GPU" "${pids[@]}"
}

# Give back, as root (an admin), the leases an earlier demo's jobs held:
# those jobs were stopped, but their leases (1 day) were restored with the
# database and would keep this demo's jobs from their devices. A lease that
# is gone already (released, expired) is no error.
release_old_leases() {
        local id
        [[ -r "$LEASES_FILE" ]] || return 0
        while read -r id; do
                [[ "$id" =~ ^[0-9]+$ ]] || continue
                "$GK" --socket "$SOCKET" lease release "$id" >/dev/null 2>&1 || true
        done <"$LEASES_FILE"
        rm -f "$LEASES_FILE"
}

# As user $1: lease every device a job of the lab runs on, except the
# unleased one's, then show the jobs to the daemon and start the keeper.
lease_jobs() {
        local owner=$1 dev reply
        while read -r dev; do
                reply=$(setpriv --reuid="$owner" --regid="$(id -g "$owner")" --init-groups \
                        "$GK" --socket "$SOCKET" lease acquire --gpu "$dev" --time 1d --no-wait \
                        --json) || return 1
                "$PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["lease"]["id"])' \
                        <<<"$reply" >>"$LEASES_FILE" || return 1
        done < <("$PYTHON" -c 'import json, sys
lab = json.load(open(sys.argv[1]))
for g in lab["gpus"]:
    inst = {(i["gi"], i.get("ci", 0)): i["uuid"] for i in g.get("mig", {}).get("instances", [])}
    seen = set()
    for p in g.get("processes", []):
        dev = inst[(p["gi"], p.get("ci", 0))] if "gi" in p else g["uuid"]
        if g["uuid"] != sys.argv[2] and dev not in seen:
            seen.add(dev)
            print(dev)' "$DEMO_LAB.full" "$UNLEASED_GPU")
        mv "$DEMO_LAB.full" "$DEMO_LAB"
        # The keeper: a process that exited leaves the lab, as a real driver
        # stops listing it once its memory is freed.
        (exec setsid "$PYTHON" -c 'import json, os, sys, time
while True:
    time.sleep(1)
    try:
        lab = json.load(open(sys.argv[1]))
    except (OSError, ValueError):
        continue
    changed = False
    for g in lab["gpus"]:
        alive = [p for p in g.get("processes", []) if os.path.exists("/proc/%d" % p["pid"])
                 and open("/proc/%d/stat" % p["pid"]).read().rsplit(")", 1)[1].split()[0] != "Z"]
        if len(alive) != len(g.get("processes", [])):
            g["processes"], changed = alive, True
    if changed:
        with open(sys.argv[1] + ".tmp", "w") as f:
            json.dump(lab, f, indent=1)
        os.rename(sys.argv[1] + ".tmp", sys.argv[1])' "$DEMO_LAB" demo-labkeeper \
                </dev/null >/dev/null 2>&1) &
        echo "$!" >"$KEEPER_PIDFILE"
}

# Stop the demo daemon and its jobs; returns 1 when no demo daemon ran.
stop_demo() {
        local pid i
        stop_jobs
        pid=$(demo_pid)
        if [[ -z "$pid" ]]; then
                rm -f "$PIDFILE"
                return 1
        fi
        echo "demo: stopping gpukeeperd (pid $pid)"
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 100; i++)); do
                running "$pid" || break
                sleep 0.1
        done
        if running "$pid"; then
                echo "demo: gpukeeperd did not exit within 10 s of SIGTERM; killing it" >&2
                kill -KILL "$pid" 2>/dev/null || true
        fi
        rm -f "$PIDFILE"
}

[[ $(id -u) -eq 0 ]] || die "run as root: sudo $0 ${*:-}"

case "${1:-start}" in
stop)
        if stop_demo; then
                echo "demo: stopped"
        else
                echo "demo: no demo daemon was running with the state directory $DEMO_DIR" \
                        "(GPUKEEPER_DEMO_DIR names another)"
        fi
        exit 0
        ;;
start) ;;
*)
        echo "usage: $0 [start|stop]" >&2
        exit 64
        ;;
esac

"$ROOT/scripts/install-deps.sh"

echo "demo: building in $BUILD_DIR"
if [[ ! -f "$BUILD_DIR/build.ninja" ]]; then
        meson setup "$BUILD_DIR" "$ROOT" >/dev/null || die "meson setup $BUILD_DIR failed"
fi
if ! build_output=$(ninja -C "$BUILD_DIR" 2>&1); then
        printf '%s\n' "$build_output" | tail -n 30 >&2
        die "build failed (last lines above)"
fi
[[ -x "$GKD" && -x "$GK" ]] || die "the build did not produce $GKD and $GK"

stop_demo || true

# Real NVML when the driver's library is installed, else the simulator.
# (grep without -q: an early exit would fail ldconfig with SIGPIPE under pipefail.)
sim_env=()
if ldconfig -p | grep 'libnvidia-ml\.so\.1' >/dev/null; then
        nvml_library=libnvidia-ml.so.1
        echo "demo: NVIDIA driver found: reading the real GPUs through libnvidia-ml.so.1"
else
        [[ -f "$SIM_LIB" ]] || die "the simulator library $SIM_LIB was not built"
        [[ -f "$SIM_LAB" ]] || die "the lab file $SIM_LAB is missing"
        nvml_library=$SIM_LIB
        echo "demo: No NVIDIA driver found: using the SIMULATED lab sim/labs/lab4.json"
fi

# Others must reach the socket in here (it is 0666); the log and config stay root's.
install -d -m 0755 "$DEMO_DIR"

if [[ "$nvml_library" == "$SIM_LIB" ]]; then
        job_owner=${SUDO_USER:-nobody}
        [[ "$job_owner" != root ]] || job_owner=nobody
        start_jobs "$job_owner" || die "could not start the demo's stand-in GPU jobs"
        sim_env=("GPUKEEPER_SIM_LAB=$DEMO_LAB")
        echo "demo: the lab's GPU jobs run as real processes of user $job_owner (lab copy: $DEMO_LAB)"
fi
cat >"$CONFIG" <<EOF
# Written by scripts/demo.sh; see gpukeeper.yaml(5).
socket: $SOCKET
state_dir: $DEMO_DIR
nvml_library: $nvml_library
sample_interval: 2s
log_level: info
enforcement:
  mode: enforce
  grace: $GRACE
EOF
: >"$LOG"

echo "demo: starting gpukeeperd --config $CONFIG (log: $LOG)"
# setsid: the daemon gets its own session, so it outlives this script and the
# terminal it runs in. exec keeps the PID that $! reports the daemon's.
(exec env "${sim_env[@]}" setsid "$GKD" --config "$CONFIG" </dev/null >>"$LOG" 2>&1) &
pid=$!
echo "$pid" >"$PIDFILE"

deadline=$((SECONDS + START_TIMEOUT_S))
until [[ -S "$SOCKET" ]] && "$GK" --socket "$SOCKET" status --json >/dev/null 2>&1; do
        if ! kill -0 "$pid" 2>/dev/null; then
                rm -f "$PIDFILE"
                stop_jobs
                show_log_tail
                die "gpukeeperd exited during start (log above)"
        fi
        if ((SECONDS >= deadline)); then
                show_log_tail
                stop_demo || true
                die "gpukeeperd did not answer on $SOCKET within ${START_TIMEOUT_S} s (log above)"
        fi
        sleep 0.2
done

release_old_leases
if [[ "$nvml_library" == "$SIM_LIB" ]]; then
        lease_jobs "$job_owner" || {
                show_log_tail
                stop_demo || true
                die "could not lease the demo jobs' devices as $job_owner"
        }
        echo "demo: $job_owner's jobs run under leases; one more job of $job_owner runs on"
        echo "demo: $UNLEASED_GPU without a lease: it is warned now and stopped in $GRACE."
        sleep 5 # two samples: the jobs and the violation show in status
fi

echo
echo "\$ gpukeeper --socket $SOCKET status"
if ! "$GK" --socket "$SOCKET" status; then
        show_log_tail
        stop_demo || true
        die "gpukeeper status failed (daemon log above); the demo daemon was stopped"
fi

# The stop command as this demo was started: another state directory must
# be named again (through env: sudo drops the caller's environment).
stop_command="sudo $0 stop"
if [[ "$DEMO_DIR" != "$DEFAULT_DEMO_DIR" ]]; then
        stop_command="sudo env GPUKEEPER_DEMO_DIR=$DEMO_DIR $0 stop"
fi
cat <<EOF

demo: gpukeeperd is running (pid $pid) and stays running.
  Use it (as any user):
    export GPUKEEPER_SOCKET=$SOCKET
    $GK status
    $GK status --json
  Daemon log:   $LOG
  Reload config after editing $CONFIG:  sudo kill -HUP $pid
  Stop it:      $stop_command
EOF
if [[ "$nvml_library" == "$SIM_LIB" ]]; then
        cat <<EOF
  Simulated GPUs: edit $DEMO_LAB (replace it atomically, see sim/README.md);
  the daemon picks the change up at its next sample.
EOF
fi
