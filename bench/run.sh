#!/usr/bin/env bash
# Overhead benchmark for the Vigil agent: one command, `bash bench/run.sh` (as root).
#
# For ROUNDS rounds it runs each configuration, rotating their order every round so that a slow
# drift of the machine (another build, caches, host noise) does not favour one of them:
#   A   no agent
#   B   `vigil run --config vigil.yaml --output file:/dev/null`: the full pipeline (argv, ancestry,
#       path filter, JSON encoding). The config is the default plus one watched directory,
#       $OPEN_DIR/watched/, for the watched open storm.
#   C   bpftrace printing every exec (tracepoint:sched:sched_process_exec) to a tmpfs file, the
#       reference point for the exec storm
#   C'  bpftrace printing every open (tracepoint:syscalls:sys_exit_openat) to a tmpfs file, the
#       reference point for the open storms
#   F   the floor: bpftrace with an empty program on the hook the agent uses for the open storm
#       (tracepoint:syscalls:sys_exit_openat { }): what any BPF program there costs
# (C, C' and F only if bpftrace is installed and BPFTRACE is not 0), and in each configuration runs
# the workloads that concern it:
#   exec-storm with each worker count of EXEC_WORKERS (posix_spawn /bin/true + wait): A B C
#   syscall-storm (getppid in a loop: a syscall no agent program hooks): A B C F
#   open-storm-unwatched (open+close of $OPEN_DIR/unwatched/f: /tmp is neither watched nor
#     ignored, so the agent's program filters the read-only open in the kernel): A B C' F
#   open-storm-watched (open+close of $OPEN_DIR/watched/f: every open is an event that crosses
#     to user space and is written as JSON): A B C' F
# The agent is started fresh for every run, so that its final stats (generated / received /
# dropped) belong to that run alone; bpftrace, slow to start, once per round. The agent takes a
# few seconds to exit after SIGINT (detaching ~60 tracepoints, one RCU grace period each); its
# final stats are printed before that, and the next run starts only once it has exited.
# Then, unless BPF_STATS=0, separate runs with kernel.bpf_stats_enabled=1 measure the time spent
# inside the BPF programs (agent: exec storm, both open storms; floor: unwatched open storm), kept
# out of the timed runs as the counter costs a bit.
#
# The summary gives per configuration the median ns/op with p25..p75 and min..max, and per traced
# configuration the added cost and ratio against A, paired by round (B of round r minus A of
# round r) so that drift between rounds cancels out. For the tight loops (syscall and open
# storms) the per-run figure is, unless TIGHT_METRIC=mean, the median over batches of 256 (open)
# or 4096 (getppid) operations of their ns/op, which leaves out the batches in which the loop was
# preempted; a second table gives the same with the mean (wall time / ops). Raw numbers:
# bench/results/latest.csv. `SUMMARY_ONLY=file.csv bash bench/run.sh` reprints the summary of a
# CSV without running anything.
#
# Knobs (environment): ROUNDS (5), EXEC_SECONDS (3), SYSCALL_SECONDS (2), OPEN_SECONDS (2),
# EXEC_WORKERS ("2 4"), OPEN (1|0: 0 skips the open storms), OPEN_DIR (/tmp/vigil-bench),
# BPFTRACE (auto|0), BPF_STATS (auto|0), TIGHT_METRIC (batch|mean), RESULTS_CSV
# (bench/results/latest.csv), BUILD (1|0: 0 reuses the binaries already built), CARGO_TARGET_DIR
# (default /tmp/bench-target, apart from the main target dir so as not to block other builds).
# This is a benchmark, not a test: nothing here asserts on time.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-5}
EXEC_SECONDS=${EXEC_SECONDS:-3}
SYSCALL_SECONDS=${SYSCALL_SECONDS:-2}
OPEN_SECONDS=${OPEN_SECONDS:-2}
EXEC_WORKERS=${EXEC_WORKERS:-"2 4"}
OPEN=${OPEN:-1}
OPEN_DIR=${OPEN_DIR:-/tmp/vigil-bench}
BPFTRACE=${BPFTRACE:-auto}
BPF_STATS=${BPF_STATS:-auto}
TIGHT_METRIC=${TIGHT_METRIC:-batch}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/tmp/bench-target}
CSV=${RESULTS_CSV:-bench/results/latest.csv}

# The summary. Columns are found by name in the CSV header. Quantiles interpolate linearly over
# the sorted runs of one (config, workload). $1: the CSV; $2: the configurations, in order.
summary() {
  awk -F, -v configs="$2" -v tight="$TIGHT_METRIC" '
    function q(a, n, p,   h, lo) { h = (n - 1) * p; lo = int(h); return (lo + 1 < n) ? a[lo] + (h - lo) * (a[lo + 1] - a[lo]) : a[lo] }
    function sortn(a, n,   i, j, t) { for (i = 1; i < n; i++) { t = a[i]; for (j = i - 1; j >= 0 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t } }
    # Sorts the first n entries of a and sets m, lo25, hi75, mn, mx.
    function stats(a, n) { sortn(a, n); m = q(a, n, 0.5); lo25 = q(a, n, 0.25); hi75 = q(a, n, 0.75); mn = a[0]; mx = a[n - 1] }
    function f(x) { return us ? sprintf("%.1f", x / 1000) : sprintf("%.0f", x) }
    function sg(x) { return us ? sprintf("%+.1f", x / 1000) : sprintf("%+.0f", x) }
    function col(name) { return (name in ci) ? $(ci[name]) : "-" }
    function num(name,   x) { x = col(name); return (x == "-" || x == "") ? 0 : x + 0 }
    # Paired differences (or ratios when ratio is set) of config c against config b over the
    # rounds in which both ran; returns their count and leaves them in pd[].
    function paired(c, b, key, ratio,   r, k) {
      k = 0
      for (r in rounds) if (has[c, key, r] && has[b, key, r]) pd[k++] = ratio ? v[c, key, r] / v[b, key, r] : v[c, key, r] - v[b, key, r]
      return k
    }
    # The main table, with values vv (mean) or vb (batch median) for tight loops.
    function table(which,   i, j, c, k, key, kd, r, label) {
      printf "%-22s %-3s %-26s %-22s %-30s %-21s %s\n", "workload", "cfg", "median [p25..p75] /op", "min..max", "added vs A (paired) [p25..p75]", "ratio [p25..p75]", "tracer CPU/op"
      for (i = 0; i < nk; i++) {
        key = order[i]; us = (key ~ /^exec/); unit = us ? "us" : "ns"
        for (r in rounds) for (j = 1; j <= ncl; j++) { c = cl[j]; if (has[c, key, r]) v[c, key, r] = (which == "batch" && tightk[key] && vb[c, key, r] != "") ? vb[c, key, r] : vv[c, key, r] }
        label = key
        for (j = 1; j <= ncl; j++) {
          c = cl[j]; k = 0
          for (r in rounds) if (has[c, key, r]) s[k++] = v[c, key, r]
          if (k == 0) continue
          stats(s, k)
          printf "%-22s %-3s %-26s %-22s", label, c, f(m) " [" f(lo25) ".." f(hi75) "] " unit, f(mn) ".." f(mx) " " unit
          label = ""
          if (c != "A" && (kd = paired(c, "A", key, 0)) > 0) {
            stats(pd, kd); add[c, key] = m; printf " %-30s", sg(m) " [" sg(lo25) ".." sg(hi75) "] " unit
            paired(c, "A", key, 1); stats(pd, kd); printf " %-21s", sprintf("%.3f [%.3f..%.3f]", m, lo25, hi75)
            if (ops[c, key] > 0) printf " %.2f us", cpu[c, key] * 1e6 / ops[c, key]
          }
          printf "\n"
        }
      }
    }
    NR == 1 { for (i = 1; i <= NF; i++) ci[$i] = i; next }
    {
      key = ($3 ~ /^exec/) ? $3 " x" $4 : $3; c = col("config"); r = col("round")
      if (!(key in seen)) { seen[key] = 1; order[nk++] = key }
      tightk[key] = (key !~ /^exec/)
      vv[c, key, r] = col("ns_per_op"); vb[c, key, r] = (col("batch_median_ns") == "-") ? "" : col("batch_median_ns")
      has[c, key, r] = 1; rounds[r] = 1; present[c] = 1
      if (col("tracer_cpu_s") != "-") { cpu[c, key] += num("tracer_cpu_s"); ops[c, key] += num("ops") }
      if (c == "B") {
        runs[key]++; bops[key] += num("ops")
        eg[key] += num("exec_generated"); er[key] += num("exec_received"); ed[key] += num("exec_dropped_ringbuf_full") + num("exec_dropped_sink_error")
        fd[key] += num("fork_dropped"); xd[key] += num("exit_dropped"); de[key] += num("decode_errors")
        if (col("file_generated") != "-") {
          hasfile[key] = 1; fg[key] += num("file_generated"); fr[key] += num("file_received")
          fdr[key] += num("file_dropped_ringbuf_full"); fds[key] += num("file_dropped_sink_error"); ff[key] += num("file_filtered_kernel")
          sd[key] += num("syscall_dropped")
          if (num("file_generated") != num("file_received") + num("file_dropped_ringbuf_full")) unacc[key]++
        }
        if ($3 == "exec-storm" && col("ops_per_sec") > maxrate) { maxrate = col("ops_per_sec"); maxkey = key }
      }
    }
    END {
      n = split(configs, all, " "); ncl = 0
      for (j = 1; j <= n; j++) if (all[j] in present) cl[++ncl] = all[j]
      nall = nk; for (i = 0; i < nk; i++) allorder[i] = order[i]
      if (tight == "mean") { table("mean") } else {
        table("batch")
        printf "\nthe tight loops again, by mean wall time per op (preempted batches included):\n"
        k = 0; for (i = 0; i < nall; i++) if (tightk[allorder[i]]) order[k++] = allorder[i]
        nk = k; table("mean")
      }
      printf "\nopen storms: the agent (B) against the floor (F, an empty program on sys_exit_openat), by %s:\n", (tight == "mean" ? "mean" : "batch median")
      for (i = 0; i < nall; i++) {
        key = allorder[i]
        if (key !~ /^open/) continue
        for (r in rounds) for (j = 1; j <= ncl; j++) { c = cl[j]; if (has[c, key, r]) v[c, key, r] = (tight != "mean" && vb[c, key, r] != "") ? vb[c, key, r] : vv[c, key, r] }
        if ((kd = paired("B", "A", key, 0)) == 0) continue
        stats(pd, kd); ab = m
        printf "  %-22s vigil added %+.0f ns", key, ab
        if ((kd = paired("F", "A", key, 0)) > 0) {
          stats(pd, kd); af = m
          printf ", floor added %+.0f ns: vigil/floor %s", af, (af > 0 ? sprintf("%.2fx", ab / af) : "n/a")
          kd = paired("B", "F", key, 0); stats(pd, kd)
          printf "; vigil - floor (paired) %+.0f [%+.0f..%+.0f] ns", m, lo25, hi75
        }
        printf (key ~ /unwatched/) ? "  (target: vigil/floor <= 1.5)\n" : "  (target: vigil added <= 1000 ns)\n"
      }
      printf "\nagent accounting (config B, all runs summed):\n"
      for (i = 0; i < nall; i++) {
        key = allorder[i]
        if (!(key in runs)) continue
        printf "  %-22s exec generated %d, received %d, dropped %d; fork dropped %d; exit dropped %d; decode errors %d\n", key, eg[key], er[key], ed[key], fd[key], xd[key], de[key]
        if (hasfile[key]) printf "  %-22s file generated %d (%.3f per op), received %d, dropped ringbuf_full %d, sink_error %d, filtered in kernel %d; syscall dropped %d; generated = received + ringbuf_full in %s\n", "", fg[key], bops[key] ? fg[key] / bops[key] : 0, fr[key], fdr[key], fds[key], ff[key], sd[key], unacc[key] ? "all but " unacc[key] " runs" : "every run"
      }
      if (maxkey != "") printf "  highest exec rate with the agent: %.0f execs/s (%s)\n", maxrate, maxkey
    }' "$1"
}

if [ -n "${SUMMARY_ONLY:-}" ]; then
  summary "$SUMMARY_ONLY" "A B C C' F"
  exit 0
fi

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
  if [ "$OPEN" != 0 ]; then CONFIGS="A B C C' F"; fi
fi
WORKLOADS=""
for w in $EXEC_WORKERS; do WORKLOADS="$WORKLOADS exec:$w"; done
WORKLOADS="$WORKLOADS syscall:1"
if [ "$OPEN" != 0 ]; then WORKLOADS="$WORKLOADS open:unwatched open:watched"; fi

# Which workloads a configuration runs: the bpftrace references only the storms they are the
# reference for; the floor the open storms and getppid (any syscall tracepoint costs every syscall).
runs_in() {
  case "$1:$2" in
    A:* | B:*) return 0 ;;
    C:exec | C:syscall) return 0 ;;
    "C':open") return 0 ;;
    F:open | F:syscall) return 0 ;;
  esac
  return 1
}

mkdir -p "$(dirname "$CSV")"
SCRATCH=$(mktemp -d /dev/shm/vigil-bench.XXXXXX)
TRACER_PID=""
STATS_SYSCTL=""
CREATED_OPEN_DIR=""
cleanup() {
  if [ -n "$TRACER_PID" ]; then
    kill -INT "$TRACER_PID" 2>/dev/null || true
    wait "$TRACER_PID" 2>/dev/null || true
  fi
  if [ -n "$STATS_SYSCTL" ]; then sysctl -q kernel.bpf_stats_enabled="$STATS_SYSCTL" || true; fi
  rm -rf "$SCRATCH"
  if [ -n "$CREATED_OPEN_DIR" ]; then rm -rf "$OPEN_DIR"; fi
}
trap cleanup EXIT

# The files of the open storms, and the agent's configuration: the default watch list (see
# docs/config.md) plus the watched directory. The default ignore list is kept.
if [ ! -e "$OPEN_DIR" ]; then CREATED_OPEN_DIR=1; fi
mkdir -p "$OPEN_DIR/unwatched" "$OPEN_DIR/watched"
: >"$OPEN_DIR/unwatched/f"
: >"$OPEN_DIR/watched/f"
AGENT_CONFIG=$SCRATCH/vigil.yaml
cat >"$AGENT_CONFIG" <<EOF
file:
  watch: [/etc/, /root/, /home/, /boot/, /run/secrets/, /var/run/secrets/, $OPEN_DIR/watched/]
EOF

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
      "$VIGIL" run --config "$AGENT_CONFIG" --output file:/dev/null 2>"$TRACER_LOG" &
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
    "C'")
      bpftrace -o "$TRACER_LOG" -e 'BEGIN { printf("ready\n"); }
        tracepoint:syscalls:sys_exit_openat { printf("%d %s\n", pid, comm); }' \
        >/dev/null 2>"$SCRATCH/bpftrace.err" &
      TRACER_PID=$!
      wait_for "$TRACER_LOG" ready "$TRACER_PID"
      ;;
    F)
      # Exactly one empty program, no BEGIN probe: "Attaching 1 probe..." is printed just before
      # attaching, hence the extra second.
      bpftrace -e 'tracepoint:syscalls:sys_exit_openat { }' >"$TRACER_LOG" 2>"$SCRATCH/bpftrace.err" &
      TRACER_PID=$!
      wait_for "$TRACER_LOG" Attaching "$TRACER_PID"
      sleep 1
      ;;
  esac
}

# Stops the tracer and sets STATS to "exec_gen exec_recv exec_drop_rb exec_drop_sink fork_gen
# fork_drop exit_gen exit_drop file_gen file_recv file_drop_rb file_drop_sink file_filtered
# syscall_drop decode_errors" from the agent's final stats (dashes otherwise).
# Not run in a subshell: only the shell that started the tracer can wait for it.
NO_STATS="- - - - - - - - - - - - - - -"
stop_tracer() {
  local cfg=$1 stats dec
  STATS=$NO_STATS
  if [ -z "$TRACER_PID" ]; then return; fi
  kill -INT "$TRACER_PID"
  # The agent prints its final stats, then detaches its programs (a few seconds).
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
  STATS+=" $(field exit generated) $(($(field exit dropped_ringbuf_full) + $(field exit dropped_sink_error)))"
  STATS+=" $(field file generated) $(field file received) $(field file dropped_ringbuf_full)"
  STATS+=" $(field file dropped_sink_error) $(field file filtered_kernel)"
  STATS+=" $(($(field syscall dropped_ringbuf_full) + $(field syscall dropped_sink_error))) $dec"
}

# One number from the load generator's JSON line (empty if absent).
num() { grep -o "\"$2\":[0-9.]*" <<<"$1" | cut -d: -f2 || true; }

# Runs workload $1 (exec, syscall, open) with parameter $2 (workers, or which file).
run_load() {
  case $1 in
    exec) "$LOAD" exec-storm --workers "$2" --seconds "$EXEC_SECONDS" ;;
    syscall) "$LOAD" syscall-storm --seconds "$SYSCALL_SECONDS" ;;
    open) "$LOAD" open-storm --path "$OPEN_DIR/$2/f" --seconds "$OPEN_SECONDS" ;;
  esac
}

# The CSV name of a workload.
wl_name() {
  case $1 in
    open) echo "open-storm-$2" ;;
    *) echo "$1-storm" ;;
  esac
}

# Rounds of configurations are rotated; bpftrace configurations (C, C', F) start once per round.
is_bpftrace() { case $1 in C | "C'" | F) return 0 ;; esac; return 1; }

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
echo "round,config,workload,workers,ops,seconds,ns_per_op,ops_per_sec,batch_median_ns,tracer_cpu_s,exec_generated,exec_received,exec_dropped_ringbuf_full,exec_dropped_sink_error,fork_generated,fork_dropped,exit_generated,exit_dropped,file_generated,file_received,file_dropped_ringbuf_full,file_dropped_sink_error,file_filtered_kernel,syscall_dropped,decode_errors,loadavg1" >"$CSV"
read -r -a CFG_LIST <<<"$CONFIGS"
N_CFG=${#CFG_LIST[@]}
START=$(date +%s)
for round in $(seq "$ROUNDS"); do
  for k in $(seq 0 $((N_CFG - 1))); do
    cfg=${CFG_LIST[$(((k + round - 1) % N_CFG))]}
    if is_bpftrace "$cfg"; then start_tracer "$cfg"; fi
    for wl in $WORKLOADS; do
      kind=${wl%%:*}
      param=${wl##*:}
      if ! runs_in "$cfg" "$kind"; then continue; fi
      if ! is_bpftrace "$cfg"; then start_tracer "$cfg"; fi
      cpu0=0
      if [ -n "$TRACER_PID" ]; then cpu0=$(cpu_seconds "$TRACER_PID"); fi
      out=$(run_load "$kind" "$param")
      cpu="-"
      if [ -n "$TRACER_PID" ]; then
        # Let the tracer drain (the agent polls every 100 ms) before reading its CPU time.
        sleep 0.3
        cpu=$(awk -v a="$cpu0" -v b="$(cpu_seconds "$TRACER_PID")" 'BEGIN { printf "%.3f", b - a }')
      fi
      STATS=$NO_STATS
      if ! is_bpftrace "$cfg"; then stop_tracer "$cfg"; fi
      workers=1
      if [ "$kind" = exec ]; then workers=$param; fi
      bm=$(num "$out" batch_median_ns)
      echo "$round,$cfg,$(wl_name "$kind" "$param"),$workers,$(num "$out" ops),$(num "$out" seconds),$(num "$out" ns_per_op),$(num "$out" ops_per_sec),${bm:--},$cpu,${STATS// /,},$(cut -d' ' -f1 /proc/loadavg)" >>"$CSV"
      printf 'bench: round %s/%s config %-2s %-20s x%s: %10.1f ns/op (batch median %s, %s ops/s)\n' "$round" "$ROUNDS" "$cfg" \
        "$(wl_name "$kind" "$param")" "$workers" "$(num "$out" ns_per_op)" "${bm:--}" "$(num "$out" ops_per_sec)" >&2
    done
    if is_bpftrace "$cfg"; then stop_tracer "$cfg"; fi
  done
done
ELAPSED=$(($(date +%s) - START))
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# Time inside BPF programs, from the run_time_ns / run_cnt counters that the kernel keeps while
# kernel.bpf_stats_enabled=1 and shows in the fdinfo of each program fd. Prints one
# "name run_time_ns run_cnt" line per program the process $1 holds.
prog_times() {
  local f id seen=" " name
  for f in /proc/"$1"/fdinfo/*; do
    id=$(awk '$1 == "prog_id:" { print $2 }' "$f" 2>/dev/null)
    if [ -z "$id" ]; then continue; fi
    case $seen in *" $id "*) continue ;; esac
    seen="$seen$id "
    name=$(bpftool prog show id "$id" 2>/dev/null | grep -o 'name [^ ]*' | cut -d' ' -f2 || true)
    awk -v n="${name:-prog$id}" '$1 == "run_time_ns:" { rt = $2 } $1 == "run_cnt:" { c = $2 } END { print n, rt + 0, c + 0 }' "$f"
  done
}

# One measured run: config $1 (B or F), workload $2 $3. Writes the load line, then prog_times,
# to $SCRATCH/bpf.out (not through $(...): the tracer must be started and stopped by this shell,
# and STATS is wanted afterwards).
bpf_run() {
  start_tracer "$1"
  run_load "$2" "$3" >"$SCRATCH/bpf.out"
  sleep 0.3
  prog_times "$TRACER_PID" >>"$SCRATCH/bpf.out"
  stop_tracer "$1"
}

BPF_REPORT=""
if [ "$BPF_STATS" != 0 ] && [ -e /proc/sys/kernel/bpf_stats_enabled ]; then
  w=${EXEC_WORKERS%% *}
  STATS_SYSCTL=$(sysctl -n kernel.bpf_stats_enabled)
  sysctl -q kernel.bpf_stats_enabled=1
  bpf_run B exec "$w"
  BPF_REPORT=$(awk -v w="$w" 'NR == 1 { match($0, /"ops_per_sec":[0-9.]+/); rate = substr($0, RSTART + 14, RLENGTH - 14); next }
    $3 > 0 { names[n++] = $1; rt[$1] = $2; cnt[$1] = $3; total += $2; if ($1 == "vigil_exec") execs = $3 }
    END {
      printf "in-kernel BPF time (separate runs with kernel.bpf_stats_enabled=1):\n"
      printf "  agent, exec-storm x%d, %.0f execs/s; programs that ran, ns/run (runs):\n   ", w, rate
      for (i = 0; i < n; i++) printf " %s %.0f (%d)", names[i], rt[names[i]] / cnt[names[i]], cnt[names[i]]
      printf "\n  total: %.1f us of BPF per spawn+exec+exit (sum of all programs / vigil_exec runs)\n", execs ? total / execs / 1000 : 0
    }' "$SCRATCH/bpf.out")
  if [ "$OPEN" != 0 ]; then
    cfgs_bpf="B"
    if [[ " $CONFIGS " == *" F "* ]]; then cfgs_bpf="B F"; fi
    for c in $cfgs_bpf; do
      for which in unwatched watched; do
        if [ "$c" = F ] && [ "$which" = watched ]; then continue; fi
        bpf_run "$c" open "$which"
        BPF_REPORT+=$'\n'$(awk -v c="$c" -v wl="open-storm-$which" '
          BEGIN { printf "  %s, %s:", (c == "B" ? "agent" : "floor"), wl }
          NR == 1 { match($0, /"ops":[0-9]+/); ops = substr($0, RSTART + 6, RLENGTH - 6) + 0; next }
          # Programs that ran at least once per 100 opens: the ones on the open path.
          $3 * 100 >= ops { printf "%s %s %.0f ns/run (%.2f runs per open)", (k++ ? ";" : ""), $1, $2 / $3, $3 / ops }
          END { if (!k) printf " (no program ran)" }' "$SCRATCH/bpf.out")
        if [ "$c" = B ] && [ "$which" = watched ]; then
          BPF_REPORT+=$'\n'"    (that run's file events: generated $(cut -d' ' -f9 <<<"$STATS"), received $(cut -d' ' -f10 <<<"$STATS"), dropped_ringbuf_full $(cut -d' ' -f11 <<<"$STATS"))"
        fi
      done
    done
  fi
  sysctl -q kernel.bpf_stats_enabled="$STATS_SYSCTL"
  STATS_SYSCTL=""
fi

echo
echo "vigil overhead benchmark: $(nproc) CPUs, kernel $(uname -r), $ROUNDS rounds of configs $CONFIGS" \
  "(A none, B vigil, C bpftrace exec printer, C' bpftrace open printer, F empty program on sys_exit_openat)," \
  "exec ${EXEC_SECONDS}s / syscall ${SYSCALL_SECONDS}s / open ${OPEN_SECONDS}s per run, ${ELAPSED}s;" \
  "load average before $LOAD_BEFORE, after $LOAD_AFTER"
echo "(exec-storm: wall time per spawn+exec+exit+wait of /bin/true per worker; syscall-storm: per getppid;" \
  "open-storm: per open+close; tight loops by $TIGHT_METRIC)"
summary "$CSV" "$CONFIGS"
if [ -n "$BPF_REPORT" ]; then echo "$BPF_REPORT"; fi
echo
echo "raw runs: $(realpath "$CSV")"
