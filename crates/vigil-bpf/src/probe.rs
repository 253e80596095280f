//! Feature probes: which hooks, helpers and sensors work on this kernel, and why not.
//!
//! "Supported" is established by loading (and, for tracing hooks, attaching) a trivial program
//! of each kind, because libbpf's type probes say nothing about e.g. tp_btf vs fentry, and a
//! kernel may have a program type yet refuse it (lockdown, missing config). Results are cached.

use std::mem::MaybeUninit;
use std::sync::OnceLock;

use libbpf_rs::btf::Btf;
use libbpf_rs::skel::{OpenSkel, Skel, SkelBuilder};
use libbpf_rs::{OpenObject, ProgramType};
use serde::Serialize;

use crate::mounts::{self, MountState};
use crate::skel::enforce::EnforceSkelBuilder;
use crate::skel::file::FileSkelBuilder;
use crate::skel::latency::LatencySkelBuilder;
use crate::skel::net::NetSkelBuilder;
use crate::skel::probe::ProbeSkelBuilder;
use crate::skel::process::ProcessSkelBuilder;
use crate::skel::syscalls::SyscallsSkelBuilder;
use crate::{SensorConfig, Sensors};

/// Outcome of one probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Supported,
    Unsupported,
    Failed,
}

/// One probed item with a human reason.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: String,
    pub status: Status,
    pub detail: String,
}

/// Everything `vigil probe` reports.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeReport {
    pub kernel: String,
    pub mounts: Vec<MountState>,
    pub hooks: Vec<Check>,
    pub helpers: Vec<Check>,
    pub sensors: Vec<Check>,
    pub capabilities: Vec<Check>,
    pub requirements: Requirements,
}

/// (program in probe.bpf.c, hook kind shown to users, attach it too?)
const HOOKS: &[(&str, &str, bool)] = &[
    ("probe_tp_btf", "tp_btf", true),
    ("probe_raw_tp", "raw_tp", true),
    ("probe_tracepoint", "tracepoint", true),
    ("probe_kprobe", "kprobe", true),
    ("probe_fentry", "fentry", true),
    ("probe_lsm", "lsm", true),
    ("probe_perf_event", "perf_event", false),
    ("probe_tc", "tc", false),
    ("probe_xdp", "xdp", false),
    ("probe_cgroup_skb", "cgroup_skb", false),
    ("probe_cgroup_sock_addr", "cgroup_sock_addr", false),
];

const HELPERS: &[(&str, &str)] = &[
    ("probe_bpf_loop", "bpf_loop"),
    ("probe_ringbuf_output", "ringbuf"),
];

/// Tracepoints the process sensor attaches to (as tp_btf).
const PROCESS_HOOKS: &[&str] = &[
    "sched_process_exec",
    "sched_process_fork",
    "sched_process_exit",
];

/// Probes hooks and helpers once per process.
fn cached_programs() -> &'static (Vec<Check>, Vec<Check>) {
    static CACHE: OnceLock<(Vec<Check>, Vec<Check>)> = OnceLock::new();
    CACHE.get_or_init(|| {
        // Expected failures (EPERM, ENOENT) are the answer here, not news: keep libbpf quiet.
        let previous = libbpf_rs::set_print(None);
        let hooks = HOOKS.iter().map(|(p, n, a)| probe_one(p, n, *a)).collect();
        let helpers = HELPERS
            .iter()
            .map(|(p, n)| probe_one(p, n, false))
            .collect();
        libbpf_rs::set_print(previous);
        (hooks, helpers)
    })
}

/// Runs every probe, including a real load and attach of each sensor.
pub fn run() -> ProbeReport {
    let mounts = mounts::ensure();
    let (hooks, helpers) = cached_programs().clone();
    let loaded = Sensors::load(&SensorConfig::default()).and_then(|mut s| s.attach().map(|()| s));
    let (sensors, capabilities) = match loaded {
        Ok(s) => {
            let sensors = s
                .reports()
                .iter()
                .map(|r| Check {
                    name: r.name.into(),
                    status: Status::Supported,
                    detail: if r.unavailable.is_empty() {
                        format!("{} programs attached", r.programs.len())
                    } else {
                        format!(
                            "{} programs attached; unavailable: {}",
                            r.programs.len(),
                            r.unavailable.join("; ")
                        )
                    },
                })
                .collect();
            (sensors, capabilities(s.reports()))
        }
        Err(e) => {
            let status = if matches!(e, crate::LoadError::Unsupported { .. }) {
                Status::Unsupported
            } else {
                Status::Failed
            };
            let c = Check {
                name: "sensors".into(),
                status,
                detail: format!("{e:#}"),
            };
            (vec![c.clone()], vec![c])
        }
    };
    ProbeReport {
        kernel: kernel_release(),
        requirements: requirements(&mounts),
        mounts,
        hooks,
        helpers,
        sensors,
        capabilities,
    }
}

/// What users can rely on, derived from which programs attached.
fn capabilities(reports: &[crate::SensorReport]) -> Vec<Check> {
    let has = |prog: &str| reports.iter().any(|r| r.programs.iter().any(|p| p == prog));
    let cap = |name: &str, progs: &[&str]| {
        let missing: Vec<&str> = progs.iter().copied().filter(|p| !has(p)).collect();
        Check {
            name: name.into(),
            status: if missing.is_empty() {
                Status::Supported
            } else {
                Status::Unsupported
            },
            detail: if missing.is_empty() {
                "live".into()
            } else {
                format!("missing hooks: {}", missing.join(", "))
            },
        }
    };
    vec![
        cap("process events (exec, fork, exit)", &["vigil_exec", "vigil_fork", "vigil_exit"]),
        cap("file events (open, unlink, rename, mkdir, chmod, chown, link, symlink, truncate)", &["vigil_file_openat", "vigil_file_unlinkat", "vigil_file_renameat2"]),
        cap("privilege changes (setuid family, capset)", &["vigil_sys_setuid", "vigil_sys_setresuid", "vigil_sys_capset"]),
        cap("namespaces and mounts (unshare, setns, clone, mount, chroot, pivot_root)", &["vigil_sys_unshare", "vigil_sys_setns", "vigil_sys_mount", "vigil_sys_pivot_root"]),
        cap("ptrace, memfd_create, execveat, bpf, raw/packet sockets, dup2 of sockets, signals, prctl", &["vigil_sys_ptrace", "vigil_sys_memfd_create", "vigil_sys_execveat", "vigil_sys_bpf", "vigil_sys_socket", "vigil_sys_dup2", "vigil_sys_kill", "vigil_sys_prctl"]),
        cap("kernel module loading (init_module, finit_module)", &["vigil_sys_init_module", "vigil_sys_finit_module"]),
        cap("io_uring submissions", &["vigil_sys_io_uring_submit"]),
        cap("TCP connections (connect, accept, failures, close with counters)", &["vigil_tcp_state", "vigil_tcp_destroy", "vigil_accept4"]),
        cap("UDP flows, DNS and HTTP/1.x", &["vigil_skb_egress", "vigil_skb_ingress"]),
        cap("packet drops with reasons", &["vigil_kfree_skb"]),
    ]
}

/// Why a program's hook (its ELF section) does not exist on this kernel, if it does not.
pub fn hook_missing(section: &str) -> Option<String> {
    hook_missing_in(section, &mut None)
}

/// The kernel's BTF, parsed on first use (20 ms or more each time).
type LazyBtf = Option<Result<Btf<'static>, String>>;

/// [`hook_missing`], parsing the kernel's BTF at most once over calls sharing `btf`.
fn hook_missing_in(section: &str, btf: &mut LazyBtf) -> Option<String> {
    if let Some(tp) = section.strip_prefix("tracepoint/") {
        let Some(events) = crate::sensors::tracefs_events() else {
            return Some("tracefs is not mounted".into());
        };
        return (!events.join(tp).is_dir())
            .then(|| format!("tracepoint {tp} does not exist on this kernel"));
    }
    if let Some(tp) = section.strip_prefix("tp_btf/") {
        let btf = match btf.get_or_insert_with(|| Btf::from_vmlinux().map_err(|e| e.to_string())) {
            Ok(b) => b,
            Err(e) => return Some(format!("no kernel BTF: {e}")),
        };
        return btf
            .type_by_name::<libbpf_rs::btf::BtfType>(&format!("btf_trace_{tp}"))
            .is_none()
            .then(|| format!("tracepoint {tp} does not exist on this kernel"));
    }
    None
}

/// Why a sensor cannot run here at all, if the kernel lacks something it needs.
pub fn sensor_missing(sensor: &str) -> Option<String> {
    let (hooks, helpers) = cached_programs();
    let needs: &[&str] = match sensor {
        "process" => &["tp_btf", "bpf_loop", "ringbuf"],
        "net" => &["tp_btf", "cgroup_skb", "ringbuf"],
        _ => &["tracepoint", "bpf_loop", "ringbuf"],
    };
    for c in hooks
        .iter()
        .chain(helpers.iter())
        .filter(|c| needs.contains(&c.name.as_str()))
    {
        if c.status != Status::Supported {
            return Some(format!("{} unavailable: {}", c.name, c.detail));
        }
    }
    if sensor == "process" {
        for tp in PROCESS_HOOKS {
            if let Some(why) = hook_missing(&format!("tp_btf/{tp}")) {
                return Some(why);
            }
        }
    }
    None
}

fn probe_one(prog: &str, name: &str, attach: bool) -> Check {
    let check = |status, detail: String| Check {
        name: name.into(),
        status,
        detail,
    };
    let mut storage = MaybeUninit::<OpenObject>::uninit();
    let mut open = match ProbeSkelBuilder::default().open(&mut storage) {
        Ok(o) => o,
        Err(e) => return check(Status::Failed, format!("opening probe object: {e}")),
    };
    for mut p in open.open_object_mut().progs_mut() {
        let wanted = p.name() == prog;
        p.set_autoload(wanted);
    }
    let mut obj = match open.load() {
        Ok(s) => s,
        Err(e) => return errno_check(name, "load", e),
    };
    // Only `prog` is loaded, so attaching the skeleton attaches just that program.
    if attach {
        if let Err(e) = obj.attach() {
            return errno_check(name, "attach", e);
        }
    }
    check(
        Status::Supported,
        if attach {
            "loads and attaches".into()
        } else {
            "loads".into()
        },
    )
}

/// Errors that mean "this kernel will not do it" rather than "something broke".
fn errno_check(name: &str, stage: &str, e: libbpf_rs::Error) -> Check {
    let unsupported = matches!(
        e.kind(),
        libbpf_rs::ErrorKind::PermissionDenied
            | libbpf_rs::ErrorKind::InvalidInput
            | libbpf_rs::ErrorKind::NotFound
            | libbpf_rs::ErrorKind::Unsupported
    ) || e.to_string().contains("524");
    Check {
        name: name.into(),
        status: if unsupported {
            Status::Unsupported
        } else {
            Status::Failed
        },
        detail: format!("{stage}: {e}"),
    }
}

/// What the agent needs from its host on this kernel. Deployment manifests (deploy/) grant
/// exactly this, and a test holds them to it; so it is derived from the embedded BPF objects and
/// what the agent reads, not written down separately.
#[derive(Debug, Clone, Serialize)]
pub struct Requirements {
    pub capabilities: Vec<CapabilityNeed>,
    pub filesystems: Vec<FilesystemNeed>,
    /// Host namespaces the agent must share (in a container).
    pub host_namespaces: Vec<NamespaceNeed>,
    /// Capabilities of one feature that the deployments do not grant: the agent runs without
    /// them and says at start what it lacks; `why` gives the alternative.
    pub optional: Vec<CapabilityNeed>,
    /// Embedded objects that could not be opened: their needs are missing above.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unreadable: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CapabilityNeed {
    /// As in capabilities(7), e.g. `CAP_BPF`.
    pub name: &'static str,
    /// Whether this process has it (effective set) now.
    pub held: bool,
    pub why: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct FilesystemNeed {
    pub path: String,
    /// Filesystem type, or `file` for a single file.
    pub fs: &'static str,
    pub writable: bool,
    pub why: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct NamespaceNeed {
    /// As in namespaces(7): `pid`, `net`.
    pub name: &'static str,
    pub why: &'static str,
}

/// A program of the embedded objects whose hook exists on this kernel.
struct EmbeddedProgram {
    object: &'static str,
    ty: ProgramType,
    section: String,
}

/// Opens (does not load: no privilege needed) every object the agent may load.
fn embedded_programs() -> (Vec<EmbeddedProgram>, Vec<String>) {
    fn add<'o, B: SkelBuilder<'o>>(
        object: &'static str,
        builder: B,
        storage: &'o mut MaybeUninit<OpenObject>,
        out: &mut (Vec<EmbeddedProgram>, Vec<String>),
        btf: &mut LazyBtf,
    ) {
        let open = match builder.open(storage) {
            Ok(o) => o,
            Err(e) => return out.1.push(format!("{object}: {e}")),
        };
        for p in open.open_object().progs() {
            let section = p.section().to_string_lossy().into_owned();
            if hook_missing_in(&section, btf).is_none() {
                out.0.push(EmbeddedProgram {
                    object,
                    ty: p.prog_type(),
                    section,
                });
            }
        }
    }
    let mut out = (Vec::new(), Vec::new());
    let mut btf = None;
    add(
        "process",
        ProcessSkelBuilder::default(),
        &mut MaybeUninit::uninit(),
        &mut out,
        &mut btf,
    );
    add(
        "file",
        FileSkelBuilder::default(),
        &mut MaybeUninit::uninit(),
        &mut out,
        &mut btf,
    );
    add(
        "syscalls",
        SyscallsSkelBuilder::default(),
        &mut MaybeUninit::uninit(),
        &mut out,
        &mut btf,
    );
    add(
        "net",
        NetSkelBuilder::default(),
        &mut MaybeUninit::uninit(),
        &mut out,
        &mut btf,
    );
    add(
        "latency",
        LatencySkelBuilder::default(),
        &mut MaybeUninit::uninit(),
        &mut out,
        &mut btf,
    );
    add(
        "enforce",
        EnforceSkelBuilder::default(),
        &mut MaybeUninit::uninit(),
        &mut out,
        &mut btf,
    );
    out
}

/// Capability numbers from linux/capability.h.
const CAP_NET_ADMIN: u32 = 12;
const CAP_SYS_PTRACE: u32 = 19;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// This process's effective capabilities, as the bit mask of /proc/self/status.
fn effective_caps() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let hex = s.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
            u64::from_str_radix(hex.trim(), 16).ok()
        })
        .unwrap_or(0)
}

/// The capabilities, filesystems and host namespaces the agent needs here, each with why.
/// `mounts` says where tracefs is. Not needed (measured by running the agent without them):
/// CAP_SYS_ADMIN (but see `optional`; and to mount bpffs or tracefs when absent),
/// CAP_SYS_RESOURCE (BPF memory is charged to the memory cgroup, not RLIMIT_MEMLOCK),
/// CAP_DAC_* (the files read are root's), CAP_KILL (enforcement kills from the kernel).
pub fn requirements(mounts: &[MountState]) -> Requirements {
    use ProgramType as T;
    let (progs, unreadable) = embedded_programs();
    let count = |f: &dyn Fn(&EmbeddedProgram) -> bool| progs.iter().filter(|p| f(p)).count();
    let effective = effective_caps();
    let mut capabilities = Vec::new();
    let mut cap = |name, bit: u32, why: String| {
        capabilities.push(CapabilityNeed {
            name,
            held: effective & (1 << bit) != 0,
            why,
        })
    };
    let mut objects: Vec<&str> = progs.iter().map(|p| p.object).collect();
    objects.dedup();
    cap(
        "CAP_BPF",
        CAP_BPF,
        format!(
            "create maps and load programs (bpf(2)): {} programs in the {} objects",
            progs.len(),
            objects.join(", ")
        ),
    );
    let tracing = count(&|p| {
        matches!(
            p.ty,
            T::Tracing | T::Tracepoint | T::RawTracepoint | T::Kprobe | T::PerfEvent | T::Lsm
        )
    });
    if tracing > 0 {
        cap(
            "CAP_PERFMON",
            CAP_PERFMON,
            format!("load {tracing} tracing programs (tp_btf, raw_tp, tracepoint), which read kernel memory, and attach them"),
        );
    }
    let cgroup = count(&|p| matches!(p.ty, T::CgroupSkb | T::CgroupSockAddr | T::CgroupSock));
    if cgroup > 0 {
        cap(
            "CAP_NET_ADMIN",
            CAP_NET_ADMIN,
            format!("attach {cgroup} cgroup programs to the cgroup v2 root (cgroup_skb: network sensor; connect, sendmsg, bind: deny rules)"),
        );
    }
    cap(
        "CAP_SYS_PTRACE",
        CAP_SYS_PTRACE,
        "read /proc/PID/exe and /proc/PID/cwd of every process (the process table's seed; enforcement's tags for processes already running): the kernel requires ptrace access to another user's or a non-dumpable process".into(),
    );

    let optional = vec![CapabilityNeed {
        name: "CAP_SYS_ADMIN",
        held: effective & (1 << CAP_SYS_ADMIN) != 0,
        why: "per-program run time and count (metrics.bpf_stats): the kernel lets only CAP_SYS_ADMIN turn on its timing (BPF_ENABLE_STATS); `sysctl kernel.bpf_stats_enabled=1` on the host does the same for everyone".into(),
    }];

    let mut filesystems = Vec::new();
    let fs = |path: &str, fs, writable, why: String| FilesystemNeed {
        path: path.to_string(),
        fs,
        writable,
        why,
    };
    if progs.iter().any(|p| p.object == "enforce") {
        filesystems.push(fs(
            "/sys/fs/bpf",
            "bpf",
            true,
            "enforcement is pinned below it (enforcement.pin_dir) and so stays in force while no agent runs".into(),
        ));
    }
    let tracepoints = count(&|p| p.section.starts_with("tracepoint/"));
    if tracepoints > 0 {
        let path = mounts
            .iter()
            .find(|m| m.fs == "tracefs")
            .map_or("/sys/kernel/tracing", |m| m.path);
        filesystems.push(fs(
            path,
            "tracefs",
            false,
            format!("{tracepoints} tracepoint programs attach by the ids of their events under {path}/events"),
        ));
    }
    filesystems.push(fs(
        "/sys/kernel/btf",
        "sysfs",
        false,
        "the kernel's BTF (vmlinux): CO-RE relocations of every program, tp_btf hooks, packet drop reasons".into(),
    ));
    filesystems.push(fs(
        &mounts::cgroup2_root().to_string_lossy(),
        "cgroup2",
        false,
        "cgroup programs attach to its root; its tree maps cgroup ids to containers".into(),
    ));
    filesystems.push(fs(
        "/proc",
        "proc",
        false,
        "the process table's seed: stat, status, cmdline, exe, cwd, cgroup, loginuid of every process".into(),
    ));
    for file in ["/etc/passwd", "/etc/group"] {
        filesystems.push(fs(
            file,
            "file",
            false,
            "user.name and group.name (rules, alerts) are the host's".into(),
        ));
    }
    Requirements {
        capabilities,
        filesystems,
        host_namespaces: vec![
            NamespaceNeed {
                name: "pid",
                why: "events carry pids of the initial PID namespace, and /proc must list the same processes",
            },
            NamespaceNeed {
                name: "net",
                why: "drop events name interfaces of the agent's network namespace, which must be the host's",
            },
        ],
        optional,
        unreadable,
    }
}

fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// The running kernel's packet drop reasons (`enum skb_drop_reason`), by value, without the
/// `SKB_DROP_REASON_` prefix. They differ between kernels, so they are read from its BTF.
pub fn drop_reason_names() -> std::collections::HashMap<u32, String> {
    let Ok(btf) = Btf::from_vmlinux() else {
        return Default::default();
    };
    let Some(e) = btf.type_by_name::<libbpf_rs::btf::types::Enum>("skb_drop_reason") else {
        return Default::default();
    };
    e.iter()
        .filter_map(|m| {
            let name = m.name?.to_string_lossy();
            let short = name.strip_prefix("SKB_DROP_REASON_").unwrap_or(&name);
            Some((u32::try_from(m.value).ok()?, short.to_string()))
        })
        .collect()
}
