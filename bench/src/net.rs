//! The network workloads: loopback TCP connection churn (`connect-storm`) and an open-loop,
//! fixed-rate HTTP/1.1 keep-alive load generator (`http-rate`).
//!
//! ## connect-storm and TIME_WAIT
//!
//! Every connection is: client `connect` (socket + connect), write one byte, read until EOF,
//! close; server (one thread) `accept`, read the byte, close. **The server closes first**: the
//! client waits for its FIN before closing, so the TIME_WAIT state lands on the server's side
//! (`127.0.0.1:PORT` ↔ `127.0.0.1:EPHEMERAL`), while the client's socket goes through
//! CLOSE_WAIT and LAST_ACK and is freed as soon as the server acknowledges its FIN: the client's
//! ephemeral port is free again at once, so the storm never runs out of ports (no
//! EADDRNOTAVAIL), whatever its rate and duration. Two consequences, both harmless:
//!
//! - the server's TIME_WAIT sockets pile up to `net.ipv4.tcp_max_tw_buckets` (they last 60 s);
//!   past that the kernel closes without TIME_WAIT and logs "time wait bucket table overflow";
//! - once the client's port range wraps (~28 000 ports), a SYN may reuse the 4-tuple of a
//!   server-side TIME_WAIT socket: with TCP timestamps (the default) the newer timestamp makes
//!   the kernel accept it as a new connection (RFC 6191), so this costs nothing.
//!
//! Both sides close normally (FIN, no RST, no SO_LINGER): the connection goes through the whole
//! state machine (SYN_SENT, ESTABLISHED, CLOSE_WAIT, LAST_ACK, CLOSE on the client;
//! NEW_SYN_RECV, ESTABLISHED, FIN_WAIT1, FIN_WAIT2, TIME_WAIT on the server), which is what a
//! network sensor on `inet_sock_set_state` sees.
//!
//! ## http-rate
//!
//! C connections are opened before the clock starts, one thread each. Request j (of all
//! connections) is due at `start + j / rate`; connection k sends requests k, k + C, k + 2C, ...
//! each at its due time (sleeping until then), or at once if it is late. Latency is measured
//! from the **due time** to the end of the response (as wrk2 does), so a slow response delays
//! the requests queued behind it and shows up in the percentiles instead of silently lowering
//! the rate (coordinated omission). The service time (from the actual write) is reported too.
//! The run stops at the wall-clock end; requests still unsent then are counted as `missed`.
//! HTTP/1.1 with keep-alive, one request in flight per connection (no pipelining), responses
//! with Content-Length only (a static file); a connection closed by the server is reopened
//! (`reconnects`).

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use crate::{batches, median, Limit, Run};

/// Connections per timed batch of the connect storm (one is ~20–60 µs on loopback).
const CONNECT_BATCH: u64 = 64;

/// The connect storm with `workers` client threads. The listener runs in a detached thread that
/// ends with the process.
pub(crate) fn connect_storm(workers: usize, limit: Limit) -> Result<Run, String> {
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(|e| format!("listening on 127.0.0.1: {e}"))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("listener address: {e}"))?;
    std::thread::spawn(move || serve(listener));
    let start = Instant::now();
    let results: Vec<Result<(u64, Vec<f64>), String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|_| s.spawn(move || batches(limit, start, CONNECT_BATCH, || connect_once(addr))))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("worker panicked".into())))
            .collect()
    });
    let secs = start.elapsed().as_secs_f64();
    let mut ops = 0;
    let mut per_op = Vec::new();
    for r in results {
        let (n, batches) = r?;
        ops += n;
        per_op.extend(batches);
    }
    Ok(Run {
        ops,
        secs,
        batch_median_ns: median(per_op),
    })
}

/// The connect storm's server: accept, read the client's byte, close (first). An error other
/// than a transient one ends the process: the clients would otherwise wait for ever.
fn serve(listener: TcpListener) {
    let mut buf = [0u8; 64];
    loop {
        match listener.accept() {
            Ok((mut s, _)) => loop {
                // Ok(0) (the client gave up) and errors: close all the same; the client
                // reports its own error.
                match s.read(&mut buf) {
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    _ => break,
                }
            },
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::Interrupted | ErrorKind::ConnectionAborted
                ) => {}
            Err(e) => {
                eprintln!("vigil-bench: accept: {e}");
                std::process::exit(1);
            }
        }
    }
}

/// One connection of the connect storm, client side.
fn connect_once(addr: SocketAddr) -> Result<(), String> {
    let mut s = TcpStream::connect(addr).map_err(|e| format!("connecting to {addr}: {e}"))?;
    s.write_all(b"x")
        .map_err(|e| format!("writing to {addr}: {e}"))?;
    // Wait for the server's FIN, so that it closes first (see the module comment).
    let mut buf = [0u8; 8];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("reading from {addr}: {e}")),
        }
    }
}

/// What `http-rate` is asked to do.
#[derive(Debug)]
pub(crate) struct HttpOpts {
    pub url: String,
    /// Requests per second, over all connections.
    pub rate: f64,
    pub connections: usize,
    pub seconds: f64,
}

/// Where to send requests, and the request.
#[derive(Debug)]
struct Target {
    addr: SocketAddr,
    request: Vec<u8>,
}

/// Parses `http://HOST[:PORT][/PATH]` (no TLS, no userinfo).
fn parse_url(url: &str) -> Result<Target, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("--url {url}: only http:// URLs are supported"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        return Err(format!("--url {url}: no host"));
    }
    // A port is present if the authority ends with :digits (after any IPv6 literal's `]`).
    let has_port = authority.rsplit_once(':').is_some_and(|(h, p)| {
        !p.is_empty()
            && p.bytes().all(|b| b.is_ascii_digit())
            && (!h.starts_with('[') || h.ends_with(']'))
    });
    let host_port = if has_port {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    let addr = host_port
        .to_socket_addrs()
        .map_err(|e| format!("--url {url}: resolving {host_port}: {e}"))?
        .next()
        .ok_or_else(|| format!("--url {url}: {host_port} has no address"))?;
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: vigil-bench\r\n\r\n")
            .into_bytes();
    Ok(Target { addr, request })
}

/// Largest response head accepted.
const MAX_HEAD: usize = 64 * 1024;

/// One keep-alive connection.
#[derive(Debug)]
struct Conn {
    addr: SocketAddr,
    stream: TcpStream,
    buf: Vec<u8>,
    reconnects: u64,
}

fn open(addr: SocketAddr) -> Result<TcpStream, String> {
    let s = TcpStream::connect(addr).map_err(|e| format!("connecting to {addr}: {e}"))?;
    // Each request is one write; no Nagle delay in any case.
    s.set_nodelay(true)
        .map_err(|e| format!("TCP_NODELAY: {e}"))?;
    Ok(s)
}

/// Whether an I/O error means the peer closed the connection (a keep-alive connection the
/// server ended between two requests).
fn closed_by_peer(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::BrokenPipe | ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
    )
}

/// Finds `needle` in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

impl Conn {
    fn new(addr: SocketAddr) -> Result<Conn, String> {
        Ok(Conn {
            addr,
            stream: open(addr)?,
            buf: Vec::with_capacity(16 * 1024),
            reconnects: 0,
        })
    }

    fn reconnect(&mut self) -> Result<(), String> {
        self.stream = open(self.addr)?;
        self.reconnects += 1;
        Ok(())
    }

    /// Sends `request` and reads the whole response; returns its status code. If the server
    /// had closed the connection before any byte of the response, reconnects and retries once.
    fn exchange(&mut self, request: &[u8]) -> Result<u16, String> {
        match self.try_exchange(request)? {
            Some(status) => Ok(status),
            None => {
                self.reconnect()?;
                self.try_exchange(request)?
                    .ok_or_else(|| format!("{}: closed before a response", self.addr))
            }
        }
    }

    /// One request/response; None if the connection turned out to be closed before the response.
    fn try_exchange(&mut self, request: &[u8]) -> Result<Option<u16>, String> {
        let addr = self.addr;
        match self.stream.write_all(request) {
            Ok(()) => {}
            Err(e) if closed_by_peer(&e) => return Ok(None),
            Err(e) => return Err(format!("writing to {addr}: {e}")),
        }
        self.buf.clear();
        let mut chunk = [0u8; 16 * 1024];
        // The head.
        let head_end = loop {
            let n = match self.stream.read(&mut chunk) {
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if closed_by_peer(&e) && self.buf.is_empty() => return Ok(None),
                Err(e) => return Err(format!("reading from {addr}: {e}")),
            };
            if n == 0 {
                if self.buf.is_empty() {
                    return Ok(None);
                }
                return Err(format!("{addr}: connection closed in a response head"));
            }
            self.buf.extend_from_slice(&chunk[..n]);
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            if self.buf.len() > MAX_HEAD {
                return Err(format!(
                    "{addr}: response head longer than {MAX_HEAD} bytes"
                ));
            }
        };
        let head = String::from_utf8_lossy(&self.buf[..head_end]);
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status: u16 = status_line
            .strip_prefix("HTTP/1.")
            .and_then(|r| r.get(2..5))
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| format!("{addr}: bad status line `{status_line}`"))?;
        let mut length = None;
        let mut close = false;
        for line in lines {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = Some(
                    value
                        .parse::<usize>()
                        .map_err(|e| format!("{addr}: Content-Length `{value}`: {e}"))?,
                );
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                return Err(format!(
                    "{addr}: Transfer-Encoding {value} is not supported"
                ));
            } else if name.eq_ignore_ascii_case("connection") {
                close = value.eq_ignore_ascii_case("close");
            }
        }
        let total =
            head_end + length.ok_or_else(|| format!("{addr}: response without Content-Length"))?;
        // The body.
        while self.buf.len() < total {
            let n = match self.stream.read(&mut chunk) {
                Ok(0) => return Err(format!("{addr}: connection closed in a response body")),
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(format!("reading from {addr}: {e}")),
            };
            self.buf.extend_from_slice(&chunk[..n]);
        }
        if self.buf.len() > total {
            return Err(format!("{addr}: unexpected bytes after a response"));
        }
        if close {
            self.reconnect()?;
        }
        Ok(Some(status))
    }
}

/// What one connection's thread measured.
#[derive(Debug, Default)]
struct ConnResult {
    /// ns from each request's due time to the end of its response.
    latency: Vec<u64>,
    /// ns from each request's write to the end of its response.
    service: Vec<u64>,
    /// Requests due before the end (sent or not).
    scheduled: u64,
    /// Responses with a status other than 2xx.
    errors: u64,
    reconnects: u64,
    /// When the last response ended.
    last: Option<Instant>,
}

/// Connection `k` of `c`: sends requests k, k + c, ... at their due times until `end`.
fn http_conn(
    mut conn: Conn,
    request: &[u8],
    k: usize,
    c: usize,
    rate: f64,
    start: Instant,
    seconds: f64,
) -> Result<ConnResult, String> {
    let end = start + Duration::from_secs_f64(seconds);
    let per_conn = (seconds * rate / c as f64).ceil() as usize + 1;
    let mut r = ConnResult {
        latency: Vec::with_capacity(per_conn),
        service: Vec::with_capacity(per_conn),
        ..ConnResult::default()
    };
    for j in (k..).step_by(c) {
        let offset = j as f64 / rate;
        if offset >= seconds {
            break;
        }
        r.scheduled += 1;
        let due = start + Duration::from_secs_f64(offset);
        let now = Instant::now();
        if now >= end {
            // Out of time (the generator or the server fell behind): the rest are missed.
            continue;
        }
        if due > now {
            std::thread::sleep(due - now);
        }
        let sent = Instant::now();
        let status = conn.exchange(request)?;
        let done = Instant::now();
        if !(200..300).contains(&status) {
            r.errors += 1;
        }
        r.latency.push(done.duration_since(due).as_nanos() as u64);
        r.service.push(done.duration_since(sent).as_nanos() as u64);
        r.last = Some(done);
    }
    r.reconnects = conn.reconnects;
    Ok(r)
}

/// The value at quantile `q` of sorted `v` (nearest rank), in µs.
fn quantile_us(v: &[u64], q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1] as f64 / 1000.0
}

/// Lowers this process's timer slack (50 µs by default) to 1 ns, so that sleeping until a
/// request's due time wakes up on time. Threads inherit it; best effort (needs Linux >= 4.6).
fn precise_timers() {
    let _ = std::fs::write("/proc/self/timerslack_ns", "1");
}

/// Runs the fixed-rate load and returns its JSON line.
pub(crate) fn http_rate(o: &HttpOpts) -> Result<String, String> {
    let target = parse_url(&o.url)?;
    precise_timers();
    let conns = (0..o.connections)
        .map(|_| Conn::new(target.addr))
        .collect::<Result<Vec<_>, _>>()?;
    // Time for the threads to start before the first request is due.
    let start = Instant::now() + Duration::from_millis(20);
    let results: Vec<Result<ConnResult, String>> = std::thread::scope(|s| {
        let handles: Vec<_> = conns
            .into_iter()
            .enumerate()
            .map(|(k, conn)| {
                let request = &target.request;
                s.spawn(move || {
                    http_conn(conn, request, k, o.connections, o.rate, start, o.seconds)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("connection thread panicked".into()))
            })
            .collect()
    });
    let mut latency = Vec::new();
    let mut service = Vec::new();
    let (mut scheduled, mut errors, mut reconnects) = (0, 0, 0);
    let mut last = start;
    for r in results {
        let r = r?;
        latency.extend(r.latency);
        service.extend(r.service);
        scheduled += r.scheduled;
        errors += r.errors;
        reconnects += r.reconnects;
        last = last.max(r.last.unwrap_or(start));
    }
    let ops = latency.len() as u64;
    // The run lasted the scheduled time, or until the last response if later.
    let secs = last.duration_since(start).as_secs_f64().max(o.seconds);
    let mean_ns = if ops == 0 {
        0.0
    } else {
        latency.iter().map(|&l| l as f64).sum::<f64>() / ops as f64
    };
    latency.sort_unstable();
    service.sort_unstable();
    Ok(format!(
        "{{\"workload\":\"http-rate\",\"workers\":{},\"ops\":{ops},\"seconds\":{secs:.6},\"ns_per_op\":{mean_ns:.1},\"ops_per_sec\":{:.1},\"target_rate\":{:.1},\"p50_us\":{:.1},\"p90_us\":{:.1},\"p99_us\":{:.1},\"p999_us\":{:.1},\"max_us\":{:.1},\"svc_p50_us\":{:.1},\"svc_p99_us\":{:.1},\"missed\":{},\"errors\":{errors},\"reconnects\":{reconnects}}}",
        o.connections,
        ops as f64 / secs,
        o.rate,
        quantile_us(&latency, 0.5),
        quantile_us(&latency, 0.9),
        quantile_us(&latency, 0.99),
        quantile_us(&latency, 0.999),
        quantile_us(&latency, 1.0),
        quantile_us(&service, 0.5),
        quantile_us(&service, 0.99),
        scheduled - ops,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let t = parse_url("http://127.0.0.1:8080/index.html").unwrap();
        assert_eq!(t.addr, "127.0.0.1:8080".parse().unwrap());
        assert!(t
            .request
            .starts_with(b"GET /index.html HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"));
        let t = parse_url("http://127.0.0.1").unwrap();
        assert_eq!(t.addr.port(), 80);
        assert!(t.request.starts_with(b"GET / HTTP/1.1\r\n"));
        assert_eq!(parse_url("http://[::1]:81/").unwrap().addr.port(), 81);
        assert_eq!(parse_url("http://[::1]/").unwrap().addr.port(), 80);
        assert!(parse_url("https://127.0.0.1/").is_err());
        assert!(parse_url("http:///x").is_err());
    }

    #[test]
    fn quantiles() {
        let v: Vec<u64> = (1..=1000).map(|i| i * 1000).collect();
        assert_eq!(quantile_us(&v, 0.5), 500.0);
        assert_eq!(quantile_us(&v, 0.99), 990.0);
        assert_eq!(quantile_us(&v, 0.999), 999.0);
        assert_eq!(quantile_us(&v, 1.0), 1000.0);
        assert_eq!(quantile_us(&[], 0.5), 0.0);
    }

    /// A tiny keep-alive server answering `n` requests on one connection, the last with
    /// `Connection: close`, then a second connection: the client must reconnect.
    #[test]
    fn keep_alive_and_reconnect() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            for round in 0..2 {
                let (mut s, _) = l.accept().unwrap();
                let mut buf = [0u8; 4096];
                for i in 0..3 {
                    let mut got = Vec::new();
                    while find(&got, b"\r\n\r\n").is_none() {
                        let n = s.read(&mut buf).unwrap();
                        assert!(n > 0);
                        got.extend_from_slice(&buf[..n]);
                    }
                    let close = if round == 0 && i == 2 {
                        "Connection: close\r\n"
                    } else {
                        ""
                    };
                    write!(
                        s,
                        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n{close}\r\nhello"
                    )
                    .unwrap();
                    if round == 0 && i == 2 {
                        break;
                    }
                }
            }
        });
        let mut c = Conn::new(addr).unwrap();
        let req = parse_url(&format!("http://{addr}/")).unwrap().request;
        for _ in 0..6 {
            assert_eq!(c.exchange(&req).unwrap(), 200);
        }
        assert_eq!(c.reconnects, 1);
        server.join().unwrap();
    }

    #[test]
    fn connect_storm_runs() {
        let r = connect_storm(2, Limit::Count(200)).unwrap();
        assert_eq!(r.ops, 400);
        assert!(r.batch_median_ns.is_some());
    }
}
