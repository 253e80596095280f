#!/usr/bin/env bash
# Cost of the latency histograms on syscall storms: one command, `bash bench/latency.sh` (root).
#
# For ROUNDS rounds it runs every configuration, rotating their order each round so that a slow
# drift of the machine (another build, host noise) does not favour one of them:
#   none           nothing attached
#   floor          an empty program on raw_tp sys_enter and sys_exit: what any program on the
#                  syscall hooks costs (the hooks the syscall family uses, tp_btf, run the same way)
#   off            the latency sensor loaded with every family off (nothing attached)
#   syscalls       syscall latency, all three classes
#   syscalls-file  the file class only: getppid still runs both programs, which return early
#   runq           run-queue latency (sched_wakeup, sched_wakeup_new, sched_switch)
#   block          block I/O latency (block_io_start, block_rq_issue, block_rq_complete)
#   all            every family
# Each configuration is held by `latency_hold` (crates/vigil-bpf/examples/latency_hold.rs), and
# in each the load generator `vigil-bench` runs
#   getppid     a tight loop of getppid (syscall-storm)
#   open-close  a tight loop of open(O_RDONLY) + close of a file in $OPEN_DIR (open-storm)
# each for SECONDS seconds; the per-run figure is the median over batches of its ns per operation
# (it leaves out batches in which the loop was preempted). Raw runs go to $CSV; the summary gives
# per configuration the median ns/op [p25..p75] and min..max over rounds, the added cost against
# `none` paired by round (config minus none of the same round, so drift cancels out) with the
# ratio, and the added cost as a multiple of the floor's added cost (same pairing).
# Knobs (environment): ROUNDS (7), SECONDS_PER_RUN (2), CONFIGS (all of the above), OPEN_DIR
# (/tmp/vigil-latency-bench), RESULTS_CSV (bench/results/latency.csv), BUILD (1|0: 0 reuses the
# binaries), CARGO_TARGET_DIR for vigil-bench (default /tmp/bench-target, as bench/run.sh).
# `SUMMARY_ONLY=file.csv bash bench/latency.sh` reprints the summary of a CSV.
# This is a benchmark, not a test: nothing here asserts on time.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-7}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-2}
CONFIGS=${CONFIGS:-"none floor off syscalls syscalls-file runq block all"}
OPEN_DIR=${OPEN_DIR:-/tmp/vigil-latency-bench}
CSV=${RESULTS_CSV:-bench/results/latency.csv}
BENCH_TARGET=${CARGO_TARGET_DIR:-/tmp/bench-target}

summary() {
  awk -F, '
    function q(a, n, p,   h, lo) { h = (n - 1) * p; lo = int(h); return (lo + 1 < n) ? a[lo] + (h - lo) * (a[lo + 1] - a[lo]) : a[lo] }
    function sortn(a, n,   i, j, t) { for (i = 1; i < n; i++) { t = a[i]; for (j = i - 1; j >= 0 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t } }
    function stats(a, n) { sortn(a, n); m = q(a, n, 0.5); lo = q(a, n, 0.25); hi = q(a, n, 0.75); mn = a[0]; mx = a[n - 1] }
    NR == 1 { next }
    {
      r = $1; c = $2; w = $3; v[c, w, r] = $7; has[c, w, r] = 1; rounds[r] = 1
      if (!((c) in cseen)) { cseen[c] = 1; cfgs[nc++] = c }
      if (!((w) in wseen)) { wseen[w] = 1; wls[nw++] = w }
    }
    END {
      printf "%-11s %-14s %-24s %-14s %-28s %-22s %s\n", "workload", "config", "median [p25..p75] ns/op", "min..max", "added vs none [p25..p75]", "ratio vs none", "added / floor added"
      for (i = 0; i < nw; i++) {
        w = wls[i]; label = w
        for (j = 0; j < nc; j++) {
          c = cfgs[j]; k = 0
          for (r in rounds) if (has[c, w, r]) s[k++] = v[c, w, r]
          if (!k) continue
          stats(s, k)
          printf "%-11s %-14s %-24s %-14s", label, c, sprintf("%.0f [%.0f..%.0f]", m, lo, hi), sprintf("%.0f..%.0f", mn, mx); label = ""
          if (c != "none") {
            k = 0; for (r in rounds) if (has[c, w, r] && has["none", w, r]) d[k++] = v[c, w, r] - v["none", w, r]
            if (k) { stats(d, k); printf " %-28s", sprintf("%+.0f [%+.0f..%+.0f]", m, lo, hi) }
            k = 0; for (r in rounds) if (has[c, w, r] && has["none", w, r]) d[k++] = v[c, w, r] / v["none", w, r]
            if (k) { stats(d, k); printf " %-22s", sprintf("%.2f [%.2f..%.2f]", m, lo, hi) }
            if (c != "floor") {
              k = 0; for (r in rounds) if (has[c, w, r] && has["none", w, r] && has["floor", w, r] && v["floor", w, r] > v["none", w, r]) d[k++] = (v[c, w, r] - v["none", w, r]) / (v["floor", w, r] - v["none", w, r])
              if (k) { stats(d, k); printf " %s", sprintf("%.2f [%.2f..%.2f]", m, lo, hi) }
            }
          }
          printf "\n"
        }
      }
    }' "$1"
}

if [ -n "${SUMMARY_ONLY:-}" ]; then
  summary "$SUMMARY_ONLY"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "bench/latency.sh: run as root (it loads BPF programs)" >&2
  exit 1
fi

if [ "${BUILD:-1}" != 0 ]; then
  CARGO_TARGET_DIR=$BENCH_TARGET cargo build --release -q -p vigil-bench
  cargo build -q -p vigil-bpf --example latency_hold
fi
LOAD="$BENCH_TARGET/release/vigil-bench"
HOLD="$(cargo metadata --format-version 1 --no-deps | sed 's/.*"target_directory":"\([^"]*\)".*/\1/')/debug/examples/latency_hold"
mkdir -p "$OPEN_DIR" "$(dirname "$CSV")"
: >"$OPEN_DIR/f"
SCRATCH=$(mktemp -d)
HOLD_PID=""
cleanup() {
  if [ -n "$HOLD_PID" ]; then kill -TERM "$HOLD_PID" 2>/dev/null || true; wait "$HOLD_PID" 2>/dev/null || true; fi
  rm -rf "$SCRATCH"
}
trap cleanup EXIT

# Starts the holder of config $1 and waits until it has attached.
hold() {
  "$HOLD" "$1" >"$SCRATCH/hold.out" 2>&1 &
  HOLD_PID=$!
  for _ in $(seq 1 300); do
    if grep -q ready "$SCRATCH/hold.out"; then return 0; fi
    if ! kill -0 "$HOLD_PID" 2>/dev/null; then
      echo "latency_hold $1 failed: $(cat "$SCRATCH/hold.out")" >&2
      exit 1
    fi
    sleep 0.1
  done
  echo "latency_hold $1: not ready after 30 s" >&2
  exit 1
}

unhold() {
  kill -TERM "$HOLD_PID"
  wait "$HOLD_PID" || true
  HOLD_PID=""
}

num() { sed -n "s/.*\"$2\":\([0-9.]*\).*/\1/p" <<<"$1"; }

echo "round,config,workload,ops,seconds,ns_per_op,batch_median_ns,loadavg1" >"$CSV"
read -r -a cfgs <<<"$CONFIGS"
START=$(date +%s)
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
for round in $(seq 1 "$ROUNDS"); do
  n=${#cfgs[@]}
  for i in $(seq 0 $((n - 1))); do
    cfg=${cfgs[$(((i + round - 1) % n))]}
    if [ "$cfg" != none ]; then hold "$cfg"; fi
    for wl in getppid open-close; do
      case $wl in
        getppid) out=$("$LOAD" syscall-storm --seconds "$SECONDS_PER_RUN") ;;
        open-close) out=$("$LOAD" open-storm --path "$OPEN_DIR/f" --seconds "$SECONDS_PER_RUN") ;;
      esac
      echo "$round,$cfg,$wl,$(num "$out" ops),$(num "$out" seconds),$(num "$out" ns_per_op),$(num "$out" batch_median_ns),$(cut -d' ' -f1 /proc/loadavg)" >>"$CSV"
      printf 'latency bench: round %s/%s %-13s %-10s %8s ns/op (batch median)\n' "$round" "$ROUNDS" "$cfg" "$wl" "$(num "$out" batch_median_ns)" >&2
    done
    if [ "$cfg" != none ]; then unhold; fi
  done
done

echo
echo "latency histogram cost: $(nproc) CPUs, kernel $(uname -r), $ROUNDS rounds x ${SECONDS_PER_RUN}s per run, $(($(date +%s) - START))s;" \
  "load average before $LOAD_BEFORE, after $(cut -d' ' -f1-3 /proc/loadavg)"
summary "$CSV"
echo
echo "raw runs: $(realpath "$CSV")"
