//! Feature probes: which hooks, helpers and sensors work on this kernel, and why not.
//!
//! "Supported" is established by loading (and, for tracing hooks, attaching) a trivial program
//! of each kind, because libbpf's type probes say nothing about e.g. tp_btf vs fentry, and a
//! kernel may have a program type yet refuse it (lockdown, missing config). Results are cached.

use std::mem::MaybeUninit;
use std::sync::OnceLock;

use libbpf_rs::btf::Btf;
use libbpf_rs::skel::{OpenSkel, Skel, SkelBuilder};
use libbpf_rs::OpenObject;
use serde::Serialize;

use crate::mounts::{self, MountState};
use crate::skel::probe::ProbeSkelBuilder;
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
    if let Some(tp) = section.strip_prefix("tracepoint/") {
        let Some(events) = crate::sensors::tracefs_events() else {
            return Some("tracefs is not mounted".into());
        };
        return (!events.join(tp).is_dir())
            .then(|| format!("tracepoint {tp} does not exist on this kernel"));
    }
    if let Some(tp) = section.strip_prefix("tp_btf/") {
        let btf = match Btf::from_vmlinux() {
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
