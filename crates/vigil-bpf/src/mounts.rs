//! Mounts bpffs and tracefs when absent: `tracepoint/` programs need tracefs, and pinned
//! objects (enforcement that outlives the agent) will need bpffs.

use std::ffi::CString;
use std::path::{Path, PathBuf};

const BPF_FS_MAGIC: i64 = 0xcafe4a11;
const TRACEFS_MAGIC: i64 = 0x74726163;

/// A filesystem Vigil relies on, and whether it is there now.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MountState {
    pub fs: &'static str,
    pub path: &'static str,
    /// "present", "mounted" (by this call), or "unavailable: <why>".
    pub state: String,
}

/// Ensures bpffs at /sys/fs/bpf and tracefs at /sys/kernel/tracing (or debugfs' copy).
pub fn ensure() -> Vec<MountState> {
    vec![
        ensure_one("bpf", "/sys/fs/bpf", BPF_FS_MAGIC),
        ensure_tracefs(),
    ]
}

fn ensure_tracefs() -> MountState {
    if fs_magic("/sys/kernel/debug/tracing") == Some(TRACEFS_MAGIC) {
        return MountState {
            fs: "tracefs",
            path: "/sys/kernel/debug/tracing",
            state: "present".into(),
        };
    }
    ensure_one("tracefs", "/sys/kernel/tracing", TRACEFS_MAGIC)
}

fn ensure_one(fs: &'static str, path: &'static str, magic: i64) -> MountState {
    let state = if fs_magic(path) == Some(magic) {
        "present".to_string()
    } else {
        match mount(fs, path) {
            Ok(()) => "mounted".to_string(),
            Err(e) => format!("unavailable: mount {fs} on {path}: {e}"),
        }
    };
    MountState { fs, path, state }
}

fn fs_magic(path: &str) -> Option<i64> {
    let c = CString::new(path).ok()?;
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: c is NUL-terminated and st is a valid out-pointer.
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    Some(st.f_type as i64)
}

fn mount(fs: &str, path: &str) -> std::io::Result<()> {
    if !Path::new(path).exists() {
        std::fs::create_dir_all(path)?;
    }
    let src = CString::new(fs).expect("no NUL");
    let dst = CString::new(path).expect("no NUL");
    // SAFETY: all pointers are valid NUL-terminated strings; data may be NULL.
    let rc = unsafe {
        libc::mount(
            src.as_ptr(),
            dst.as_ptr(),
            src.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Where cgroup v2 is mounted (`/sys/fs/cgroup` on unified hosts, `/sys/fs/cgroup/unified` on
/// hybrid ones); cgroup ids are inode numbers of directories below it.
pub fn cgroup2_root() -> PathBuf {
    cgroup2_mount().unwrap_or_else(|| PathBuf::from("/sys/fs/cgroup"))
}

/// Where cgroup v2 is mounted, or `None` when it is not (cgroup programs cannot attach).
pub fn cgroup2_mount() -> Option<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
    mounts
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.len() > 2 && f[2] == "cgroup2")
        .map(|f| PathBuf::from(f[1]))
}
