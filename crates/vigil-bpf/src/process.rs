//! The process sensor: exec/fork/exit programs, their ring buffer and counters, loaded as a unit.

use std::mem::MaybeUninit;

use libbpf_rs::skel::{OpenSkel, Skel, SkelBuilder};
use libbpf_rs::{MapCore, MapFlags, OpenObject, RingBuffer, RingBufferBuilder};
use vigil_abi::{VIGIL_ARGS_MAX, VIGIL_EV_KIND_MAX, VIGIL_STAT_MAX};

use crate::skel::process::{ProcessSkel, ProcessSkelBuilder};
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
}

impl Default for SensorConfig {
    fn default() -> Self {
        Self {
            self_tgid: std::process::id(),
            args_max: VIGIL_ARGS_MAX,
            wakeup_bytes: 256 * 1024,
            emit_threads: false,
            ringbuf_bytes: 8 * 1024 * 1024,
        }
    }
}

/// Kernel-side counters: `counts[kind][stat]`, summed over CPUs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KernelStats {
    pub counts: [[u64; VIGIL_STAT_MAX as usize]; VIGIL_EV_KIND_MAX as usize],
}

/// Loaded (and, after `attach`, live) process sensor.
pub struct ProcessSensor {
    skel: ProcessSkel<'static>,
}

impl std::fmt::Debug for ProcessSensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessSensor").finish_non_exhaustive()
    }
}

const NAME: &str = "process";

impl ProcessSensor {
    /// Opens, configures and loads the programs (the verifier runs here).
    pub fn load(cfg: &SensorConfig) -> Result<Self, LoadError> {
        // The skeleton borrows its object storage for its whole life; sensors live as long as
        // the agent, so the few bytes are leaked on purpose rather than made self-referential.
        let storage: &'static mut MaybeUninit<OpenObject> =
            Box::leak(Box::new(MaybeUninit::uninit()));
        let mut open = ProcessSkelBuilder::default()
            .open(storage)
            .map_err(|e| classify("open", e))?;
        let ro = open
            .maps
            .rodata_data
            .as_deref_mut()
            .expect("the object has .rodata");
        ro.cfg_self_tgid = cfg.self_tgid;
        ro.cfg_args_max = cfg.args_max.min(VIGIL_ARGS_MAX);
        ro.cfg_wakeup_bytes = cfg.wakeup_bytes;
        ro.cfg_emit_threads = u8::from(cfg.emit_threads);
        open.maps
            .vigil_events
            .set_max_entries(cfg.ringbuf_bytes)
            .map_err(|e| classify("configure", e))?;
        let skel = open.load().map_err(|e| classify("load", e))?;
        Ok(Self { skel })
    }

    /// Attaches every program; events start flowing into the ring buffer.
    pub fn attach(&mut self) -> Result<(), LoadError> {
        self.skel.attach().map_err(|e| classify("attach", e))
    }

    /// Detaches every program: nothing new is produced; the ring buffer can still be drained.
    pub fn detach(&mut self) {
        self.skel.links = Default::default();
    }

    /// Builds a consumer of the sensor's ring buffer calling `cb` for each record.
    pub fn ring_buffer<'cb>(
        &self,
        cb: impl FnMut(&[u8]) -> i32 + 'cb,
    ) -> Result<RingBuffer<'cb>, libbpf_rs::Error> {
        let mut b = RingBufferBuilder::new();
        b.add(&self.skel.maps.vigil_events, cb)?;
        b.build()
    }

    /// Names of the programs in this sensor, for reports.
    pub fn program_names(&self) -> Vec<String> {
        self.skel
            .object()
            .progs()
            .map(|p| p.name().to_string_lossy().into_owned())
            .collect()
    }

    /// Reads and sums the per-CPU counters.
    pub fn stats(&self) -> Result<KernelStats, libbpf_rs::Error> {
        let mut out = KernelStats::default();
        for kind in 0..VIGIL_EV_KIND_MAX {
            for stat in 0..VIGIL_STAT_MAX {
                let key = (kind * VIGIL_STAT_MAX + stat).to_ne_bytes();
                let per_cpu = self
                    .skel
                    .maps
                    .vigil_stats
                    .lookup_percpu(&key, MapFlags::ANY)?;
                let sum = per_cpu
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|v| v.get(..8).and_then(|b| b.try_into().ok()))
                    .map(u64::from_ne_bytes)
                    .sum();
                out.counts[kind as usize][stat as usize] = sum;
            }
        }
        Ok(out)
    }
}

/// Turns a libbpf error into "unsupported here" when the kernel lacks what the sensor needs.
fn classify(stage: &'static str, source: libbpf_rs::Error) -> LoadError {
    match crate::probe::process_sensor_missing() {
        Some(reason) => LoadError::Unsupported {
            sensor: NAME,
            reason,
        },
        None => LoadError::Failed {
            sensor: NAME,
            stage,
            source,
        },
    }
}
