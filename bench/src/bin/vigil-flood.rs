//! `vigil-flood`: a paced generator of one kind of agent event with an exact count, and a reader
//! of the agent's per-kind counters, for `bench/capacity.sh`.
//!
//! - `vigil-flood gen --kind K --rate R --seconds S [--workers W] [--path P]`: W threads together
//!   do R operations per second (open loop: operation i of a worker is due at start + i·W/R; a
//!   late worker catches up at once, so the achieved rate shows when the generator itself is the
//!   limit), or as many as they can with `--rate 0`, then print one JSON line with the exact
//!   count. Kinds: `exec` (spawn /bin/true and wait: one fork, exec and exit event each), `file`
//!   (open P read-only + close: one file event when P is watched), `syscall` (`chroot("/")`, a
//!   reported syscall that changes nothing for root), `connection` (loopback TCP connect to a
//!   listener of its own, read until the server closes: a client `connect` and `close` and a
//!   server `accept` and `close` event each).
//! - `vigil-flood counters ADDR`: the agent's `/metrics` (`vigil run --api ADDR`) reduced to one
//!   line per kind: `kind generated dropped_ringbuf_full dropped_budget`.
//!
//! Standard library only, like `vigil-bench`.

use std::collections::BTreeMap;
use std::fs::File;
use std::hint::black_box;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

const USAGE: &str = "usage:
  vigil-flood gen --kind exec|file|syscall|connection --rate R --seconds S [--workers W] [--path P]
  vigil-flood counters HOST:PORT
--rate 0 runs as fast as possible; --path is the file opened by --kind file.";

#[derive(Clone, Copy, PartialEq, Debug)]
enum Kind {
    Exec,
    File,
    Syscall,
    Connection,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Exec => "exec",
            Kind::File => "file",
            Kind::Syscall => "syscall",
            Kind::Connection => "connection",
        }
    }
}

struct Gen {
    kind: Kind,
    rate: f64,
    seconds: f64,
    workers: usize,
    path: Option<String>,
}

fn parse_gen(args: &[String]) -> Result<Gen, String> {
    let mut g = Gen {
        kind: Kind::Exec,
        rate: -1.0,
        seconds: 0.0,
        workers: 1,
        path: None,
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--kind" => {
                g.kind = match value.as_str() {
                    "exec" => Kind::Exec,
                    "file" => Kind::File,
                    "syscall" => Kind::Syscall,
                    "connection" => Kind::Connection,
                    k => return Err(format!("unknown kind `{k}`")),
                }
            }
            "--rate" => g.rate = value.parse().map_err(|e| format!("--rate: {e}"))?,
            "--seconds" => g.seconds = value.parse().map_err(|e| format!("--seconds: {e}"))?,
            "--workers" => g.workers = value.parse().map_err(|e| format!("--workers: {e}"))?,
            "--path" => g.path = Some(value.clone()),
            f => return Err(format!("unknown option `{f}`")),
        }
    }
    if !(g.rate >= 0.0 && g.rate.is_finite()) {
        return Err("--rate must be given, 0 or positive".into());
    }
    if !(g.seconds > 0.0 && g.seconds.is_finite()) {
        return Err("--seconds must be positive".into());
    }
    if g.workers == 0 {
        return Err("--workers must be at least 1".into());
    }
    if g.kind == Kind::File && g.path.is_none() {
        return Err("--kind file needs --path".into());
    }
    Ok(g)
}

/// One operation of `kind`; `Ok(false)` when it failed in a way worth counting apart.
fn op(kind: Kind, path: &str, server: Option<SocketAddr>) -> Result<bool, String> {
    match kind {
        Kind::Exec => {
            let s = Command::new("/bin/true")
                .stdin(Stdio::null())
                .status()
                .map_err(|e| format!("spawning /bin/true: {e}"))?;
            Ok(s.success())
        }
        Kind::File => {
            let f = File::open(path).map_err(|e| format!("opening {path}: {e}"))?;
            drop(black_box(f));
            Ok(true)
        }
        Kind::Syscall => Ok(std::os::unix::fs::chroot("/").is_ok()),
        Kind::Connection => {
            let Some(addr) = server else {
                return Err("no server".into());
            };
            match TcpStream::connect(addr) {
                Ok(mut s) => {
                    let mut b = [0u8; 16];
                    while matches!(s.read(&mut b), Ok(n) if n > 0) {}
                    Ok(true)
                }
                Err(_) => Ok(false),
            }
        }
    }
}

/// One worker: `interval` apart (zero: back to back) until `end`. Returns (done, failed).
fn worker(
    g: &Gen,
    server: Option<SocketAddr>,
    start: Instant,
    end: Instant,
) -> Result<(u64, u64), String> {
    let interval = if g.rate > 0.0 {
        Duration::from_secs_f64(g.workers as f64 / g.rate)
    } else {
        Duration::ZERO
    };
    let path = g.path.as_deref().unwrap_or_default();
    let (mut done, mut failed) = (0u64, 0u64);
    let mut i = 0u32;
    loop {
        let now = Instant::now();
        if now >= end {
            return Ok((done, failed));
        }
        if !interval.is_zero() {
            let due = start + interval * i;
            // Sleeping is coarse (~60 µs): only when well ahead; a late worker catches up.
            if due > now + Duration::from_micros(200) {
                std::thread::sleep(due - now);
            }
        }
        if op(g.kind, path, server)? {
            done += 1;
        } else {
            failed += 1;
        }
        i += 1;
    }
}

fn generate(g: &Gen) -> Result<String, String> {
    // The server of the connection kind accepts and closes at once, so TIME_WAIT lands on its
    // side and client ports are free again at once (see net.rs).
    let server = if g.kind == Kind::Connection {
        let l = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("listen: {e}"))?;
        let a = l.local_addr().map_err(|e| e.to_string())?;
        std::thread::spawn(move || {
            for c in l.incoming() {
                drop(c);
            }
        });
        Some(a)
    } else {
        None
    };
    if let Some(p) = &g.path {
        File::open(p).map_err(|e| format!("opening {p}: {e}"))?;
    }
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(g.seconds);
    let results: Vec<Result<(u64, u64), String>> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..g.workers)
            .map(|_| s.spawn(move || worker(g, server, start, end)))
            .collect();
        hs.into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("worker panicked".into())))
            .collect()
    });
    let secs = start.elapsed().as_secs_f64();
    let (mut ops, mut failed) = (0, 0);
    for r in results {
        let (d, f) = r?;
        ops += d;
        failed += f;
    }
    Ok(format!(
        "{{\"kind\":\"{}\",\"target_rate\":{},\"workers\":{},\"ops\":{ops},\"failed\":{failed},\"seconds\":{secs:.3},\"ops_per_sec\":{:.1}}}",
        g.kind.name(),
        g.rate,
        g.workers,
        ops as f64 / secs
    ))
}

/// `kind generated dropped_ringbuf_full dropped_budget` per kind, from `/metrics`.
fn counters(addr: &str) -> Result<String, String> {
    let mut s = TcpStream::connect(addr).map_err(|e| format!("connecting to {addr}: {e}"))?;
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut body = String::new();
    s.read_to_string(&mut body).map_err(|e| e.to_string())?;
    let mut by_kind: BTreeMap<String, [u64; 3]> = BTreeMap::new();
    for line in body.lines() {
        let (slot, rest) = if let Some(r) = line.strip_prefix("vigil_events_generated_total{") {
            (0, r)
        } else if let Some(r) = line.strip_prefix("vigil_events_dropped_total{") {
            if line.contains("cause=\"ringbuf_full\"") {
                (1, r)
            } else if line.contains("cause=\"budget\"") {
                (2, r)
            } else {
                continue;
            }
        } else {
            continue;
        };
        let Some(kind) = rest
            .split("kind=\"")
            .nth(1)
            .and_then(|k| k.split('"').next())
        else {
            continue;
        };
        let value: f64 = rest
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("bad metric line {line}"))?;
        by_kind.entry(kind.to_string()).or_default()[slot] += value as u64;
    }
    if by_kind.is_empty() {
        return Err(format!("no vigil_events_* metrics at {addr}"));
    }
    Ok(by_kind
        .iter()
        .map(|(k, v)| format!("{k} {} {} {}", v[0], v[1], v[2]))
        .collect::<Vec<_>>()
        .join("\n"))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("gen") => parse_gen(&args[1..]).and_then(|g| generate(&g)),
        Some("counters") if args.len() == 2 => counters(&args[1]),
        Some("-h" | "--help") => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(out) => {
            println!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("vigil-flood: {e}");
            ExitCode::FAILURE
        }
    }
}
