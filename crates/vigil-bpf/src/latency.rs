//! The latency sensor: per-cgroup histograms of syscall, run-queue and block I/O latency,
//! aggregated in the kernel by `bpf/progs/latency.bpf.c` and read periodically from one map.
//!
//! Buckets are log-linear in µs with exactly the index math of `vigil_net::hist::bucket_index`
//! (the C side is `bpf/lib/hist.h`), so [`LatencySample::buckets`] merges 1:1 into a `LogHist`.
//! Values are cumulative since the histogram was created; a reader takes differences. The map
//! is an LRU hash: when more (cgroup, metric) pairs are live than it holds, the least recently
//! updated is evicted and restarts from zero (a counter reset, as Prometheus understands it).
//! [`Latency::forget`] drops a removed cgroup's histograms at once rather than waiting for that.

use std::mem::MaybeUninit;
use std::num::NonZeroU32;

use libbpf_rs::skel::{OpenSkel, Skel, SkelBuilder};
use libbpf_rs::{MapCore, MapFlags, OpenObject};
use vigil_abi::{
    LatKey, LatValue, VIGIL_LAT_BLOCK, VIGIL_LAT_RUNQ, VIGIL_LAT_STAT_MAX, VIGIL_LAT_SYSCALL_FILE,
    VIGIL_LAT_SYSCALL_NET, VIGIL_LAT_SYSCALL_NR_MAX, VIGIL_LAT_SYSCALL_OTHER,
};

use crate::skel::latency::{LatencySkel, LatencySkelBuilder};
use crate::{LoadError, SensorReport};

const SENSOR: &str = "latency";

/// What a histogram measures (`enum vigil_lat_metric`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Syscall enter -> exit, file I/O class.
    SyscallFile,
    /// Syscall enter -> exit, network I/O class.
    SyscallNet,
    /// Syscall enter -> exit, every other measured syscall (sleeps and waits included).
    SyscallOther,
    /// Runnable (woken, or preempted while runnable) -> on CPU.
    RunQueue,
    /// Block request issued to the driver -> completed.
    Block,
}

impl Metric {
    pub const ALL: [Metric; 5] = [
        Metric::SyscallFile,
        Metric::SyscallNet,
        Metric::SyscallOther,
        Metric::RunQueue,
        Metric::Block,
    ];

    /// The `enum vigil_lat_metric` value.
    pub fn abi(self) -> u32 {
        match self {
            Metric::SyscallFile => VIGIL_LAT_SYSCALL_FILE,
            Metric::SyscallNet => VIGIL_LAT_SYSCALL_NET,
            Metric::SyscallOther => VIGIL_LAT_SYSCALL_OTHER,
            Metric::RunQueue => VIGIL_LAT_RUNQ,
            Metric::Block => VIGIL_LAT_BLOCK,
        }
    }

    pub fn from_abi(v: u32) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.abi() == v)
    }

    /// A stable label value (Prometheus, API).
    pub fn name(self) -> &'static str {
        match self {
            Metric::SyscallFile => "syscall_file",
            Metric::SyscallNet => "syscall_net",
            Metric::SyscallOther => "syscall_other",
            Metric::RunQueue => "runq",
            Metric::Block => "block",
        }
    }
}

/// The classes syscall latency is split into; see [`syscall_class`] for which syscall is which.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyscallClass {
    File,
    Network,
    Other,
}

impl SyscallClass {
    pub fn metric(self) -> Metric {
        match self {
            SyscallClass::File => Metric::SyscallFile,
            SyscallClass::Network => Metric::SyscallNet,
            SyscallClass::Other => Metric::SyscallOther,
        }
    }
}

/// Load-time settings.
#[derive(Debug, Clone)]
pub struct LatencyConfig {
    /// Syscall classes measured. Empty: the two syscall programs are not loaded at all, so
    /// syscalls pay nothing; otherwise every syscall runs them and unmeasured classes return
    /// after one array lookup.
    pub syscall_classes: Vec<SyscallClass>,
    /// Measure run-queue latency (scheduler tracepoints).
    pub runq: bool,
    /// Measure block I/O latency (block tracepoints).
    pub block: bool,
    /// The agent's own tgid: its syscalls and run-queue waits are not measured.
    pub self_tgid: u32,
    /// Histograms kept at once (cgroups x metrics); each takes 1,272 bytes, allocated at load.
    pub max_histograms: NonZeroU32,
}

impl Default for LatencyConfig {
    fn default() -> Self {
        Self {
            syscall_classes: vec![
                SyscallClass::File,
                SyscallClass::Network,
                SyscallClass::Other,
            ],
            runq: true,
            block: true,
            self_tgid: std::process::id(),
            max_histograms: NonZeroU32::new(4096).expect("non-zero"),
        }
    }
}

/// One cgroup's histogram of one metric, cumulative since the kernel created it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatencySample {
    pub cgroup_id: u64,
    pub metric: Metric,
    /// Samples counted (equals the sum of `buckets`, up to a read racing an update).
    pub count: u64,
    /// Sum of all samples in µs (each truncated to whole µs), for Prometheus' `_sum`.
    pub sum_us: u64,
    /// `VIGIL_LAT_BUCKETS` counts; index `i` is `vigil_net::hist::bucket_index`'s bucket `i`.
    pub buckets: Vec<u64>,
}

/// Loaded (and, after [`Latency::attach`], live) latency histograms.
pub struct Latency {
    skel: LatencySkel<'static>,
    reports: Vec<SensorReport>,
}

impl std::fmt::Debug for Latency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Latency")
            .field("reports", &self.reports)
            .finish_non_exhaustive()
    }
}

/// A family of programs reported as one sensor: (program, ELF section, required).
struct Family {
    name: &'static str,
    on: bool,
    progs: &'static [(&'static str, &'static str, bool)],
}

const SYSCALL_PROGS: &[(&str, &str, bool)] = &[
    ("vigil_lat_sys_enter", "tp_btf/sys_enter", true),
    ("vigil_lat_sys_exit", "tp_btf/sys_exit", true),
];
const RUNQ_PROGS: &[(&str, &str, bool)] = &[
    ("vigil_lat_wakeup", "tp_btf/sched_wakeup", true),
    ("vigil_lat_wakeup_new", "tp_btf/sched_wakeup_new", true),
    ("vigil_lat_switch", "tp_btf/sched_switch", true),
];
/// Without block_io_start (kernels before 6.5) requests are charged to the cgroup issuing them.
const BLOCK_PROGS: &[(&str, &str, bool)] = &[
    ("vigil_lat_block_start", "tp_btf/block_io_start", false),
    ("vigil_lat_block_issue", "tp_btf/block_rq_issue", true),
    ("vigil_lat_block_done", "tp_btf/block_rq_complete", true),
];

impl Latency {
    /// Opens, configures and loads the enabled families (the verifier runs here). A family whose
    /// required hooks this kernel lacks is reported "unsupported: ..." and not loaded; the others
    /// still load.
    pub fn load(cfg: &LatencyConfig) -> Result<Self, LoadError> {
        let storage = Box::leak(Box::new(MaybeUninit::<OpenObject>::uninit()));
        let mut open = LatencySkelBuilder::default()
            .open(storage)
            .map_err(failed("open"))?;
        open.maps
            .rodata_data
            .as_deref_mut()
            .expect("the object has .rodata")
            .cfg_self_tgid = cfg.self_tgid;
        open.maps
            .vigil_lat_hist
            .set_max_entries(cfg.max_histograms.get())
            .map_err(failed("configure"))?;

        let families = [
            Family {
                name: "latency-syscalls",
                on: !cfg.syscall_classes.is_empty(),
                progs: SYSCALL_PROGS,
            },
            Family {
                name: "latency-runq",
                on: cfg.runq,
                progs: RUNQ_PROGS,
            },
            Family {
                name: "latency-block",
                on: cfg.block,
                progs: BLOCK_PROGS,
            },
        ];
        let mut reports = Vec::new();
        let mut wanted: Vec<&str> = Vec::new();
        for f in &families {
            let (report, progs) = plan(f);
            reports.push(report);
            wanted.extend(progs);
        }
        for mut p in open.open_object_mut().progs_mut() {
            let name = p.name().to_string_lossy().into_owned();
            p.set_autoload(wanted.contains(&name.as_str()));
        }
        let skel = open.load().map_err(failed("load"))?;
        let latency = Self { skel, reports };
        latency
            .set_classes(&cfg.syscall_classes)
            .map_err(failed("fill vigil_lat_class"))?;
        Ok(latency)
    }

    /// Attaches every loaded program; histograms start filling.
    pub fn attach(&mut self) -> Result<(), LoadError> {
        self.skel.attach().map_err(failed("attach"))?;
        for r in &mut self.reports {
            if r.state == "loaded" {
                r.state = "attached".into();
            }
        }
        Ok(())
    }

    /// How each family came up: "latency-syscalls", "latency-runq", "latency-block".
    pub fn reports(&self) -> &[SensorReport] {
        &self.reports
    }

    /// Every histogram with at least one sample, cumulative, sorted by (cgroup, metric).
    pub fn read(&self) -> Result<Vec<LatencySample>, libbpf_rs::Error> {
        let map = &self.skel.maps.vigil_lat_hist;
        let mut out = Vec::new();
        for k in map.keys() {
            // The entry may have been evicted or forgotten since the key was listed.
            let Some(v) = map.lookup(&k, MapFlags::ANY)? else {
                continue;
            };
            let (Some(key), Some(value)) = (LatKey::read(&k), LatValue::read(&v)) else {
                continue;
            };
            let Some(metric) = Metric::from_abi(key.metric) else {
                continue;
            };
            if value.count == 0 {
                continue;
            }
            out.push(LatencySample {
                cgroup_id: key.cgroup_id,
                metric,
                count: value.count,
                sum_us: value.sum_us,
                buckets: value.buckets.to_vec(),
            });
        }
        out.sort_unstable_by_key(|s| (s.cgroup_id, s.metric));
        Ok(out)
    }

    /// Drops the histograms of a cgroup that is gone (LRU eviction would get there too, but
    /// only once the map is full, pushing out live cgroups' histograms first).
    pub fn forget(&self, cgroup_id: u64) -> Result<(), libbpf_rs::Error> {
        let map = &self.skel.maps.vigil_lat_hist;
        for m in Metric::ALL {
            let key = LatKey {
                cgroup_id,
                metric: m.abi(),
                _pad: 0,
            };
            match map.delete(&key.bytes()) {
                Err(e) if e.kind() != libbpf_rs::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }

    /// Samples lost in the kernel, by `enum vigil_lat_stat`, summed over CPUs.
    pub fn losses(&self) -> Result<[u64; VIGIL_LAT_STAT_MAX as usize], libbpf_rs::Error> {
        let mut out = [0; VIGIL_LAT_STAT_MAX as usize];
        for (i, slot) in out.iter_mut().enumerate() {
            *slot = crate::sensors::sum_percpu(&self.skel.maps.vigil_lat_stats, i as u32)?;
        }
        Ok(out)
    }

    /// Writes the syscall-number -> metric table (0 for classes that are off).
    fn set_classes(&self, on: &[SyscallClass]) -> Result<(), libbpf_rs::Error> {
        let map = &self.skel.maps.vigil_lat_class;
        for nr in 0..VIGIL_LAT_SYSCALL_NR_MAX {
            let class = syscall_class(nr);
            let metric = if on.contains(&class) {
                class.metric().abi()
            } else {
                0
            };
            map.update(&nr.to_ne_bytes(), &metric.to_ne_bytes(), MapFlags::ANY)?;
        }
        Ok(())
    }
}

/// The report for one family and the programs to load for it.
fn plan(f: &Family) -> (SensorReport, Vec<&'static str>) {
    let mut report = SensorReport {
        name: f.name,
        state: "disabled".into(),
        programs: vec![],
        unavailable: vec![],
    };
    if !f.on {
        return (report, vec![]);
    }
    let mut missing_required = Vec::new();
    for (prog, section, required) in f.progs {
        match crate::probe::hook_missing(section) {
            None => report.programs.push((*prog).to_string()),
            Some(why) if *required => missing_required.push(format!("{section}: {why}")),
            Some(why) => report.unavailable.push(format!("{section}: {why}")),
        }
    }
    if !missing_required.is_empty() {
        report.state = format!("unsupported: {}", missing_required.join("; "));
        report.programs.clear();
        return (report, vec![]);
    }
    report.state = "loaded".into();
    let names = f
        .progs
        .iter()
        .map(|(p, _, _)| *p)
        .filter(|p| report.programs.iter().any(|q| q == p))
        .collect();
    (report, names)
}

fn failed(stage: &'static str) -> impl FnOnce(libbpf_rs::Error) -> LoadError {
    move |source| LoadError::Failed {
        sensor: SENSOR,
        stage,
        source,
    }
}

/// The class of syscall number `nr` on this architecture: data transfer and metadata on files
/// (and on any fd through read/write: the class is by syscall, not by fd type), socket
/// syscalls, and everything else. Numbers the architecture does not use fall in `Other` and
/// never fire.
pub fn syscall_class(nr: u32) -> SyscallClass {
    let nr = i64::from(nr);
    if FILE_SYSCALLS.contains(&nr) {
        SyscallClass::File
    } else if NET_SYSCALLS.contains(&nr) {
        SyscallClass::Network
    } else {
        SyscallClass::Other
    }
}

const FILE_SYSCALLS: &[i64] = &[
    libc::SYS_read,
    libc::SYS_write,
    libc::SYS_pread64,
    libc::SYS_pwrite64,
    libc::SYS_readv,
    libc::SYS_writev,
    libc::SYS_preadv,
    libc::SYS_pwritev,
    libc::SYS_preadv2,
    libc::SYS_pwritev2,
    libc::SYS_openat,
    libc::SYS_openat2,
    libc::SYS_close,
    libc::SYS_lseek,
    libc::SYS_fsync,
    libc::SYS_fdatasync,
    libc::SYS_sync_file_range,
    libc::SYS_syncfs,
    libc::SYS_sync,
    libc::SYS_sendfile,
    libc::SYS_splice,
    libc::SYS_tee,
    libc::SYS_copy_file_range,
    libc::SYS_fstat,
    libc::SYS_newfstatat,
    libc::SYS_statx,
    libc::SYS_getdents64,
    libc::SYS_ftruncate,
    libc::SYS_truncate,
    libc::SYS_fallocate,
    libc::SYS_fadvise64,
    libc::SYS_faccessat,
    libc::SYS_faccessat2,
    libc::SYS_readlinkat,
    libc::SYS_renameat,
    libc::SYS_renameat2,
    libc::SYS_unlinkat,
    libc::SYS_mkdirat,
    libc::SYS_linkat,
    libc::SYS_symlinkat,
    libc::SYS_fchmod,
    libc::SYS_fchmodat,
    libc::SYS_fchown,
    libc::SYS_fchownat,
    libc::SYS_io_submit,
    libc::SYS_io_getevents,
    libc::SYS_io_uring_enter,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_open,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_creat,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_stat,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_lstat,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_getdents,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_access,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_readlink,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_rename,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_unlink,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_mkdir,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_rmdir,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_link,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_symlink,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_chmod,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_chown,
];

const NET_SYSCALLS: &[i64] = &[
    libc::SYS_socket,
    libc::SYS_socketpair,
    libc::SYS_connect,
    libc::SYS_accept,
    libc::SYS_accept4,
    libc::SYS_bind,
    libc::SYS_listen,
    libc::SYS_sendto,
    libc::SYS_recvfrom,
    libc::SYS_sendmsg,
    libc::SYS_recvmsg,
    libc::SYS_sendmmsg,
    libc::SYS_recvmmsg,
    libc::SYS_shutdown,
    libc::SYS_getsockopt,
    libc::SYS_setsockopt,
    libc::SYS_getsockname,
    libc::SYS_getpeername,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_round_trip_through_the_abi() {
        for m in Metric::ALL {
            assert_eq!(Metric::from_abi(m.abi()), Some(m));
        }
        assert_eq!(Metric::from_abi(0), None);
        assert_eq!(Metric::from_abi(99), None);
    }

    #[test]
    fn syscalls_are_classified() {
        let c = |nr: i64| syscall_class(u32::try_from(nr).unwrap());
        assert_eq!(c(libc::SYS_read), SyscallClass::File);
        assert_eq!(c(libc::SYS_openat), SyscallClass::File);
        assert_eq!(c(libc::SYS_recvfrom), SyscallClass::Network);
        assert_eq!(c(libc::SYS_connect), SyscallClass::Network);
        assert_eq!(c(libc::SYS_nanosleep), SyscallClass::Other);
        assert_eq!(c(libc::SYS_futex), SyscallClass::Other);
        assert_eq!(c(libc::SYS_getppid), SyscallClass::Other);
        for nr in FILE_SYSCALLS.iter().chain(NET_SYSCALLS) {
            assert!(
                (0..i64::from(VIGIL_LAT_SYSCALL_NR_MAX)).contains(nr),
                "syscall {nr} is outside the class table"
            );
        }
    }
}
