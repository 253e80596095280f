//! One event -> one JSON line, in the schema documented in docs/events.md.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::io::Write as _;
use std::rc::Rc;
use std::sync::{Arc, Weak};

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

/// The JSON of an image's fields, each a run of `"key":value` pairs. An image never changes
/// once made (an exec makes a new one) and most events name a process, and ancestors, seen
/// many times before, so these strings are escaped and checked for UTF-8 once per image
/// rather than once per event (they were half of the agent's CPU per event).
struct ImageJson {
    /// `comm` (and `comm_b64`).
    comm: Vec<u8>,
    /// `exe` (and `exe_b64`): all an ancestry entry shows.
    exe: Vec<u8>,
    /// `exe_truncated`, `args`, `args_b64`, `args_truncated`, after `exe`.
    args: Vec<u8>,
    /// `cwd`, `cwd_b64`, `cwd_truncated`.
    cwd: Vec<u8>,
}

impl ImageJson {
    fn new(image: &vigil_enrich::Image) -> Self {
        let mut exe = Vec::new();
        bytes_field(&mut exe, "exe", &image.exe);
        let mut args = Vec::new();
        if image.exe_truncated {
            args.extend_from_slice(b",\"exe_truncated\":true");
        }
        args.extend_from_slice(b",\"args\":");
        let list: Vec<Cow<'_, str>> = image.args.iter().map(|a| lossy(a)).collect();
        write_json(&mut args, &list);
        if let Some(b64) = b64_list_if_needed(&image.args) {
            args.extend_from_slice(b",\"args_b64\":");
            write_json(&mut args, &b64);
        }
        let _ = write!(args, ",\"args_truncated\":{}", image.args_truncated);
        let mut cwd = Vec::new();
        bytes_field(&mut cwd, "cwd", &image.cwd);
        if image.cwd_truncated {
            cwd.extend_from_slice(b",\"cwd_truncated\":true");
        }
        Self {
            comm: {
                let mut comm = Vec::new();
                bytes_field(&mut comm, "comm", &image.comm);
                comm
            },
            exe,
            args,
            cwd,
        }
    }
}

/// Rendered images by address. Each entry holds a `Weak` to its image, which keeps the
/// allocation (not the contents) alive, so an address cannot be reused by another image while
/// it is a key here. Emptied when full: a new image costs one rendering.
#[derive(Default)]
struct ImageCache {
    map: HashMap<usize, (Weak<vigil_enrich::Image>, Rc<ImageJson>), foldhash::fast::RandomState>,
}

const IMAGE_CACHE_MAX: usize = 4096;

impl ImageCache {
    fn get(&mut self, image: &Arc<vigil_enrich::Image>) -> Rc<ImageJson> {
        let key = Arc::as_ptr(image) as usize;
        if let Some((_, json)) = self.map.get(&key) {
            return json.clone();
        }
        if self.map.len() >= IMAGE_CACHE_MAX {
            self.map.clear();
        }
        let json = Rc::new(ImageJson::new(image));
        self.map.insert(key, (Arc::downgrade(image), json.clone()));
        json
    }
}

thread_local! {
    static IMAGES: RefCell<ImageCache> = RefCell::default();
}

/// `"key":"…"` for bytes that are text when they can be, and `,"key_b64":"…"` when not.
fn bytes_field(out: &mut Vec<u8>, key: &str, b: &[u8]) {
    write_json(out, key);
    out.push(b':');
    write_json(out, &lossy(b));
    if let Some(b64) = b64_if_needed(b) {
        out.extend_from_slice(b",\"");
        out.extend_from_slice(key.as_bytes());
        out.extend_from_slice(b"_b64\":");
        write_json(out, &b64);
    }
}

fn write_json<T: Serialize + ?Sized>(out: &mut Vec<u8>, v: &T) {
    serde_json::to_writer(&mut *out, v).expect("serializing plain values into a Vec cannot fail");
}

/// `,"key":value`, skipped when `v` is None.
fn opt_field<T: Serialize>(out: &mut Vec<u8>, key: &str, v: Option<T>) {
    if let Some(v) = v {
        out.push(b',');
        write_json(out, key);
        out.push(b':');
        write_json(out, &v);
    }
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
    let (image, parents) = IMAGES.with(|c| {
        let mut c = c.borrow_mut();
        let image = match proc {
            Some(p) => c.get(&p.image),
            None => Rc::new(ImageJson::new(&unknown_image(event))),
        };
        let parents: Vec<Rc<ImageJson>> = ancestry.iter().map(|a| c.get(&a.image)).collect();
        (image, parents)
    });
    let mut ppid = proc.map_or(0, |p| p.ppid);
    let mut start_time_ns = proc.map_or(0, |p| p.start_time_ns);
    let mut argc = None;
    // The comm an event carries, where it is the better name than the table's.
    let mut comm: Option<&[u8]> = None;
    let (mut fork, mut exit, mut file, mut syscall) = (None, None, None, None);
    let (mut connection, mut udp, mut dns, mut http, mut packet_drop) =
        (None, None, None, None, None);
    match event {
        Event::Exec(e) => {
            ppid = e.ppid;
            start_time_ns = e.start_time_ns;
            argc = Some(e.argc);
            if proc.is_none() {
                comm = Some(&e.comm);
            }
        }
        Event::Fork(f) => {
            // A thread's parent process is its own process: report that process's parent.
            ppid = if f.thread {
                proc.map_or(f.parent_tgid, |p| p.ppid)
            } else {
                f.parent_tgid
            };
            start_time_ns = f.start_time_ns;
            fork = Some(ForkOut {
                thread: f.thread,
                parent_pid: f.parent_tgid,
                parent_tid: f.parent_pid,
            });
        }
        Event::Exit(x) => {
            ppid = x.ppid;
            start_time_ns = x.start_time_ns;
            comm = Some(&x.comm);
            exit = Some(ExitOut {
                code: x.code,
                signal: x.signal,
                core_dumped: x.core_dumped,
                lifetime_ns: h.time_ns.saturating_sub(x.start_time_ns),
            });
        }
        Event::File(f) => file = Some(crate::activity::file(f)),
        Event::Syscall(s) => syscall = Some(crate::activity::syscall(s)),
        // Network events name their process by its socket; without a table entry, say what
        // the kernel recorded.
        Event::Conn(c) => {
            connection = Some(crate::network::conn(c, ctx.ip_names));
            if proc.is_none() {
                comm = Some(&c.comm);
            }
        }
        Event::Udp(u) => {
            udp = Some(crate::network::udp(u, ctx.ip_names, ctx.clock));
            if proc.is_none() {
                comm = Some(&u.comm);
            }
        }
        Event::Dns(d) => dns = Some(crate::network::dns(d)),
        Event::Http(h) => http = Some(crate::network::http(h, ctx.ip_names)),
        Event::Drop(d) => packet_drop = Some(crate::network::drop(d)),
        Event::Capture(_) | Event::Enforce(_) | Event::Cgroup(_) => {}
    }

    out.extend_from_slice(b"{\"kind\":");
    write_json(out, h.kind.name());
    out.extend_from_slice(b",\"id\":");
    write_json(out, &ctx.id);
    out.extend_from_slice(b",\"time\":");
    write_json(out, &ctx.clock.rfc3339(h.time_ns));
    out.extend_from_slice(b",\"host\":");
    write_json(out, ctx.host);
    out.extend_from_slice(b",\"cgroup_id\":");
    write_json(out, &h.cgroup_id);
    opt_field(
        out,
        "container",
        ctx.container.map(|c| container_out(c, ctx.pod)),
    );
    opt_field(out, "pod", ctx.pod.map(pod_out));

    out.extend_from_slice(b",\"process\":{\"pid\":");
    write_json(out, &h.tgid);
    out.extend_from_slice(b",\"tid\":");
    write_json(out, &h.pid);
    out.extend_from_slice(b",\"ppid\":");
    write_json(out, &ppid);
    out.extend_from_slice(b",\"start_time\":");
    write_json(out, &ctx.clock.rfc3339(start_time_ns));
    out.push(b',');
    match comm {
        Some(c) => bytes_field(out, "comm", c),
        None => out.extend_from_slice(&image.comm),
    }
    out.push(b',');
    out.extend_from_slice(&image.exe);
    out.extend_from_slice(&image.args);
    opt_field(out, "argc", argc);
    out.push(b',');
    out.extend_from_slice(&image.cwd);
    out.extend_from_slice(b",\"uid\":");
    write_json(out, &proc.map(|p| p.uid));
    out.extend_from_slice(b",\"gid\":");
    write_json(out, &proc.map(|p| p.gid));
    out.extend_from_slice(b",\"euid\":");
    write_json(out, &proc.map(|p| p.euid));
    out.extend_from_slice(b",\"egid\":");
    write_json(out, &proc.map(|p| p.egid));
    out.extend_from_slice(b",\"loginuid\":");
    write_json(out, &proc.and_then(|p| p.loginuid));
    out.extend_from_slice(b",\"tty\":");
    write_json(out, &proc.and_then(|p| tty_name(p.tty_dev)));
    out.extend_from_slice(b"},\"ancestry\":[");
    for (i, (a, json)) in ancestry.iter().zip(&parents).enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"pid\":");
        write_json(out, &a.pid);
        out.push(b',');
        out.extend_from_slice(&json.exe);
        out.push(b'}');
    }
    out.push(b']');
    opt_field(out, "fork", fork);
    opt_field(out, "exit", exit);
    opt_field(out, "file", file);
    opt_field(out, "syscall", syscall);
    opt_field(out, "connection", connection);
    opt_field(out, "udp", udp);
    opt_field(out, "dns", dns);
    opt_field(out, "http", http);
    opt_field(out, "drop", packet_drop);
    out.extend_from_slice(b"}\n");
}

/// The image of a process the table never knew: empty, but for the exe an exit event carries
/// (a process gone before the agent's /proc scan).
fn unknown_image(event: &Event) -> vigil_enrich::Image {
    match event {
        Event::Exit(vigil_events::Exit {
            exe: Some(exe),
            exe_truncated,
            ..
        }) => vigil_enrich::Image {
            exe: exe.clone(),
            exe_truncated: *exe_truncated,
            ..Default::default()
        },
        _ => vigil_enrich::Image::default(),
    }
}

fn pod_out(p: &vigil_identity::PodMeta) -> PodOut<'_> {
    PodOut {
        namespace: &p.namespace,
        name: &p.name,
        uid: &p.uid,
        labels: &p.labels,
        owner: p.owner.as_ref(),
    }
}

fn container_out<'a>(
    c: &'a vigil_identity::ContainerRef,
    pod: Option<&'a vigil_identity::PodMeta>,
) -> ContainerOut<'a> {
    let meta = pod.and_then(|p| {
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

    // The straightforward rendering (serde structs, nothing cached) the cached one must match
    // byte for byte.
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

    #[derive(Serialize)]
    struct AncestorOut<'a> {
        pid: u32,
        exe: Cow<'a, str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        exe_b64: Option<String>,
    }

    fn is_false(b: &bool) -> bool {
        !*b
    }

    /// Appends the JSON line (with its newline) for `event` to `out`.
    ///
    /// `proc` is the subject's table entry (exec/fork: after applying the event; exit: before
    /// retiring it); `ancestry` starts at the subject's parent in its original lineage, while
    /// `process.ppid` is the parent the kernel reports now (a reaper, for orphans).
    fn reference_render(
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
                // A process the table never knew (gone before the agent's /proc scan): the kernel's.
                if let (None, Some(exe)) = (proc, &x.exe) {
                    process.exe = lossy(exe);
                    process.exe_b64 = b64_if_needed(exe);
                    process.exe_truncated = x.exe_truncated;
                }
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
            container: ctx.container.map(|c| container_out(c, ctx.pod)),
            pod: ctx.pod.map(pod_out),
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

    fn header(kind: vigil_events::Kind) -> vigil_events::Header {
        vigil_events::Header {
            kind,
            time_ns: 5_000_000_000,
            pid: 101,
            tgid: 100,
            cgroup_id: 7,
        }
    }

    fn image(exe: &[u8], args: &[&[u8]], truncated: bool) -> Arc<vigil_enrich::Image> {
        Arc::new(vigil_enrich::Image {
            exe: exe.to_vec(),
            args: args.iter().map(|a| a.to_vec()).collect(),
            args_truncated: truncated,
            exe_truncated: truncated,
            cwd: b"/srv/\"q\"\n".to_vec(),
            cwd_truncated: truncated,
            comm: b"sh\xff".to_vec(),
        })
    }

    fn proc_info(image: Arc<vigil_enrich::Image>) -> ProcInfo {
        ProcInfo {
            tgid: 100,
            ppid: 50,
            start_time_ns: 4_000_000_000,
            image,
            uid: 1000,
            gid: 1000,
            euid: 0,
            egid: 0,
            loginuid: Some(1000),
            tty_dev: (136 << 20) | 2,
            cgroup_id: 7,
            exited: false,
        }
    }

    fn events() -> Vec<Event> {
        use vigil_events::{Exec, Exit, Fork, Kind};
        vec![
            Event::Exec(Exec {
                header: header(Kind::Exec),
                start_time_ns: 4_500_000_000,
                ppid: 51,
                uid: 0,
                gid: 0,
                euid: 0,
                egid: 0,
                loginuid: None,
                tty_dev: 0,
                comm: b"bash".to_vec(),
                exe: b"/bin/bash".to_vec(),
                exe_truncated: false,
                cwd: b"/".to_vec(),
                cwd_truncated: false,
                args: vec![],
                args_truncated: false,
                argc: 3,
            }),
            Event::Fork(Fork {
                header: header(Kind::Fork),
                start_time_ns: 4_600_000_000,
                parent_pid: 100,
                parent_tgid: 100,
                thread: true,
                comm: b"w".to_vec(),
            }),
            Event::Exit(Exit {
                header: header(Kind::Exit),
                start_time_ns: 4_000_000_000,
                ppid: 1,
                code: None,
                signal: Some(9),
                core_dumped: false,
                comm: b"gone\x80".to_vec(),
                exe: Some(b"/usr/bin/true".to_vec()),
                exe_truncated: true,
            }),
        ]
    }

    /// Every event, with and without a table entry, with text, invalid UTF-8, escapes and
    /// truncation flags, twice (the second from the cache): the same bytes as the reference.
    #[test]
    fn cached_rendering_matches_the_reference() {
        let clock = Clock::now();
        let ctx = Context {
            host: "node-1",
            clock: &clock,
            id: 42,
            ip_names: &|_| None,
            container: None,
            pod: None,
        };
        let subject = image(b"/usr/bin/sh", &[b"sh", b"-c", b"echo \"\xfe\"\t"], true);
        let parent = image(b"/usr/lib/systemd/\xc3\x28d", &[], false);
        let ancestry = [
            Ancestor {
                pid: 50,
                image: parent.clone(),
            },
            Ancestor {
                pid: 1,
                image: parent,
            },
        ];
        let info = proc_info(subject);
        for event in events() {
            for proc in [Some(&info), None] {
                for _ in 0..2 {
                    let (mut fast, mut reference) = (Vec::new(), Vec::new());
                    render(&event, proc, &ancestry, &ctx, &mut fast);
                    reference_render(&event, proc, &ancestry, &ctx, &mut reference);
                    assert_eq!(
                        String::from_utf8_lossy(&fast),
                        String::from_utf8_lossy(&reference)
                    );
                    serde_json::from_slice::<serde_json::Value>(&fast).expect("valid JSON");
                }
            }
        }
    }

    /// A new image at the address of a dropped one is rendered anew, never served stale.
    #[test]
    fn a_dropped_image_is_never_served_for_a_new_one() {
        let mut cache = ImageCache::default();
        for i in 0..100 {
            let img = image(format!("/bin/p{i}").as_bytes(), &[], false);
            let json = cache.get(&img);
            let expected = format!("\"exe\":\"/bin/p{i}\"");
            assert_eq!(String::from_utf8_lossy(&json.exe), expected);
        }
    }

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
