#!/bin/bash
# lease-compare.sh: bench-lease of several builds in turns (issue 16).
#
#   bench/lease-compare.sh ROUNDS NAME=SOURCE_DIR [NAME=SOURCE_DIR ...]
#
# Each SOURCE_DIR is a checkout with bench-lease, gpukeeperd and the NVML
# simulator built in SOURCE_DIR/build. Runs each build's own
# `build/bench/bench-lease --count 1000 --seconds 1 --clients 1` (its
# benchmark, client library and daemon) ROUNDS times, the builds taking
# turns so that the VM's changes of speed hit them alike, prints one line
# of p50s per run and, per build, the medians and the ratio of each run's
# acquire to its own floors. Logs stay in the work directory it names.
set -eu
rounds=$1; shift
out=$(mktemp -d /tmp/gk-lease-compare.XXXX)
echo "lease-compare: logs in $out"
p50() { awk -v pat="$1" '$0 ~ pat {print $(NF-4); exit}' "$2"; }
for i in $(seq 1 "$rounds"); do
  for spec in "$@"; do
    name=${spec%%=*}; dir=${spec#*=}
    f=$out/$name-$i.log
    (cd "$dir" && build/bench/bench-lease --count 1000 --seconds 1 --clients 1 > "$f" 2>&1) || true
    # Builds before the seventh pass print one echo ("transport floor (AF_UNIX echo)").
    trecv=$(p50 'transport, echo by blocking recv|transport floor \\(AF_UNIX echo\\)' "$f")
    tpoll=$(p50 'transport, echo by poll \\+ recv' "$f")
    echo "$name $i load=$(cut -d' ' -f1 /proc/loadavg)" \
         "commit=$(p50 'SQLite commit of 1 row' "$f") grant=$(p50 'store grant \\(store_lease_grant\\)' "$f")" \
         "t_recv=$trecv t_poll=${tpoll:--} ping=$(p50 'ping \\(protocol round trip\\)' "$f")" \
         "acquire=$(p50 '^  lease.acquire ' "$f") release=$(p50 '^  lease.release ' "$f")"
  done
done | tee "$out/summary.txt"
python3 - "$out/summary.txt" <<'PY'
import collections, statistics, sys
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    p = line.split()
    rows[p[0]].append(dict(x.split('=', 1) for x in p[2:]))
for name, runs in rows.items():
    def num(r, k):
        return float(r[k]) if r.get(k, '-') not in ('-', '') else None
    def med(k):
        v = [num(r, k) for r in runs if num(r, k) is not None]
        return f"{statistics.median(v):.1f}" if v else "-"
    cheaper, by_recv = [], []
    for r in runs:
        t = [x for x in (num(r, 't_recv'), num(r, 't_poll')) if x is not None]
        if t and num(r, 'acquire') and num(r, 'commit'):
            cheaper.append(num(r, 'acquire') / (min(t) + num(r, 'commit')))
            by_recv.append(num(r, 'acquire') / (num(r, 't_recv') + num(r, 'commit')))
    print(f"{name}: {len(runs)} runs, medians: commit {med('commit')} grant {med('grant')} "
          f"echo/recv {med('t_recv')} echo/poll {med('t_poll')} ping {med('ping')} "
          f"acquire {med('acquire')} release {med('release')}")
    if cheaper:
        print(f"  acquire / (cheaper echo + commit): {min(cheaper):.2f}-{max(cheaper):.2f}; "
              f"/ (echo by recv + commit): {min(by_recv):.2f}-{max(by_recv):.2f}")
PY
