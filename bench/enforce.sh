#!/usr/bin/env bash
# Enforcement cost per connect with 1, 100 and 10,000 deny entries in force: `bash bench/enforce.sh`
# (as root, after bench/run.sh has built the release binaries, or with BUILD=1).
#
# For ROUNDS rounds, in rotating order, each configuration runs the loopback connect storm
# (`vigil-bench connect-storm`, CONNECT_WORKERS clients, CONNECT_SECONDS each):
#   none    no agent
#   eN      `vigil run` whose only rule denies connects to N addresses of 198.18.0.0/15 (a
#           benchmarking range nothing here talks to) on port 9, so every loopback connect of the
#           storm is looked up and allowed: the cost of a decision, not of a denial. The agent runs
#           with only the process sensor (network, file and syscall sensors off), so what is added
#           is the enforcement hook.
# With kernel.bpf_stats_enabled=1 the time spent in vigil_enf_connect4 per call is read from the
# kernel (bpftool) after each run: the cost per connect inside the hook, independent of the
# storm's noise. Results: bench/results/enforce.csv (config,round,ns_per_op,ops,bpf_ns_per_call).
# A benchmark, not a test: nothing here asserts on time.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-5}
CONNECT_SECONDS=${CONNECT_SECONDS:-3}
CONNECT_WORKERS=${CONNECT_WORKERS:-2}
SIZES=${SIZES:-"1 100 10000"}
RESULTS_CSV=${RESULTS_CSV:-bench/results/enforce.csv}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/tmp/bench-target}
BIN="$CARGO_TARGET_DIR/release"
if [ "${BUILD:-0}" = 1 ] || [ ! -x "$BIN/vigil" ] || [ ! -x "$BIN/vigil-bench" ]; then
  cargo build --locked --release -p vigil -p vigil-bench
fi
WORK=$(mktemp -d)
PIN=/sys/fs/bpf/vigil-bench-enforce
trap 'pkill -INT -f "$BIN/vigil run" 2>/dev/null || true; "$BIN/vigil" enforce clear --config "$WORK/vigil.yaml" >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT
cat > "$WORK/vigil.yaml" <<YAML
file: {enabled: false}
syscalls: false
network: {enabled: false}
enforcement: {pin_dir: $PIN}
stats_interval_secs: 0
YAML
for n in $SIZES; do
  {
    echo "- rule: bench deny $n"
    echo "  desc: $n destinations nobody uses"
    printf '  condition: evt.type = connect and fd.sport = 9 and fd.sip in ('
    for ((i = 0; i < n; i++)); do
      ((i)) && printf ', '
      printf '198.%d.%d.%d' $((18 + i / 65536)) $((i / 256 % 256)) $((i % 256))
    done
    echo ')'
    echo "  output: bench deny (dest=%fd.sip:%fd.sport)"
    echo "  priority: NOTICE"
    echo "  action: deny"
  } > "$WORK/e$n.yaml"
done
sysctl -qw kernel.bpf_stats_enabled=1
trap 'sysctl -qw kernel.bpf_stats_enabled=0; pkill -INT -f "$BIN/vigil run" 2>/dev/null || true; "$BIN/vigil" enforce clear --config "$WORK/vigil.yaml" >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT

# Run time per call of vigil_enf_connect4, from the kernel's own counters.
bpf_ns_per_call() {
  # Names are cut to 15 characters (connect4 and connect6 look alike): the IPv4 storm makes
  # connect4 the one with calls.
  bpftool prog show -j | python3 -c '
import json, sys
progs = [p for p in json.load(sys.stdin) if p.get("name", "").startswith("vigil_enf_conn") and p.get("run_cnt")]
p = max(progs, key=lambda p: p["run_cnt"], default=None)
print("%.1f" % (p["run_time_ns"] / p["run_cnt"]) if p else "-")'
}

configs=(none)
for n in $SIZES; do configs+=("e$n"); done
echo "config,round,ns_per_op,ops,bpf_ns_per_call" > "$RESULTS_CSV"
for ((r = 1; r <= ROUNDS; r++)); do
  k=${#configs[@]}
  for ((j = 0; j < k; j++)); do
    c=${configs[$(((j + r) % k))]}
    agent=""
    if [ "$c" != none ]; then
      "$BIN/vigil" run --config "$WORK/vigil.yaml" --rules "$WORK/$c.yaml" --events none \
        --output file:/dev/null 2>"$WORK/agent.err" &
      agent=$!
      for _ in $(seq 600); do grep -q "vigil: ready" "$WORK/agent.err" && break; sleep 0.1; done
      grep -q "vigil: ready" "$WORK/agent.err" || { cat "$WORK/agent.err"; exit 1; }
    fi
    line=$("$BIN/vigil-bench" connect-storm --workers "$CONNECT_WORKERS" --seconds "$CONNECT_SECONDS")
    ns=$(sed -E 's/.*"ns_per_op":([0-9.]+).*/\1/' <<<"$line")
    ops=$(sed -E 's/.*"ops":([0-9]+).*/\1/' <<<"$line")
    bpf="-"
    if [ -n "$agent" ]; then
      bpf=$(bpf_ns_per_call)
      kill -INT "$agent"
      wait "$agent" || true
    fi
    echo "$c,$r,$ns,$ops,$bpf" >> "$RESULTS_CSV"
    echo "bench: round $r/$ROUNDS $c: $ns ns/connect (ops $ops), vigil_enf_connect4 $bpf ns/call"
  done
done
"$BIN/vigil" enforce clear --config "$WORK/vigil.yaml" >/dev/null

python3 - "$RESULTS_CSV" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
by = {}
for r in rows:
    by.setdefault(r["config"], []).append(r)
base = {r["round"]: float(r["ns_per_op"]) for r in by.get("none", [])}
print("\nconfig   ns/connect median (min..max)   added vs none, paired median   in-hook ns/call median (min..max)")
for c, rs in by.items():
    ns = sorted(float(r["ns_per_op"]) for r in rs)
    added = [float(r["ns_per_op"]) - base[r["round"]] for r in rs if r["round"] in base]
    bpf = sorted(float(r["bpf_ns_per_call"]) for r in rs if r["bpf_ns_per_call"] not in ("-", ""))
    b = f"{statistics.median(bpf):8.1f} ({bpf[0]:.1f}..{bpf[-1]:.1f})" if bpf else "       -"
    print(f"{c:<8} {statistics.median(ns):10.0f} ({ns[0]:.0f}..{ns[-1]:.0f})   {statistics.median(added):+10.0f}            {b}")
PY
