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
#   Cn  bpftrace printing every TCP state change (tracepoint:sock:inet_sock_set_state: pid, comm,
#       addresses, ports, old and new state) to a tmpfs file, the reference point for the network
#       workloads
# (C, C', F and Cn only if bpftrace is installed and BPFTRACE is not 0; Cn only with NET=1), and in
# each configuration runs the workloads that concern it:
#   exec-storm with each worker count of EXEC_WORKERS (posix_spawn /bin/true + wait): A B C
#   syscall-storm (getppid in a loop: a syscall no agent program hooks): A B C F
#   open-storm-unwatched (open+close of $OPEN_DIR/unwatched/f: /tmp is neither watched nor
#     ignored, so the agent's program filters the read-only open in the kernel): A B C' F
#   open-storm-watched (open+close of $OPEN_DIR/watched/f: every open is an event that crosses
#     to user space and is written as JSON): A B C' F
#   network workloads (NET=1, the default), A B Cn:
#   connect-storm with CONNECT_WORKERS client threads: loopback TCP connect + write 1 byte + wait
#     for the server's close + close, against a one-thread accept/read/close listener in the same
#     process. The server closes first, so TIME_WAIT stays on the server side and the client's
#     ephemeral port is free at once: it sustains any duration without EADDRNOTAVAIL.
#   http-rate: open-loop fixed-rate HTTP/1.1 keep-alive GETs of a 1 KiB static file at HTTP_RATE
#     requests/s over HTTP_CONNECTIONS connections, against nginx (NGINX_WORKERS workers, its own
#     config in $SCRATCH, 127.0.0.1:HTTP_PORT, access_log off, keepalive_requests 1000000,
#     open_file_cache). vigil-bench http-rate, as Debian has no wrk2: latency is measured from each
#     request's scheduled send time (coordinated omission corrected), p50/p90/p99/p999 reported.
#   http-wrk: `wrk -t WRK_THREADS -c WRK_CONNECTIONS -d HTTP_SECONDS --latency` (-t2 -c50 by
#     default) against the same nginx: closed loop, the maximum throughput, its p50/p90/p99.
#   nginx and wrk are installed with apt-get if missing (and the nginx.service that the Debian
#   package enables is disabled again); nginx is started once for the whole benchmark.
#   For these the CPU time of the agent (and of nginx) over each run is recorded, and the summary
#   gives the agent's CPU as % of one core at the achieved rate and per 1,000 requests/s, and the
#   p50/p99 change against A, paired by round, next to A's own round-to-round change.
# The agent is started fresh for every run, so that its final stats (generated / received /
# dropped) belong to that run alone; bpftrace, slow to start, once per round. The agent takes a
# few seconds to exit after SIGINT (detaching ~60 tracepoints, one RCU grace period each); its
# final stats are printed before that, and the next run starts only once it has exited.
# Then, unless BPF_STATS=0, separate runs with kernel.bpf_stats_enabled=1 measure the time spent
# inside the BPF programs (agent: exec storm, both open storms, connect storm, http-rate; floor:
# unwatched open storm), kept out of the timed runs as the counter costs a bit.
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
# Network knobs: NET (1|0: 0 skips the network workloads and Cn), CONNECT_SECONDS (2),
# CONNECT_WORKERS (2), HTTP_RATE (10000 requests/s), HTTP_SECONDS (5: each http-rate and wrk run),
# HTTP_CONNECTIONS (16, http-rate), WRK_CONNECTIONS (50), WRK_THREADS (2), HTTP_PORT (18080),
# NGINX_WORKERS (1).
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
NET=${NET:-1}
CONNECT_SECONDS=${CONNECT_SECONDS:-2}
CONNECT_WORKERS=${CONNECT_WORKERS:-2}
HTTP_RATE=${HTTP_RATE:-10000}
HTTP_SECONDS=${HTTP_SECONDS:-5}
HTTP_CONNECTIONS=${HTTP_CONNECTIONS:-16}
WRK_CONNECTIONS=${WRK_CONNECTIONS:-50}
WRK_THREADS=${WRK_THREADS:-2}
HTTP_PORT=${HTTP_PORT:-18080}
NGINX_WORKERS=${NGINX_WORKERS:-1}
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
        key = order[i]; if (key ~ /^http/) continue
        us = (key ~ /^(exec|connect)/); unit = us ? "us" : "ns"
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
    # Copies the per-run values src[c, key, r] of every configuration into v[], for paired().
    function setv(src, key,   r, j, c) { for (r in rounds) for (j = 1; j <= ncl; j++) { c = cl[j]; if (has[c, key, r]) v[c, key, r] = src[c, key, r] } }
    # stats() of config c over its runs of key in src[]; returns the count (0: m etc. untouched).
    function cstats(src, c, key,   r, k) { k = 0; for (r in rounds) if (has[c, key, r] && src[c, key, r] != "-" && src[c, key, r] != "") s[k++] = src[c, key, r]; if (k) stats(s, k); return k }
    function rng(fmt) { return sprintf(fmt " [" fmt ".." fmt "]", m, lo25, hi75) }
    # The HTTP workloads: rate, latency percentiles, paired changes against A, tracer CPU.
    function network(   i, j, c, key, kd, pct, rate, per1k, noise, kn, r, x, head, label) {
      for (i = 0; i < nall; i++) {
        key = allorder[i]
        if (key !~ /^http/) continue
        if (!head++) {
          printf "\nHTTP against nginx: rate in requests/s, latency in us (http-rate: from the scheduled send time); paired = config minus A in the same round; CPU = the tracer'"'"'s user+system time over the run, in %% of one core and per 1,000 requests/s; nginx = its CPU us per request\n"
          printf "%-10s %-3s %-24s %-24s %-26s %-9s %-24s %-26s %-18s %-12s %s\n", "workload", "cfg", "rate [p25..p75]", "p50 [p25..p75]", "p99 [p25..p75]", "p999", "p50 paired [p25..p75]", "p99 paired [p25..p75]", "CPU %core (/1k)", "nginx us/req", "nginx paired"
        }
        nnet++; label = key
        for (j = 1; j <= ncl; j++) {
          c = cl[j]
          if (!cstats(hr, c, key)) continue
          printf "%-10s %-3s %-24s", label, c, rng("%.0f"); label = ""
          cstats(h50, c, key); printf " %-24s", rng("%.0f")
          cstats(h99, c, key); printf " %-26s", rng("%.0f")
          if (cstats(h999, c, key)) printf " %-9s", sprintf("%.0f", m); else printf " %-9s", "-"
          if (c != "A") {
            setv(h50, key); if ((kd = paired(c, "A", key, 0)) > 0) { stats(pd, kd); printf " %-24s", sprintf("%+.0f [%+.0f..%+.0f]", m, lo25, hi75) } else printf " %-24s", "-"
            setv(h99, key); if ((kd = paired(c, "A", key, 0)) > 0) { stats(pd, kd); printf " %-26s", sprintf("%+.0f [%+.0f..%+.0f]", m, lo25, hi75); p99d[c, key] = m } else printf " %-26s", "-"
          } else printf " %-24s %-26s", "", ""
          if (csec[c, key] > 0) {
            pct = 100 * cpu[c, key] / csec[c, key]; rate = hops[c, key] / hsec[c, key]; per1k = rate > 0 ? pct / (rate / 1000) : 0
            cpct[c, key] = pct; crate[c, key] = rate; cper1k[c, key] = per1k
            printf " %-18s", sprintf("%.2f (%.3f)", pct, per1k)
          } else printf " %-18s", "-"
          if (hassrv[c, key] && cstats(srv, c, key)) {
            printf " %-12s", sprintf("%.1f", m)
            if (c != "A" && hassrv["A", key]) { setv(srv, key); if ((kd = paired(c, "A", key, 0)) > 0) { stats(pd, kd); printf " %s", sprintf("%+.2f [%+.2f..%+.2f]", m, lo25, hi75) } }
          }
          if (herr[c, key]) printf "  (%d non-2xx or socket errors)", herr[c, key]
          printf "\n"
        }
      }
      for (i = 0; i < nall; i++) {
        key = allorder[i]
        if (key !~ /^http/ || !(("B", key) in cpct)) continue
        # Round-to-round noise of A alone: median |A(r) - A(r-1)| of the p99.
        kn = 0; for (r = 2; r <= maxr; r++) if (has["A", key, r] && has["A", key, r - 1]) { x = h99["A", key, r] - h99["A", key, r - 1]; s[kn++] = x < 0 ? -x : x }
        if (kn) { stats(s, kn); noise = m }
        printf "  %-10s agent (B) CPU %.2f%% of a core at %.0f req/s, %.3f%% per 1,000 req/s", key, cpct["B", key], crate["B", key], cper1k["B", key]
        if (key == "http-rate") printf " (target: <= 5%% at 10,000 req/s: %s%s)", (cper1k["B", key] * 10 <= 5 ? "met" : "not met"), (trate[key] + 0 != 10000 ? sprintf(", extrapolated from %.0f req/s: %.2f%%", crate["B", key], cper1k["B", key] * 10) : "")
        printf "\n"
        if (key != "http-rate") { setv(hr, key); if ((kd = paired("B", "A", key, 1)) > 0) { stats(pd, kd); printf "  %-10s throughput B / A (paired) %.3f [%.3f..%.3f]\n", "", m, lo25, hi75 } }
        if (("B", key) in p99d) {
          printf "  %-10s p99 change (B - A, paired median) %+.0f us; A'"'"'s own round-to-round p99 change (median |A(r) - A(r-1)|) ", "", p99d["B", key]
          x = p99d["B", key]
          if (kn) printf "%.0f us: %s", noise, ((x < 0 ? -x : x) <= noise ? "within run-to-run noise" : (x > 0 ? "slower by more than run-to-run noise" : "faster by more than run-to-run noise")); else printf "n/a (needs ROUNDS >= 2)"
          printf (key == "http-rate") ? "  (target: within run-to-run noise)\n" : "\n"
        }
      }
    }
    NR == 1 { for (i = 1; i <= NF; i++) ci[$i] = i; next }
    {
      key = ($3 ~ /^(exec|connect)/) ? $3 " x" $4 : $3; c = col("config"); r = col("round")
      if (!(key in seen)) { seen[key] = 1; order[nk++] = key }
      tightk[key] = (key !~ /^(exec|http)/)
      if (r + 0 > maxr) maxr = r + 0
      vv[c, key, r] = col("ns_per_op"); vb[c, key, r] = (col("batch_median_ns") == "-") ? "" : col("batch_median_ns")
      has[c, key, r] = 1; rounds[r] = 1; present[c] = 1
      if (col("tracer_cpu_s") != "-") { cpu[c, key] += num("tracer_cpu_s"); ops[c, key] += num("ops"); csec[c, key] += num("seconds") }
      if (key ~ /^http/) {
        hr[c, key, r] = num("ops_per_sec"); h50[c, key, r] = num("p50_us"); h99[c, key, r] = num("p99_us")
        h999[c, key, r] = col("p999_us"); hsec[c, key] += num("seconds"); hops[c, key] += num("ops"); herr[c, key] += num("http_errors")
        if (col("server_cpu_s") != "-") { srv[c, key, r] = num("server_cpu_s") * 1e6 / (num("ops") ? num("ops") : 1); hassrv[c, key] = 1 }
        if (col("target_rate") != "-") trate[key] = col("target_rate")
      }
      if (c == "B") {
        runs[key]++; bops[key] += num("ops")
        eg[key] += num("exec_generated"); er[key] += num("exec_received"); ed[key] += num("exec_dropped_ringbuf_full") + num("exec_dropped_sink_error")
        fd[key] += num("fork_dropped"); xd[key] += num("exit_dropped"); de[key] += num("decode_errors")
        if (col("net_kinds") != "-" && col("net_kinds") != "") {
          hasnet[key] = 1; ng[key] += num("net_generated"); nr[key] += num("net_received"); ndr[key] += num("net_dropped")
          if (col("net_kinds") != "none") nkinds[key] = col("net_kinds")
        }
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
      network()
      printf "\nagent accounting (config B, all runs summed):\n"
      for (i = 0; i < nall; i++) {
        key = allorder[i]
        if (!(key in runs)) continue
        printf "  %-22s exec generated %d, received %d, dropped %d; fork dropped %d; exit dropped %d; decode errors %d\n", key, eg[key], er[key], ed[key], fd[key], xd[key], de[key]
        if (hasnet[key] && key ~ /^(connect|http)/) printf "  %-22s network kinds (%s) generated %d (%.3f per op), received %d, dropped %d\n", "", (key in nkinds) ? nkinds[key] : "none in this agent build", ng[key], bops[key] ? ng[key] / bops[key] : 0, nr[key], ndr[key]
        if (hasfile[key]) printf "  %-22s file generated %d (%.3f per op), received %d, dropped ringbuf_full %d, sink_error %d, filtered in kernel %d; syscall dropped %d; generated = received + ringbuf_full in %s\n", "", fg[key], bops[key] ? fg[key] / bops[key] : 0, fr[key], fdr[key], fds[key], ff[key], sd[key], unacc[key] ? "all but " unacc[key] " runs" : "every run"
      }
      if (maxkey != "") printf "  highest exec rate with the agent: %.0f execs/s (%s)\n", maxrate, maxkey
    }' "$1"
}

if [ -n "${SUMMARY_ONLY:-}" ]; then
  summary "$SUMMARY_ONLY" "A B C C' F Cn"
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
# The network workloads' server and closed-loop client, from Debian. Installing the nginx package
# enables and starts nginx.service (port 80) where systemd runs: this benchmark starts its own
# nginx, so a service that it caused to be installed is disabled again.
if [ "$NET" != 0 ]; then
  missing=""
  if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then missing="$missing nginx"; fi
  if ! command -v wrk >/dev/null; then missing="$missing wrk"; fi
  if [ -n "$missing" ]; then
    echo "bench: installing$missing for the network workloads (NET=0 skips them)" >&2
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing; } >&2; then
      echo "bench: could not install$missing; install it or run with NET=0" >&2
      exit 1
    fi
    if [[ $missing == *nginx* ]] && [ -d /run/systemd/system ]; then systemctl disable --now nginx >&2 || true; fi
  fi
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

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
  if [ "$NET" != 0 ]; then CONFIGS="$CONFIGS Cn"; fi
fi
WORKLOADS=""
for w in $EXEC_WORKERS; do WORKLOADS="$WORKLOADS exec:$w"; done
WORKLOADS="$WORKLOADS syscall:1"
if [ "$OPEN" != 0 ]; then WORKLOADS="$WORKLOADS open:unwatched open:watched"; fi
if [ "$NET" != 0 ]; then WORKLOADS="$WORKLOADS connect:$CONNECT_WORKERS http:rate wrk:max"; fi
HTTP_URL=http://127.0.0.1:$HTTP_PORT/index.html

# Which workloads a configuration runs: the bpftrace references only the storms they are the
# reference for; the floor the open storms and getppid (any syscall tracepoint costs every syscall);
# the TCP state printer the network workloads.
runs_in() {
  case "$1:$2" in
    A:* | B:*) return 0 ;;
    C:exec | C:syscall) return 0 ;;
    "C':open") return 0 ;;
    F:open | F:syscall) return 0 ;;
    Cn:connect | Cn:http | Cn:wrk) return 0 ;;
  esac
  return 1
}

mkdir -p "$(dirname "$CSV")"
SCRATCH=$(mktemp -d /dev/shm/vigil-bench.XXXXXX)
TRACER_PID=""
STATS_SYSCTL=""
CREATED_OPEN_DIR=""
NGINX_PID=""
cleanup() {
  if [ -n "$TRACER_PID" ]; then
    kill -INT "$TRACER_PID" 2>/dev/null || true
    wait "$TRACER_PID" 2>/dev/null || true
  fi
  if [ -n "$NGINX_PID" ]; then
    kill -TERM "$NGINX_PID" 2>/dev/null || true
    wait "$NGINX_PID" 2>/dev/null || true
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
# No per-cgroup budget: the storms run in one cgroup and must cost what every event costs.
cat >"$AGENT_CONFIG" <<EOF
file:
  watch: [/etc/, /root/, /home/, /boot/, /run/secrets/, /var/run/secrets/, $OPEN_DIR/watched/]
budget:
  events_per_sec: 0
EOF

# CPU time (user + system, in seconds) a process has used so far.
cpu_seconds() {
  # Fields after the ")" that ends comm: state is 1, utime 12, stime 13.
  sed 's/.*) //' "/proc/$1/stat" | awk -v hz="$(getconf CLK_TCK)" '{ printf "%.3f", ($12 + $13) / hz }'
}

# CPU time of nginx: the master and its workers.
nginx_cpu() {
  local p total=0
  for p in "$NGINX_PID" $(pgrep -P "$NGINX_PID"); do
    total=$(awk -v a="$total" -v b="$(cpu_seconds "$p" 2>/dev/null || echo 0)" 'BEGIN { printf "%.3f", a + b }')
  done
  echo "$total"
}

# Starts nginx on 127.0.0.1:$HTTP_PORT with its own configuration in $SCRATCH/nginx, serving a
# 1 KiB file, and checks that it answers. Sets NGINX_PID (the master; `daemon off`).
start_nginx() {
  local d=$SCRATCH/nginx i out
  if (exec 3<>"/dev/tcp/127.0.0.1/$HTTP_PORT") 2>/dev/null; then
    echo "bench: 127.0.0.1:$HTTP_PORT is already in use; set HTTP_PORT" >&2
    return 1
  fi
  mkdir -p "$d/www" "$d/tmp"
  head -c 1024 /dev/zero | tr '\0' x >"$d/www/index.html"
  # The workers run as nobody: they must get through $SCRATCH (0700 from mktemp) to the file.
  chmod 711 "$SCRATCH"
  chmod 755 "$d" "$d/www"
  chmod 644 "$d/www/index.html"
  # access_log off: no disk write per request. open_file_cache: no open() of the file per request,
  # which the file sensor would see (this measures the network path). keepalive_requests: the
  # connections are never recycled (no connect or close during a run; the connect storm does that).
  cat >"$d/nginx.conf" <<EOF
daemon off;
worker_processes $NGINX_WORKERS;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  default_type text/html;
  keepalive_requests 1000000;
  keepalive_timeout 300s;
  open_file_cache max=16 inactive=300s;
  client_body_temp_path $d/tmp/body;
  proxy_temp_path $d/tmp/proxy;
  fastcgi_temp_path $d/tmp/fastcgi;
  uwsgi_temp_path $d/tmp/uwsgi;
  scgi_temp_path $d/tmp/scgi;
  server {
    listen 127.0.0.1:$HTTP_PORT;
    root $d/www;
  }
}
EOF
  "$NGINX" -p "$d/" -c "$d/nginx.conf" -e "$d/error.log" >"$d/stdout" 2>&1 &
  NGINX_PID=$!
  for i in $(seq 200); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$HTTP_PORT") 2>/dev/null; then break; fi
    if ! kill -0 "$NGINX_PID" 2>/dev/null; then break; fi
    sleep 0.05
  done
  if ! kill -0 "$NGINX_PID" 2>/dev/null; then
    echo "bench: nginx did not start:" >&2
    cat "$d/stdout" "$d/error.log" >&2 2>/dev/null || true
    NGINX_PID=""
    return 1
  fi
  # Warm-up, and a check that the file is served.
  out=$("$LOAD" http-rate --url "$HTTP_URL" --rate 1000 --seconds 1 --connections 4)
  if [ "$(num "$out" errors)" != 0 ] || [ "$(num "$out" ops)" = 0 ]; then
    echo "bench: nginx does not serve $HTTP_URL: $out" >&2
    cat "$d/error.log" >&2 2>/dev/null || true
    return 1
  fi
  echo "bench: nginx $("$NGINX" -v 2>&1 | sed 's/.*nginx\///') (pid $NGINX_PID, $NGINX_WORKERS worker(s)) on $HTTP_URL" >&2
}

# Waits until FILE contains PATTERN, or fails if PID dies or 60 s pass. Any further arguments are
# a command run every 0.5 s meanwhile (output discarded): bpftrace -o writes its file in 8 KiB
# blocks, so the "ready" line of BEGIN (run once every probe is attached) only reaches the file
# once enough lines follow it; on a quiet machine that can take minutes unless something makes
# the probe fire.
wait_for() {
  local file=$1 pattern=$2 pid=$3 i
  shift 3
  for i in $(seq 1200); do
    if grep -q "$pattern" "$file" 2>/dev/null; then return 0; fi
    if [ $# -gt 0 ] && [ $((i % 10)) = 0 ]; then "$@" >/dev/null 2>&1 || true; fi
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
      wait_for "$TRACER_LOG" ready "$TRACER_PID" "$LOAD" exec-storm --count 100
      ;;
    "C'")
      bpftrace -o "$TRACER_LOG" -e 'BEGIN { printf("ready\n"); }
        tracepoint:syscalls:sys_exit_openat { printf("%d %s\n", pid, comm); }' \
        >/dev/null 2>"$SCRATCH/bpftrace.err" &
      TRACER_PID=$!
      wait_for "$TRACER_LOG" ready "$TRACER_PID" "$LOAD" open-storm --path "$OPEN_DIR/unwatched/f" --count 1000
      ;;
    F)
      # Exactly one empty program, no BEGIN probe: "Attaching 1 probe..." is printed just before
      # attaching, hence the extra second.
      bpftrace -e 'tracepoint:syscalls:sys_exit_openat { }' >"$TRACER_LOG" 2>"$SCRATCH/bpftrace.err" &
      TRACER_PID=$!
      wait_for "$TRACER_LOG" Attaching "$TRACER_PID"
      sleep 1
      ;;
    Cn)
      # Every TCP state change, with addresses: what a connection tracer prints.
      bpftrace -o "$TRACER_LOG" -e 'BEGIN { printf("ready\n"); }
        tracepoint:sock:inet_sock_set_state /args->protocol == 6/ {
          if (args->family == 2) {
            printf("%d %s %s:%d %s:%d %d>%d\n", pid, comm, ntop(args->saddr), args->sport,
              ntop(args->daddr), args->dport, args->oldstate, args->newstate);
          } else {
            printf("%d %s [%s]:%d [%s]:%d %d>%d\n", pid, comm, ntop(args->saddr_v6), args->sport,
              ntop(args->daddr_v6), args->dport, args->oldstate, args->newstate);
          }
        }' >/dev/null 2>"$SCRATCH/bpftrace.err" &
      TRACER_PID=$!
      wait_for "$TRACER_LOG" ready "$TRACER_PID" "$LOAD" connect-storm --count 100
      ;;
  esac
}

# Stops the tracer and sets STATS to "exec_gen exec_recv exec_drop_rb exec_drop_sink fork_gen
# fork_drop exit_gen exit_drop file_gen file_recv file_drop_rb file_drop_sink file_filtered
# syscall_drop decode_errors" from the agent's final stats (dashes otherwise), and NET_STATS to
# "generated received dropped kinds" summed over the kinds other than these five (the network
# sensor's, whatever their names; kinds joined by +, or "none").
# Not run in a subshell: only the shell that started the tracer can wait for it.
NO_STATS="- - - - - - - - - - - - - - -"
NO_NET_STATS="- - - -"
stop_tracer() {
  local cfg=$1 stats dec
  STATS=$NO_STATS
  NET_STATS=$NO_NET_STATS
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
  NET_STATS=$(grep -o '"kind":"[^"]*"[^}]*' <<<"$stats" | awk '
    function val(f) { return match($0, "\"" f "\":[0-9]+") ? substr($0, RSTART + length(f) + 3, RLENGTH - length(f) - 3) + 0 : 0 }
    {
      k = substr($0, 9); k = substr(k, 1, index(k, "\"") - 1)
      if (k ~ /^(exec|fork|exit|file|syscall)$/) next
      names = names (names == "" ? "" : "+") k
      g += val("generated"); r += val("received"); d += val("dropped_ringbuf_full") + val("dropped_sink_error")
    }
    END { print g + 0, r + 0, d + 0, (names == "" ? "none" : names) }')
}

# One number from the load generator's JSON line (empty if absent).
num() { grep -o "\"$2\":[0-9.]*" <<<"$1" | cut -d: -f2 || true; }

# wrk's report as the load generator's JSON line: ops, seconds, ns_per_op (mean latency),
# ops_per_sec, p50/p90/p99 in us, errors (non-2xx responses and socket errors).
wrk_json() {
  awk -v conns="$WRK_CONNECTIONS" '
    # A wrk duration ("812.00us", "1.23ms", "2.00s", "1.00m") in us.
    function us(x,   v) { v = x + 0; if (x ~ /us$/) return v; if (x ~ /ms$/) return v * 1e3; if (x ~ /m$/) return v * 6e7; if (x ~ /s$/) return v * 1e6; return v }
    $1 == "Latency" && $2 != "Distribution" { avg = us($2) }
    $1 == "50%" { p50 = us($2) } $1 == "90%" { p90 = us($2) } $1 == "99%" { p99 = us($2) }
    / requests in / { ops = $1; d = $4; sub(/,$/, "", d); secs = us(d) / 1e6 }
    /Non-2xx or 3xx responses:/ { err += $NF }
    /Socket errors:/ { for (i = 3; i <= NF; i++) if ($(i - 1) ~ /^(connect|read|write|timeout)$/) err += $i + 0 }
    /^Requests\/sec:/ { rps = $2 }
    END { printf "{\"workload\":\"http-wrk\",\"workers\":%d,\"ops\":%d,\"seconds\":%.3f,\"ns_per_op\":%.1f,\"ops_per_sec\":%.1f,\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f,\"errors\":%d}\n", conns, ops, secs, avg * 1e3, rps, p50, p90, p99, err }'
}

# Runs workload $1 (exec, syscall, open, connect, http, wrk) with parameter $2 (workers, or which
# file).
run_load() {
  case $1 in
    exec) "$LOAD" exec-storm --workers "$2" --seconds "$EXEC_SECONDS" ;;
    syscall) "$LOAD" syscall-storm --seconds "$SYSCALL_SECONDS" ;;
    open) "$LOAD" open-storm --path "$OPEN_DIR/$2/f" --seconds "$OPEN_SECONDS" ;;
    connect) "$LOAD" connect-storm --workers "$2" --seconds "$CONNECT_SECONDS" ;;
    http) "$LOAD" http-rate --url "$HTTP_URL" --rate "$HTTP_RATE" --seconds "$HTTP_SECONDS" --connections "$HTTP_CONNECTIONS" ;;
    wrk) wrk -t"$WRK_THREADS" -c"$WRK_CONNECTIONS" -d"${HTTP_SECONDS}s" --latency "$HTTP_URL" | wrk_json ;;
  esac
}

# The CSV name of a workload.
wl_name() {
  case $1 in
    open) echo "open-storm-$2" ;;
    http) echo "http-rate" ;;
    wrk) echo "http-wrk" ;;
    *) echo "$1-storm" ;;
  esac
}

# Rounds of configurations are rotated; bpftrace configurations (C, C', F, Cn) start once per round.
is_bpftrace() { case $1 in C | "C'" | F | Cn) return 0 ;; esac; return 1; }

if [ "$NET" != 0 ]; then start_nginx; fi

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
echo "round,config,workload,workers,ops,seconds,ns_per_op,ops_per_sec,batch_median_ns,tracer_cpu_s,exec_generated,exec_received,exec_dropped_ringbuf_full,exec_dropped_sink_error,fork_generated,fork_dropped,exit_generated,exit_dropped,file_generated,file_received,file_dropped_ringbuf_full,file_dropped_sink_error,file_filtered_kernel,syscall_dropped,decode_errors,loadavg1,p50_us,p90_us,p99_us,p999_us,target_rate,http_errors,server_cpu_s,net_generated,net_received,net_dropped,net_kinds" >"$CSV"
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
      is_http=""
      case $kind in http | wrk) is_http=1 ;; esac
      if [ -n "$is_http" ]; then ncpu0=$(nginx_cpu); fi
      out=$(run_load "$kind" "$param")
      cpu="-"
      if [ -n "$TRACER_PID" ]; then
        # Let the tracer drain (the agent polls every 100 ms) before reading its CPU time.
        sleep 0.3
        cpu=$(awk -v a="$cpu0" -v b="$(cpu_seconds "$TRACER_PID")" 'BEGIN { printf "%.3f", b - a }')
      fi
      scpu="-"
      if [ -n "$is_http" ]; then scpu=$(awk -v a="$ncpu0" -v b="$(nginx_cpu)" 'BEGIN { printf "%.3f", b - a }'); fi
      STATS=$NO_STATS
      NET_STATS=$NO_NET_STATS
      if ! is_bpftrace "$cfg"; then stop_tracer "$cfg"; fi
      workers=1
      case $kind in
        exec | connect) workers=$param ;;
        http) workers=$HTTP_CONNECTIONS ;;
        wrk) workers=$WRK_CONNECTIONS ;;
      esac
      bm=$(num "$out" batch_median_ns)
      httpcols="-,-,-,-,-,-"
      if [ -n "$is_http" ]; then
        p999=$(num "$out" p999_us)
        trate=$(num "$out" target_rate)
        httpcols="$(num "$out" p50_us),$(num "$out" p90_us),$(num "$out" p99_us),${p999:--},${trate:--},$(num "$out" errors)"
      fi
      echo "$round,$cfg,$(wl_name "$kind" "$param"),$workers,$(num "$out" ops),$(num "$out" seconds),$(num "$out" ns_per_op),$(num "$out" ops_per_sec),${bm:--},$cpu,${STATS// /,},$(cut -d' ' -f1 /proc/loadavg),$httpcols,$scpu,${NET_STATS// /,}" >>"$CSV"
      if [ -n "$is_http" ]; then
        printf 'bench: round %s/%s config %-2s %-20s x%s: %8.0f req/s, p50 %s us, p99 %s us, p999 %s us, tracer CPU %s s, nginx CPU %s s\n' \
          "$round" "$ROUNDS" "$cfg" "$(wl_name "$kind" "$param")" "$workers" "$(num "$out" ops_per_sec)" "$(num "$out" p50_us)" \
          "$(num "$out" p99_us)" "${p999:--}" "$cpu" "$scpu" >&2
      else
        printf 'bench: round %s/%s config %-2s %-20s x%s: %10.1f ns/op (batch median %s, %s ops/s)\n' "$round" "$ROUNDS" "$cfg" \
          "$(wl_name "$kind" "$param")" "$workers" "$(num "$out" ns_per_op)" "${bm:--}" "$(num "$out" ops_per_sec)" >&2
      fi
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

# The programs that ran at least $4 times per operation (default 0.01) in $SCRATCH/bpf.out (the
# ones on the workload's path), for config $1 (B or F) and workload $2, per $3 (open, connection,
# request). The counters are global: other processes' syscalls count too (a concurrent build opens
# thousands of files a second), hence a higher threshold for the slower network operations.
bpf_per_op() {
  awk -v c="$1" -v wl="$2" -v per="$3" -v min="${4:-0.01}" '
    BEGIN { printf "  %s, %s:", (c == "B" ? "agent" : "floor"), wl }
    NR == 1 { match($0, /"ops":[0-9]+/); ops = substr($0, RSTART + 6, RLENGTH - 6) + 0; next }
    $3 >= ops * min { printf "%s %s %.0f ns/run (%.2f runs per %s)", (k++ ? ";" : ""), $1, $2 / $3, $3 / ops, per; total += $2 }
    END { if (!k) printf " (no program ran)"; else if (per != "open") printf "; total %.0f ns per %s", total / ops, per }' "$SCRATCH/bpf.out"
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
        BPF_REPORT+=$'\n'$(bpf_per_op "$c" "open-storm-$which" open)
        if [ "$c" = B ] && [ "$which" = watched ]; then
          BPF_REPORT+=$'\n'"    (that run's file events: generated $(cut -d' ' -f9 <<<"$STATS"), received $(cut -d' ' -f10 <<<"$STATS"), dropped_ringbuf_full $(cut -d' ' -f11 <<<"$STATS"))"
        fi
      done
    done
  fi
  if [ "$NET" != 0 ]; then
    bpf_run B connect "$CONNECT_WORKERS"
    BPF_REPORT+=$'\n'$(bpf_per_op B "connect-storm x$CONNECT_WORKERS" connection 0.5)
    bpf_run B http rate
    BPF_REPORT+=$'\n'$(bpf_per_op B "http-rate ($HTTP_RATE req/s)" request 0.5)
  fi
  sysctl -q kernel.bpf_stats_enabled="$STATS_SYSCTL"
  STATS_SYSCTL=""
fi

echo
echo "vigil overhead benchmark: $(nproc) CPUs, kernel $(uname -r), $ROUNDS rounds of configs $CONFIGS" \
  "(A none, B vigil, C bpftrace exec printer, C' bpftrace open printer, F empty program on sys_exit_openat," \
  "Cn bpftrace TCP state printer)," \
  "exec ${EXEC_SECONDS}s / syscall ${SYSCALL_SECONDS}s / open ${OPEN_SECONDS}s per run, ${ELAPSED}s;" \
  "load average before $LOAD_BEFORE, after $LOAD_AFTER"
echo "(exec-storm: wall time per spawn+exec+exit+wait of /bin/true per worker; syscall-storm: per getppid;" \
  "open-storm: per open+close; tight loops by $TIGHT_METRIC)"
if [ "$NET" != 0 ]; then
  echo "(connect-storm: per connect+write+close per worker, ${CONNECT_SECONDS}s; http-rate: ${HTTP_RATE} req/s open loop" \
    "over $HTTP_CONNECTIONS connections, http-wrk: wrk -t$WRK_THREADS -c$WRK_CONNECTIONS, ${HTTP_SECONDS}s each, nginx" \
    "with $NGINX_WORKERS worker(s) on $HTTP_URL)"
fi
summary "$CSV" "$CONFIGS"
if [ -n "$BPF_REPORT" ]; then echo "$BPF_REPORT"; fi
echo
echo "raw runs: $(realpath "$CSV")"
