//! In-kernel enforcement end to end: rules with `action: deny|kill` put in force by a real
//! agent, checked by what the processes concerned see (EPERM, SIGKILL, nothing printed or
//! written), by the alerts the agent writes and by `vigil enforce status`.
//!
//! Enforcement is machine-wide, so every test keeps to itself: its own `enforcement.pin_dir`
//! (cleared on drop by `vigil enforce clear`, after a panic too), destinations nobody else uses
//! (a 127.x.y.z address of its own and ports the test bound), paths in its own temporary
//! directory, and scopes (`user.uid` of an unusual uid, or `proc.exepath` of a private copy of a
//! program) so that nothing else on the machine is ever denied or killed.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::*;
use crate::netlab::{run_bounded, wait_until};

/// Uids nothing on a test machine runs as; one per test, so scopes never overlap.
const UID_SENDTO: u32 = 47_301;
const UID_BIND: u32 = 47_302;
const UID_OPEN: u32 = 47_303;
const UID_PERSIST: u32 = 47_304;
const UID_BAD_RULE: u32 = 47_305;
const UID_NO_ACTION: u32 = 47_306;

const BUSYBOX: &str = "/usr/bin/busybox";
const AUDIT_SUFFIX: &str = "(audit mode: would have been blocked)";

// ---- the test's own enforcement pins ----

/// An enforcement pin directory of the test's own and the agent configuration naming it. On
/// drop, `vigil enforce clear` removes whatever is still pinned there (also after a panic).
/// Declare it before the `Agent`, so that it is dropped after the agent is gone.
struct Pins {
    _dir: tempfile::TempDir,
    pin_dir: PathBuf,
    config: PathBuf,
    /// The agent configuration (also written to `config`).
    yaml: String,
}

impl Pins {
    /// `extra`: more keys of the `enforcement:` section, each line indented by two spaces.
    fn new(extra: &str) -> Pins {
        static N: AtomicU32 = AtomicU32::new(0);
        let pin_dir = PathBuf::from(format!(
            "/sys/fs/bpf/vigil-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        // Only the sensors every agent needs: enforcement does not depend on the others.
        let yaml = format!(
            "syscalls: false\nfile:\n  enabled: false\nnetwork:\n  enabled: false\n\
             enforcement:\n  pin_dir: {}\n{extra}",
            pin_dir.display()
        );
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("vigil.yaml");
        std::fs::write(&config, &yaml).unwrap();
        let pins = Pins {
            _dir: dir,
            pin_dir,
            config,
            yaml,
        };
        // Leftovers of an earlier test process with the same pid.
        pins.clear();
        pins
    }

    fn cli(&self, args: &[&str]) -> Output {
        let out = Command::new(env!("CARGO_BIN_EXE_vigil"))
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "vigil {args:?}: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// `vigil enforce status --json`: `null` when nothing is pinned.
    fn status(&self) -> Value {
        let out = self.cli(&["enforce", "status", "--json"]);
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "enforce status --json printed no JSON ({e}):\n{}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    /// `vigil enforce clear`; returns what it printed.
    fn clear(&self) -> String {
        String::from_utf8_lossy(&self.cli(&["enforce", "clear"]).stdout).into_owned()
    }

    fn start(&self, rules: &Path) -> Agent {
        Agent::start_with_config(
            Some(&self.yaml),
            &["--rules", rules.to_str().unwrap(), "--events", "none"],
        )
    }
}

impl Drop for Pins {
    fn drop(&mut self) {
        let _ = Command::new(env!("CARGO_BIN_EXE_vigil"))
            .args(["enforce", "clear", "--config"])
            .arg(&self.config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir(&self.pin_dir);
    }
}

/// The rule `name` in a status, with its hook, action and mode checked.
fn status_rule(status: &Value, name: &str, hook: &str, action: &str, mode: &str) {
    let rules = status["rules"]
        .as_array()
        .unwrap_or_else(|| panic!("no rules in status: {status:#}"));
    let r = rules
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("rule `{name}` not in force; status: {status:#}"));
    assert_eq!(
        (&r["hook"], &r["action"], &r["mode"]),
        (&Value::from(hook), &Value::from(action), &Value::from(mode)),
        "rule `{name}` in status: {status:#}"
    );
}

fn counter(status: &Value, key: &str) -> u64 {
    status[key]
        .as_u64()
        .unwrap_or_else(|| panic!("no counter `{key}` in status: {status:#}"))
}

fn hooks(status: &Value) -> Vec<String> {
    status["hooks"]
        .as_array()
        .unwrap_or_else(|| panic!("no hooks in status: {status:#}"))
        .iter()
        .map(|h| h.as_str().unwrap().to_string())
        .collect()
}

// ---- rules and alerts ----

/// One rule; the condition and output as JSON-quoted YAML scalars.
fn rule(name: &str, condition: &str, output: &str, action: &str) -> String {
    format!(
        "- rule: {name}\n  desc: e2e enforcement test\n  condition: {}\n  output: {}\n  \
         priority: CRITICAL\n  action: {action}\n",
        serde_json::to_string(condition).unwrap(),
        serde_json::to_string(output).unwrap()
    )
}

fn audit(rule: String) -> String {
    rule + "  mode: audit\n"
}

fn rules_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn alerts<'a>(events: &'a [Value], rule: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| e["kind"] == "alert" && e["rule"] == rule)
        .collect()
}

/// The one alert of `rule`; panics with every alert of the output otherwise.
fn only_alert<'a>(events: &'a [Value], rule: &str) -> &'a Value {
    let all = alerts(events, rule);
    assert_eq!(
        all.len(),
        1,
        "expected exactly one `{rule}` alert; all alerts: {:#?}",
        events
            .iter()
            .filter(|e| e["kind"] == "alert")
            .collect::<Vec<_>>()
    );
    all[0]
}

/// An output field as text (numbers as their digits).
fn field(alert: &Value, name: &str) -> String {
    match &alert["output_fields"][name] {
        Value::String(s) => s.clone(),
        Value::Null => panic!("no output field `{name}` in {alert:#}"),
        v => v.to_string(),
    }
}

// ---- processes, files, addresses ----

/// A temporary directory under its canonical path (the kernel compares resolved paths),
/// traversable by the test's unprivileged uids.
fn private_dir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = dir.path().canonicalize().unwrap();
    (dir, path)
}

/// A private copy of `program` (resolved) named `name` in `dir`.
fn copy_exe(dir: &Path, program: &str, name: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::copy(Path::new(program).canonicalize().unwrap(), &p).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

/// A loopback address of this test alone (all of 127.0.0.0/8 is local).
fn unique_loopback() -> Ipv4Addr {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let pid = std::process::id();
    let last = (pid & 0xff) as u8;
    Ipv4Addr::new(
        127,
        (20 + n % 200) as u8,
        ((pid >> 8) & 0xff) as u8,
        if last == 0 || last == 255 { 1 } else { last },
    )
}

fn v4(ip: Ipv4Addr, port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(ip, port)
}

fn wait_child(child: &mut Child, timeout: Duration) -> ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("process {} did not finish within {timeout:?}", child.id());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn spawn_piped(cmd: &mut Command) -> Child {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {cmd:?}: {e}"))
}

/// busybox (or a private copy of it) as `nc addr port`, stdin empty: it connects, half-closes
/// and exits once the server closes.
fn nc(busybox: &Path, addr: SocketAddrV4) -> Child {
    spawn_piped(
        Command::new(busybox)
            .arg0("nc")
            .arg(addr.ip().to_string())
            .arg(addr.port().to_string()),
    )
}

/// A connection accepted on `l` within `timeout`, if any.
fn accept_within(l: &TcpListener, timeout: Duration) -> Option<(TcpStream, SocketAddr)> {
    l.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + timeout;
    loop {
        match l.accept() {
            Ok(c) => return Some(c),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if Instant::now() >= deadline {
                    return None;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("accept: {e}"),
        }
    }
}

/// A socket call made by a child process between fork and exec (then it runs /bin/true).
#[derive(Clone, Copy, Debug)]
enum NetOp {
    Connect(SocketAddrV4),
    /// connect() of a UDP socket, then send() without naming the destination.
    ConnectedUdpSend(SocketAddrV4, &'static [u8]),
    SendTo(SocketAddrV4, &'static [u8]),
    /// Address and socket type (SOCK_STREAM, SOCK_DGRAM).
    Bind(SocketAddrV4, libc::c_int),
}

fn sockaddr(a: SocketAddrV4) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: a.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes(a.ip().octets()),
        },
        sin_zero: [0; 8],
    }
}

/// Runs `op` in a child whose real, effective and saved uid and gid are `uid` (if given).
/// `Ok`: the call succeeded; `Err`: the error the call returned.
fn net_op(uid: Option<u32>, op: NetOp) -> std::io::Result<()> {
    let mut cmd = Command::new("/bin/true");
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(u) = uid {
        cmd.uid(u).gid(u);
    }
    let (kind, addr) = match op {
        NetOp::Connect(a) => (libc::SOCK_STREAM, a),
        NetOp::ConnectedUdpSend(a, _) => (libc::SOCK_DGRAM, a),
        NetOp::SendTo(a, _) => (libc::SOCK_DGRAM, a),
        NetOp::Bind(a, t) => (t, a),
    };
    let sa = sockaddr(addr);
    // SAFETY: only raw syscalls on values built before the fork (async-signal-safe).
    unsafe {
        cmd.pre_exec(move || {
            let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            let p = (&sa as *const libc::sockaddr_in).cast::<libc::sockaddr>();
            let s = libc::socket(libc::AF_INET, kind, 0);
            if s < 0 {
                return Err(std::io::Error::last_os_error());
            }
            let r = match op {
                NetOp::Connect(_) => libc::connect(s, p, len) as isize,
                NetOp::ConnectedUdpSend(_, data) => match libc::connect(s, p, len) {
                    0 => libc::send(s, data.as_ptr().cast(), data.len(), 0),
                    e => e as isize,
                },
                NetOp::SendTo(_, data) => {
                    libc::sendto(s, data.as_ptr().cast(), data.len(), 0, p, len)
                }
                NetOp::Bind(..) => libc::bind(s, p, len) as isize,
            };
            if r < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    // An error of the call comes back from spawn (std passes the child's errno).
    let mut child = cmd.spawn()?;
    let status = wait_child(&mut child, Duration::from_secs(20));
    assert!(
        status.success(),
        "{op:?} as uid {uid:?}: /bin/true {status}"
    );
    Ok(())
}

#[track_caller]
fn assert_eperm(r: std::io::Result<()>, what: &str) {
    match r {
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => {}
        other => panic!("{what}: expected EPERM, got {other:?}"),
    }
}

#[track_caller]
fn assert_ok(r: std::io::Result<()>, what: &str) {
    if let Err(e) = r {
        panic!("{what}: expected success, got {e}");
    }
}

/// Waits until a call that enforcement used to deny succeeds. Removing pins releases the
/// hooks asynchronously (the bpffs inode is freed after an RCU grace period), so this retries
/// for a bounded time and reports how long it took.
fn wait_allowed(what: &str, mut call: impl FnMut() -> std::io::Result<()>) {
    let t = Instant::now();
    let mut last = None;
    while t.elapsed() < Duration::from_secs(10) {
        match call() {
            Ok(()) => {
                eprintln!("{what}: allowed after {:?}", t.elapsed());
                return;
            }
            Err(e) => last = Some(e),
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{what}: still failing 10 s later: {last:?}");
}

/// Runs `program args` as `uid` (setpriv, no supplementary groups), bounded.
fn as_uid(uid: u32, program: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new("setpriv");
    cmd.arg(format!("--reuid={uid}"))
        .arg(format!("--regid={uid}"))
        .arg("--clear-groups")
        .arg(program)
        .args(args);
    run_bounded(cmd, Duration::from_secs(20))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

// ---- the tests ----

#[test]
fn a_connect_deny_rule_fails_the_scoped_program_with_eperm_and_no_one_else() {
    if !require_root() {
        return;
    }
    let pins = Pins::new("");
    let (_tmp, dir) = private_dir();
    let client = copy_exe(&dir, BUSYBOX, "client");
    let ip = unique_loopback();
    let denied = TcpListener::bind((ip, 0)).unwrap();
    let allowed = TcpListener::bind((ip, 0)).unwrap();
    let dport = denied.local_addr().unwrap().port();
    let aport = allowed.local_addr().unwrap().port();
    let name = "E2E deny connect";
    let rules = rules_file(
        &dir,
        "rules.yaml",
        &rule(
            name,
            &format!(
                "evt.type = connect and fd.sip = {ip} and fd.sport = {dport} \
                 and proc.exepath = \"{}\"",
                client.display()
            ),
            "connect denied to %fd.sip:%fd.sport by %proc.exepath",
            "deny",
        ),
    );
    let agent = pins.start(&rules);

    // The scoped program: connect fails with EPERM and nothing reaches the listener.
    let blocked = nc(&client, v4(ip, dport));
    let blocked_pid = blocked.id();
    let out = wait_output(blocked, Duration::from_secs(20));
    assert!(
        !out.status.success(),
        "the scoped client's connect succeeded: {}",
        text(&out.stderr)
    );
    assert!(
        text(&out.stderr).contains("Operation not permitted"),
        "nc should report EPERM: {}",
        text(&out.stderr)
    );
    assert!(
        accept_within(&denied, Duration::from_millis(500)).is_none(),
        "a denied connect must not reach the listener"
    );

    // Outside the scope: the original busybox to the same destination.
    let other = nc(Path::new(BUSYBOX), v4(ip, dport));
    let conn = accept_within(&denied, Duration::from_secs(10));
    assert!(conn.is_some(), "unscoped busybox nc never connected");
    drop(conn);
    let out = wait_output(other, Duration::from_secs(20));
    assert!(
        out.status.success(),
        "unscoped busybox nc: {} {}",
        out.status,
        text(&out.stderr)
    );
    // The scoped program to another port of the same address.
    let other_port = nc(&client, v4(ip, aport));
    let conn = accept_within(&allowed, Duration::from_secs(10));
    assert!(
        conn.is_some(),
        "the scoped client to an allowed port never connected"
    );
    drop(conn);
    let out = wait_output(other_port, Duration::from_secs(20));
    assert!(
        out.status.success(),
        "scoped nc to the allowed port: {} {}",
        out.status,
        text(&out.stderr)
    );
    // This test process itself (another executable) to the denied destination.
    let mine = TcpStream::connect_timeout(&SocketAddr::from((ip, dport)), Duration::from_secs(5))
        .expect("the test process's own connect is outside the scope");
    let (_, peer) = accept_within(&denied, Duration::from_secs(10)).expect("accepted");
    assert_eq!(peer, mine.local_addr().unwrap());
    assert!(
        accept_within(&denied, Duration::from_millis(200)).is_none(),
        "only the allowed connections reached the listener"
    );

    let status = pins.status();
    status_rule(&status, name, "connect", "deny", "enforce");
    let h = hooks(&status);
    assert!(h.iter().any(|h| h == "connect4"), "hooks: {h:?}");
    assert!(counter(&status, "denied") >= 1, "{status:#}");
    assert_eq!(status["pin_dir"], pins.pin_dir.to_str().unwrap());

    let done = agent.stop();
    let a = only_alert(&done.events, name);
    assert_eq!(a["action"], "denied", "{a:#}");
    assert_eq!(a["pid"], blocked_pid, "{a:#}");
    assert_eq!(field(a, "fd.sip"), ip.to_string(), "{a:#}");
    assert_eq!(field(a, "fd.sport"), dport.to_string(), "{a:#}");
    assert_eq!(field(a, "proc.exepath"), client.to_str().unwrap(), "{a:#}");
}

#[test]
fn a_sendto_deny_rule_fails_udp_sends_of_the_scoped_uid_with_eperm() {
    if !require_root() {
        return;
    }
    let pins = Pins::new("");
    let (_tmp, dir) = private_dir();
    let ip = unique_loopback();
    let rx = UdpSocket::bind((ip, 0)).unwrap();
    let rx_other = UdpSocket::bind((ip, 0)).unwrap();
    let port = rx.local_addr().unwrap().port();
    let other = rx_other.local_addr().unwrap().port();
    let name = "E2E deny sendto";
    let rules = rules_file(
        &dir,
        "rules.yaml",
        &rule(
            name,
            &format!(
                "evt.type in (sendto, sendmsg) and fd.sip = {ip} and fd.sport = {port} \
                 and user.uid = {UID_SENDTO}"
            ),
            "send denied to %fd.sip:%fd.sport uid=%user.uid",
            "deny",
        ),
    );
    let agent = pins.start(&rules);

    assert_eperm(
        net_op(Some(UID_SENDTO), NetOp::SendTo(v4(ip, port), b"denied")),
        "sendto by the scoped uid",
    );
    assert_eperm(
        net_op(
            Some(UID_SENDTO),
            NetOp::ConnectedUdpSend(v4(ip, port), b"connected"),
        ),
        "connect() + send() by the scoped uid (the connect is denied)",
    );
    assert_ok(
        net_op(None, NetOp::SendTo(v4(ip, port), b"from root")),
        "sendto by root (outside the uid scope)",
    );
    assert_ok(
        net_op(
            Some(UID_SENDTO),
            NetOp::SendTo(v4(ip, other), b"other port"),
        ),
        "sendto by the scoped uid to another port",
    );
    let recv = |s: &UdpSocket| {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 64];
        let n = s.recv(&mut buf).expect("a datagram within 5 s");
        buf[..n].to_vec()
    };
    assert_eq!(
        recv(&rx),
        b"from root",
        "the denied datagram never arrives; root's does"
    );
    assert_eq!(recv(&rx_other), b"other port");
    rx.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 64];
    assert!(rx.recv(&mut buf).is_err(), "nothing else arrived");

    let status = pins.status();
    status_rule(&status, name, "sendmsg", "deny", "enforce");
    assert!(hooks(&status).iter().any(|h| h == "sendmsg4"), "{status:#}");

    let done = agent.stop();
    // One for the sendto, one for the connect of the connected socket.
    let all = alerts(&done.events, name);
    assert_eq!(all.len(), 2, "{all:#?}");
    for a in all {
        assert_eq!(a["action"], "denied", "{a:#}");
        assert_eq!(field(a, "fd.sip"), ip.to_string(), "{a:#}");
        assert_eq!(field(a, "fd.sport"), port.to_string(), "{a:#}");
        assert_eq!(field(a, "user.uid"), UID_SENDTO.to_string(), "{a:#}");
    }
}

#[test]
fn a_bind_deny_rule_fails_binds_of_the_scoped_uid_with_eperm() {
    if !require_root() {
        return;
    }
    let pins = Pins::new("");
    let (_tmp, dir) = private_dir();
    let ip = unique_loopback();
    // Two ports free on this address (bound once to learn them, then released).
    let port = TcpListener::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let other = TcpListener::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let name = "E2E deny bind";
    let rules = rules_file(
        &dir,
        "rules.yaml",
        &rule(
            name,
            &format!("evt.type = bind and fd.lport = {port} and user.uid = {UID_BIND}"),
            "bind denied on port %fd.lport uid=%user.uid",
            "deny",
        ),
    );
    let agent = pins.start(&rules);

    assert_eperm(
        net_op(Some(UID_BIND), NetOp::Bind(v4(ip, port), libc::SOCK_STREAM)),
        "TCP bind by the scoped uid",
    );
    assert_eperm(
        net_op(Some(UID_BIND), NetOp::Bind(v4(ip, port), libc::SOCK_DGRAM)),
        "UDP bind by the scoped uid (no fd.l4proto: both protocols)",
    );
    assert_ok(
        net_op(
            Some(UID_BIND),
            NetOp::Bind(v4(ip, other), libc::SOCK_STREAM),
        ),
        "bind of another port by the scoped uid",
    );
    assert_ok(
        net_op(None, NetOp::Bind(v4(ip, port), libc::SOCK_STREAM)),
        "bind of the port by root (outside the uid scope)",
    );

    let status = pins.status();
    status_rule(&status, name, "bind", "deny", "enforce");
    assert!(hooks(&status).iter().any(|h| h == "bind4"), "{status:#}");
    assert!(counter(&status, "denied") >= 2, "{status:#}");

    let done = agent.stop();
    let all = alerts(&done.events, name);
    assert_eq!(all.len(), 2, "one per denied bind: {all:#?}");
    for a in all {
        assert_eq!(a["action"], "denied", "{a:#}");
        assert_eq!(field(a, "fd.lport"), port.to_string(), "{a:#}");
        assert_eq!(field(a, "user.uid"), UID_BIND.to_string(), "{a:#}");
    }
}

#[test]
fn an_exec_kill_rule_kills_the_program_before_it_runs() {
    if !require_root() {
        return;
    }
    let pins = Pins::new("");
    let (_tmp, dir) = private_dir();
    let payload = copy_exe(&dir, "/bin/echo", "payload");
    let bystander = copy_exe(&dir, "/bin/echo", "bystander");
    let name = "E2E kill exec";
    let rules = rules_file(
        &dir,
        "rules.yaml",
        &rule(
            name,
            &format!(
                "evt.type = execve and proc.exepath = \"{}\"",
                payload.display()
            ),
            "killed %proc.exepath",
            "kill",
        ),
    );
    let agent = pins.start(&rules);

    let child = spawn_piped(Command::new(&payload).arg("hello"));
    let pid = child.id();
    let out = wait_output(child, Duration::from_secs(20));
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGKILL),
        "the payload must die by SIGKILL: {}",
        out.status
    );
    assert!(
        out.stdout.is_empty(),
        "killed before running a single instruction, it printed nothing; got {:?}",
        text(&out.stdout)
    );
    // The same program under another path is not concerned.
    let out = run_bounded(
        {
            let mut c = Command::new(&bystander);
            c.arg("hello");
            c
        },
        Duration::from_secs(20),
    );
    assert!(out.status.success(), "bystander: {}", out.status);
    assert_eq!(text(&out.stdout), "hello\n");

    let status = pins.status();
    status_rule(&status, name, "exec", "kill", "enforce");
    assert_eq!(counter(&status, "killed"), 1, "{status:#}");

    let done = agent.stop();
    let a = only_alert(&done.events, name);
    assert_eq!(a["action"], "killed", "{a:#}");
    assert_eq!(a["pid"], pid, "{a:#}");
    assert_eq!(field(a, "proc.exepath"), payload.to_str().unwrap(), "{a:#}");
}

#[test]
fn an_open_for_writing_kill_rule_kills_the_writer_before_it_writes() {
    if !require_root() {
        return;
    }
    let pins = Pins::new("");
    let (_tmp, dir) = private_dir();
    let protected = dir.join("protected");
    std::fs::create_dir(&protected).unwrap();
    std::fs::set_permissions(&protected, std::fs::Permissions::from_mode(0o777)).unwrap();
    let existing = protected.join("existing.log");
    std::fs::write(&existing, "original\n").unwrap();
    std::fs::set_permissions(&existing, std::fs::Permissions::from_mode(0o666)).unwrap();
    let created = protected.join("new.txt");
    let name = "E2E kill open for writing";
    let rules = rules_file(
        &dir,
        "rules.yaml",
        &rule(
            name,
            &format!(
                "evt.type in (open, openat) and evt.is_open_write = true \
                 and fd.name startswith \"{}/\" and user.uid = {UID_OPEN}",
                protected.display()
            ),
            "write to %fd.name killed (uid=%user.uid)",
            "kill",
        ),
    );
    let agent = pins.start(&rules);
    let sh = Path::new("/bin/sh");

    // A new file: the shell is killed right after its open (O_CREAT|O_TRUNC has happened).
    let out = as_uid(
        UID_OPEN,
        sh,
        &[
            "-c",
            &format!("echo data > {}; echo after", created.display()),
        ],
    );
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGKILL),
        "the writer must die by SIGKILL: {} {}",
        out.status,
        text(&out.stderr)
    );
    assert!(out.stdout.is_empty(), "it ran on: {:?}", text(&out.stdout));
    let len = std::fs::metadata(&created).map(|m| m.len()).unwrap_or(0);
    assert_eq!(
        len, 0,
        "no data written (the open itself, creating or truncating the file, has happened)"
    );
    // An existing file opened for appending: killed, its content intact.
    let out = as_uid(
        UID_OPEN,
        sh,
        &["-c", &format!("echo more >> {}", existing.display())],
    );
    assert_eq!(out.status.signal(), Some(libc::SIGKILL), "{}", out.status);
    assert_eq!(std::fs::read_to_string(&existing).unwrap(), "original\n");
    // Reading is not concerned.
    let out = as_uid(
        UID_OPEN,
        Path::new("/bin/cat"),
        &[existing.to_str().unwrap()],
    );
    assert!(
        out.status.success(),
        "cat: {} {}",
        out.status,
        text(&out.stderr)
    );
    assert_eq!(text(&out.stdout), "original\n");
    // Writing there as root (outside the uid scope), and as the uid elsewhere, works.
    let root_file = protected.join("root.txt");
    let out = run_bounded(
        {
            let mut c = Command::new(sh);
            c.args(["-c", &format!("echo root > {}", root_file.display())]);
            c
        },
        Duration::from_secs(20),
    );
    assert!(out.status.success(), "root write: {}", out.status);
    assert_eq!(std::fs::read_to_string(&root_file).unwrap(), "root\n");
    let outside = dir.join("outside.txt");
    std::fs::write(&outside, "").unwrap();
    std::fs::set_permissions(&outside, std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = as_uid(
        UID_OPEN,
        sh,
        &["-c", &format!("echo fine > {}", outside.display())],
    );
    assert!(
        out.status.success(),
        "write outside: {} {}",
        out.status,
        text(&out.stderr)
    );
    assert_eq!(std::fs::read_to_string(&outside).unwrap(), "fine\n");

    let status = pins.status();
    status_rule(&status, name, "open_write", "kill", "enforce");
    assert_eq!(counter(&status, "killed"), 2, "{status:#}");

    let done = agent.stop();
    let all = alerts(&done.events, name);
    assert_eq!(all.len(), 2, "one per killed writer: {all:#?}");
    let mut files: Vec<String> = all.iter().map(|a| field(a, "fd.name")).collect();
    files.sort();
    let mut want = vec![
        created.to_str().unwrap().to_string(),
        existing.to_str().unwrap().to_string(),
    ];
    want.sort();
    assert_eq!(files, want);
    for a in all {
        assert_eq!(a["action"], "killed", "{a:#}");
        assert_eq!(field(a, "user.uid"), UID_OPEN.to_string(), "{a:#}");
    }
}

/// The state of process `pid` ('Z' for a zombie), or None once it is reaped.
fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

#[test]
fn enforcement_outlives_a_killed_agent_until_cleared() {
    if !require_root() {
        return;
    }
    let pins = Pins::new("");
    let (_tmp, dir) = private_dir();
    let ip = unique_loopback();
    let listener = TcpListener::bind((ip, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let dest = v4(ip, port);
    let name = "E2E persistent deny";
    let rules = rules_file(
        &dir,
        "rules.yaml",
        &rule(
            name,
            &format!(
                "evt.type = connect and fd.sip = {ip} and fd.sport = {port} \
                 and user.uid = {UID_PERSIST}"
            ),
            "connect denied to %fd.sip:%fd.sport",
            "deny",
        ),
    );
    let agent = pins.start(&rules);
    assert_eperm(
        net_op(Some(UID_PERSIST), NetOp::Connect(dest)),
        "connect with the agent running",
    );
    assert_ok(net_op(None, NetOp::Connect(dest)), "root's connect");

    let pid = agent.pid();
    // SAFETY: kill(2) on the agent this test started.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGKILL) }, 0);
    wait_until(Duration::from_secs(10), "the agent's death", || {
        matches!(proc_state(pid), None | Some('Z'))
    });
    // The agent is gone, its rule is not.
    assert_eperm(
        net_op(Some(UID_PERSIST), NetOp::Connect(dest)),
        "connect after the agent was killed with SIGKILL",
    );
    let status = pins.status();
    status_rule(&status, name, "connect", "deny", "enforce");
    assert!(
        counter(&status, "denied") >= 2,
        "the kernel counts denials made while no agent runs: {status:#}"
    );
    let generation = counter(&status, "generation");

    // A new agent with the same pins reports what was denied while none was running.
    let agent2 = pins.start(&rules);
    let done = agent2.stop();
    drop(agent);
    let left = alerts(&done.events, name);
    assert!(
        left.iter().any(|a| a["action"] == "denied"),
        "the denial made while no agent ran is reported by the next agent: {:#?}",
        done.events
    );
    let status = pins.status();
    status_rule(&status, name, "connect", "deny", "enforce");
    assert!(
        counter(&status, "generation") > generation,
        "the restart installed a new generation: {status:#}"
    );

    // `vigil enforce clear` lifts it.
    let said = pins.clear();
    assert!(said.contains("removed"), "enforce clear said: {said}");
    assert_eq!(pins.status(), Value::Null, "nothing pinned after clear");
    wait_allowed("connect after enforce clear", || {
        net_op(Some(UID_PERSIST), NetOp::Connect(dest))
    });
    assert!(accept_within(&listener, Duration::from_secs(5)).is_some());
}

#[test]
fn an_audit_mode_rule_reports_and_lets_the_connect_through() {
    if !require_root() {
        return;
    }
    let pins = Pins::new("");
    let (_tmp, dir) = private_dir();
    let client = copy_exe(&dir, BUSYBOX, "client");
    let ip = unique_loopback();
    let listener = TcpListener::bind((ip, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let name = "E2E audit connect";
    let rules = rules_file(
        &dir,
        "rules.yaml",
        &audit(rule(
            name,
            &format!(
                "evt.type = connect and fd.sip = {ip} and fd.sport = {port} \
                 and proc.exepath = \"{}\"",
                client.display()
            ),
            "connect to %fd.sip:%fd.sport by %proc.exepath",
            "deny",
        )),
    );
    let agent = pins.start(&rules);

    let c = nc(&client, v4(ip, port));
    let pid = c.id();
    let conn = accept_within(&listener, Duration::from_secs(10));
    assert!(conn.is_some(), "audit mode must let the connect through");
    drop(conn);
    let out = wait_output(c, Duration::from_secs(20));
    assert!(
        out.status.success(),
        "nc: {} {}",
        out.status,
        text(&out.stderr)
    );

    let status = pins.status();
    status_rule(&status, name, "connect", "deny", "audit");
    assert_eq!(counter(&status, "denied"), 0, "{status:#}");
    assert!(counter(&status, "audited") >= 1, "{status:#}");

    let done = agent.stop();
    let a = only_alert(&done.events, name);
    assert_eq!(a["action"], "audit", "{a:#}");
    assert_eq!(a["pid"], pid, "{a:#}");
    let output = a["output"].as_str().unwrap();
    assert!(output.ends_with(AUDIT_SUFFIX), "{output}");
    assert!(output.contains(&format!("{ip}:{port}")), "{output}");
}

#[test]
fn an_allow_listed_program_is_protected_from_kills() {
    if !require_root() {
        return;
    }
    let (_tmp, dir) = private_dir();
    let payload = copy_exe(&dir, "/bin/echo", "payload");
    let pins = Pins::new(&format!(
        "  allow: [{}]\n",
        serde_json::to_string(payload.to_str().unwrap()).unwrap()
    ));
    let name = "E2E kill allow-listed";
    let rules = rules_file(
        &dir,
        "rules.yaml",
        &rule(
            name,
            &format!(
                "evt.type = execve and proc.exepath = \"{}\"",
                payload.display()
            ),
            "would kill %proc.exepath",
            "kill",
        ),
    );
    let agent = pins.start(&rules);

    let out = run_bounded(
        {
            let mut c = Command::new(&payload);
            c.arg("hello");
            c
        },
        Duration::from_secs(20),
    );
    assert!(
        out.status.success(),
        "the allow-listed program runs: {}",
        out.status
    );
    assert_eq!(text(&out.stdout), "hello\n");

    let status = pins.status();
    assert_eq!(counter(&status, "killed"), 0, "{status:#}");
    assert_eq!(counter(&status, "protected"), 1, "{status:#}");

    let done = agent.stop();
    let a = only_alert(&done.events, name);
    assert_eq!(a["action"], "protected", "{a:#}");
}

#[test]
fn kills_beyond_the_rate_limit_are_reported_and_not_done() {
    if !require_root() {
        return;
    }
    let pins = Pins::new("  kills_per_sec: 1\n");
    let (_tmp, dir) = private_dir();
    let payload = copy_exe(&dir, "/bin/echo", "payload");
    let name = "E2E kill rate-limited";
    let rules = rules_file(
        &dir,
        "rules.yaml",
        &rule(
            name,
            &format!(
                "evt.type = execve and proc.exepath = \"{}\"",
                payload.display()
            ),
            "killed %proc.exepath",
            "kill",
        ),
    );
    let agent = pins.start(&rules);

    let (mut killed, mut ran) = (0, 0);
    for _ in 0..3 {
        let out = wait_output(
            spawn_piped(Command::new(&payload).arg("hello")),
            Duration::from_secs(20),
        );
        if out.status.signal() == Some(libc::SIGKILL) {
            assert!(out.stdout.is_empty());
            killed += 1;
        } else {
            assert!(out.status.success(), "{}", out.status);
            assert_eq!(text(&out.stdout), "hello\n");
            ran += 1;
        }
    }
    assert!(killed >= 1, "the first kill is within the limit");
    assert!(ran >= 1, "3 kills in well under 2 s exceed 1 per second");

    let done = agent.stop();
    let all = alerts(&done.events, name);
    let count = |action: &str| all.iter().filter(|a| a["action"] == action).count();
    assert_eq!(count("killed"), killed, "{all:#?}");
    assert_eq!(count("kill_rate_limited"), ran, "{all:#?}");
}

#[test]
fn a_rule_that_cannot_be_enforced_fails_the_start_and_keeps_the_enforcement_in_force() {
    if !require_root() {
        return;
    }
    let pins = Pins::new("");
    let (_tmp, dir) = private_dir();
    let ip = unique_loopback();
    let listener = TcpListener::bind((ip, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let dest = v4(ip, port);
    let good_name = "E2E good deny";
    let good = rule(
        good_name,
        &format!(
            "evt.type = connect and fd.sip = {ip} and fd.sport = {port} \
             and user.uid = {UID_BAD_RULE}"
        ),
        "connect denied to %fd.sip:%fd.sport",
        "deny",
    );
    let agent = pins.start(&rules_file(&dir, "good.yaml", &good));
    assert_eperm(
        net_op(Some(UID_BAD_RULE), NetOp::Connect(dest)),
        "connect under the good rule",
    );
    let done = agent.stop();
    assert_eq!(only_alert(&done.events, good_name)["action"], "denied");
    // A normal stop leaves the enforcement in force.
    let before = pins.status();
    status_rule(&before, good_name, "connect", "deny", "enforce");
    assert_eperm(
        net_op(Some(UID_BAD_RULE), NetOp::Connect(dest)),
        "connect after the agent stopped",
    );

    let bad_name = "E2E cannot enforce";
    let bad = rules_file(
        &dir,
        "bad.yaml",
        &format!(
            "{good}{}",
            rule(
                bad_name,
                "evt.type = connect and proc.cmdline contains x",
                "nope",
                "deny"
            )
        ),
    );
    let out = run_bounded(
        {
            let mut c = Command::new(env!("CARGO_BIN_EXE_vigil"));
            c.arg("run")
                .arg("--config")
                .arg(&pins.config)
                .arg("--rules")
                .arg(&bad)
                .arg("--events")
                .arg("none")
                .arg("--output")
                .arg(format!("file:{}", dir.join("events.json").display()));
            c
        },
        Duration::from_secs(60),
    );
    let err = text(&out.stderr);
    assert!(!out.status.success(), "the agent started anyway:\n{err}");
    assert!(
        err.contains("cannot enforce in the kernel")
            && err.contains(bad_name)
            && err.contains("proc.cmdline contains x")
            && err.contains("bad.yaml:"),
        "the error names the file, the rule and the part: {err}"
    );
    assert!(
        !err.contains("vigil: ready"),
        "it never became ready: {err}"
    );

    let after = pins.status();
    status_rule(&after, good_name, "connect", "deny", "enforce");
    assert_eq!(
        after["generation"], before["generation"],
        "the previous generation is still the one in force"
    );
    assert_eq!(after["rules"].as_array().unwrap().len(), 1, "{after:#}");
    assert_eperm(
        net_op(Some(UID_BAD_RULE), NetOp::Connect(dest)),
        "connect after the failed start",
    );
}

#[test]
fn an_agent_whose_rules_have_no_action_removes_the_enforcement() {
    if !require_root() {
        return;
    }
    let pins = Pins::new("");
    let (_tmp, dir) = private_dir();
    let ip = unique_loopback();
    let listener = TcpListener::bind((ip, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let dest = v4(ip, port);
    let deny = rule(
        "E2E deny then detect",
        &format!(
            "evt.type = connect and fd.sip = {ip} and fd.sport = {port} \
             and user.uid = {UID_NO_ACTION}"
        ),
        "connect denied to %fd.sip:%fd.sport",
        "deny",
    );
    pins.start(&rules_file(&dir, "deny.yaml", &deny)).stop();
    assert_eperm(
        net_op(Some(UID_NO_ACTION), NetOp::Connect(dest)),
        "connect under the pinned deny rule",
    );
    assert_ne!(pins.status(), Value::Null);

    let detect = "- rule: E2E detect only\n  desc: d\n  condition: evt.type = execve and \
                  proc.name = vigil-e2e-nothing\n  output: o\n  priority: INFO\n";
    let agent = pins.start(&rules_file(&dir, "detect.yaml", detect));
    assert_eq!(
        pins.status(),
        Value::Null,
        "an agent without actions clears its pin_dir at start"
    );
    wait_allowed("connect once the detection-only agent runs", || {
        net_op(Some(UID_NO_ACTION), NetOp::Connect(dest))
    });
    agent.stop();
    assert!(accept_within(&listener, Duration::from_secs(5)).is_some());
}

#[test]
fn a_connect_deny_rule_covers_ipv6_in_another_network_namespace() {
    if !require_root() {
        return;
    }
    let pins = Pins::new("");
    let (_tmp, dir) = private_dir();
    let client = copy_exe(&dir, BUSYBOX, "client6");
    let lab = crate::netlab::NetLab::new();
    let listener = lab
        .srv
        .in_ns(|| TcpListener::bind(lab.srv.addr(true, 0)).unwrap());
    let port = listener.local_addr().unwrap().port();
    let ip6 = lab.srv.ip6;
    let name = "E2E deny connect6";
    let rules = rules_file(
        &dir,
        "rules.yaml",
        &rule(
            name,
            &format!(
                "evt.type = connect and fd.sip = \"{ip6}\" and fd.sport = {port} \
                 and proc.exepath = \"{}\"",
                client.display()
            ),
            "connect denied to %fd.sip:%fd.sport by %proc.exepath",
            "deny",
        ),
    );
    let agent = pins.start(&rules);
    let nc_in_cli = |program: &Path| {
        let mut c = lab.cli.command(program, None);
        c.arg0("nc").arg(ip6.to_string()).arg(port.to_string());
        spawn_piped(&mut c)
    };

    let blocked = nc_in_cli(&client);
    let blocked_pid = blocked.id();
    let out = wait_output(blocked, Duration::from_secs(20));
    assert!(
        !out.status.success() && text(&out.stderr).contains("Operation not permitted"),
        "the scoped client's IPv6 connect must fail with EPERM: {} {}",
        out.status,
        text(&out.stderr)
    );
    assert!(accept_within(&listener, Duration::from_millis(500)).is_none());
    // The unscoped busybox from the same namespace gets through.
    let other = nc_in_cli(Path::new(BUSYBOX));
    let conn = accept_within(&listener, Duration::from_secs(10));
    assert!(
        conn.is_some(),
        "unscoped busybox nc never connected over IPv6"
    );
    drop(conn);
    let out = wait_output(other, Duration::from_secs(20));
    assert!(out.status.success(), "{} {}", out.status, text(&out.stderr));

    let status = pins.status();
    assert!(hooks(&status).iter().any(|h| h == "connect6"), "{status:#}");
    let done = agent.stop();
    let a = only_alert(&done.events, name);
    assert_eq!(a["action"], "denied", "{a:#}");
    assert_eq!(a["pid"], blocked_pid, "{a:#}");
    assert_eq!(field(a, "fd.sip"), ip6.to_string(), "{a:#}");
    assert_eq!(field(a, "fd.sport"), port.to_string(), "{a:#}");
}
