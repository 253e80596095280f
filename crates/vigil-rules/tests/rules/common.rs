//! Synthetic events, process entries and one-call load/evaluate helpers.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use vigil_abi::*;
use vigil_enrich::{Ancestor, Image, ProcInfo};
use vigil_events::net::{ConnPhase, Direction, DnsExchange, HttpExchange, Role, Transport};
use vigil_events::{
    Capture, Conn, Dns, Event, Exec, Exit, File, Fork, Header, Http, Kind, PacketDrop, Syscall,
    UdpFlow,
};
use vigil_rules::{
    all_event_types, load, Alert, EvalContext, LoadError, LoadOptions, NameLookup, RuleFile,
    RuleSet,
};

pub fn header(kind: Kind, tgid: u32) -> Header {
    Header {
        kind,
        time_ns: 5_000_000_000,
        pid: tgid + 1,
        tgid,
        cgroup_id: 1,
    }
}

fn bytes(v: &[&str]) -> Vec<Vec<u8>> {
    v.iter().map(|s| s.as_bytes().to_vec()).collect()
}

/// `bash -c id` style exec: comm, resolved exe, argv, cwd.
pub fn exec(comm: &str, exe: &str, args: &[&str], cwd: &str) -> Event {
    Event::Exec(Exec {
        header: header(Kind::Exec, 100),
        start_time_ns: 4_000_000_000,
        ppid: 50,
        uid: 1000,
        gid: 1000,
        euid: 0,
        egid: 0,
        loginuid: Some(1000),
        tty_dev: (136 << 20) | 3,
        comm: comm.into(),
        exe: exe.into(),
        exe_truncated: false,
        cwd: cwd.into(),
        cwd_truncated: false,
        args: bytes(args),
        args_truncated: false,
        argc: args.len() as u32,
    })
}

pub fn fork(comm: &str) -> Event {
    Event::Fork(Fork {
        header: header(Kind::Fork, 100),
        start_time_ns: 4_500_000_000,
        parent_pid: 50,
        parent_tgid: 50,
        thread: false,
        comm: comm.into(),
    })
}

pub fn exit(comm: &str, code: Option<u8>, signal: Option<u8>) -> Event {
    Event::Exit(Exit {
        header: header(Kind::Exit, 100),
        start_time_ns: 4_000_000_000,
        ppid: 1,
        code,
        signal,
        core_dumped: false,
        comm: comm.into(),
        exe: None,
        exe_truncated: false,
    })
}

/// A file event with an absolute path and no second path.
pub fn file(syscall: u32, op: u32, path: &str, flags: u32, result: i64) -> File {
    File {
        header: header(Kind::File, 100),
        result,
        syscall,
        op,
        flags,
        mode: 0o644,
        dirfd: -100,
        dirfd2: -100,
        fd: None,
        uid: u32::MAX,
        gid: u32::MAX,
        length: 0,
        path: path.into(),
        base: Vec::new(),
        path2: Vec::new(),
        base2: Vec::new(),
        truncated: false,
        read_failed: false,
        unfiltered: false,
    }
}

pub fn open(path: &str, flags: u32) -> Event {
    Event::File(file(VIGIL_SYS_OPENAT, VIGIL_FOP_OPEN, path, flags, 3))
}

pub fn syscall(id: u32, args: [u64; 6], strs: [&str; 3], result: i64) -> Event {
    Event::Syscall(Syscall {
        header: header(Kind::Syscall, 100),
        result,
        syscall: id,
        args,
        strs: strs.map(|s| s.as_bytes().to_vec()),
        truncated: false,
        read_failed: false,
    })
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

/// A TCP connection event of the process 100 (`curl`), `local` and `remote` as `ip:port` or
/// `[ip6]:port`; nothing failed, no counters.
pub fn conn(phase: ConnPhase, role: Role, local: &str, remote: &str) -> Conn {
    let (local, remote) = (addr(local), addr(remote));
    Conn {
        header: header(Kind::Connection, 100),
        phase,
        role,
        cookie: 77,
        netns: 4026531840,
        local,
        remote,
        ipv6: remote.is_ipv6(),
        connect_latency_ns: (role == Role::Client).then_some(1_500_000),
        duration_ns: 0,
        bytes_sent: 0,
        bytes_received: 0,
        segs_out: 0,
        segs_in: 0,
        srtt_us: 0,
        retransmits: 0,
        resets_sent: 0,
        resets_received: 0,
        sk_err: 0,
        close_reason: None,
        comm: b"curl".to_vec(),
    }
}

pub fn connect(local: &str, remote: &str) -> Event {
    Event::Conn(conn(ConnPhase::Connect, Role::Client, local, remote))
}

pub fn accept(local: &str, remote: &str) -> Event {
    Event::Conn(conn(ConnPhase::Accept, Role::Server, local, remote))
}

/// A failed active open with socket error `sk_err` (0: aborted by its owner).
pub fn connect_failed(local: &str, remote: &str, sk_err: u32) -> Event {
    let mut c = conn(ConnPhase::ConnectFailed, Role::Client, local, remote);
    c.sk_err = sk_err;
    Event::Conn(c)
}

pub fn udp(local: &str, remote: &str) -> Event {
    let (local, remote) = (addr(local), addr(remote));
    Event::Udp(UdpFlow {
        header: header(Kind::Udp, 100),
        netns: 4026531840,
        cookie: 78,
        local,
        remote,
        ipv6: remote.is_ipv6(),
        packets_sent: 2,
        bytes_sent: 64,
        packets_received: 2,
        bytes_received: 256,
        first_ns: 4_000_000_000,
        last_ns: 4_900_000_000,
        comm: b"dig".to_vec(),
    })
}

pub fn dns(
    role: Role,
    transport: Transport,
    client: &str,
    server: &str,
    query: &str,
    qtype: u16,
    rcode: Option<u8>,
) -> Event {
    Event::Dns(Dns {
        header: header(Kind::Dns, 100),
        exchange: DnsExchange {
            time_ns: 5_000_000_000,
            cookie: 79,
            role,
            transport,
            client: addr(client),
            server: addr(server),
            id: 4660,
            query: query.into(),
            qtype,
            rcode,
            answers: Vec::new(),
            latency_ns: rcode.map(|_| 800_000),
        },
    })
}

pub fn http(role: Role, local: &str, remote: &str, method: &str, path: &str) -> Event {
    Event::Http(Http {
        header: header(Kind::Http, 100),
        exchange: HttpExchange {
            time_ns: 5_000_000_000,
            cookie: 80,
            role,
            local: addr(local),
            remote: addr(remote),
            method: method.into(),
            path: path.into(),
            path_truncated: false,
            version: "HTTP/1.1".into(),
            status: Some(404),
            latency_ns: Some(2_000_000),
        },
        peer: None,
    })
}

pub fn packet_drop(reason: &str, count: u64) -> Event {
    Event::Drop(PacketDrop {
        header: header(Kind::Drop, 0),
        reason: reason.into(),
        count,
        netns: 4026531840,
        ifindex: 2,
        interface: Some("eth0".into()),
        protocol: 6,
    })
}

pub fn capture() -> Event {
    Event::Capture(Capture {
        header: header(Kind::Capture, 100),
        cookie: 80,
        netns: 4026531840,
        transport: Transport::Tcp,
        direction: Direction::Egress,
        local: addr("10.0.0.5:40000"),
        remote: addr("10.0.0.9:80"),
        payload_len: 18,
        payload: b"GET / HTTP/1.1\r\n\r\n".to_vec(),
    })
}

pub fn image(comm: &str, exe: &str, args: &[&str]) -> Arc<Image> {
    Arc::new(Image {
        exe: exe.into(),
        args: bytes(args),
        cwd: b"/home/u".to_vec(),
        comm: comm.into(),
        ..Image::default()
    })
}

/// The subject's table entry: `bash` run by uid 1000 (euid 0), login session 1000.
pub fn proc_info() -> ProcInfo {
    ProcInfo {
        tgid: 100,
        ppid: 50,
        start_time_ns: 4_000_000_000,
        image: image("bash", "/usr/bin/bash", &["/bin/bash", "-i"]),
        uid: 1000,
        gid: 1000,
        euid: 0,
        egid: 0,
        loginuid: Some(1000),
        tty_dev: 0,
        cgroup_id: 1,
        exited: false,
    }
}

/// Parent `sshd`, grandparent `systemd`.
pub fn ancestry() -> Vec<Ancestor> {
    vec![
        Ancestor {
            pid: 50,
            image: image("sshd", "/usr/sbin/sshd", &["sshd: u@pts/3"]),
        },
        Ancestor {
            pid: 1,
            image: image(
                "systemd",
                "/usr/lib/systemd/systemd",
                &["/sbin/init", "splash"],
            ),
        },
    ]
}

pub struct Names;

impl NameLookup for Names {
    fn user(&self, uid: u32) -> Option<&str> {
        match uid {
            0 => Some("root"),
            1000 => Some("alice"),
            _ => None,
        }
    }

    fn group(&self, gid: u32) -> Option<&str> {
        (gid == 0).then_some("root")
    }

    /// Names learned for a few addresses, until 10 s after boot.
    fn ip_name(&self, ip: &IpAddr, time_ns: u64) -> Option<&str> {
        if time_ns >= 10_000_000_000 {
            return None;
        }
        match ip.to_string().as_str() {
            "93.184.216.34" => Some("example.com"),
            "10.96.0.1" => Some("kubernetes.default.svc"),
            "10.96.0.2" => Some("kubernetes.default.svc.cluster.local"),
            "2001:db8::99" => Some("client.example"),
            _ => None,
        }
    }
}

pub fn all_types() -> LoadOptions {
    LoadOptions {
        observable: all_event_types().iter().map(|s| s.to_string()).collect(),
    }
}

pub fn try_load(yaml: &str) -> Result<RuleSet, LoadError> {
    load(
        &[RuleFile {
            name: "rules.yaml".into(),
            text: yaml.into(),
        }],
        &all_types(),
    )
}

pub fn load_ok(yaml: &str) -> RuleSet {
    try_load(yaml).unwrap_or_else(|e| panic!("load failed:\n{e}"))
}

/// Alerts for `event` with the standard process entry and ancestry.
pub fn alerts(rs: &RuleSet, event: &Event) -> Vec<Alert> {
    let proc = proc_info();
    let anc = ancestry();
    let ctx = EvalContext {
        event,
        proc: Some(&proc),
        ancestry: &anc,
        names: &Names,
        container: None,
        pod: None,
    };
    let mut out = Vec::new();
    rs.evaluate(&ctx, &mut out);
    out
}

pub fn fired(rs: &RuleSet, event: &Event) -> Vec<String> {
    alerts(rs, event).into_iter().map(|a| a.rule).collect()
}

/// A one-rule file with `condition`.
pub fn rule(condition: &str) -> String {
    format!(
        "- rule: R\n  desc: d\n  condition: {}\n  output: o\n  priority: WARNING\n",
        serde_json::to_string(condition).unwrap()
    )
}

/// Whether `condition` matches `event`.
pub fn matches(condition: &str, event: &Event) -> bool {
    let rs = load_ok(&rule(condition));
    assert_eq!(
        rs.enabled_count(),
        1,
        "{condition}: {:?}",
        rs.rules()[0].disabled_reason
    );
    !fired(&rs, event).is_empty()
}
