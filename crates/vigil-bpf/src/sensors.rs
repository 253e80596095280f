//! The sensors (process, file, syscalls, net): their programs loaded and attached as units, sharing
//! one ring buffer and one counter map, plus the path filter the file sensor reads.

use std::mem::MaybeUninit;
use std::os::fd::AsFd;
use std::path::Path;

use libbpf_rs::skel::{OpenSkel, Skel, SkelBuilder};
use libbpf_rs::{MapCore, MapFlags, OpenObject, OpenProgramMut, RingBufferBuilder};
use vigil_abi::{
    DropKey, FlowKey, FlowValue, PrefixKey, VIGIL_ARGS_MAX, VIGIL_CAPTURE_MAX, VIGIL_EV_KIND_MAX,
    VIGIL_FILTER_IGNORE, VIGIL_FILTER_MODIFY, VIGIL_FILTER_WATCH, VIGIL_NET_STAT_MAX,
    VIGIL_PREFIX_MAX, VIGIL_STAT_MAX,
};

use crate::skel::file::{FileSkel, FileSkelBuilder};
use crate::skel::net::{NetSkel, NetSkelBuilder};
use crate::skel::process::{ProcessSkel, ProcessSkelBuilder};
use crate::skel::syscalls::{SyscallsSkel, SyscallsSkelBuilder};
use crate::LoadError;

/// Load-time settings, written into the programs' read-only data before load.
#[derive(Debug, Clone)]
pub struct SensorConfig {
    /// The agent's own tgid: its activity is dropped in the kernel.
    pub self_tgid: u32,
    /// argv bytes captured per exec (clamped to VIGIL_ARGS_MAX).
    pub args_max: u32,
    /// Pending bytes in the ring buffer that trigger a consumer wakeup.
    pub wakeup_bytes: u32,
    /// Report thread creation as fork events with `thread: true`.
    pub emit_threads: bool,
    /// Ring buffer size in bytes (a power of two, multiple of the page size).
    pub ringbuf_bytes: u32,
    /// Load the file sensor.
    pub file: bool,
    /// Load the security-syscall sensor.
    pub syscalls: bool,
    /// Load the network sensor.
    pub network: bool,
    /// Payload bytes captured per DNS/HTTP message (0: none; at most VIGIL_CAPTURE_MAX).
    pub capture_bytes: u32,
    /// Look for HTTP/1.x in TCP payloads (DNS is captured whenever capture_bytes > 0).
    pub http: bool,
    /// File, syscall and capture records per second per cgroup (0: no budget).
    pub budget_rate: u32,
    /// Records a cgroup may send at once after a quiet period.
    pub budget_burst: u32,
}

impl Default for SensorConfig {
    fn default() -> Self {
        Self {
            self_tgid: std::process::id(),
            args_max: VIGIL_ARGS_MAX,
            wakeup_bytes: 256 * 1024,
            emit_threads: false,
            ringbuf_bytes: 8 * 1024 * 1024,
            file: true,
            syscalls: true,
            network: true,
            capture_bytes: VIGIL_CAPTURE_MAX,
            http: false,
            budget_rate: 0,
            budget_burst: 0,
        }
    }
}

/// Path prefixes for the file sensor's in-kernel filter (the longest match decides).
#[derive(Debug, Clone, Copy)]
pub struct PathFilter<'a> {
    /// Reads and modifications below are reported.
    pub watch: &'a [Vec<u8>],
    /// Nothing below is reported.
    pub ignore: &'a [Vec<u8>],
    /// Modifications below are reported, reads are not (carves exceptions out of `ignore`).
    pub watch_writes: &'a [Vec<u8>],
}

/// Kernel-side counters: `counts[kind][stat]`, summed over CPUs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KernelStats {
    pub counts: [[u64; VIGIL_STAT_MAX as usize]; VIGIL_EV_KIND_MAX as usize],
}

/// How one sensor came up.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SensorReport {
    pub name: &'static str,
    /// "attached", "disabled" (by config), or "unsupported: <why>".
    pub state: String,
    pub programs: Vec<String>,
    /// Hooks this kernel does not have, with the reason: those events are unavailable.
    pub unavailable: Vec<String>,
}

/// Loaded (and, after `attach`, live) sensors.
pub struct Sensors {
    process: ProcessSkel<'static>,
    file: Option<FileSkel<'static>>,
    syscalls: Option<SyscallsSkel<'static>>,
    net: Option<NetSkel<'static>>,
    reports: Vec<SensorReport>,
}

impl std::fmt::Debug for Sensors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sensors")
            .field("reports", &self.reports)
            .finish_non_exhaustive()
    }
}

/// Storage a skeleton borrows for its whole life. Sensors live as long as the agent, so the
/// few bytes are leaked on purpose rather than made self-referential.
fn storage() -> &'static mut MaybeUninit<OpenObject> {
    Box::leak(Box::new(MaybeUninit::uninit()))
}

macro_rules! set_rodata {
    ($open:expr, $cfg:expr) => {{
        let ro = $open
            .maps
            .rodata_data
            .as_deref_mut()
            .expect("the object has .rodata");
        ro.cfg_self_tgid = $cfg.self_tgid;
        ro.cfg_args_max = $cfg.args_max.min(VIGIL_ARGS_MAX);
        ro.cfg_wakeup_bytes = $cfg.wakeup_bytes;
        ro.cfg_emit_threads = u8::from($cfg.emit_threads);
        ro.cfg_budget_rate = $cfg.budget_rate;
        ro.cfg_budget_burst = $cfg.budget_burst.max(1);
    }};
}

impl Sensors {
    /// Opens, configures and loads every enabled sensor (the verifier runs here). The process
    /// sensor is required; a file or syscall sensor the kernel cannot run is reported, not fatal.
    pub fn load(cfg: &SensorConfig) -> Result<Self, LoadError> {
        let mut open = ProcessSkelBuilder::default()
            .open(storage())
            .map_err(|e| classify("process", "open", e))?;
        set_rodata!(open, cfg);
        open.maps
            .vigil_events
            .set_max_entries(cfg.ringbuf_bytes)
            .map_err(|e| classify("process", "configure", e))?;
        let process = open.load().map_err(|e| classify("process", "load", e))?;
        let mut reports = vec![SensorReport {
            name: "process",
            state: "loaded".into(),
            programs: names(process.object()),
            unavailable: vec![],
        }];

        let file = if cfg.file {
            let mut open = FileSkelBuilder::default()
                .open(storage())
                .map_err(|e| classify("file", "open", e))?;
            set_rodata!(open, cfg);
            share(
                &mut open.maps.vigil_events,
                &process.maps.vigil_events,
                "file",
            )?;
            share(
                &mut open.maps.vigil_stats,
                &process.maps.vigil_stats,
                "file",
            )?;
            share(
                &mut open.maps.vigil_budget,
                &process.maps.vigil_budget,
                "file",
            )?;
            let unavailable = disable_missing(open.open_object_mut().progs_mut());
            let skel = open.load().map_err(|e| classify("file", "load", e))?;
            reports.push(SensorReport {
                name: "file",
                state: "loaded".into(),
                programs: names(skel.object()),
                unavailable,
            });
            Some(skel)
        } else {
            reports.push(disabled("file"));
            None
        };

        let syscalls = if cfg.syscalls {
            let mut open = SyscallsSkelBuilder::default()
                .open(storage())
                .map_err(|e| classify("syscalls", "open", e))?;
            set_rodata!(open, cfg);
            share(
                &mut open.maps.vigil_events,
                &process.maps.vigil_events,
                "syscalls",
            )?;
            share(
                &mut open.maps.vigil_stats,
                &process.maps.vigil_stats,
                "syscalls",
            )?;
            share(
                &mut open.maps.vigil_budget,
                &process.maps.vigil_budget,
                "syscalls",
            )?;
            let unavailable = disable_missing(open.open_object_mut().progs_mut());
            let skel = open.load().map_err(|e| classify("syscalls", "load", e))?;
            reports.push(SensorReport {
                name: "syscalls",
                state: "loaded".into(),
                programs: names(skel.object()),
                unavailable,
            });
            Some(skel)
        } else {
            reports.push(disabled("syscalls"));
            None
        };
        let net = if cfg.network {
            let mut open = NetSkelBuilder::default()
                .open(storage())
                .map_err(|e| classify("net", "open", e))?;
            set_rodata!(open, cfg);
            if let Some(ro) = open.maps.rodata_data.as_deref_mut() {
                ro.cfg_capture_bytes = cfg.capture_bytes.min(VIGIL_CAPTURE_MAX);
                ro.cfg_http = cfg.http;
            }
            share(
                &mut open.maps.vigil_events,
                &process.maps.vigil_events,
                "net",
            )?;
            share(&mut open.maps.vigil_stats, &process.maps.vigil_stats, "net")?;
            share(
                &mut open.maps.vigil_budget,
                &process.maps.vigil_budget,
                "net",
            )?;
            let unavailable = disable_missing(open.open_object_mut().progs_mut());
            let skel = open.load().map_err(|e| classify("net", "load", e))?;
            reports.push(SensorReport {
                name: "net",
                state: "loaded".into(),
                programs: names(skel.object()),
                unavailable,
            });
            Some(skel)
        } else {
            reports.push(disabled("net"));
            None
        };
        Ok(Self {
            process,
            file,
            syscalls,
            net,
            reports,
        })
    }

    /// Attaches every loaded program; events start flowing into the ring buffer.
    pub fn attach(&mut self) -> Result<(), LoadError> {
        self.process
            .attach()
            .map_err(|e| classify("process", "attach", e))?;
        if let Some(f) = &mut self.file {
            f.attach().map_err(|e| classify("file", "attach", e))?;
        }
        if let Some(s) = &mut self.syscalls {
            s.attach().map_err(|e| classify("syscalls", "attach", e))?;
        }
        if let Some(n) = &mut self.net {
            n.attach().map_err(|e| classify("net", "attach", e))?;
            // cgroup_skb programs need a cgroup: the v2 root covers every socket on the host.
            let root = crate::mounts::cgroup2_mount().ok_or_else(|| LoadError::Unsupported {
                sensor: "net",
                reason: "cgroup v2 is not mounted".into(),
            })?;
            let dir = std::fs::File::open(&root).map_err(|e| LoadError::Unsupported {
                sensor: "net",
                reason: format!("opening {}: {e}", root.display()),
            })?;
            let fd = std::os::fd::AsRawFd::as_raw_fd(&dir);
            let egress = n
                .progs
                .vigil_skb_egress
                .attach_cgroup(fd)
                .map_err(|e| classify("net", "attach cgroup_skb", e))?;
            let ingress = n
                .progs
                .vigil_skb_ingress
                .attach_cgroup(fd)
                .map_err(|e| classify("net", "attach cgroup_skb", e))?;
            n.links.vigil_skb_egress = Some(egress);
            n.links.vigil_skb_ingress = Some(ingress);
        }
        for r in &mut self.reports {
            if r.state == "loaded" {
                r.state = "attached".into();
            }
        }
        Ok(())
    }

    /// Makes every program return at once: after this, a drain of the ring buffer sees every
    /// record that was produced. Instant, unlike detaching (an RCU grace period per tracepoint).
    pub fn pause(&mut self) {
        if let Some(b) = self.process.maps.bss_data.as_deref_mut() {
            b.vigil_paused = 1;
        }
        if let Some(b) = self
            .file
            .as_mut()
            .and_then(|f| f.maps.bss_data.as_deref_mut())
        {
            b.vigil_paused = 1;
        }
        if let Some(b) = self
            .syscalls
            .as_mut()
            .and_then(|s| s.maps.bss_data.as_deref_mut())
        {
            b.vigil_paused = 1;
        }
        if let Some(b) = self
            .net
            .as_mut()
            .and_then(|s| s.maps.bss_data.as_deref_mut())
        {
            b.vigil_paused = 1;
        }
    }

    /// Call once the process table is seeded from /proc: exits stop carrying their exe (see
    /// `vigil_seeded` in process.bpf.c).
    pub fn seeded(&mut self) {
        if let Some(b) = self.process.maps.bss_data.as_deref_mut() {
            b.vigil_seeded = 1;
        }
    }

    /// Detaches every program: nothing new is produced; the ring buffer can still be drained.
    pub fn detach(&mut self) {
        self.process.links = Default::default();
        if let Some(f) = &mut self.file {
            f.links = Default::default();
        }
        if let Some(s) = &mut self.syscalls {
            s.links = Default::default();
        }
        if let Some(n) = &mut self.net {
            n.links = Default::default();
        }
    }

    /// Takes the UDP flow counters accumulated since the last call (each entry is read and
    /// deleted atomically: a packet counted after that starts a new entry, so none is lost).
    pub fn take_udp_flows(&self) -> Result<Vec<(FlowKey, FlowValue)>, libbpf_rs::Error> {
        let Some(n) = &self.net else {
            return Ok(Vec::new());
        };
        take_all(&n.maps.vigil_udp_flows, |k, v| {
            Some((FlowKey::read(k)?, FlowValue::read(v)?))
        })
    }

    /// Takes the packet-drop counts accumulated since the last call (as for UDP flows).
    pub fn take_drops(&self) -> Result<Vec<(DropKey, u64)>, libbpf_rs::Error> {
        let Some(n) = &self.net else {
            return Ok(Vec::new());
        };
        take_all(&n.maps.vigil_drops, |k, v| {
            Some((
                DropKey::read(k)?,
                u64::from_ne_bytes(v.get(..8)?.try_into().ok()?),
            ))
        })
    }

    /// Records each cgroup lost to its event budget, for cgroups that lost any.
    pub fn budget_drops(&self) -> Result<Vec<(u64, u64)>, libbpf_rs::Error> {
        let map = &self.process.maps.vigil_budget;
        let mut out = Vec::new();
        for k in map.keys() {
            let Some(v) = map.lookup(&k, MapFlags::ANY)? else {
                continue;
            };
            let (Ok(id), Some(b)) = (k.as_slice().try_into(), vigil_abi::Budget::read(&v)) else {
                continue;
            };
            if b.dropped > 0 {
                out.push((u64::from_ne_bytes(id), b.dropped));
            }
        }
        out.sort_unstable();
        Ok(out)
    }

    /// Network-sensor losses outside the ring buffer, by `enum vigil_net_stat`.
    pub fn net_stats(&self) -> Result<[u64; VIGIL_NET_STAT_MAX as usize], libbpf_rs::Error> {
        let mut out = [0; VIGIL_NET_STAT_MAX as usize];
        let Some(n) = &self.net else {
            return Ok(out);
        };
        for (i, slot) in out.iter_mut().enumerate() {
            *slot = sum_percpu(&n.maps.vigil_net_stats, i as u32)?;
        }
        Ok(out)
    }

    pub fn reports(&self) -> &[SensorReport] {
        &self.reports
    }

    /// Names of every loaded program.
    pub fn program_names(&self) -> Vec<String> {
        self.reports
            .iter()
            .flat_map(|r| r.programs.iter().cloned())
            .collect()
    }

    /// Adds the shared ring buffer to a consumer, calling `cb` for each record.
    pub fn add_ring_buffer<'s, 'cb>(
        &'s self,
        builder: &mut RingBufferBuilder<'s, 'cb>,
        cb: impl FnMut(&[u8]) -> i32 + 'cb,
    ) -> Result<(), libbpf_rs::Error>
    where
        'cb: 's,
    {
        builder.add(&self.process.maps.vigil_events, cb)?;
        Ok(())
    }

    /// Replaces the file sensor's path filter. Prefixes longer than VIGIL_PREFIX_MAX are cut.
    pub fn set_path_filter(&self, filter: &PathFilter<'_>) -> Result<(), libbpf_rs::Error> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        let map = &file.maps.vigil_path_filter;
        let keys: Vec<Vec<u8>> = map.keys().collect();
        for k in keys {
            map.delete(&k)?;
        }
        for (prefixes, action) in [
            (filter.watch, VIGIL_FILTER_WATCH),
            (filter.ignore, VIGIL_FILTER_IGNORE),
            (filter.watch_writes, VIGIL_FILTER_MODIFY),
        ] {
            for p in prefixes {
                map.update(&prefix_key(p), &action.to_ne_bytes(), MapFlags::ANY)?;
            }
        }
        Ok(())
    }

    /// Reads and sums the per-CPU counters shared by all sensors.
    pub fn stats(&self) -> Result<KernelStats, libbpf_rs::Error> {
        let mut out = KernelStats::default();
        for kind in 0..VIGIL_EV_KIND_MAX {
            for stat in 0..VIGIL_STAT_MAX {
                out.counts[kind as usize][stat as usize] =
                    sum_percpu(&self.process.maps.vigil_stats, kind * VIGIL_STAT_MAX + stat)?;
            }
        }
        Ok(out)
    }
}

impl Sensors {
    fn objects(&self) -> impl Iterator<Item = &libbpf_rs::Object> {
        [Some(self.process.object())]
            .into_iter()
            .chain([
                self.file.as_ref().map(|s| s.object()),
                self.syscalls.as_ref().map(|s| s.object()),
                self.net.as_ref().map(|s| s.object()),
            ])
            .flatten()
    }

    /// Run counts and times of every loaded program (times stay 0 unless
    /// `runstats::RunTimeStats` is held).
    pub fn program_stats(&self) -> Vec<crate::runstats::ProgramStat> {
        let mut out = Vec::new();
        for o in self.objects() {
            crate::runstats::programs(o, &mut out);
        }
        out
    }

    /// Fill levels of the sensors' hash maps.
    pub fn map_fill(&self) -> Vec<crate::runstats::MapFill> {
        let mut out = Vec::new();
        for o in self.objects() {
            crate::runstats::maps(o, &mut out);
        }
        out
    }
}

/// One u64 slot of a per-CPU array, summed over CPUs.
pub(crate) fn sum_percpu(map: &impl MapCore, key: u32) -> Result<u64, libbpf_rs::Error> {
    let per_cpu = map.lookup_percpu(&key.to_ne_bytes(), MapFlags::ANY)?;
    Ok(per_cpu
        .unwrap_or_default()
        .iter()
        .filter_map(|v| v.get(..8).and_then(|b| b.try_into().ok()))
        .map(u64::from_ne_bytes)
        .sum())
}

/// Reads and deletes every entry of a hash map, decoding each with `read`.
fn take_all<T>(
    map: &impl MapCore,
    read: impl Fn(&[u8], &[u8]) -> Option<T>,
) -> Result<Vec<T>, libbpf_rs::Error> {
    let keys: Vec<Vec<u8>> = map.keys().collect();
    let mut out = Vec::with_capacity(keys.len());
    for k in keys {
        if let Some(v) = map.lookup_and_delete(&k)? {
            out.extend(read(&k, &v));
        }
    }
    Ok(out)
}

/// The LPM key for a path prefix: `struct vigil_prefix_key` in bytes.
fn prefix_key(prefix: &[u8]) -> Vec<u8> {
    let len = prefix.len().min(VIGIL_PREFIX_MAX as usize);
    let mut key = Vec::with_capacity(PrefixKey::SIZE);
    key.extend(((len * 8) as u32).to_ne_bytes());
    key.extend(&prefix[..len]);
    key.resize(PrefixKey::SIZE, 0);
    key
}

fn share(
    map: &mut libbpf_rs::OpenMapMut<'_>,
    owner: &libbpf_rs::MapMut<'_>,
    sensor: &'static str,
) -> Result<(), LoadError> {
    map.reuse_fd(owner.as_fd())
        .map_err(|e| classify(sensor, "share maps", e))
}

/// Programs that were loaded (those whose hook is missing were turned off before load).
fn names(obj: &libbpf_rs::Object) -> Vec<String> {
    obj.progs()
        .filter(|p| p.autoload())
        .map(|p| p.name().to_string_lossy().into_owned())
        .collect()
}

fn disabled(name: &'static str) -> SensorReport {
    SensorReport {
        name,
        state: "disabled".into(),
        programs: vec![],
        unavailable: vec![],
    }
}

/// Turns off programs whose hook this kernel lacks (e.g. module syscalls without module
/// support) and says which: their events are unavailable, the rest of the sensor works.
fn disable_missing<'a>(progs: impl Iterator<Item = OpenProgramMut<'a>>) -> Vec<String> {
    let mut missing = Vec::new();
    for mut p in progs {
        let section = p.section().to_string_lossy().into_owned();
        if let Some(why) = crate::probe::hook_missing(&section) {
            p.set_autoload(false);
            missing.push(format!("{section}: {why}"));
        }
    }
    missing
}

/// Turns a libbpf error into "unsupported here" when the kernel lacks what the sensor needs.
fn classify(sensor: &'static str, stage: &'static str, source: libbpf_rs::Error) -> LoadError {
    match crate::probe::sensor_missing(sensor) {
        Some(reason) => LoadError::Unsupported { sensor, reason },
        None => LoadError::Failed {
            sensor,
            stage,
            source,
        },
    }
}

/// Where tracefs exposes the syscall tracepoints, if mounted.
pub(crate) fn tracefs_events() -> Option<&'static Path> {
    [
        "/sys/kernel/tracing/events",
        "/sys/kernel/debug/tracing/events",
    ]
    .into_iter()
    .map(Path::new)
    .find(|p| p.join("syscalls").is_dir())
}
