#!/usr/bin/env bash
# Overhead benchmark for the Vigil agent: one command, `bash bench/run.sh` (as root).
#
# For ROUNDS rounds it runs each configuration, rotating their order every round so that a slow
# drift of the machine (another build, caches, host noise) does not favour one of them:
#   A  no agent
#   B  `vigil run --output file:/dev/null`: the full pipeline (argv, ancestry, JSON encoding)
#   C  bpftrace printing every exec (tracepoint:sched:sched_process_exec) to a tmpfs file, the
#      reference point; only if bpftrace is installed and BPFTRACE is not 0
# and in each configuration runs every workload once. The agent is started fresh for every run,
# so that its final stats (generated / received / dropped) belong to that run alone; bpftrace,
# slow to start, once per round. The workloads:
#   exec-storm with each worker count of EXEC_WORKERS (posix_spawn /bin/true + wait, in a loop)
#   syscall-storm (getppid in a loop: a syscall no agent program hooks)
# Then, unless BPF_STATS=0, one more agent run with kernel.bpf_stats_enabled=1 measures the time
# spent inside the agent's BPF programs (kept out of the timed runs, as the counter costs a bit).
#
# The summary gives per configuration the median ns/op with p25..p75 and min..max, and per traced
# configuration the added cost and ratio against A, paired by round (B of round r minus A of
# round r) so that drift between rounds cancels out. Raw numbers: bench/results/latest.csv.
#
# Knobs (environment): ROUNDS (5), EXEC_SECONDS (4), SYSCALL_SECONDS (3), EXEC_WORKERS ("2 4"),
# BPFTRACE (auto|0), BPF_STATS (auto|0), RESULTS_CSV (bench/results/latest.csv), BUILD (1|0: 0
# reuses the binaries already built), CARGO_TARGET_DIR (default /tmp/bench-target, apart from the
# main target dir so as not to block other builds).
# This is a benchmark, not a test: nothing here asserts on time.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-5}
EXEC_SECONDS=${EXEC_SECONDS:-4}
SYSCALL_SECONDS=${SYSCALL_SECONDS:-3}
EXEC_WORKERS=${EXEC_WORKERS:-"2 4"}
BPFTRACE=${BPFTRACE:-auto}
BPF_STATS=${BPF_STATS:-auto}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/tmp/bench-target}

if [ "$(id -u)" != 0 ]; then
  echo "bench: must run as root (the agent loads BPF programs)" >&2
  exit 1
fi
if [ -f scripts/deps.sh ]; then
  # Same build prerequisites as the tests (clang, libelf...); idempotent.
  source scripts/deps.sh
fi

if [ "${BUILD:-1}" != 0 ]; then
  echo "bench: building release binaries in $CARGO_TARGET_DIR" >&2
  # --locked: a benchmark must never rewrite Cargo.lock.
  cargo build --locked --release -p vigil -p vigil-bench >&2
fi
VIGIL=$CARGO_TARGET_DIR/release/vigil
LOAD=$CARGO_TARGET_DIR/release/vigil-bench
for bin in "$VIGIL" "$LOAD"; do
  if [ ! -x "$bin" ]; then echo "bench: $bin is missing (run without BUILD=0)" >&2; exit 1; fi
done
echo "bench: agent binary $VIGIL built $(date -r "$VIGIL" '+%F %T')" >&2

CONFIGS="A B"
if [ "$BPFTRACE" != 0 ] && command -v bpftrace >/dev/null; then
  CONFIGS="A B C"
fi
WORKLOADS=""
for w in $EXEC_WORKERS; do WORKLOADS="$WORKLOADS exec:$w"; done
WORKLOADS="$WORKLOADS syscall:1"

CSV=${RESULTS_CSV:-bench/results/latest.csv}
mkdir -p "$(dirname "$CSV")"
SCRATCH=$(mktemp -d /dev/shm/vigil-bench.XXXXXX)
TRACER_PID=""
STATS_SYSCTL=""
cleanup() {
  if [ -n "$TRACER_PID" ]; then
    kill -INT "$TRACER_PID" 2>/dev/null || true
    wait "$TRACER_PID" 2>/dev/null || true
  fi
  if [ -n "$STATS_SYSCTL" ]; then sysctl -q kernel.bpf_stats_enabled="$STATS_SYSCTL" || true; fi
  rm -rf "$SCRATCH"
}
trap cleanup EXIT

# CPU time (user + system, in seconds) a process has used so far.
cpu_seconds() {
  # Fields after the ")" that ends comm: state is 1, utime 12, stime 13.
  sed 's/.*) //' "/proc/$1/stat" | awk -v hz="$(getconf CLK_TCK)" '{ printf "%.3f", ($12 + $13) / hz }'
}

# Waits until FILE contains PATTERN, or fails if PID dies or 60 s pass.
wait_for() {
  local file=$1 pattern=$2 pid=$3 i
  for i in $(seq 1200); do
    if grep -q "$pattern" "$file" 2>/dev/null; then return 0; fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "bench: tracer exited before it was ready:" >&2
      cat "$file" "$SCRATCH"/*.err >&2 2>/dev/null || true
      return 1
    fi
    sleep 0.05
  done
  echo "bench: tracer not ready after 60 s" >&2
  return 1
}

# Starts the tracer of configuration $1 (none for A). Sets TRACER_PID and TRACER_LOG.
start_tracer() {
  TRACER_LOG=$SCRATCH/tracer.log
  : >"$TRACER_LOG"
  case $1 in
    A) TRACER_PID="" ;;
    B)
      "$VIGIL" run --output file:/dev/null 2>"$TRACER_LOG" &
      TRACER_PID=$!
      wait_for "$TRACER_LOG" ready "$TRACER_PID"
      ;;
    C)
      # BEGIN runs once every probe is attached, so its line is the readiness signal.
      bpftrace -o "$TRACER_LOG" -e 'BEGIN { printf("ready\n"); }
        tracepoint:sched:sched_process_exec {
          printf("%d %d %s %s\n", pid, curtask->real_parent->tgid, comm, str(args->filename));
        }' >/dev/null 2>"$SCRATCH/bpftrace.err" &
      TRACER_PID=$!
      wait_for "$TRACER_LOG" ready "$TRACER_PID"
      ;;
  esac
}

# Stops the tracer and sets STATS to "exec_gen exec_recv exec_drop_rb exec_drop_sink fork_gen
# fork_drop exit_gen exit_drop decode_errors" from the agent's final stats (dashes otherwise).
# Not run in a subshell: only the shell that started the tracer can wait for it.
stop_tracer() {
  local cfg=$1 stats dec
  STATS="- - - - - - - - -"
  if [ -z "$TRACER_PID" ]; then return; fi
  kill -INT "$TRACER_PID"
  wait "$TRACER_PID" || { echo "bench: tracer $cfg exited with $?" >&2; cat "$TRACER_LOG" >&2; }
  TRACER_PID=""
  if [ "$cfg" != B ]; then return; fi
  stats=$(sed -n 's/^vigil: final stats //p' "$TRACER_LOG")
  if [ -z "$stats" ]; then
    echo "bench: no final stats from the agent:" >&2
    cat "$TRACER_LOG" >&2
    return
  fi
  # One counter of one kind from the stats JSON (field names are stable).
  field() { grep -o "\"kind\":\"$1\"[^}]*" <<<"$stats" | grep -o "\"$2\":[0-9]*" | cut -d: -f2; }
  dec=$(grep -o '"decode_errors":[0-9]*' <<<"$stats" | cut -d: -f2)
  STATS="$(field exec generated) $(field exec received) $(field exec dropped_ringbuf_full)"
  STATS+=" $(field exec dropped_sink_error) $(field fork generated)"
  STATS+=" $(($(field fork dropped_ringbuf_full) + $(field fork dropped_sink_error)))"
  STATS+=" $(field exit generated) $(($(field exit dropped_ringbuf_full) + $(field exit dropped_sink_error))) $dec"
}

# One number from the load generator's JSON line.
num() { grep -o "\"$2\":[0-9.]*" <<<"$1" | cut -d: -f2; }

run_load() {
  if [ "$1" = exec ]; then
    "$LOAD" exec-storm --workers "$2" --seconds "$EXEC_SECONDS"
  else
    "$LOAD" syscall-storm --seconds "$SYSCALL_SECONDS"
  fi
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
echo "round,config,workload,workers,ops,seconds,ns_per_op,ops_per_sec,tracer_cpu_s,exec_generated,exec_received,exec_dropped_ringbuf_full,exec_dropped_sink_error,fork_generated,fork_dropped,exit_generated,exit_dropped,decode_errors" >"$CSV"
read -r -a CFG_LIST <<<"$CONFIGS"
N_CFG=${#CFG_LIST[@]}
START=$(date +%s)
for round in $(seq "$ROUNDS"); do
  for k in $(seq 0 $((N_CFG - 1))); do
    cfg=${CFG_LIST[$(((k + round - 1) % N_CFG))]}
    # bpftrace takes seconds to start and has no stats to collect: one instance per round.
    if [ "$cfg" = C ]; then start_tracer C; fi
    for wl in $WORKLOADS; do
      kind=${wl%%:*}
      workers=${wl##*:}
      if [ "$cfg" != C ]; then start_tracer "$cfg"; fi
      cpu0=0
      if [ -n "$TRACER_PID" ]; then cpu0=$(cpu_seconds "$TRACER_PID"); fi
      out=$(run_load "$kind" "$workers")
      cpu="-"
      if [ -n "$TRACER_PID" ]; then
        # Let the tracer drain (the agent polls every 100 ms) before reading its CPU time.
        sleep 0.3
        cpu=$(awk -v a="$cpu0" -v b="$(cpu_seconds "$TRACER_PID")" 'BEGIN { printf "%.3f", b - a }')
      fi
      STATS="- - - - - - - - -"
      if [ "$cfg" != C ]; then stop_tracer "$cfg"; fi
      read -r eg er edr eds fg fd xg xd dec <<<"$STATS"
      echo "$round,$cfg,${kind}-storm,$workers,$(num "$out" ops),$(num "$out" seconds),$(num "$out" ns_per_op),$(num "$out" ops_per_sec),$cpu,$eg,$er,$edr,$eds,$fg,$fd,$xg,$xd,$dec" >>"$CSV"
      printf 'bench: round %s/%s config %s %-13s x%s: %10.1f ns/op (%s ops/s)\n' "$round" "$ROUNDS" "$cfg" \
        "${kind}-storm" "$workers" "$(num "$out" ns_per_op)" "$(num "$out" ops_per_sec)" >&2
    done
    if [ "$cfg" = C ]; then stop_tracer C; fi
  done
done
ELAPSED=$(($(date +%s) - START))
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# Time inside the agent's BPF programs, from the run_time_ns / run_cnt counters that the kernel
# keeps while kernel.bpf_stats_enabled=1 and shows in the fdinfo of each program fd.
BPF_REPORT=""
if [ "$BPF_STATS" != 0 ] && [ -e /proc/sys/kernel/bpf_stats_enabled ]; then
  w=${EXEC_WORKERS%% *}
  STATS_SYSCTL=$(sysctl -n kernel.bpf_stats_enabled)
  sysctl -q kernel.bpf_stats_enabled=1
  start_tracer B
  out=$(run_load exec "$w")
  sleep 0.3
  progs=""
  for f in /proc/"$TRACER_PID"/fdinfo/*; do
    id=$(awk '$1 == "prog_id:" { print $2 }' "$f" 2>/dev/null)
    rt=$(awk '$1 == "run_time_ns:" { print $2 }' "$f" 2>/dev/null)
    if [ -z "$id" ] || [ -z "$rt" ]; then continue; fi
    case " $progs " in *" $id:"*) continue ;; esac
    cnt=$(awk '$1 == "run_cnt:" { print $2 }' "$f")
    name=$(bpftool prog show id "$id" 2>/dev/null | grep -o 'name [^ ]*' | cut -d' ' -f2 || true)
    progs="$progs $id:${name:-prog$id}:$rt:$cnt"
  done
  stop_tracer B
  sysctl -q kernel.bpf_stats_enabled="$STATS_SYSCTL"
  STATS_SYSCTL=""
  read -r eg _ <<<"$STATS"
  BPF_REPORT=$(awk -v progs="$progs" -v execs="$eg" -v w="$w" -v rate="$(num "$out" ops_per_sec)" 'BEGIN {
    n = split(progs, p, " ")
    printf "in-kernel BPF time (separate run with kernel.bpf_stats_enabled=1, exec-storm x%d, %.0f execs/s):\n ", w, rate
    for (i = 1; i <= n; i++) {
      split(p[i], f, ":"); total += f[3]
      if (f[2] == "vigil_exec") execs = f[4]
      printf " %s %.0f ns/run (%d runs)", f[2], f[4] ? f[3] / f[4] : 0, f[4]
    }
    printf "\n  total: %.1f us of BPF per spawn+exec+exit (sum of all programs / exec runs)\n", execs ? total / execs / 1000 : 0
  }')
fi

# The summary. Quantiles interpolate linearly over the sorted runs of one (config, workload).
summary() {
  awk -F, -v configs="$CONFIGS" '
    function q(a, n, p,   h, lo) { h = (n - 1) * p; lo = int(h); return (lo + 1 < n) ? a[lo] + (h - lo) * (a[lo + 1] - a[lo]) : a[lo] }
    function sortn(a, n,   i, j, t) { for (i = 1; i < n; i++) { t = a[i]; for (j = i - 1; j >= 0 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t } }
    function f(x) { return us ? sprintf("%.1f", x / 1000) : sprintf("%.0f", x) }
    # Sorts the first n entries of a and sets m, lo25, hi75, mn, mx.
    function stats(a, n) { sortn(a, n); m = q(a, n, 0.5); lo25 = q(a, n, 0.25); hi75 = q(a, n, 0.75); mn = a[0]; mx = a[n - 1] }
    NR == 1 { next }
    {
      key = $3 " x" $4; c = $2; r = $1
      if (!(key in seen)) { seen[key] = 1; order[nk++] = key }
      v[c, key, r] = $7; has[c, key, r] = 1; rounds[r] = 1
      if ($9 != "-") { cpu[c, key] += $9; ops[c, key] += $5 }
      if ($10 != "-") { eg[key] += $10; er[key] += $11; ed[key] += $12 + $13; fd[key] += $15; xd[key] += $17; de[key] += $18 }
      if (c == "B" && $3 == "exec-storm" && $8 > maxrate) { maxrate = $8; maxkey = key }
    }
    END {
      n = split(configs, cl, " ")
      printf "%-16s %-3s %-26s %-20s %-30s %-21s %s\n", "workload", "cfg", "median [p25..p75] /op", "min..max", "added vs A (paired) [p25..p75]", "ratio [p25..p75]", "tracer CPU/op"
      for (i = 0; i < nk; i++) {
        key = order[i]; unit = (key ~ /^exec/) ? "us" : "ns"; us = (unit == "us")
        for (j = 1; j <= n; j++) {
          c = cl[j]; k = 0; kd = 0
          for (r in rounds) if (has[c, key, r]) {
            s[k++] = v[c, key, r]
            if (c != "A" && has["A", key, r]) { d[kd] = v[c, key, r] - v["A", key, r]; ra[kd++] = v[c, key, r] / v["A", key, r] }
          }
          stats(s, k)
          printf "%-16s %-3s %-26s %-20s", (j == 1 ? key : ""), c, f(m) " [" f(lo25) ".." f(hi75) "] " unit, f(mn) ".." f(mx) " " unit
          if (kd > 0) {
            stats(d, kd); printf " %-30s", sprintf("%+.1f [%+.1f..%+.1f] %s", us ? m / 1000 : m, us ? lo25 / 1000 : lo25, us ? hi75 / 1000 : hi75, unit)
            stats(ra, kd); printf " %-21s", sprintf("%.3f [%.3f..%.3f]", m, lo25, hi75)
            if (ops[c, key] > 0) printf " %.1f us", cpu[c, key] * 1e6 / ops[c, key]
          }
          printf "\n"
        }
      }
      printf "\nagent accounting (config B, all runs summed):\n"
      for (i = 0; i < nk; i++) {
        key = order[i]
        if (key in eg) printf "  %-16s exec generated %d, received %d, dropped %d; fork dropped %d; exit dropped %d; decode errors %d\n", key, eg[key], er[key], ed[key], fd[key], xd[key], de[key]
      }
      if (maxkey != "") printf "  highest exec rate with the agent: %.0f execs/s (%s)\n", maxrate, maxkey
    }' "$CSV"
}

echo
echo "vigil overhead benchmark: $(nproc) CPUs, kernel $(uname -r), $ROUNDS rounds of configs $CONFIGS" \
  "(A none, B vigil, C bpftrace), exec ${EXEC_SECONDS}s / syscall ${SYSCALL_SECONDS}s per run, ${ELAPSED}s;" \
  "load average before $LOAD_BEFORE, after $LOAD_AFTER"
echo "(exec-storm: wall time per spawn+exec+exit+wait of /bin/true per worker; syscall-storm: per getppid)"
summary
if [ -n "$BPF_REPORT" ]; then echo "$BPF_REPORT"; fi
echo
echo "raw runs: $(realpath "$CSV")"
