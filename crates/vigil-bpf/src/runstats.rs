//! How often the kernel ran each of the agent's programs and for how long, and how full its
//! hash maps are: the cost and the headroom of the sensors, for `/metrics`.

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

use libbpf_rs::{MapCore, MapType};

/// While held, the kernel times every BPF program run (`BPF_ENABLE_STATS`); dropping it turns
/// the timing off again unless someone else (another holder, the sysctl) keeps it on.
#[derive(Debug)]
pub struct RunTimeStats {
    _held: OwnedFd,
}

impl RunTimeStats {
    pub fn enable() -> std::io::Result<Self> {
        // SAFETY: plain syscall wrapper; a non-negative return is a new fd that we own.
        let fd = unsafe { libbpf_sys::bpf_enable_stats(libbpf_sys::BPF_STATS_RUN_TIME) };
        if fd < 0 {
            return Err(std::io::Error::from_raw_os_error(-fd));
        }
        // SAFETY: `fd` was just returned by the kernel and nothing else owns it.
        Ok(Self {
            _held: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }
}

/// One program's counters, cumulative since it was loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramStat {
    pub name: String,
    pub runs: u64,
    pub run_time_ns: u64,
}

/// One map's fill level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapFill {
    pub name: String,
    pub entries: u64,
    pub capacity: u64,
}

/// The counters of the loaded programs of `obj`.
pub(crate) fn programs(obj: &libbpf_rs::Object, out: &mut Vec<ProgramStat>) {
    for p in obj.progs().filter(|p| p.autoload()) {
        let mut info = libbpf_sys::bpf_prog_info::default();
        let mut len = std::mem::size_of::<libbpf_sys::bpf_prog_info>() as u32;
        // SAFETY: `info` is a properly sized, writable bpf_prog_info and `len` says so.
        let rc = unsafe {
            libbpf_sys::bpf_prog_get_info_by_fd(p.as_fd().as_raw_fd(), &mut info, &mut len)
        };
        if rc == 0 {
            out.push(ProgramStat {
                name: p.name().to_string_lossy().into_owned(),
                runs: info.run_cnt,
                run_time_ns: info.run_time_ns,
            });
        }
    }
}

/// Fill levels of the hash maps of `obj` (the kinds that can fill up and then lose or evict).
/// Counting walks the keys, one syscall each: call it every few seconds, not per event.
pub(crate) fn maps(obj: &libbpf_rs::Object, seen: &mut Vec<MapFill>) {
    for m in obj.maps() {
        let hashed = matches!(
            m.map_type(),
            MapType::Hash | MapType::LruHash | MapType::PercpuHash | MapType::LruPercpuHash
        );
        let name = m.name().to_string_lossy().into_owned();
        // Maps shared between objects (reuse_fd) are counted once.
        if !hashed || seen.iter().any(|s| s.name == name) {
            continue;
        }
        seen.push(MapFill {
            entries: m.keys().count() as u64,
            capacity: u64::from(m.max_entries()),
            name,
        });
    }
}
