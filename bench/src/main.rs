//! `vigil-bench`: load generators for measuring what the Vigil agent adds to the host.
//!
//! Two workloads, each printing one JSON line `{"workload":..,"ops":..,"seconds":..,"ns_per_op":..}`:
//!
//! - `exec-storm`: N workers each spawn `/bin/true` and wait for it, in a loop. This is the path
//!   the agent instruments (fork, exec and exit tracepoints, argv capture, ancestry).
//! - `syscall-storm`: a tight loop of `getppid`, a syscall the agent does not hook, to show that
//!   nothing is added elsewhere.
//!
//! It uses only the standard library on purpose: `Command` spawns through `posix_spawn`
//! (`clone(CLONE_VM|CLONE_VFORK)`, no page-table copy), the cheapest way to fork+exec, and
//! `parent_id()` is a plain `getppid` call, so no extra dependency (nor lock-file churn) is needed.
//! `bench/run.sh` drives it with and without the agent.

use std::hint::black_box;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

const USAGE: &str = "usage:
  vigil-bench exec-storm [--workers N] (--seconds S | --count N) [--program PATH]
  vigil-bench syscall-storm (--seconds S | --count N)

--seconds runs for a wall-clock duration; --count runs a fixed number of operations
(per worker for exec-storm). Default: --seconds 5, --workers 1, --program /bin/true.";

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
}

fn parse(args: &[String]) -> Result<Opts, String> {
    let (workload, rest) = args.split_first().ok_or("missing workload")?;
    if workload != "exec-storm" && workload != "syscall-storm" {
        return Err(format!("unknown workload `{workload}`"));
    }
    let mut o = Opts {
        workload: workload.clone(),
        workers: 1,
        limit: Limit::Seconds(5.0),
        program: "/bin/true".into(),
    };
    let mut it = rest.iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--workers" if o.workload == "exec-storm" => {
                o.workers = value()?.parse().map_err(|e| format!("--workers: {e}"))?;
                if o.workers == 0 {
                    return Err("--workers must be at least 1".into());
                }
            }
            "--program" if o.workload == "exec-storm" => o.program = value()?.clone(),
            "--seconds" => {
                let s: f64 = value()?.parse().map_err(|e| format!("--seconds: {e}"))?;
                if !(s > 0.0 && s.is_finite()) {
                    return Err("--seconds must be positive".into());
                }
                o.limit = Limit::Seconds(s);
            }
            "--count" => {
                o.limit = Limit::Count(value()?.parse().map_err(|e| format!("--count: {e}"))?)
            }
            _ => return Err(format!("unknown option `{flag}` for {}", o.workload)),
        }
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

/// The syscall storm. A clock read is cheap (vDSO) but not free next to a ~100 ns syscall, so
/// the loop only checks the limit every `BATCH` calls.
fn syscall_storm(limit: Limit) -> (u64, f64) {
    const BATCH: u64 = 4096;
    let start = Instant::now();
    let mut ops = 0;
    while !limit.done(start, ops) {
        let n = match limit {
            Limit::Count(c) => BATCH.min(c - ops),
            Limit::Seconds(_) => BATCH,
        };
        for _ in 0..n {
            // An opaque libc call: never elided, never cached by glibc.
            black_box(std::os::unix::process::parent_id());
        }
        ops += n;
    }
    (ops, start.elapsed().as_secs_f64())
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
    let (ops, secs) = if o.workload == "exec-storm" {
        match exec_storm(&o) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("vigil-bench: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        syscall_storm(o.limit)
    };
    // Per-worker wall time per operation: with W workers in parallel, each operation took
    // elapsed * W / ops of one worker's time. With one worker this is simply elapsed / ops.
    let ns_per_op = if ops == 0 {
        0.0
    } else {
        secs * 1e9 * o.workers as f64 / ops as f64
    };
    println!(
        "{{\"workload\":\"{}\",\"workers\":{},\"ops\":{},\"seconds\":{:.6},\"ns_per_op\":{:.1},\"ops_per_sec\":{:.1}}}",
        o.workload,
        o.workers,
        ops,
        secs,
        ns_per_op,
        ops as f64 / secs
    );
    ExitCode::SUCCESS
}
