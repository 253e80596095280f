//! The network lab: two network namespaces ("cli" and "srv") joined by a veth pair, with IPv4
//! 10.213.X.1/24 (cli) and .2 (srv) and IPv6 fd00:213:X::1/64 and ::2, removed on drop. Traffic
//! only ever goes between these addresses (or loopback), never out of the host.
//!
//! Processes run inside a namespace by `setns(2)` between fork and exec (so a child's pid is the
//! program's pid, with no `ip netns exec` in between), optionally in a `TestCgroup`. Where exact
//! byte counts or socket cookies matter, the test binary re-executes itself as a small socket
//! program (`helper`, see `helper_process_entry_point`) that reports what it did as
//! `NETLAB <tag> <json>` lines on stdout.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::*;

/// The environment variable that turns `helper_process_entry_point` into a socket program.
const HELPER_ENV: &str = "VIGIL_NETLAB_HELPER";
const HELPER_TEST: &str = "netlab::helper_process_entry_point";
/// Generic Linux value (x86-64, arm64, ...).
const SO_COOKIE: libc::c_int = 57;

/// Two namespaces joined by a veth pair; both removed on drop.
pub struct NetLab {
    /// The lab's third octet (10.213.X.0/24, fd00:213:X::/64).
    pub x: u32,
    pub cli: Side,
    pub srv: Side,
}

/// One end of the lab: a named network namespace with one veth device.
pub struct Side {
    /// The namespace name under /run/netns.
    pub ns: String,
    /// The veth device inside the namespace.
    pub dev: String,
    pub ip4: Ipv4Addr,
    pub ip6: Ipv6Addr,
    /// The namespace's inode, as events report it in `netns`.
    pub inode: u64,
    fd: Option<OwnedFd>,
}

impl NetLab {
    pub fn new() -> NetLab {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        // Unique per lab within this process; spread across processes by pid. Identical subnets
        // in two labs would still be isolated (each lab routes only inside its own namespaces).
        let x = ((pid % 50) * 5 + n) % 250 + 1;
        let name = |side: &str| format!("vt-{pid}-{n}-{side}");
        let mut lab = NetLab {
            x,
            cli: Side {
                ns: name("cli"),
                dev: "vcli".into(),
                ip4: Ipv4Addr::new(10, 213, x as u8, 1),
                ip6: format!("fd00:213:{x}::1").parse().unwrap(),
                inode: 0,
                fd: None,
            },
            srv: Side {
                ns: name("srv"),
                dev: "vsrv".into(),
                ip4: Ipv4Addr::new(10, 213, x as u8, 2),
                ip6: format!("fd00:213:{x}::2").parse().unwrap(),
                inode: 0,
                fd: None,
            },
        };
        // Leftovers of an earlier process with the same pid.
        for s in [&lab.cli, &lab.srv] {
            let _ = Command::new("ip")
                .args(["netns", "del", &s.ns])
                .stderr(Stdio::null())
                .status();
        }
        ip(&["netns", "add", &lab.cli.ns]);
        ip(&["netns", "add", &lab.srv.ns]);
        // Created directly inside the namespaces: the names never exist in the host namespace.
        ip(&[
            "link",
            "add",
            &lab.cli.dev,
            "netns",
            &lab.cli.ns,
            "type",
            "veth",
            "peer",
            "name",
            &lab.srv.dev,
            "netns",
            &lab.srv.ns,
        ]);
        for s in [&mut lab.cli, &mut lab.srv] {
            let a4 = format!("{}/24", s.ip4);
            let a6 = format!("{}/64", s.ip6);
            ip(&["-n", &s.ns, "addr", "add", &a4, "dev", &s.dev]);
            ip(&["-n", &s.ns, "addr", "add", &a6, "dev", &s.dev, "nodad"]);
            ip(&["-n", &s.ns, "link", "set", "lo", "up"]);
            ip(&["-n", &s.ns, "link", "set", &s.dev, "up"]);
            let path = format!("/run/netns/{}", s.ns);
            let f = std::fs::File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
            s.inode = f.metadata().unwrap().ino();
            s.fd = Some(f.into());
        }
        // Both ends have carrier once both are up.
        wait_until(Duration::from_secs(5), "veth carrier", || {
            [&lab.cli, &lab.srv].iter().all(|s| {
                let out = ip_out(&["-n", &s.ns, "-o", "link", "show", "dev", &s.dev]);
                out.contains("LOWER_UP") && out.contains("state UP")
            })
        });
        lab
    }
}

impl Drop for NetLab {
    fn drop(&mut self) {
        for s in [&mut self.cli, &mut self.srv] {
            s.fd = None;
            // The veth pair goes with the namespaces once their last process is gone.
            let _ = Command::new("ip")
                .args(["netns", "del", &s.ns])
                .stderr(Stdio::null())
                .status();
        }
    }
}

impl Side {
    fn raw_fd(&self) -> i32 {
        self.fd.as_ref().unwrap().as_raw_fd()
    }

    pub fn ip(&self, v6: bool) -> IpAddr {
        if v6 {
            IpAddr::V6(self.ip6)
        } else {
            IpAddr::V4(self.ip4)
        }
    }

    pub fn addr(&self, v6: bool, port: u16) -> SocketAddr {
        SocketAddr::new(self.ip(v6), port)
    }

    pub fn addr4(&self, port: u16) -> SocketAddr {
        self.addr(false, port)
    }

    /// `program` to be run inside this namespace (and in `cg` if given).
    pub fn command(&self, program: impl AsRef<OsStr>, cg: Option<&TestCgroup>) -> Command {
        let mut cmd = Command::new(program);
        if let Some(cg) = cg {
            cg.enter(&mut cmd);
        }
        let fd = self.raw_fd();
        // SAFETY: setns(2) is async-signal-safe; the fd stays open while the lab lives.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        cmd
    }

    /// Runs `program args` in this namespace to completion (bounded); it must succeed.
    pub fn run(&self, program: &str, args: &[&str]) -> String {
        let mut cmd = self.command(program, None);
        cmd.args(args);
        let out = run_bounded(cmd, Duration::from_secs(20));
        assert!(
            out.status.success(),
            "{program} {args:?} in {}: {}\n{}",
            self.ns,
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Starts `program args` in this namespace (and `cg`); killed on drop.
    pub fn spawn(&self, program: &str, args: &[&str], cg: Option<&TestCgroup>) -> Proc {
        let mut cmd = self.command(program, cg);
        cmd.args(args);
        Proc::spawn(cmd, program)
    }

    /// Starts the socket helper (see `helper_main`) in this namespace (and `cg`).
    pub fn helper(&self, cg: Option<&TestCgroup>, args: &[&str]) -> Proc {
        // /proc/self/exe: still runnable if cargo rebuilt (replaced) the test binary meanwhile.
        let mut cmd = self.command("/proc/self/exe", cg);
        cmd.args([
            "--exact",
            HELPER_TEST,
            "--nocapture",
            "--test-threads=1",
            "-q",
        ])
        .env(HELPER_ENV, args.join("\x1f"));
        Proc::spawn(cmd, &format!("helper {}", args.join(" ")))
    }

    /// Runs `f` on a thread that has joined this namespace (sockets it makes live there).
    pub fn in_ns<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let fd = self.raw_fd();
        std::thread::scope(|s| {
            s.spawn(move || {
                // SAFETY: setns on this thread only, with a namespace fd we hold open.
                assert_eq!(unsafe { libc::setns(fd, libc::CLONE_NEWNET) }, 0);
                f()
            })
            .join()
            .unwrap()
        })
    }

    /// The veth device's interface index inside the namespace.
    pub fn ifindex(&self) -> u32 {
        let out = ip_out(&["-n", &self.ns, "-o", "link", "show", "dev", &self.dev]);
        out.split(':').next().unwrap().trim().parse().unwrap()
    }

    /// Applies an nftables script inside this namespace.
    pub fn nft(&self, script: &str) {
        let mut cmd = self.command("nft", None);
        cmd.args(["-f", "-"]);
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("running nft");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(script.as_bytes())
            .unwrap();
        let out = wait_output(child, Duration::from_secs(20));
        assert!(
            out.status.success(),
            "nft in {}: {}\n{script}",
            self.ns,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("running ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn ip_out(args: &[&str]) -> String {
    let out = Command::new("ip").args(args).output().expect("running ip");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Polls `cond` every 20 ms until it holds; panics after `timeout`.
pub fn wait_until(timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `cmd` to completion, killing it after `timeout`.
pub fn run_bounded(mut cmd: Command, timeout: Duration) -> Output {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {cmd:?}: {e}"));
    wait_output(child, timeout)
}

/// A process started in the lab: its stdout and stderr lines are collected; killed on drop.
pub struct Proc {
    child: Child,
    what: String,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    /// Every line seen so far (stdout and stderr), for failure messages.
    transcript: Arc<Mutex<String>>,
    /// Lines received but not yet consumed by a wait.
    pending: Vec<String>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Proc {
    fn spawn(mut cmd: Command, what: &str) -> Proc {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {what}: {e}"));
        let (tx, lines) = std::sync::mpsc::channel();
        let transcript = Arc::new(Mutex::new(String::new()));
        let out: Box<dyn Read + Send> = Box::new(child.stdout.take().unwrap());
        let err: Box<dyn Read + Send> = Box::new(child.stderr.take().unwrap());
        let mut readers = Vec::new();
        for pipe in [out, err] {
            let tx = tx.clone();
            let t = transcript.clone();
            readers.push(std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    {
                        let mut t = t.lock().unwrap();
                        t.push_str(&line);
                        t.push('\n');
                    }
                    let _ = tx.send(line);
                }
            }));
        }
        Proc {
            stdin: child.stdin.take(),
            child,
            what: what.to_string(),
            lines,
            transcript,
            pending: Vec::new(),
            readers,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn transcript(&self) -> String {
        self.transcript.lock().unwrap().clone()
    }

    /// Waits (at most `timeout`) for a line containing `needle`; returns it.
    pub fn wait_line(&mut self, needle: &str, timeout: Duration) -> String {
        if let Some(i) = self.pending.iter().position(|l| l.contains(needle)) {
            return self.pending.remove(i);
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) if l.contains(needle) => return l,
                Ok(l) => self.pending.push(l),
                Err(RecvTimeoutError::Timeout) => panic!(
                    "{}: no line with {needle:?} within {timeout:?}; output:\n{}",
                    self.what,
                    self.transcript()
                ),
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.child.try_wait().ok().flatten();
                    panic!(
                        "{}: exited ({status:?}) without a line with {needle:?}; output:\n{}",
                        self.what,
                        self.transcript()
                    )
                }
            }
        }
    }

    /// Waits for the helper's `NETLAB <tag> <json>` message and returns the JSON.
    pub fn msg(&mut self, tag: &str) -> Value {
        let needle = format!("NETLAB {tag} ");
        let line = self.wait_line(&needle, Duration::from_secs(20));
        let at = line.find(&needle).unwrap() + needle.len();
        serde_json::from_str(&line[at..]).unwrap_or_else(|e| panic!("bad helper line {line}: {e}"))
    }

    /// Writes one line to the process's stdin.
    pub fn send_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin is open");
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    /// Waits (at most `timeout`) for the process to exit; returns whether it succeeded.
    pub fn wait_exit(&mut self, timeout: Duration) -> bool {
        self.stdin = None;
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s.success();
            }
            assert!(
                Instant::now() < deadline,
                "{} did not exit within {timeout:?}; output:\n{}",
                self.what,
                self.transcript()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits for the process to exit successfully.
    pub fn finish(&mut self) {
        let ok = self.wait_exit(Duration::from_secs(30));
        assert!(ok, "{} failed; output:\n{}", self.what, self.transcript());
    }

    /// Waits for the process to exit and for its output to end; returns whether it succeeded
    /// and everything it printed.
    pub fn output(&mut self, timeout: Duration) -> (bool, String) {
        let ok = self.wait_exit(timeout);
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        (ok, self.transcript())
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Waits until the namespace of process `pid` has a socket bound to `port`: a TCP listener
/// (`udp` false) or a UDP socket, IPv4 or IPv6. Reads /proc, so it makes no traffic.
pub fn wait_bound(pid: u32, port: u16, udp: bool) {
    let files: &[&str] = if udp {
        &["udp", "udp6"]
    } else {
        &["tcp", "tcp6"]
    };
    wait_until(
        Duration::from_secs(10),
        &format!("port {port} bound by {pid}"),
        || {
            files.iter().any(|f| {
                let text =
                    std::fs::read_to_string(format!("/proc/{pid}/net/{f}")).unwrap_or_default();
                text.lines().skip(1).any(|l| {
                    let cols: Vec<&str> = l.split_whitespace().collect();
                    cols.len() > 3
                        && cols[1].rsplit(':').next() == Some(&format!("{port:04X}"))
                        && (udp || cols[3] == "0A")
                })
            })
        },
    );
}

/// Does the event's address object name exactly `sa`?
pub fn addr_is(v: &Value, sa: SocketAddr) -> bool {
    v["ip"] == sa.ip().to_string() && v["port"] == sa.port()
}

// ------------------------------------------------------------------------------------------
// The helper: the test binary re-executed as a socket program.

/// Not a test: the entry point of the socket helper when `VIGIL_NETLAB_HELPER` is set (the
/// lab runs this binary with `--exact` on this name); otherwise it does nothing.
#[test]
fn helper_process_entry_point() {
    if let Ok(spec) = std::env::var(HELPER_ENV) {
        let args: Vec<&str> = spec.split('\x1f').collect();
        helper_main(&args);
    }
}

fn say(tag: &str, v: Value) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "NETLAB {tag} {v}").unwrap();
    out.flush().unwrap();
}

fn opt<'a>(args: &[&'a str], key: &str) -> Option<&'a str> {
    args.iter()
        .find_map(|a| a.strip_prefix(key)?.strip_prefix('='))
}

fn req<'a>(args: &[&'a str], key: &str) -> &'a str {
    opt(args, key).unwrap_or_else(|| panic!("helper: missing {key}= in {args:?}"))
}

fn num(args: &[&str], key: &str) -> usize {
    req(args, key).parse().unwrap()
}

/// The kernel's socket cookie (SO_COOKIE).
pub fn cookie(fd: &impl AsRawFd) -> u64 {
    let mut v: u64 = 0;
    let mut len = std::mem::size_of::<u64>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `v`.
    let r = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            SO_COOKIE,
            (&mut v as *mut u64).cast(),
            &mut len,
        )
    };
    assert_eq!(r, 0, "SO_COOKIE: {}", std::io::Error::last_os_error());
    v
}

fn set_linger_zero(s: &TcpStream) {
    let l = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt reads a linger struct of the given size.
    let r = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&l as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(r, 0);
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| b'a' + (i % 26) as u8).collect()
}

/// Reads until EOF or an error; returns the byte count and the error kind, if any.
fn drain(s: &mut TcpStream) -> (usize, Option<String>) {
    let mut buf = [0u8; 4096];
    let mut total = 0;
    loop {
        match s.read(&mut buf) {
            Ok(0) => return (total, None),
            Ok(n) => total += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return (total, Some(format!("{:?}", e.kind()))),
        }
    }
}

/// Modes (arguments are `key=value`):
/// - `tcp-server listen=ADDR read=N write=M close=after-eof|first|reset`: accepts one
///   connection, reads exactly N bytes, then: `after-eof` writes M and closes once the peer has
///   closed; `first` writes M and closes at once; `reset` closes with SO_LINGER 0 (an RST).
///   Messages: `listening`, `accepted {local,remote,cookie}`, `closed {eof_read}`.
/// - `tcp-client connect=ADDR send=N read=M close=first|after-eof|expect-reset|expect-refused
///   [wait=go]`: connects (`connected {local,remote,cookie}` or `connect_error {kind,errno}`),
///   optionally waits for a line on stdin, sends N bytes, reads M, then: `first` closes;
///   `after-eof` waits for the peer's close first; `expect-reset` reads until the peer's RST.
///   Message: `done {read,error}`.
/// - `udp-server bind=ADDR count=K reply=R`: answers each of K datagrams with R bytes.
/// - `udp-client bind=ADDR connect=ADDR count=K size=L reply=R`: sends K datagrams of L bytes,
///   waiting for each R-byte reply. Messages: `bound {local}`, `done`.
/// - `dns bind=ADDR server=ADDR q=NAME:TYPE:ID ...`: one UDP query per `q` from one socket.
///   Messages: `bound {local}`, `answer {id,rcode,ancount}` per query.
fn helper_main(args: &[&str]) {
    let rest = &args[1..];
    match args[0] {
        "tcp-server" => tcp_server(rest),
        "tcp-client" => tcp_client(rest),
        "udp-server" => udp_server(rest),
        "udp-client" => udp_client(rest),
        "dns" => dns_client(rest),
        m => panic!("helper: unknown mode {m}"),
    }
}

fn tcp_server(args: &[&str]) {
    let listen: SocketAddr = req(args, "listen").parse().unwrap();
    let l = TcpListener::bind(listen).unwrap();
    say(
        "listening",
        json!({ "addr": l.local_addr().unwrap().to_string() }),
    );
    let (mut s, peer) = l.accept().unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    say(
        "accepted",
        json!({
            "local": s.local_addr().unwrap().to_string(),
            "remote": peer.to_string(),
            "cookie": cookie(&s),
        }),
    );
    let mut got = vec![0u8; num(args, "read")];
    s.read_exact(&mut got).unwrap();
    let reply = pattern(num(args, "write"));
    match req(args, "close") {
        "after-eof" => {
            s.write_all(&reply).unwrap();
            let (n, err) = drain(&mut s);
            assert_eq!((n, err), (0, None), "the peer closes without sending more");
        }
        "first" => s.write_all(&reply).unwrap(),
        "reset" => set_linger_zero(&s),
        c => panic!("helper: close={c}"),
    }
    drop(s);
    say("closed", json!({}));
}

fn tcp_client(args: &[&str]) {
    let to: SocketAddr = req(args, "connect").parse().unwrap();
    let close = req(args, "close");
    let mut s = match TcpStream::connect_timeout(&to, Duration::from_secs(10)) {
        Ok(s) => s,
        Err(e) => {
            say(
                "connect_error",
                json!({ "kind": format!("{:?}", e.kind()), "errno": e.raw_os_error() }),
            );
            assert_eq!(close, "expect-refused", "connect to {to}: {e}");
            return;
        }
    };
    assert_ne!(close, "expect-refused", "connected to {to}");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    say(
        "connected",
        json!({
            "local": s.local_addr().unwrap().to_string(),
            "remote": s.peer_addr().unwrap().to_string(),
            "cookie": cookie(&s),
        }),
    );
    if opt(args, "wait") == Some("go") {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).unwrap();
    }
    s.write_all(&pattern(num(args, "send"))).unwrap();
    let want = num(args, "read");
    let (read, error) = match close {
        "first" => {
            let mut buf = vec![0u8; want];
            s.read_exact(&mut buf).unwrap();
            (want, None)
        }
        "after-eof" | "expect-reset" => drain(&mut s),
        c => panic!("helper: close={c}"),
    };
    match close {
        "expect-reset" => assert_eq!(error.as_deref(), Some("ConnectionReset")),
        _ => assert_eq!((read, error.as_deref()), (want, None)),
    }
    drop(s);
    say("done", json!({ "read": read, "error": error }));
}

fn udp_server(args: &[&str]) {
    let sock = UdpSocket::bind(req(args, "bind")).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    say(
        "bound",
        json!({ "local": sock.local_addr().unwrap().to_string() }),
    );
    let reply = pattern(num(args, "reply"));
    let mut buf = [0u8; 65536];
    for _ in 0..num(args, "count") {
        let (_, from) = sock.recv_from(&mut buf).unwrap();
        sock.send_to(&reply, from).unwrap();
    }
    say("done", json!({}));
}

fn udp_client(args: &[&str]) {
    let sock = UdpSocket::bind(req(args, "bind")).unwrap();
    sock.connect(req(args, "connect")).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    say(
        "bound",
        json!({ "local": sock.local_addr().unwrap().to_string() }),
    );
    let data = pattern(num(args, "size"));
    let mut buf = [0u8; 65536];
    for _ in 0..num(args, "count") {
        assert_eq!(sock.send(&data).unwrap(), data.len());
        assert_eq!(sock.recv(&mut buf).unwrap(), num(args, "reply"));
    }
    say("done", json!({}));
}

/// A DNS query message: header with RD set, one question of class IN.
pub fn dns_query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut m = Vec::new();
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.') {
        m.push(label.len() as u8);
        m.extend_from_slice(label.as_bytes());
    }
    m.push(0);
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&1u16.to_be_bytes());
    m
}

fn qtype_num(t: &str) -> u16 {
    match t {
        "A" => 1,
        "AAAA" => 28,
        "TXT" => 16,
        t => panic!("helper: type {t}"),
    }
}

fn dns_client(args: &[&str]) {
    let sock = UdpSocket::bind(req(args, "bind")).unwrap();
    sock.connect(req(args, "server")).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    say(
        "bound",
        json!({ "local": sock.local_addr().unwrap().to_string() }),
    );
    for q in args.iter().filter_map(|a| a.strip_prefix("q=")) {
        let parts: Vec<&str> = q.split(':').collect();
        let id: u16 = parts[2].parse().unwrap();
        sock.send(&dns_query(id, parts[0], qtype_num(parts[1])))
            .unwrap();
        let mut buf = [0u8; 1500];
        let n = sock.recv(&mut buf).unwrap();
        assert!(n >= 12, "short DNS response");
        let rid = u16::from_be_bytes([buf[0], buf[1]]);
        assert_eq!(rid, id, "response id");
        say(
            "answer",
            json!({
                "id": rid,
                "rcode": buf[3] & 0x0f,
                "ancount": u16::from_be_bytes([buf[6], buf[7]]),
            }),
        );
    }
}

// ------------------------------------------------------------------------------------------
// The lab's own test: it needs no agent.

#[test]
fn netlab_connects_both_families_and_runs_helpers() {
    if !require_root() {
        return;
    }
    let lab = NetLab::new();
    let lab2 = NetLab::new();
    assert_ne!(lab.x, lab2.x, "each lab has its own subnet");
    assert_ne!(lab.cli.inode, lab.srv.inode);
    let own = std::fs::metadata("/proc/self/ns/net").unwrap().ino();
    assert_ne!(lab.cli.inode, own);
    // The inode is the one `stat -L` reports, which is what the agent reports.
    let stat = Command::new("stat")
        .args(["-L", "-c", "%i", &format!("/run/netns/{}", lab.srv.ns)])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&stat.stdout).trim(),
        lab.srv.inode.to_string()
    );
    for v6 in [false, true] {
        let dst = lab.srv.ip(v6).to_string();
        lab.cli
            .run("busybox", &["ping", "-c", "1", "-W", "5", &dst]);
    }
    // A thread in a namespace: sockets made there see the lab's addresses.
    let srv_addr = lab.srv.addr4(7777);
    let l = lab.srv.in_ns(|| TcpListener::bind(srv_addr).unwrap());
    let c = lab.cli.in_ns(|| TcpStream::connect(srv_addr).unwrap());
    let (a, peer) = l.accept().unwrap();
    assert_eq!(peer, c.local_addr().unwrap());
    assert_eq!(peer.ip(), lab.cli.ip(false));
    assert_ne!(cookie(&a), cookie(&c));
    drop((a, c, l));

    // Helpers in both namespaces, in cgroups, over IPv6.
    let cg = TestCgroup::new();
    let to = lab.srv.addr(true, 7000).to_string();
    let listen = format!("listen={to}");
    let connect = format!("connect={to}");
    let mut server = lab.srv.helper(
        Some(&cg),
        &[
            "tcp-server",
            &listen,
            "read=10",
            "write=20",
            "close=after-eof",
        ],
    );
    server.msg("listening");
    let cgroup_procs = std::fs::read_to_string(cg.path.join("cgroup.procs")).unwrap();
    assert!(cgroup_procs.contains(&server.pid().to_string()));
    let net_link = std::fs::read_link(format!("/proc/{}/ns/net", server.pid())).unwrap();
    assert_eq!(
        net_link.to_string_lossy(),
        format!("net:[{}]", lab.srv.inode)
    );
    let mut client = lab.cli.helper(
        None,
        &["tcp-client", &connect, "send=10", "read=20", "close=first"],
    );
    let c = client.msg("connected");
    let s = server.msg("accepted");
    assert_eq!(c["local"], s["remote"]);
    assert_eq!(c["remote"], to);
    assert_eq!(client.msg("done")["read"], 20);
    server.msg("closed");
    client.finish();
    server.finish();

    // UDP and DNS helpers against dnsmasq.
    let ip4 = lab.srv.ip4.to_string();
    let mut dns = start_dnsmasq(&lab, None);
    let mut q = lab.cli.helper(
        None,
        &[
            "dns",
            &format!("bind={}:0", lab.cli.ip4),
            &format!("server={ip4}:53"),
            "q=api.test:A:100",
            "q=nope.test:A:101",
            "q=api.test:AAAA:102",
        ],
    );
    let a = q.msg("answer");
    assert_eq!(
        (a["id"].as_u64(), a["rcode"].as_u64(), a["ancount"].as_u64()),
        (Some(100), Some(0), Some(1))
    );
    let a = q.msg("answer");
    assert_eq!(
        (a["rcode"].as_u64(), a["ancount"].as_u64()),
        (Some(3), Some(0))
    );
    let a = q.msg("answer");
    assert_eq!(
        (a["rcode"].as_u64(), a["ancount"].as_u64()),
        (Some(0), Some(1))
    );
    q.finish();
    dns.kill();

    // nftables works in the namespace (the kernel has no loadable modules: nft is built in).
    lab.srv.nft(&drop_rule(&lab, 7001));
    let listed = lab.srv.run("nft", &["list", "table", "inet", NFT_TABLE]);
    assert!(listed.contains("drop"), "{listed}");
    assert_eq!(nft_drop_count(&lab.srv), 0);
    lab.srv.nft(&format!("delete table inet {NFT_TABLE}"));

    let ns = lab.cli.ns.clone();
    drop(lab);
    assert!(!std::path::Path::new(&format!("/run/netns/{ns}")).exists());
}

// ------------------------------------------------------------------------------------------
// Servers shared by the tests.

/// dnsmasq in the server namespace: `api.test` is the server's IPv4 and IPv6 address (TTL 60);
/// other names under `test` are NXDOMAIN; nothing is forwarded anywhere.
pub fn start_dnsmasq(lab: &NetLab, cg: Option<&TestCgroup>) -> Proc {
    let mut p = lab.srv.spawn(
        "dnsmasq",
        &[
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--no-resolv",
            "--no-hosts",
            "--no-poll",
            "--bind-interfaces",
            &format!("--listen-address={}", lab.srv.ip4),
            "--port=53",
            "--local=/test/",
            &format!("--address=/api.test/{}", lab.srv.ip4),
            &format!("--address=/api.test/{}", lab.srv.ip6),
            "--local-ttl=60",
            "--log-queries",
            "--log-facility=-",
            "--pid-file=",
            "--user=root",
        ],
        cg,
    );
    p.wait_line("started", Duration::from_secs(10));
    wait_bound(p.pid(), 53, true);
    p
}

/// busybox httpd in the server namespace, serving `dir` on `ip:port`.
pub fn start_httpd(
    lab: &NetLab,
    port: u16,
    dir: &std::path::Path,
    cg: Option<&TestCgroup>,
) -> Proc {
    let listen = format!("{}:{port}", lab.srv.ip4);
    let p = lab.srv.spawn(
        "busybox",
        &["httpd", "-f", "-p", &listen, "-h", dir.to_str().unwrap()],
        cg,
    );
    wait_bound(p.pid(), port, false);
    p
}

/// The nftables table the loss tests use (inside the server namespace only).
pub const NFT_TABLE: &str = "vigiltest";

/// Drops, at the server's input, TCP from the client to `port`, counting what it drops.
pub fn drop_rule(lab: &NetLab, port: u16) -> String {
    format!(
        "add table inet {t}\n\
         add chain inet {t} input {{ type filter hook input priority 0; policy accept; }}\n\
         add rule inet {t} input ip saddr {cli} tcp dport {port} counter drop\n",
        t = NFT_TABLE,
        cli = lab.cli.ip4
    )
}

/// Packets dropped so far by the rule of `drop_rule`.
pub fn nft_drop_count(side: &Side) -> u64 {
    let listed = side.run("nft", &["list", "table", "inet", NFT_TABLE]);
    listed
        .split_whitespace()
        .skip_while(|w| *w != "packets")
        .nth(1)
        .unwrap_or_else(|| panic!("no counter in {listed}"))
        .parse()
        .unwrap()
}
