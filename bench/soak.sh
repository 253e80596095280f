#!/usr/bin/env bash
# Memory soak: `bash bench/soak.sh` (as root). The agent (release build, default configuration,
# output to /dev/null) watches LIVE (10,000) sleeping processes, kept in a cgroup of their own,
# and an exec churn of RATE (1,000) spawns of /bin/true per second for DURATION (600). Its RSS
# (VmRSS), CPU and the host's process count are sampled every INTERVAL (5) seconds into
# bench/results/soak.csv and plotted to docs/img/soak-rss.png (gnuplot). The summary gives the
# RSS range after WARMUP (60) seconds against the targets: under 64 MB, and within ±10 % of its
# median. The crate's e2e test `storm::rss_stays_bounded_and_flat_...` is the short version.
# Knobs: LIVE, RATE, DURATION, INTERVAL, WARMUP, RESULTS_CSV, PLOT, BUILD (1|0),
# CARGO_TARGET_DIR (/tmp/bench-target). A benchmark: nothing asserts on time.
set -euo pipefail
cd "$(dirname "$0")/.."

LIVE=${LIVE:-10000}
RATE=${RATE:-1000}
DURATION=${DURATION:-600}
INTERVAL=${INTERVAL:-5}
WARMUP=${WARMUP:-60}
RESULTS_CSV=${RESULTS_CSV:-bench/results/soak.csv}
PLOT=${PLOT:-docs/img/soak-rss.png}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/tmp/bench-target}
BIN=$CARGO_TARGET_DIR/release

if [ "$(id -u)" != 0 ]; then echo "soak: run as root" >&2; exit 1; fi
if [ "${BUILD:-1}" != 0 ]; then
  cargo build --locked --release -p vigil -p vigil-bench >&2
fi
CG_ROOT=$(awk '$3 == "cgroup2" {print $2; exit}' /proc/self/mounts)
[ -n "$CG_ROOT" ] || { echo "soak: no cgroup v2 mount" >&2; exit 1; }
WORK=$(mktemp -d /tmp/vigil-soak.XXXXXX)
CG="$CG_ROOT/vigil-soak-$$"
mkdir "$CG"
AGENT=
CHURN=
cleanup() {
  [ -n "$CHURN" ] && kill "$CHURN" 2>/dev/null || true
  echo 1 > "$CG/cgroup.kill" 2>/dev/null || true
  for _ in $(seq 100); do rmdir "$CG" 2>/dev/null && break; sleep 0.1; done
  if [ -n "$AGENT" ] && kill -0 "$AGENT" 2>/dev/null; then kill -INT "$AGENT"; wait "$AGENT" || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

"$BIN/vigil" run --output file:/dev/null 2> "$WORK/agent.log" &
AGENT=$!
for _ in $(seq 600); do
  grep -qs 'vigil: ready' "$WORK/agent.log" && break
  kill -0 "$AGENT" 2>/dev/null || { cat "$WORK/agent.log" >&2; exit 1; }
  sleep 0.1
done
grep -q 'vigil: ready' "$WORK/agent.log" || { echo "soak: agent not ready" >&2; exit 1; }

# The live processes: perl forks (no exec) that sleep, all in the soak cgroup.
sh -c "echo \$\$ > $CG/cgroup.procs; exec perl -e 'for (1..\$ARGV[0]) { my \$p = fork; die \"fork: \$!\" unless defined \$p; if (!\$p) { sleep 100000; exit 0 } } sleep 100000' $LIVE" &
disown
for _ in $(seq 1200); do
  [ "$(wc -l < "$CG/cgroup.procs")" -gt "$LIVE" ] && break
  sleep 0.1
done
echo "soak: $(wc -l < "$CG/cgroup.procs") processes in the soak cgroup" >&2

"$BIN/vigil-flood" gen --kind exec --rate "$RATE" --seconds "$DURATION" --workers 2 > "$WORK/churn.json" &
CHURN=$!
HZ=$(getconf CLK_TCK)
echo "seconds,rss_kib,agent_cpu_s,host_processes" > "$RESULTS_CSV"
start=$(date +%s.%N)
while kill -0 "$CHURN" 2>/dev/null; do
  now=$(date +%s.%N)
  rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$AGENT/status")
  cpu=$(awk -v hz="$HZ" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$AGENT/stat")
  pids=(/proc/[0-9]*)
  procs=${#pids[@]}
  awk -v a="$now" -v b="$start" -v r="$rss" -v c="$cpu" -v p="$procs" \
    'BEGIN {printf "%.1f,%s,%s,%s\n", a - b, r, c, p}' >> "$RESULTS_CSV"
  sleep "$INTERVAL"
done
wait "$CHURN" || true
CHURN=
kill -INT "$AGENT"
wait "$AGENT" || true
AGENT=
stats=$(sed -n 's/^vigil: final stats //p' "$WORK/agent.log")
echo "soak: churn $(cat "$WORK/churn.json")" >&2
echo "soak: final stats $stats" >&2

python3 - "$RESULTS_CSV" "$WARMUP" <<'PY' >&2
import csv, statistics, sys
rows = [r for r in csv.DictReader(open(sys.argv[1])) if float(r["seconds"]) >= float(sys.argv[2])]
rss = [int(r["rss_kib"]) for r in rows]
med = statistics.median(rss)
lo, hi = min(rss), max(rss)
print(f"soak: RSS after warm-up: {lo}..{hi} KiB, median {med:.0f} KiB "
      f"({100 * (lo / med - 1):+.1f} % .. {100 * (hi / med - 1):+.1f} %)")
print("soak: under 64 MB:", "yes" if hi < 64 * 1024 else "NO",
      "; flat within ±10 %:", "yes" if lo >= 0.9 * med and hi <= 1.1 * med else "NO")
PY

if command -v gnuplot > /dev/null; then
  gnuplot <<GP
set terminal pngcairo size 900,420 font "sans,10"
set output "$PLOT"
set datafile separator ","
set title "vigil RSS: $LIVE live processes + $RATE exec/s churn"
set xlabel "seconds"
set ylabel "RSS (MiB)"
set yrange [0:70]
set grid
set key bottom right
plot "$RESULTS_CSV" skip 1 using 1:(\$2/1024) with lines lw 2 title "agent RSS", \
     64 with lines dt 2 lc rgb "red" title "64 MB target"
GP
  echo "soak: plot in $PLOT" >&2
fi
