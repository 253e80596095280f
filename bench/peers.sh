#!/usr/bin/env bash
# Vigil against its peers: one command, `bash bench/peers.sh` (as root).
#
# Six configurations, measured side by side in one run: ROUNDS rounds, each running every
# configuration with their order rotated by one every round (so that a slow drift of the machine,
# another build for instance, does not favour one):
#   none      no agent
#   floor     the physical floor: an empty program (`vigil-floor`, bench/src/bin/vigil-floor.rs)
#             on every hook the agent attaches with its default configuration. The hooks are
#             read from the running agent with bpftool at the start of the run, so the floor
#             follows the agent (tp_btf programs get an empty raw_tracepoint program: same
#             dispatch path).
#   vigil     `vigil run --output file:/dev/null`: the default configuration and ruleset, every
#             event encoded as JSON and written
#   bpftrace  a bpftrace script on the tracepoints exec, open and connect, printing each event
#             (pid, parent, comm, filename; pid, comm, path; pid, comm, address) to /dev/null
#   auditd    auditd (as packaged, its log in $WORK_DIR) with the rule
#             `-a always,exit -F arch=b64 -S execve,openat,connect` and a backlog of 8192 (as
#             Debian's default rules); auditd is started for this configuration if it was not
#             running, and the rule removed and the audit status restored afterwards
#   strace    `strace -f -e trace=execve,openat,connect -o /dev/null` around each workload; for
#             the HTTP workloads, attached to nginx (master and worker) for the run
# Workloads (vigil-bench, bench/src/main.rs, unless said otherwise):
#   open-close  open + close of a file under /tmp, in a tight loop (not watched by the default
#               configuration: the agent filters it in the kernel); per op: batch median
#   exec        fork+exec of /bin/true and wait, EXEC_WORKERS workers; per op: wall per worker
#   connect     loopback TCP connect + 1 byte + close, CONNECT_WORKERS workers; batch median
#   http-rate   HTTP_RATE requests/s open loop to nginx (p50/p99 from the scheduled send time)
#   wrk         `wrk -t WRK_THREADS -c WRK_CONNECTIONS` to the same nginx: closed loop; per op:
#               1 / throughput (the whole machine's time per request)
#   fio         `fio --rw=randread --bs=4k --ioengine=psync --direct=0` on a 64 MiB file on disk
#               (in the page cache: this is the read syscall path); per op: 1 / IOPS
# For every run it records the agent's CPU time (vigil, bpftrace, the floor's holder, auditd plus
# the kauditd thread, strace when attached to nginx), nginx's, the audit backlog's lost counter,
# the load average and the tracepoint attachments of other processes (another agent on the
# machine), in $RESULTS_CSV; then `peers-report` (bench/src/bin/peers-report.rs)
# prints the table (added cost per op paired by round, ratios against none and against the floor,
# p25..p75 over rounds, the targets) and gnuplot draws $PLOT_DIR/bench-peers-*.png.
#
# Audit note: the first time auditing is enabled, the kernel sets audit_ever_enabled for good
# (until reboot), and from then on every new task carries an audit context (a slow-path syscall
# entry and exit, even with auditing disabled). To give every configuration the same kernel, the
# script enables and disables auditing once before the first round.
#
# Knobs (environment): ROUNDS (6), CONFIGS ("none floor vigil bpftrace auditd strace"),
# OPEN_SECONDS (2), EXEC_SECONDS (2), EXEC_WORKERS (2), CONNECT_SECONDS (2), CONNECT_WORKERS (2),
# HTTP_SECONDS (3), HTTP_RATE (5000), HTTP_CONNECTIONS (16), WRK_THREADS (2), WRK_CONNECTIONS
# (50), HTTP_PORT (18081), FIO_SECONDS (3), WORK_DIR (/var/tmp/vigil-peers: on disk),
# RESULTS_CSV (bench/results/peers.csv), PLOT_DIR (docs/img), BUILD (1; 0 uses the binaries as
# they are). `SUMMARY_ONLY=file.csv bash bench/peers.sh` reprints the report (and redraws the
# plots) of a CSV without running anything. This is a benchmark, not a test.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-6}
CONFIGS=${CONFIGS:-"none floor vigil bpftrace auditd strace"}
OPEN_SECONDS=${OPEN_SECONDS:-2}
EXEC_SECONDS=${EXEC_SECONDS:-2}
EXEC_WORKERS=${EXEC_WORKERS:-2}
CONNECT_SECONDS=${CONNECT_SECONDS:-2}
CONNECT_WORKERS=${CONNECT_WORKERS:-2}
HTTP_SECONDS=${HTTP_SECONDS:-3}
HTTP_RATE=${HTTP_RATE:-5000}
HTTP_CONNECTIONS=${HTTP_CONNECTIONS:-16}
WRK_THREADS=${WRK_THREADS:-2}
WRK_CONNECTIONS=${WRK_CONNECTIONS:-50}
HTTP_PORT=${HTTP_PORT:-18081}
FIO_SECONDS=${FIO_SECONDS:-3}
WORK_DIR=${WORK_DIR:-/var/tmp/vigil-peers}
CSV=${RESULTS_CSV:-bench/results/peers.csv}
PLOT_DIR=${PLOT_DIR:-docs/img}
BENCH_TARGET=${CARGO_TARGET_DIR:-/tmp/bench-target}
WORKLOADS="open-close exec connect http-rate wrk fio"
STRACE_ARGS=(-f -e trace=execve,openat,connect -o /dev/null)
AUDIT_RULE=(always,exit -F arch=b64 -S execve,openat,connect)

# Draws the plots from the report's data files in $1.
plot() {
  local data=$1
  mkdir -p "$PLOT_DIR"
  gnuplot <<EOF
set terminal pngcairo size 1100,560 font "DejaVu Sans,11"
set datafile separator "\t"
set style data histograms
set style histogram errorbars gap 2 lw 1
set style fill solid 0.85 border -1
set logscale y 10
set format y "10^{%L}"
set yrange [1:*]
set grid ytics
set key top left horizontal
set ylabel "added ns per operation (log scale; median, bars p25..p75 over rounds)"
set title "Cost added per operation against no agent ($(nproc) vCPUs, kernel $(uname -r)); values <= 1 ns shown at 1 ns"
set output "$PLOT_DIR/bench-peers-added.png"
plot "$data/added.tsv" using 2:3:4:xtic(1) title columnhead(2) lc rgb "#9e9e9e", \
  "" using 5:6:7 title columnhead(5) lc rgb "#1f77b4", \
  "" using 8:9:10 title columnhead(8) lc rgb "#ff7f0e", \
  "" using 11:12:13 title columnhead(11) lc rgb "#2ca02c", \
  "" using 14:15:16 title columnhead(14) lc rgb "#d62728"
set output "$PLOT_DIR/bench-peers-http.png"
set title "nginx at a fixed rate (http-rate): latency per configuration (median over rounds, bars p25..p75)"
set ylabel "latency, us (log scale)"
set yrange [10:*]
set style histogram errorbars gap 2 lw 1
plot "$data/http.tsv" using 2:3:4:xtic(1) title columnhead(2) lc rgb "#1f77b4", \
  "" using 5:6:7 title columnhead(5) lc rgb "#d62728"
EOF
}

report() {
  local data
  data=$(mktemp -d)
  "$BENCH_TARGET/release/peers-report" "$1" "$data"
  plot "$data"
  rm -rf "$data"
  echo "plots: $PLOT_DIR/bench-peers-added.png $PLOT_DIR/bench-peers-http.png"
}

if [ -n "${SUMMARY_ONLY:-}" ]; then
  report "$SUMMARY_ONLY"
  exit 0
fi

if [ "$(id -u)" != 0 ]; then
  echo "peers: must run as root (BPF programs, auditd, ptrace of nginx)" >&2
  exit 1
fi

# Tools, from Debian. A package whose install enabled (or started) a service that this benchmark
# runs itself (auditd, nginx) gets that service disabled and stopped again.
missing=""
for pair in bpftrace:bpftrace auditctl:auditd strace:strace fio:fio nginx:nginx wrk:wrk gnuplot:gnuplot-nox bpftool:bpftool; do
  if ! command -v "${pair%%:*}" >/dev/null && [ ! -x "/usr/sbin/${pair%%:*}" ]; then missing="$missing ${pair##*:}"; fi
done
if [ -n "$missing" ]; then
  echo "peers: installing$missing" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >&2
  for svc in auditd nginx; do
    if [[ " $missing " != *" $svc "* ]]; then continue; fi
    if [ -d /run/systemd/system ]; then
      systemctl disable --now "$svc" >&2 || true
    else
      service "$svc" stop >&2 2>&1 || true
      update-rc.d "$svc" disable >&2 2>&1 || true
    fi
  done
fi

# The agent, built once in the main target directory if missing or older than its sources; the
# load generator, the floor and the report in $BENCH_TARGET (away from the main target lock).
VIGIL=target/release/vigil
if [ "${BUILD:-1}" != 0 ]; then
  # Tests, examples and docs do not go into the binary.
  if [ ! -x "$VIGIL" ] || [ -n "$(find crates bpf Cargo.lock -newer "$VIGIL" -type f \
    -not -path '*/tests/*' -not -path '*/examples/*' -not -name '*.md' -print -quit)" ]; then
    echo "peers: building $VIGIL (cargo build --release -p vigil)" >&2
    cargo build --locked --release -p vigil >&2
  fi
  CARGO_TARGET_DIR=$BENCH_TARGET cargo build --locked --release -q -p vigil-bench >&2
fi
LOAD=$BENCH_TARGET/release/vigil-bench
FLOOR=$BENCH_TARGET/release/vigil-floor
for bin in "$VIGIL" "$LOAD" "$FLOOR" "$BENCH_TARGET/release/peers-report"; do
  if [ ! -x "$bin" ]; then echo "peers: $bin is missing (run without BUILD=0)" >&2; exit 1; fi
done
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

SCRATCH=$(mktemp -d /dev/shm/vigil-peers.XXXXXX)
mkdir -p "$WORK_DIR" "$(dirname "$CSV")"
TRACER_PID=""
NGINX_PID=""
AUDITD_PID=""
AUDIT_RULE_ADDED=""
# The audit status to restore: enabled, failure, backlog_limit, backlog_wait_time.
read -r AUDIT_ENABLED AUDIT_FAILURE AUDIT_BACKLOG AUDIT_WAIT < <(auditctl -s |
  awk '{ v[$1] = $2 } END { print v["enabled"], v["failure"], v["backlog_limit"], v["backlog_wait_time"] }')
AUDIT_RULES_BEFORE=$(auditctl -l)
AUDITD_WAS_RUNNING=""
if pidof auditd >/dev/null; then AUDITD_WAS_RUNNING=1; fi

# SIGINT for the agent and bpftrace (both detach and exit on it); the floor's holder has no
# handler, and a background job of a script ignores SIGINT, hence SIGTERM for it.
stop_tracer() {
  if [ -n "$TRACER_PID" ]; then
    kill -INT "$TRACER_PID" 2>/dev/null || true
    if [ "$(cat "/proc/$TRACER_PID/comm" 2>/dev/null)" = vigil-floor ]; then kill -TERM "$TRACER_PID" 2>/dev/null || true; fi
    wait "$TRACER_PID" 2>/dev/null || true
    TRACER_PID=""
  fi
}

# Undoes what the auditd configuration did: exactly its rule, the daemon if this script started
# it, and the audit status as it was before the run.
audit_restore() {
  if [ -n "$AUDIT_RULE_ADDED" ]; then
    auditctl -d "${AUDIT_RULE[@]}" >/dev/null || echo "peers: could not delete the audit rule" >&2
    AUDIT_RULE_ADDED=""
  fi
  if [ -n "$AUDITD_PID" ]; then
    kill -TERM "$AUDITD_PID" 2>/dev/null || true
    wait "$AUDITD_PID" 2>/dev/null || true
    AUDITD_PID=""
  fi
  auditctl -b "$AUDIT_BACKLOG" --backlog_wait_time "$AUDIT_WAIT" -f "$AUDIT_FAILURE" -e "$AUDIT_ENABLED" >/dev/null
}

cleanup() {
  stop_tracer
  audit_restore || true
  if [ "$(auditctl -l)" != "$AUDIT_RULES_BEFORE" ]; then
    echo "peers: warning: the audit rules differ from those before the run:" >&2
    auditctl -l >&2
  fi
  if [ -n "$NGINX_PID" ]; then
    kill -TERM "$NGINX_PID" 2>/dev/null || true
    wait "$NGINX_PID" 2>/dev/null || true
  fi
  rm -rf "$SCRATCH" "$WORK_DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# CPU time (user + system, seconds) of the processes given; 0 for any that is gone.
cpu_seconds() {
  local p total=0 t
  for p in "$@"; do
    t=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | awk -v hz="$(getconf CLK_TCK)" '{ printf "%.3f", ($12 + $13) / hz }')
    total=$(awk -v a="$total" -v b="${t:-0}" 'BEGIN { printf "%.3f", a + b }')
  done
  echo "$total"
}

# The agent's processes in the current configuration, for cpu_seconds.
agent_pids() {
  if [ -n "$TRACER_PID" ]; then echo "$TRACER_PID"; fi
  if [ "$1" = auditd ]; then
    pidof auditd || true
    pgrep -x kauditd || true
  fi
}

# Waits (up to 60 s) until command "$2..." succeeds, failing early if pid $1 dies.
wait_until() {
  local pid=$1 i
  shift
  for i in $(seq 600); do
    if "$@"; then return 0; fi
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
      echo "peers: process $pid exited before it was ready" >&2
      cat "$SCRATCH"/*.log >&2 2>/dev/null || true
      return 1
    fi
    sleep 0.1
  done
  echo "peers: not ready after 60 s: $*" >&2
  return 1
}

# Readiness checks for wait_until: bpftrace has attached its 3 tracepoints (bpftool sees them;
# its -o /dev/null leaves nothing else to watch); strace has attached to nginx's 2 processes.
bpftrace_ready() { [ "$(bpftool perf list | grep -c "^pid $TRACER_PID ")" -ge 3 ]; }
strace_ready() { [ "$(grep -c attached "$SCRATCH/strace.log")" -ge 2 ]; }

start_vigil() {
  : >"$SCRATCH/vigil.log"
  "$VIGIL" run --output file:/dev/null 2>"$SCRATCH/vigil.log" &
  TRACER_PID=$!
  wait_until "$TRACER_PID" grep -q "vigil: ready" "$SCRATCH/vigil.log"
}

# The hooks the agent attaches with its default configuration, as vigil-floor arguments, from a
# short run of the agent: its tracepoints (bpftool perf list) and its cgroup programs.
discover_hooks() {
  local ids
  start_vigil
  ids=" $(cat /proc/"$TRACER_PID"/fdinfo/* 2>/dev/null | awk '$1 == "prog_id:" { printf "%s ", $2 }')"
  bpftool perf list | awk -v pid="$TRACER_PID" '$2 == pid && ($7 == "tracepoint" || $7 == "raw_tracepoint") { print $7, $8 }' |
    while read -r kind name; do
      if [ "$kind" = raw_tracepoint ]; then echo "raw_tracepoint:$name"; continue; fi
      dir=$(ls -d /sys/kernel/tracing/events/*/"$name" | head -1)
      echo "tracepoint:$(basename "$(dirname "$dir")"):$name"
    done >"$SCRATCH/hooks"
  bpftool cgroup tree | awk -v ids="$ids" '
    /^\// { path = $1; next }
    $1 ~ /^[0-9]+$/ && index(ids, " " $1 " ") {
      t = $2; sub(/^cgroup_(inet|udp)/, "", t)
      if (t == "_ingress" || t == "_egress") t = substr(t, 2); else if (match(t, /^[46]_/)) t = substr(t, 3) substr(t, 1, 1)
      print "cgroup:" t ":" path
    }' >>"$SCRATCH/hooks"
  stop_tracer
  echo "peers: the agent attaches $(wc -l <"$SCRATCH/hooks") hooks ($(grep -c '^tracepoint' "$SCRATCH/hooks") syscall" \
    "tracepoints, $(grep -c '^raw_tracepoint' "$SCRATCH/hooks") raw/BTF tracepoints, $(grep -c '^cgroup' "$SCRATCH/hooks") cgroup)" >&2
}

start_nginx() {
  local d=$SCRATCH/nginx
  mkdir -p "$d/www" "$d/tmp"
  head -c 1024 /dev/zero | tr '\0' x >"$d/www/index.html"
  chmod 711 "$SCRATCH"
  chmod 755 "$d" "$d/www"
  # As bench/run.sh: no access log, no open() per request, connections never recycled.
  cat >"$d/nginx.conf" <<EOF
daemon off;
worker_processes 1;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 300s;
  open_file_cache max=16 inactive=300s;
  client_body_temp_path $d/tmp/body;
  proxy_temp_path $d/tmp/proxy;
  fastcgi_temp_path $d/tmp/fastcgi;
  uwsgi_temp_path $d/tmp/uwsgi;
  scgi_temp_path $d/tmp/scgi;
  server { listen 127.0.0.1:$HTTP_PORT; root $d/www; }
}
EOF
  "$NGINX" -p "$d/" -c "$d/nginx.conf" -e "$d/error.log" >"$d/stdout" 2>&1 &
  NGINX_PID=$!
  wait_until "$NGINX_PID" bash -c "exec 3<>/dev/tcp/127.0.0.1/$HTTP_PORT" 2>/dev/null
  "$LOAD" http-rate --url "$HTTP_URL" --rate 1000 --seconds 1 --connections 4 >/dev/null
}

# Starts configuration $1 (the strace configuration wraps each workload instead).
start_config() {
  case $1 in
    floor)
      # shellcheck disable=SC2046
      "$FLOOR" $(cat "$SCRATCH/hooks") >"$SCRATCH/floor.log" 2>&1 &
      TRACER_PID=$!
      wait_until "$TRACER_PID" grep -q ready "$SCRATCH/floor.log"
      ;;
    vigil) start_vigil ;;
    bpftrace)
      bpftrace -o /dev/null -e '
        tracepoint:sched:sched_process_exec {
          printf("exec %d %d %s %s\n", pid, curtask->real_parent->tgid, comm, str(args->filename));
        }
        tracepoint:syscalls:sys_enter_openat {
          printf("open %d %s %s\n", pid, comm, str(args->filename));
        }
        tracepoint:syscalls:sys_enter_connect {
          $sa = (struct sockaddr_in *)args->uservaddr;
          printf("connect %d %s %d %s:%d\n", pid, comm, $sa->sin_family, ntop($sa->sin_addr.s_addr),
            ($sa->sin_port >> 8) | (($sa->sin_port & 0xff) << 8));
        }' >"$SCRATCH/bpftrace.log" 2>&1 &
      TRACER_PID=$!
      wait_until "$TRACER_PID" bpftrace_ready
      ;;
    auditd)
      if [ -z "$AUDITD_WAS_RUNNING" ]; then
        mkdir -p "$SCRATCH/audit" "$WORK_DIR/audit"
        sed "s|^log_file = .*|log_file = $WORK_DIR/audit/audit.log|" /etc/audit/auditd.conf >"$SCRATCH/audit/auditd.conf"
        chmod 600 "$SCRATCH/audit/auditd.conf"
        auditd -n -c "$SCRATCH/audit" >"$SCRATCH/auditd.log" 2>&1 &
        AUDITD_PID=$!
        wait_until "$AUDITD_PID" bash -c "auditctl -s | grep -qx 'pid $AUDITD_PID'"
      fi
      auditctl -b 8192 >/dev/null
      auditctl -a "${AUDIT_RULE[@]}" >/dev/null
      AUDIT_RULE_ADDED=1
      ;;
  esac
}

stop_config() {
  stop_tracer
  if [ "$1" = auditd ]; then audit_restore; fi
}

audit_lost() { auditctl -s | awk '$1 == "lost" { print $2 }'; }

# Tracepoint attachments held by other processes than this configuration's agent: another agent
# or tracer on the shared machine, which every configuration would pay for.
foreign_bpf() { bpftool perf list | awk -v own="${TRACER_PID:-none}" '$1 == "pid" && $2 != own' | wc -l; }

# Runs workload $2 under configuration $1 and prints its CSV fields after `round,config,workload`.
run_workload() {
  local cfg=$1 wl=$2 wrap=() out cpu0 ncpu0 lost0 spid="" ops secs ns bm rate p50 p99 err
  if [ "$cfg" = strace ]; then wrap=(strace "${STRACE_ARGS[@]}"); fi
  case $wl in
    http-rate | wrk)
      if [ "$cfg" = strace ]; then
        # ptrace of the server, master and worker, for the run.
        strace "${STRACE_ARGS[@]}" -p "$NGINX_PID" $(pgrep -P "$NGINX_PID" | sed 's/^/-p /') 2>"$SCRATCH/strace.log" &
        spid=$!
        wait_until "$spid" strace_ready
        wrap=()
      fi
      ;;
  esac
  cpu0=$(cpu_seconds $(agent_pids "$cfg") $spid)
  ncpu0=$(cpu_seconds "$NGINX_PID" $(pgrep -P "$NGINX_PID"))
  lost0=$(audit_lost)
  case $wl in
    open-close) out=$("${wrap[@]}" "$LOAD" open-storm --path "$WORK_DIR/open/f" --seconds "$OPEN_SECONDS") ;;
    exec) out=$("${wrap[@]}" "$LOAD" exec-storm --workers "$EXEC_WORKERS" --seconds "$EXEC_SECONDS") ;;
    connect) out=$("${wrap[@]}" "$LOAD" connect-storm --workers "$CONNECT_WORKERS" --seconds "$CONNECT_SECONDS") ;;
    http-rate) out=$("$LOAD" http-rate --url "$HTTP_URL" --rate "$HTTP_RATE" --seconds "$HTTP_SECONDS" --connections "$HTTP_CONNECTIONS") ;;
    wrk)
      out=$(wrk -t"$WRK_THREADS" -c"$WRK_CONNECTIONS" -d"${HTTP_SECONDS}s" --latency "$HTTP_URL" | awk '
        function us(x,   v) { v = x + 0; if (x ~ /us$/) return v; if (x ~ /ms$/) return v * 1e3; if (x ~ /m$/) return v * 6e7; if (x ~ /s$/) return v * 1e6; return v }
        $1 == "50%" { p50 = us($2) } $1 == "99%" { p99 = us($2) }
        / requests in / { ops = $1; d = $4; sub(/,$/, "", d); secs = us(d) / 1e6 }
        /Non-2xx or 3xx responses:/ { err += $NF }
        /Socket errors:/ { for (i = 3; i <= NF; i++) if ($(i - 1) ~ /^(connect|read|write|timeout)$/) err += $i + 0 }
        END { printf "{\"ops\":%d,\"seconds\":%.3f,\"ns_per_op\":%.1f,\"ops_per_sec\":%.1f,\"p50_us\":%.1f,\"p99_us\":%.1f,\"errors\":%d}\n", ops, secs, secs * 1e9 / (ops ? ops : 1), ops / (secs ? secs : 1), p50, p99, err }')
      ;;
    fio)
      # Terse v3: field 6 KiB read, 8 IOPS, 9 runtime in ms.
      out=$("${wrap[@]}" fio --name=randread --filename="$WORK_DIR/fio.dat" --size=64m --rw=randread --bs=4k \
        --ioengine=psync --direct=0 --invalidate=0 --time_based --runtime="$FIO_SECONDS" \
        --output-format=terse --terse-version=3 | awk -F';' '$1 == 3 {
          printf "{\"ops\":%d,\"seconds\":%.3f,\"ns_per_op\":%.1f,\"ops_per_sec\":%.1f}\n", $6 / 4, $9 / 1000, ($8 > 0 ? 1e9 / $8 : 0), $8 }')
      ;;
  esac
  sleep 0.3 # the agents drain their buffers (vigil polls every 100 ms)
  cpu=$(awk -v a="$cpu0" -v b="$(cpu_seconds $(agent_pids "$cfg") $spid)" 'BEGIN { printf "%.3f", b - a }')
  ncpu=$(awk -v a="$ncpu0" -v b="$(cpu_seconds "$NGINX_PID" $(pgrep -P "$NGINX_PID"))" 'BEGIN { printf "%.3f", b - a }')
  if [ -n "$spid" ]; then
    kill -INT "$spid" 2>/dev/null || true
    wait "$spid" 2>/dev/null || true
  fi
  case $cfg in none | strace) if [ -z "$spid" ]; then cpu=-; fi ;; esac
  case $wl in http-rate | wrk) ;; *) ncpu=- ;; esac
  field() { grep -o "\"$1\":[0-9.]*" <<<"$out" | cut -d: -f2 || true; }
  ops=$(field ops)
  if [ -z "$ops" ] || [ "$ops" = 0 ]; then
    echo "peers: $wl under $cfg produced no result: $out" >&2
    return 1
  fi
  bm=$(field batch_median_ns) p50=$(field p50_us) p99=$(field p99_us) err=$(field errors)
  echo "$ops,$(field seconds),$(field ns_per_op),${bm:--},$(field ops_per_sec),${p50:--},${p99:--},${err:--},$cpu,$ncpu,$(($(audit_lost) - lost0)),$(cut -d' ' -f1,2 /proc/loadavg | tr ' ' ,),$(foreign_bpf)"
}

HTTP_URL=http://127.0.0.1:$HTTP_PORT/index.html
mkdir -p "$WORK_DIR/open"
: >"$WORK_DIR/open/f"
# The fio file, on disk and then in the page cache: the reads measure the syscall path.
head -c 64M /dev/urandom >"$WORK_DIR/fio.dat"
cat "$WORK_DIR/fio.dat" >/dev/null
discover_hooks
start_nginx
if [ "$AUDIT_ENABLED" = 0 ]; then auditctl -e 1 >/dev/null && auditctl -e 0 >/dev/null; fi

echo "round,config,workload,ops,seconds,ns_per_op,batch_median_ns,ops_per_sec,p50_us,p99_us,errors,agent_cpu_s,nginx_cpu_s,audit_lost,loadavg1,loadavg5,foreign_bpf" >"$CSV"
read -r -a CFG_LIST <<<"$CONFIGS"
N=${#CFG_LIST[@]}
START=$(date +%s)
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
for round in $(seq "$ROUNDS"); do
  echo "peers: round $round/$ROUNDS, load average $(cut -d' ' -f1-3 /proc/loadavg), $(($(date +%s) - START)) s" >&2
  for k in $(seq 0 $((N - 1))); do
    cfg=${CFG_LIST[$(((k + round - 1) % N))]}
    # Another agent or tracer on the machine would be measured in every configuration: give it a
    # minute to go away (the runs record what remains, and the report sets such rounds aside).
    for _ in $(seq 60); do
      if [ "$(foreign_bpf)" = 0 ]; then break; fi
      if [ "$_" = 1 ]; then echo "peers: waiting for other processes' tracepoints to go away ($(foreign_bpf))" >&2; fi
      sleep 1
    done
    start_config "$cfg"
    for wl in $WORKLOADS; do
      row=$(run_workload "$cfg" "$wl")
      echo "$round,$cfg,$wl,$row" >>"$CSV"
      printf 'peers: round %s %-8s %-10s %s\n' "$round" "$cfg" "$wl" "$row" >&2
    done
    stop_config "$cfg"
  done
done
echo
echo "vigil against peers: $(nproc) vCPUs, kernel $(uname -r), $ROUNDS rounds of ($CONFIGS), $(($(date +%s) - START)) s;" \
  "load average before $LOAD_BEFORE, after $(cut -d' ' -f1-3 /proc/loadavg); the floor: $(wc -l <"$SCRATCH/hooks") empty programs"
report "$CSV"
echo "raw runs: $(realpath "$CSV")"
