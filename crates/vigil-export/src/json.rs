//! One event -> one JSON line, in the schema documented in docs/events.md.

use std::borrow::Cow;

use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use vigil_enrich::{Ancestor, ProcInfo};
use vigil_events::Event;

use crate::text::{b64_if_needed, b64_list_if_needed, lossy};

/// Converts kernel CLOCK_BOOTTIME stamps to wall-clock time.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    boot_to_unix_ns: i128,
}

impl Clock {
    /// Samples both clocks now; call again now and then to follow wall-clock adjustments.
    pub fn now() -> Self {
        let read = |id| {
            let mut ts = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            // SAFETY: ts is a valid out-pointer for clock_gettime.
            unsafe { libc::clock_gettime(id, &mut ts) };
            i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec)
        };
        let boot = read(libc::CLOCK_BOOTTIME);
        let real = read(libc::CLOCK_REALTIME);
        Self {
            boot_to_unix_ns: real - boot,
        }
    }

    /// Adopts `newer` only if the wall clock really moved (more than 1 ms): re-sampling jitters
    /// by ~0.2 µs, and a stable offset keeps (pid, start_time) usable as a process key.
    pub fn follow(&mut self, newer: Clock) {
        if (newer.boot_to_unix_ns - self.boot_to_unix_ns).abs() > 1_000_000 {
            *self = newer;
        }
    }

    pub fn unix_ns(&self, boot_ns: u64) -> i128 {
        i128::from(boot_ns) + self.boot_to_unix_ns
    }

    /// RFC 3339 UTC with nanoseconds.
    pub fn rfc3339(&self, boot_ns: u64) -> String {
        OffsetDateTime::from_unix_timestamp_nanos(self.unix_ns(boot_ns))
            .ok()
            .and_then(|t| t.format(&Rfc3339).ok())
            .unwrap_or_default()
    }
}

/// Everything a line needs besides the event itself.
pub struct Context<'a> {
    pub host: &'a str,
    pub clock: &'a Clock,
    /// This event's number in the agent's run (alerts name it as `event_id`).
    pub id: u64,
    /// DNS names learned for remote addresses.
    pub ip_names: crate::IpNames<'a>,
    /// The container of the event's cgroup, if any.
    pub container: Option<&'a vigil_identity::ContainerRef>,
    /// Its Kubernetes pod, when known from the Kubernetes API.
    pub pod: Option<&'a vigil_identity::PodMeta>,
}

impl std::fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("host", &self.host)
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct Line<'a> {
    kind: &'static str,
    id: u64,
    time: String,
    host: &'a str,
    cgroup_id: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    container: Option<ContainerOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pod: Option<PodOut<'a>>,
    process: Process<'a>,
    ancestry: Vec<AncestorOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fork: Option<ForkOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exit: Option<ExitOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<crate::activity::FileOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    syscall: Option<crate::activity::SyscallOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    connection: Option<crate::network::ConnOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    udp: Option<crate::network::UdpOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dns: Option<crate::network::DnsOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    http: Option<crate::network::HttpOut>,
    #[serde(rename = "drop", skip_serializing_if = "Option::is_none")]
    packet_drop: Option<crate::network::DropOut>,
}

#[derive(Serialize)]
struct Process<'a> {
    pid: u32,
    tid: u32,
    ppid: u32,
    start_time: String,
    comm: Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    comm_b64: Option<String>,
    exe: Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exe_b64: Option<String>,
    #[serde(skip_serializing_if = "is_false")]
    exe_truncated: bool,
    args: Vec<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    args_b64: Option<Vec<String>>,
    args_truncated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    argc: Option<u32>,
    cwd: Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cwd_b64: Option<String>,
    #[serde(skip_serializing_if = "is_false")]
    cwd_truncated: bool,
    uid: Option<u32>,
    gid: Option<u32>,
    euid: Option<u32>,
    egid: Option<u32>,
    loginuid: Option<u32>,
    tty: Option<String>,
}

/// The container of the event's cgroup, from its cgroup path (docs/identity.md).
#[derive(Serialize)]
struct ContainerOut<'a> {
    id: &'a str,
    runtime: &'static str,
    /// From the pod's spec when the Kubernetes API is watched, else from the runtime's API.
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    image: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pod_uid: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    qos: Option<&'static str>,
}

/// The pod of the event's container, from the Kubernetes API (docs/identity.md).
#[derive(Serialize)]
struct PodOut<'a> {
    namespace: &'a str,
    name: &'a str,
    uid: &'a str,
    labels: &'a std::collections::BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    owner: Option<&'a vigil_identity::Owner>,
}

#[derive(Serialize)]
struct AncestorOut<'a> {
    pid: u32,
    exe: Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exe_b64: Option<String>,
}

#[derive(Serialize)]
struct ForkOut {
    thread: bool,
    parent_pid: u32,
    parent_tid: u32,
}

#[derive(Serialize)]
struct ExitOut {
    code: Option<u8>,
    signal: Option<u8>,
    core_dumped: bool,
    lifetime_ns: u64,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Appends the JSON line (with its newline) for `event` to `out`.
///
/// `proc` is the subject's table entry (exec/fork: after applying the event; exit: before
/// retiring it); `ancestry` starts at the subject's parent in its original lineage, while
/// `process.ppid` is the parent the kernel reports now (a reaper, for orphans).
pub fn render(
    event: &Event,
    proc: Option<&ProcInfo>,
    ancestry: &[Ancestor],
    ctx: &Context<'_>,
    out: &mut Vec<u8>,
) {
    let h = event.header();
    let empty = vigil_enrich::Image::default();
    let image = proc.map(|p| &*p.image).unwrap_or(&empty);
    let mut process = Process {
        pid: h.tgid,
        tid: h.pid,
        ppid: proc.map_or(0, |p| p.ppid),
        start_time: ctx.clock.rfc3339(proc.map_or(0, |p| p.start_time_ns)),
        comm: lossy(&image.comm),
        comm_b64: b64_if_needed(&image.comm),
        exe: lossy(&image.exe),
        exe_b64: b64_if_needed(&image.exe),
        exe_truncated: image.exe_truncated,
        args: image.args.iter().map(|a| lossy(a)).collect(),
        args_b64: b64_list_if_needed(&image.args),
        args_truncated: image.args_truncated,
        argc: None,
        cwd: lossy(&image.cwd),
        cwd_b64: b64_if_needed(&image.cwd),
        cwd_truncated: image.cwd_truncated,
        uid: proc.map(|p| p.uid),
        gid: proc.map(|p| p.gid),
        euid: proc.map(|p| p.euid),
        egid: proc.map(|p| p.egid),
        loginuid: proc.and_then(|p| p.loginuid),
        tty: proc.and_then(|p| tty_name(p.tty_dev)),
    };
    let (mut fork, mut exit, mut file, mut syscall) = (None, None, None, None);
    let (mut connection, mut udp, mut dns, mut http, mut packet_drop) =
        (None, None, None, None, None);
    // Network events name their process by its socket; without a table entry, say what the
    // kernel recorded.
    let net_comm = match event {
        Event::Conn(c) => Some(&c.comm),
        Event::Udp(u) => Some(&u.comm),
        _ => None,
    };
    if let (None, Some(c)) = (proc, net_comm) {
        process.comm = lossy(c);
        process.comm_b64 = b64_if_needed(c);
    }
    match event {
        Event::Exec(e) => {
            process.ppid = e.ppid;
            process.start_time = ctx.clock.rfc3339(e.start_time_ns);
            process.argc = Some(e.argc);
            if proc.is_none() {
                process.comm = lossy(&e.comm);
                process.comm_b64 = b64_if_needed(&e.comm);
            }
        }
        Event::Fork(f) => {
            // A thread's parent process is its own process: report that process's parent.
            process.ppid = if f.thread {
                proc.map_or(f.parent_tgid, |p| p.ppid)
            } else {
                f.parent_tgid
            };
            process.start_time = ctx.clock.rfc3339(f.start_time_ns);
            fork = Some(ForkOut {
                thread: f.thread,
                parent_pid: f.parent_tgid,
                parent_tid: f.parent_pid,
            });
        }
        Event::Exit(x) => {
            process.ppid = x.ppid;
            process.start_time = ctx.clock.rfc3339(x.start_time_ns);
            process.comm = lossy(&x.comm);
            process.comm_b64 = b64_if_needed(&x.comm);
            exit = Some(ExitOut {
                code: x.code,
                signal: x.signal,
                core_dumped: x.core_dumped,
                lifetime_ns: h.time_ns.saturating_sub(x.start_time_ns),
            });
        }
        Event::File(f) => file = Some(crate::activity::file(f)),
        Event::Syscall(s) => syscall = Some(crate::activity::syscall(s)),
        Event::Conn(c) => connection = Some(crate::network::conn(c, ctx.ip_names)),
        Event::Udp(u) => udp = Some(crate::network::udp(u, ctx.ip_names, ctx.clock)),
        Event::Dns(d) => dns = Some(crate::network::dns(d)),
        Event::Http(h) => http = Some(crate::network::http(h, ctx.ip_names)),
        Event::Drop(d) => packet_drop = Some(crate::network::drop(d)),
        Event::Capture(_) | Event::Enforce(_) | Event::Cgroup(_) => {}
    }
    let line = Line {
        kind: h.kind.name(),
        id: ctx.id,
        time: ctx.clock.rfc3339(h.time_ns),
        host: ctx.host,
        cgroup_id: h.cgroup_id,
        container: ctx.container.map(|c| {
            let meta = ctx.pod.and_then(|p| {
                p.containers
                    .iter()
                    .find(|m| m.id.as_deref() == Some(c.id.as_str()))
            });
            // The pod spec first (Kubernetes' names), else the runtime's API.
            let rt = c.meta.as_deref();
            ContainerOut {
                id: &c.id,
                runtime: c.runtime.as_str(),
                name: meta
                    .map(|m| m.name.as_str())
                    .or(rt.map(|m| m.name.as_str())),
                image: meta
                    .map(|m| m.image.as_str())
                    .or(rt.map(|m| m.image.as_str()))
                    .filter(|i| !i.is_empty()),
                pod_uid: c.pod_uid.as_deref(),
                qos: c.qos.map(|q| q.as_str()),
            }
        }),
        pod: ctx.pod.map(|p| PodOut {
            namespace: &p.namespace,
            name: &p.name,
            uid: &p.uid,
            labels: &p.labels,
            owner: p.owner.as_ref(),
        }),
        process,
        ancestry: ancestry
            .iter()
            .map(|a| AncestorOut {
                pid: a.pid,
                exe: lossy(&a.image.exe),
                exe_b64: b64_if_needed(&a.image.exe),
            })
            .collect(),
        fork,
        exit,
        file,
        syscall,
        connection,
        udp,
        dns,
        http,
        packet_drop,
    };
    serde_json::to_writer(&mut *out, &line)
        .expect("serializing plain structs into a Vec cannot fail");
    out.push(b'\n');
}

/// Terminal name from (major << 20) | minor, as `ps` shows it.
pub fn tty_name(dev: u32) -> Option<String> {
    if dev == 0 {
        return None;
    }
    let (major, minor) = (dev >> 20, dev & 0xfffff);
    Some(match major {
        136..=143 => format!("pts/{}", (major - 136) * 256 + minor),
        4 if minor < 64 => format!("tty{minor}"),
        4 => format!("ttyS{}", minor - 64),
        5 if minor == 0 => "tty".into(),
        5 if minor == 1 => "console".into(),
        _ => format!("{major}:{minor}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tty_names() {
        assert_eq!(tty_name(0), None);
        assert_eq!(tty_name((136 << 20) | 3).as_deref(), Some("pts/3"));
        assert_eq!(tty_name((4 << 20) | 65).as_deref(), Some("ttyS1"));
        assert_eq!(tty_name((4 << 20) | 2).as_deref(), Some("tty2"));
    }

    #[test]
    fn clock_is_close_to_now() {
        let c = Clock::now();
        let unix = c.unix_ns(0);
        assert!(unix > 1_600_000_000_000_000_000 && unix < 4_000_000_000_000_000_000);
    }
}
