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
use crate::{ProcessSensor, SensorConfig};

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
    let process = match ProcessSensor::load(&SensorConfig::default()).and_then(|mut s| s.attach()) {
        Ok(()) => Check {
            name: "process".into(),
            status: Status::Supported,
            detail: format!("tp_btf: {}", PROCESS_HOOKS.join(", ")),
        },
        Err(e @ crate::LoadError::Unsupported { .. }) => Check {
            name: "process".into(),
            status: Status::Unsupported,
            detail: e.to_string(),
        },
        Err(e) => Check {
            name: "process".into(),
            status: Status::Failed,
            detail: format!("{e:#}"),
        },
    };
    let live = |c: &Check| {
        if c.status == Status::Supported {
            Status::Supported
        } else {
            Status::Unsupported
        }
    };
    let capabilities = vec![Check {
        name: "process events (exec, fork, exit) with argv, cwd, tty, ancestry".into(),
        status: live(&process),
        detail: if process.status == Status::Supported {
            "live".into()
        } else {
            process.detail.clone()
        },
    }];
    ProbeReport {
        kernel: kernel_release(),
        mounts,
        hooks,
        helpers,
        sensors: vec![process],
        capabilities,
    }
}

/// Why the process sensor cannot run here, if the kernel lacks something it needs.
pub fn process_sensor_missing() -> Option<String> {
    let (hooks, helpers) = cached_programs();
    for c in hooks
        .iter()
        .filter(|c| c.name == "tp_btf")
        .chain(helpers.iter())
    {
        if c.status != Status::Supported {
            return Some(format!("{} unavailable: {}", c.name, c.detail));
        }
    }
    let btf = match Btf::from_vmlinux() {
        Ok(b) => b,
        Err(e) => return Some(format!("no kernel BTF (/sys/kernel/btf/vmlinux): {e}")),
    };
    PROCESS_HOOKS
        .iter()
        .find(|tp| {
            btf.type_by_name::<libbpf_rs::btf::BtfType>(&format!("btf_trace_{tp}"))
                .is_none()
        })
        .map(|tp| format!("tracepoint sched/{tp} does not exist in this kernel"))
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
