//! Reading one process from /proc, used to seed the table at start (never on the hot path).

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;

use crate::{Image, ProcInfo};

/// Kernel clock ticks per second (the unit of /proc/PID/stat start times).
pub fn clock_ticks() -> u64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

/// Reads `/proc/<tgid>` under `proc_root`; `None` if it vanished or is not a process.
/// `cgroup2_root` is where cgroup v2 is mounted, to turn the cgroup path into its id.
pub fn read_process(proc_root: &Path, tgid: u32, cgroup2_root: &Path) -> Option<ProcInfo> {
    let dir = proc_root.join(tgid.to_string());
    let stat = std::fs::read(dir.join("stat")).ok()?;
    // comm may hold spaces and parentheses: the fields resume after the last ')'.
    let open = stat.iter().position(|b| *b == b'(')?;
    let close = stat.iter().rposition(|b| *b == b')')?;
    let comm = stat.get(open + 1..close)?.to_vec();
    let rest = std::str::from_utf8(stat.get(close + 2..)?).ok()?;
    let f: Vec<&str> = rest.split_ascii_whitespace().collect();
    // f[0] is field 3 (state): ppid is field 4, tty_nr field 7, starttime field 22.
    let ppid = f.get(1)?.parse().ok()?;
    let tty_nr: u32 = f.get(4)?.parse().ok()?;
    let start_ticks: u64 = f.get(19)?.parse().ok()?;
    let status = std::fs::read_to_string(dir.join("status")).unwrap_or_default();
    let ids = |key: &str| -> (u32, u32) {
        let line = status
            .lines()
            .find(|l| l.starts_with(key))
            .unwrap_or_default();
        let mut it = line
            .split_ascii_whitespace()
            .skip(1)
            .filter_map(|v| v.parse().ok());
        (it.next().unwrap_or(0), it.next().unwrap_or(0))
    };
    let (uid, euid) = ids("Uid:");
    let (gid, egid) = ids("Gid:");
    let loginuid = std::fs::read_to_string(dir.join("loginuid"))
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .filter(|v| *v != u32::MAX);
    let link = |name: &str| {
        std::fs::read_link(dir.join(name))
            .map(|p| p.as_os_str().as_bytes().to_vec())
            .unwrap_or_default()
    };
    let cmdline = std::fs::read(dir.join("cmdline")).unwrap_or_default();
    let cmdline = cmdline.strip_suffix(&[0]).unwrap_or(&cmdline);
    let args = if cmdline.is_empty() {
        Vec::new()
    } else {
        cmdline.split(|b| *b == 0).map(<[u8]>::to_vec).collect()
    };
    Some(ProcInfo {
        tgid,
        ppid,
        start_time_ns: start_ticks * (1_000_000_000 / clock_ticks()),
        image: Arc::new(Image {
            exe: link("exe"),
            args,
            cwd: link("cwd"),
            comm,
            ..Image::default()
        }),
        uid,
        gid,
        euid,
        egid,
        loginuid,
        tty_dev: proc_tty_to_dev(tty_nr),
        cgroup_id: cgroup_id(&dir, cgroup2_root).unwrap_or(0),
        exited: false,
    })
}

/// /proc's tty_nr packs minor bits 8..19 above the major; re-encode as (major << 20) | minor.
fn proc_tty_to_dev(tty_nr: u32) -> u32 {
    let major = (tty_nr >> 8) & 0xfff;
    let minor = (tty_nr & 0xff) | ((tty_nr >> 12) & 0xfff00);
    if tty_nr == 0 {
        0
    } else {
        (major << 20) | minor
    }
}

fn cgroup_id(dir: &Path, cgroup2_root: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(dir.join("cgroup")).ok()?;
    let path = text.lines().find_map(|l| l.strip_prefix("0::"))?;
    let full = cgroup2_root.join(path.trim_start_matches('/'));
    std::fs::metadata(full).ok().map(|m| m.ino())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let me = std::process::id();
        let p = read_process(Path::new("/proc"), me, Path::new("/sys/fs/cgroup/unified")).unwrap();
        assert_eq!(p.tgid, me);
        assert_eq!(p.ppid, std::os::unix::process::parent_id());
        assert_eq!(
            p.image.exe,
            std::env::current_exe().unwrap().as_os_str().as_bytes()
        );
    }

    #[test]
    fn odd_comm_is_parsed_after_the_last_paren() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("42");
        std::fs::create_dir(&p).unwrap();
        let stat = "42 (a) b) (c) S 7 42 42 34816 42 0 0 0 0 0 0 0 0 0 20 0 1 0 555 0 0";
        std::fs::write(p.join("stat"), stat).unwrap();
        let info = read_process(dir.path(), 42, dir.path()).unwrap();
        assert_eq!(info.image.comm, b"a) b) (c");
        assert_eq!(info.ppid, 7);
        assert_eq!(info.tty_dev, (136 << 20));
        assert_eq!(info.start_time_ns, 555 * (1_000_000_000 / clock_ticks()));
    }
}
