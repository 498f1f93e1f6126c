#!/bin/bash
# status-compare.sh: `gpukeeper status` of two builds, byte for byte (issue 16).
#
#   bench/status-compare.sh OLD_BUILD NEW_BUILD [NPROC [GPUS [MIG]]]
#
# As root: starts NPROC real processes (`sleep`, with command lines that are
# ASCII, UTF-8, invalid UTF-8, control characters, a bidi override, quotes
# and backslashes, 300 characters), a third of them as uids 1001/1002 so
# that violations open, writes a simulator lab of GPUS GPUs (MIG on the last
# MIG of them, GPUs 0 and 1 without processes), runs one gpukeeperd of each
# build on it and leases 2 GPUs on each. Then, with the violations open:
#  - each daemon's reply through both CLIs, as text (UTF-8 and C locale, and
#    on a 132-column tty with colour) and --json: identical bytes, except the
#    header clock, sampled_at and stop_at (stop_at is computed per request
#    from the boot clock, so two requests to one daemon differ in it);
#  - the two daemons' --json with every *_at and since masked: identical;
#  - the whole old and new text: identical but the clocks.
# Exit status 0 when all hold. Leaves its work directory for inspection.
set -u
SRC=$(cd "$(dirname "$0")/.." && pwd)
OLD=$(realpath "$1"); NEW=$(realpath "$2"); N=${3:-1024}; GPUS=${4:-16}; MIG=${5:-2}
W=$(mktemp -d /tmp/gk-status-compare.XXXX); cd "$W"
pids=()
names=( "python train.py --epochs 10" $'caf\xc3\xa9 tr\xc3\xa4ining \xe6\x97\xa5\xe6\x9c\xac' $'bad\xff\xfeutf8' $'ctl\x01\x1b[31mred' 'quote"back\slash/slash' $'\xe2\x80\xaebidi' "$(printf 'x%.0s' {1..300})" 'jupyter-kernel' )
for i in $(seq 1 "$N"); do
  nm=${names[$((i % ${#names[@]}))]}
  if (( i % 3 == 0 )); then
    setpriv --reuid $((1001 + i % 2)) --regid $((1001 + i % 2)) --clear-groups bash -c 'exec -a "$0" sleep 3600' "$nm $i" &
  else
    bash -c 'exec -a "$0" sleep 3600' "$nm $i" &
  fi
  pids+=($!)
done
printf '%s\n' "${pids[@]}" > pids.txt
python3 "$SRC/sim/gen-lab.py" --gpus "$GPUS" --mig "$MIG" --pids-from pids.txt --out lab.json
python3 - <<'EOP'
import json
lab = json.load(open('lab.json'))
for g in lab['gpus'][:2]:
    g['processes'] = []
json.dump(lab, open('lab.json.new', 'w'))
EOP
mv lab.json.new lab.json
export GPUKEEPER_SIM_LAB=$W/lab.json
rc=0
for side in OLD NEW; do
  B=${!side}
  mkdir -p state-$side
  cat > gk-$side.yaml <<EOC
socket: $W/gk-$side.sock
state_dir: $W/state-$side
nvml_library: $B/sim/libnvidia-ml-sim.so
sample_interval: 3s
log_level: warning
EOC
  $B/src/daemon/gpukeeperd --config gk-$side.yaml > d-$side.log 2>&1 &
  echo $! > d-$side.pid
done
for side in OLD NEW; do
  for t in $(seq 1 100); do [ -S gk-$side.sock ] && ${!side}/src/cli/gpukeeper --socket gk-$side.sock status --json >/dev/null 2>&1 && break; sleep 0.1; done
done
# some leases: whole GPUs and a MIG instance, manual, on both daemons
for side in OLD NEW; do
  S=gk-$side.sock; C=${!side}/src/cli/gpukeeper
  $C --socket $S lease acquire --gpus 2 --time 4h --no-wait >/dev/null 2>lease-$side.err || echo "lease failed $side: $(cat lease-$side.err)"
done
# wait for the violations (the second tick, once the user database answered)
for side in OLD NEW; do
  for t in $(seq 1 100); do ${!side}/src/cli/gpukeeper --socket gk-$side.sock status --json | grep -q '"violation": {' && break; sleep 0.2; done
done
mask() { sed -E -e 's/("(sampled_at|stop_at)": )[0-9.e+]+/\1T/' -e '1s/[0-9]{2}:[0-9]{2}:[0-9]{2}(\r?)$/HH:MM:SS\1/' "$1"; }
for dside in OLD NEW; do
  for cside in OLD NEW; do
    C=${!cside}/src/cli/gpukeeper; S=gk-$dside.sock
    $C --socket $S status > text-d$dside-c$cside.txt; 
    $C --socket $S status --json > json-d$dside-c$cside.json
    LANG=C LC_ALL=C $C --socket $S status > textC-d$dside-c$cside.txt
    LC_ALL=C.UTF-8 script -qec "stty cols 132; $C --socket $S status" /dev/null > tty-d$dside-c$cside.txt
  done
  # the same daemon's reply through both CLIs: identical bytes
  for k in text json textC tty; do
    ext=txt; [ $k = json ] && ext=json
    if cmp -s <(mask $k-d$dside-cOLD.$ext) <(mask $k-d$dside-cNEW.$ext); then echo "daemon $dside: $k identical ($(wc -c < $k-d$dside-cNEW.$ext) bytes)"; else echo "daemon $dside: $k DIFFERS"; rc=1; fi
  done
done
# the two daemons' replies, sampled_at and lease times masked; gpu_count
# (added in the eighth pass of issue 16) left out of both
for k in json; do
  sed -E -e 's/("([a-z_]*_at|since)": )[0-9.e+]+/\1T/' -e '/^  "gpu_count": [0-9]+,$/d' json-dOLD-cOLD.json > a.json
  sed -E -e 's/("([a-z_]*_at|since)": )[0-9.e+]+/\1T/' -e '/^  "gpu_count": [0-9]+,$/d' json-dNEW-cOLD.json > b.json
  if cmp -s a.json b.json; then echo "old vs new daemon: json identical but times ($(wc -c < a.json) bytes)"; else echo "old vs new daemon: json DIFFERS"; diff a.json b.json | head; rc=1; fi
done
mask text-dOLD-cOLD.txt | sed -E "s/stop at [0-9:]+/stop at T/" > a.txt; mask text-dNEW-cNEW.txt | sed -E "s/stop at [0-9:]+/stop at T/" > b.txt
if cmp -s a.txt b.txt; then echo "old vs new (daemon+CLI): text identical but clock"; else echo "old vs new text DIFFERS"; diff a.txt b.txt | head; rc=1; fi
echo "lines $(grep -c '' text-dNEW-cNEW.txt), violations $(grep -c VIOLATION text-dNEW-cNEW.txt), exact OLD/OLD vs NEW/NEW text: $(cmp -s text-dOLD-cOLD.txt text-dNEW-cNEW.txt && echo same || echo 'differ (clock)')"; grep -m4 -E "lease 1|VIOLATION|ctl|bad" text-dNEW-cNEW.txt
for side in OLD NEW; do kill $(cat d-$side.pid); done
kill "${pids[@]}" 2>/dev/null
wait 2>/dev/null
echo "workdir $W rc $rc"
exit $rc
