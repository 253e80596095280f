#!/usr/bin/env bash
# Capacity of the agent on this machine: `bash bench/capacity.sh` (as root). ≤ 10 minutes.
#
# 1. Steps: one agent (`vigil run --output file:/dev/null --api ...`, budgets off so that the
#    pipeline itself is measured, the test directory watched) and, for each event kind, a paced
#    generator (`vigil-flood gen`, exact count, WORKERS threads) stepped up through RATES_<kind>
#    for STEP_SECONDS each. Before and after each step the agent's per-kind counters are read
#    from /metrics (2 s after the step, once the ring buffer is drained and the snapshot
#    published). A kind's capacity is the highest step with no `dropped_ringbuf_full`; the
#    stepping stops at the first drop, or when the generator no longer reaches 90 % of its
#    target (then the agent kept up with everything this machine could generate).
#      exec:       spawn /bin/true + wait (one fork, exec and exit event each)
#      file:       open + close of a watched file (one file event each)
#      syscall:    chroot("/") (one syscall event each)
#      connection: loopback connect, read until the server closes (connect, accept, 2 closes)
# 2. Flood: all four generators at full speed together for FLOOD_SECONDS (60) against a fresh
#    agent with the default configuration (budgets on): the agent must stay up, and its final
#    stats must account for every record (generated = received + dropped_ringbuf_full per kind);
#    budget drops are reported per kind.
# Results: bench/results/capacity.csv (one row per step and one per kind for the flood).
# Background activity (builds, other tests) adds events and takes CPU: `generated` counts every
# event of the kind on the host, `ops` only the generator's. A benchmark: nothing asserts on time.
# Knobs: STEP_SECONDS (5), FLOOD_SECONDS (60), KINDS ("exec file syscall connection"), WORKERS
# (2), RATES_exec, RATES_file, RATES_syscall, RATES_connection, RESULTS_CSV, BUILD (1|0),
# CARGO_TARGET_DIR (/tmp/bench-target), API_PORT (19097).
set -euo pipefail
cd "$(dirname "$0")/.."

STEP_SECONDS=${STEP_SECONDS:-5}
FLOOD_SECONDS=${FLOOD_SECONDS:-60}
KINDS=${KINDS:-"exec file syscall connection"}
WORKERS=${WORKERS:-2}
RATES_exec=${RATES_exec:-"500 1000 2000 4000 8000"}
RATES_file=${RATES_file:-"50000 100000 200000 400000 800000 1600000"}
RATES_syscall=${RATES_syscall:-"50000 100000 200000 400000 800000 1600000"}
RATES_connection=${RATES_connection:-"2000 5000 10000 20000 40000"}
RESULTS_CSV=${RESULTS_CSV:-bench/results/capacity.csv}
API_PORT=${API_PORT:-19097}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/tmp/bench-target}
BIN=$CARGO_TARGET_DIR/release

if [ "$(id -u)" != 0 ]; then echo "capacity: run as root" >&2; exit 1; fi
if [ "${BUILD:-1}" != 0 ]; then
  cargo build --locked --release -p vigil -p vigil-bench >&2
fi
for b in vigil vigil-flood; do
  [ -x "$BIN/$b" ] || { echo "capacity: $BIN/$b is missing (run with BUILD=1)" >&2; exit 1; }
done

WORK=$(mktemp -d /tmp/vigil-capacity.XXXXXX)
mkdir "$WORK/watched"
echo x > "$WORK/watched/f"
AGENT=
stop_agent() {
  if [ -n "$AGENT" ] && kill -0 "$AGENT" 2>/dev/null; then
    kill -INT "$AGENT"
    wait "$AGENT" || true
  fi
  AGENT=
}
trap 'stop_agent; rm -rf "$WORK"' EXIT

# start_agent CONFIG_YAML LOG: starts the agent and waits (bounded) for its ready line.
start_agent() {
  printf '%s' "$1" > "$WORK/vigil.yaml"
  "$BIN/vigil" run --config "$WORK/vigil.yaml" --output file:/dev/null \
    --api "127.0.0.1:$API_PORT" 2> "$2" &
  AGENT=$!
  for _ in $(seq 600); do
    grep -qs 'vigil: ready' "$2" && return 0
    kill -0 "$AGENT" 2>/dev/null || { cat "$2" >&2; exit 1; }
    sleep 0.1
  done
  echo "capacity: the agent never became ready" >&2; cat "$2" >&2; exit 1
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$AGENT/stat"; }
# counter KIND COLUMN (2 generated, 3 dropped_ringbuf_full, 4 dropped_budget) from a snapshot.
counter() { awk -v k="$1" -v c="$2" '$1 == k {print $c; f=1} END {if (!f) print 0}' <<< "$3"; }
total_ringbuf() { awk '{s += $3} END {print s + 0}' <<< "$1"; }
json() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }

echo "phase,kind,target_rate,workers,ops,seconds,ops_per_sec,generated,events_per_sec,dropped_ringbuf_full,dropped_ringbuf_full_all_kinds,dropped_budget,agent_cpu_pct,loadavg1" > "$RESULTS_CSV"
HZ=$(getconf CLK_TCK)

start_agent "budget: {events_per_sec: 0}
stats_interval_secs: 0
file:
  watch: [$WORK/watched/]
network: {capture_bytes: 0}
" "$WORK/steps.log"
declare -A CAPACITY
for kind in $KINDS; do
  rates_var=RATES_$kind
  best="none"
  for rate in ${!rates_var}; do
    before=$("$BIN/vigil-flood" counters "127.0.0.1:$API_PORT")
    t0=$(cpu_ticks)
    out=$("$BIN/vigil-flood" gen --kind "$kind" --rate "$rate" --seconds "$STEP_SECONDS" \
      --workers "$WORKERS" --path "$WORK/watched/f")
    sleep 2
    after=$("$BIN/vigil-flood" counters "127.0.0.1:$API_PORT")
    t1=$(cpu_ticks)
    ops=$(json "$out" ops); secs=$(json "$out" seconds); achieved=$(json "$out" ops_per_sec)
    gen=$(( $(counter "$kind" 2 "$after") - $(counter "$kind" 2 "$before") ))
    drop=$(( $(counter "$kind" 3 "$after") - $(counter "$kind" 3 "$before") ))
    drop_all=$(( $(total_ringbuf "$after") - $(total_ringbuf "$before") ))
    budget=$(( $(counter "$kind" 4 "$after") - $(counter "$kind" 4 "$before") ))
    eps=$(awk -v g="$gen" -v s="$secs" 'BEGIN {printf "%.1f", g / s}')
    cpu=$(awk -v d=$((t1 - t0)) -v hz="$HZ" -v s="$secs" 'BEGIN {printf "%.1f", 100 * d / hz / (s + 2)}')
    load=$(cut -d' ' -f1 /proc/loadavg)
    echo "step,$kind,$rate,$WORKERS,$ops,$secs,$achieved,$gen,$eps,$drop,$drop_all,$budget,$cpu,$load" >> "$RESULTS_CSV"
    printf 'capacity: %-10s target %8s/s achieved %10s ops/s, %9s events/s, dropped %s (all kinds %s), agent CPU %s%%\n' \
      "$kind" "$rate" "$achieved" "$eps" "$drop" "$drop_all" "$cpu" >&2
    if [ "$drop_all" -gt 0 ]; then
      best="$best (first drop at $eps events/s)"
      break
    fi
    best="$eps events/s without a drop"
    if awk -v a="$achieved" -v r="$rate" 'BEGIN {exit !(a < 0.9 * r)}'; then
      best="$best (generator saturated at $achieved ops/s)"
      break
    fi
  done
  CAPACITY[$kind]=$best
done
stop_agent

# The flood: everything at once, full speed, default configuration (budgets on).
start_agent "stats_interval_secs: 0
file:
  watch: [$WORK/watched/]
" "$WORK/flood.log"
pids=()
for kind in $KINDS; do
  "$BIN/vigil-flood" gen --kind "$kind" --rate 0 --seconds "$FLOOD_SECONDS" --workers 1 \
    --path "$WORK/watched/f" > "$WORK/flood-$kind.json" &
  pids+=($!)
done
t0=$(cpu_ticks)
for p in "${pids[@]}"; do wait "$p"; done
t1=$(cpu_ticks)
if ! kill -0 "$AGENT" 2>/dev/null; then echo "capacity: the agent died in the flood" >&2; exit 1; fi
stop_agent
stats=$(sed -n 's/^vigil: final stats //p' "$WORK/flood.log")
[ -n "$stats" ] || { echo "capacity: no final stats" >&2; cat "$WORK/flood.log" >&2; exit 1; }
cpu=$(awk -v d=$((t1 - t0)) -v hz="$HZ" -v s="$FLOOD_SECONDS" 'BEGIN {printf "%.1f", 100 * d / hz / s}')
load=$(cut -d' ' -f1 /proc/loadavg)
python3 - "$stats" "$WORK" "$KINDS" "$cpu" "$load" >> "$RESULTS_CSV" <<'PY'
import json, sys
stats, work, kinds, cpu, load = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3].split(), sys.argv[4], sys.argv[5]
by = {k["kind"]: k for k in stats["kinds"]}
for k in by.values():
    if k["generated"] != k["received"] + k["dropped_ringbuf_full"]:
        sys.exit(f"capacity: accounting broken for {k}")
all_drops = sum(k["dropped_ringbuf_full"] for k in by.values())
for kind in kinds:
    g = json.load(open(f"{work}/flood-{kind}.json"))
    k = by[kind]
    print(f"flood,{kind},0,1,{g['ops']},{g['seconds']},{g['ops_per_sec']},{k['generated']},"
          f"{k['generated'] / g['seconds']:.1f},{k['dropped_ringbuf_full']},{all_drops},"
          f"{k.get('dropped_budget', 0)},{cpu},{load}")
PY
echo "capacity: flood of $FLOOD_SECONDS s: agent up, generated = received + dropped for every kind" >&2
for kind in $KINDS; do echo "capacity: $kind: ${CAPACITY[$kind]}" >&2; done
column -s, -t < "$RESULTS_CSV" >&2
