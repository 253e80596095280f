//! `vigil-bench`: load generators for measuring what the Vigil agent adds to the host.
//!
//! Five workloads, each printing one JSON line `{"workload":..,"ops":..,"seconds":..,"ns_per_op":..}`:
//!
//! - `exec-storm`: N workers each spawn `/bin/true` and wait for it, in a loop. This is the path
//!   the agent instruments (fork, exec and exit tracepoints, argv capture, ancestry).
//! - `syscall-storm`: a tight loop of `getppid`, a syscall the agent does not hook, to show what
//!   is (or is not) added elsewhere.
//! - `open-storm --path P`: a tight loop of open(P, O_RDONLY) + close, the path of the file
//!   sensor (`sys_exit_openat`; close is not hooked). Whether the open is reported depends on
//!   the agent's path filter, i.e. on P.
//! - `connect-storm`: N client threads each connect to a loopback listener, write one byte and
//!   wait for the server to close, in a loop: TCP connection churn, the path of a network sensor
//!   (see `net.rs` for how it avoids running out of ports).
//! - `http-rate --url U --rate R`: an open-loop, fixed-rate HTTP/1.1 keep-alive load generator
//!   (wrk2-like; Debian has no wrk2): latency percentiles measured from each request's
//!   scheduled send time, so that a stall is not hidden by the generator waiting for it. Its line
//!   adds the percentiles and the achieved rate.
//!
//! It uses only the standard library on purpose: `Command` spawns through `posix_spawn`
//! (`clone(CLONE_VM|CLONE_VFORK)`, no page-table copy), the cheapest way to fork+exec,
//! `parent_id()` is a plain `getppid` call, and `File::open` + drop is glibc `open` (the
//! `openat(AT_FDCWD, P, O_RDONLY|O_CLOEXEC)` syscall) + `close`, so no extra dependency (nor
//! lock-file churn) is needed. The network workloads use `std::net` only, for the same reason.
//! `bench/run.sh` drives it with and without the agent.

mod net;

use std::fs::File;
use std::hint::black_box;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

const USAGE: &str = "usage:
  vigil-bench exec-storm [--workers N] (--seconds S | --count N) [--program PATH]
  vigil-bench syscall-storm (--seconds S | --count N)
  vigil-bench open-storm --path P (--seconds S | --count N)
  vigil-bench connect-storm [--workers N] (--seconds S | --count N)
  vigil-bench http-rate --url http://HOST:PORT/PATH [--rate R] [--connections C] [--seconds S]

--seconds runs for a wall-clock duration; --count runs a fixed number of operations
(per worker for exec-storm and connect-storm). Default: --seconds 5, --workers 1,
--program /bin/true; http-rate: --rate 10000 (requests/s in total), --connections 16.";

/// When a run stops: after a duration, or after a number of operations.
#[derive(Debug, Clone, Copy)]
enum Limit {
    Seconds(f64),
    Count(u64),
}

impl Limit {
    /// Whether a run that started at `start` and did `ops` operations should stop.
    fn done(self, start: Instant, ops: u64) -> bool {
        match self {
            Limit::Seconds(s) => start.elapsed() >= Duration::from_secs_f64(s),
            Limit::Count(n) => ops >= n,
        }
    }
}

#[derive(Debug)]
struct Opts {
    workload: String,
    workers: usize,
    limit: Limit,
    program: String,
    path: Option<String>,
    url: Option<String>,
    rate: f64,
    connections: usize,
}

const WORKLOADS: [&str; 5] = [
    "exec-storm",
    "syscall-storm",
    "open-storm",
    "connect-storm",
    "http-rate",
];

fn parse(args: &[String]) -> Result<Opts, String> {
    let (workload, rest) = args.split_first().ok_or("missing workload")?;
    if !WORKLOADS.contains(&workload.as_str()) {
        return Err(format!("unknown workload `{workload}`"));
    }
    let mut o = Opts {
        workload: workload.clone(),
        workers: 1,
        limit: Limit::Seconds(5.0),
        program: "/bin/true".into(),
        path: None,
        url: None,
        rate: 10_000.0,
        connections: 16,
    };
    let mut it = rest.iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--workers" if o.workload == "exec-storm" || o.workload == "connect-storm" => {
                o.workers = value()?.parse().map_err(|e| format!("--workers: {e}"))?;
                if o.workers == 0 {
                    return Err("--workers must be at least 1".into());
                }
            }
            "--program" if o.workload == "exec-storm" => o.program = value()?.clone(),
            "--path" if o.workload == "open-storm" => o.path = Some(value()?.clone()),
            "--url" if o.workload == "http-rate" => o.url = Some(value()?.clone()),
            "--rate" if o.workload == "http-rate" => {
                o.rate = value()?.parse().map_err(|e| format!("--rate: {e}"))?;
                if !(o.rate > 0.0 && o.rate.is_finite()) {
                    return Err("--rate must be positive".into());
                }
            }
            "--connections" if o.workload == "http-rate" => {
                o.connections = value()?
                    .parse()
                    .map_err(|e| format!("--connections: {e}"))?;
                if !(1..=4096).contains(&o.connections) {
                    return Err("--connections must be between 1 and 4096".into());
                }
            }
            "--seconds" => {
                let s: f64 = value()?.parse().map_err(|e| format!("--seconds: {e}"))?;
                if !(s > 0.0 && s.is_finite()) {
                    return Err("--seconds must be positive".into());
                }
                o.limit = Limit::Seconds(s);
            }
            "--count" if o.workload != "http-rate" => {
                o.limit = Limit::Count(value()?.parse().map_err(|e| format!("--count: {e}"))?)
            }
            _ => return Err(format!("unknown option `{flag}` for {}", o.workload)),
        }
    }
    if o.workload == "open-storm" && o.path.is_none() {
        return Err("open-storm needs --path".into());
    }
    if o.workload == "http-rate" && o.url.is_none() {
        return Err("http-rate needs --url".into());
    }
    Ok(o)
}

/// One worker of the exec storm: spawn and reap `program` until the limit. Returns the count.
fn exec_worker(program: &str, limit: Limit, start: Instant) -> Result<u64, String> {
    // Reusing one `Command` keeps argv/env preparation out of the loop; stdio is inherited
    // (no pipes to set up), so each iteration is posix_spawn + execve + exit + waitpid.
    let mut cmd = Command::new(program);
    cmd.stdin(Stdio::null());
    let mut ops = 0;
    while !limit.done(start, ops) {
        let status = cmd
            .status()
            .map_err(|e| format!("spawning {program}: {e}"))?;
        if !status.success() {
            return Err(format!("{program} exited with {status}"));
        }
        ops += 1;
    }
    Ok(ops)
}

fn exec_storm(o: &Opts) -> Result<(u64, f64), String> {
    let start = Instant::now();
    let counts: Vec<Result<u64, String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..o.workers)
            .map(|_| s.spawn(|| exec_worker(&o.program, o.limit, start)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("worker panicked".into())))
            .collect()
    });
    let elapsed = start.elapsed().as_secs_f64();
    let mut ops = 0;
    for c in counts {
        ops += c?;
    }
    Ok((ops, elapsed))
}

/// What a run measured. `batch_median_ns` is the median over fixed-size batches of operations
/// of their ns per operation (tight-loop workloads only): unlike the mean it ignores the batches
/// in which the worker was preempted (by another process on a busy host), so it moves less
/// between runs.
#[derive(Debug)]
struct Run {
    ops: u64,
    secs: f64,
    batch_median_ns: Option<f64>,
}

/// Runs `op` `batch` times per batch until `limit` (counted from `start`), timing each batch.
/// Returns the operations done and each batch's ns per operation. A clock read is cheap (vDSO)
/// but not free next to a ~100 ns syscall, hence batches.
fn batches(
    limit: Limit,
    start: Instant,
    batch: u64,
    mut op: impl FnMut() -> Result<(), String>,
) -> Result<(u64, Vec<f64>), String> {
    let mut ops = 0;
    let mut per_op = Vec::new();
    while !limit.done(start, ops) {
        let n = match limit {
            Limit::Count(c) => batch.min(c - ops),
            Limit::Seconds(_) => batch,
        };
        let t = Instant::now();
        for _ in 0..n {
            op()?;
        }
        per_op.push(t.elapsed().as_nanos() as f64 / n as f64);
        ops += n;
    }
    Ok((ops, per_op))
}

/// The median of batch figures (the upper one of an even count), if there are any.
fn median(mut per_op: Vec<f64>) -> Option<f64> {
    per_op.sort_by(f64::total_cmp);
    per_op.get(per_op.len() / 2).copied()
}

/// One thread running `op` in timed batches until `limit`.
fn batched(
    limit: Limit,
    batch: u64,
    op: impl FnMut() -> Result<(), String>,
) -> Result<Run, String> {
    let start = Instant::now();
    let (ops, per_op) = batches(limit, start, batch, op)?;
    let secs = start.elapsed().as_secs_f64();
    Ok(Run {
        ops,
        secs,
        batch_median_ns: median(per_op),
    })
}

/// The syscall storm: getppid in a loop.
fn syscall_storm(limit: Limit) -> Result<Run, String> {
    batched(limit, 4096, || {
        // An opaque libc call: never elided, never cached by glibc.
        black_box(std::os::unix::process::parent_id());
        Ok(())
    })
}

/// The open storm: open `path` read-only and close it, in a loop (one open+close is ~1-3 µs).
fn open_storm(path: &str, limit: Limit) -> Result<Run, String> {
    // One open outside the timed loop, so that a missing file is an error, not a fast ENOENT loop.
    File::open(path).map_err(|e| format!("opening {path}: {e}"))?;
    batched(limit, 256, || {
        // Dropping the File closes it.
        let f = File::open(path).map_err(|e| format!("opening {path}: {e}"))?;
        drop(black_box(f));
        Ok(())
    })
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let o = match parse(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("vigil-bench: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if o.workload == "http-rate" {
        let opts = net::HttpOpts {
            url: o.url.clone().unwrap_or_default(),
            rate: o.rate,
            connections: o.connections,
            seconds: match o.limit {
                Limit::Seconds(s) => s,
                Limit::Count(_) => unreachable!("--count is refused for http-rate"),
            },
        };
        return match net::http_rate(&opts) {
            Ok(line) => {
                println!("{line}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("vigil-bench: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let result = match o.workload.as_str() {
        "exec-storm" => exec_storm(&o).map(|(ops, secs)| Run {
            ops,
            secs,
            batch_median_ns: None,
        }),
        "open-storm" => open_storm(o.path.as_deref().unwrap_or_default(), o.limit),
        "connect-storm" => net::connect_storm(o.workers, o.limit),
        _ => syscall_storm(o.limit),
    };
    let Run {
        ops,
        secs,
        batch_median_ns,
    } = match result {
        Ok(r) => r,
        Err(e) => {
            eprintln!("vigil-bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Per-worker wall time per operation (exec and connect storms): with W workers in parallel, each operation took
    // elapsed * W / ops of one worker's time. With one worker this is simply elapsed / ops.
    let ns_per_op = if ops == 0 {
        0.0
    } else {
        secs * 1e9 * o.workers as f64 / ops as f64
    };
    let batch = batch_median_ns
        .map(|m| format!(",\"batch_median_ns\":{m:.1}"))
        .unwrap_or_default();
    println!(
        "{{\"workload\":\"{}\",\"workers\":{},\"ops\":{},\"seconds\":{:.6},\"ns_per_op\":{:.1},\"ops_per_sec\":{:.1}{batch}}}",
        o.workload,
        o.workers,
        ops,
        secs,
        ns_per_op,
        ops as f64 / secs
    );
    ExitCode::SUCCESS
}
