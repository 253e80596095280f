//! The file sensor's path filter, applied in user space to the paths the kernel could not judge
//! (those with "..", "." or empty segments). Same semantics as bpf/lib/filter.h: the longest
//! matching prefix decides; reads need `watch`, modifications are dropped only under `ignore`.

use vigil_abi::{VIGIL_FOP_OPEN, VIGIL_FOP_SYMLINK};

use crate::{paths, File};

/// Prefix lists, as configured.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PathFilter {
    pub watch: Vec<Vec<u8>>,
    pub ignore: Vec<Vec<u8>>,
    pub watch_writes: Vec<Vec<u8>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Watch,
    Ignore,
    WatchWrites,
}

/// O_WRONLY | O_RDWR | O_CREAT | O_TRUNC | O_APPEND | __O_TMPFILE, as in the kernel.
const MODIFYING_OPEN: u32 = 0o1 | 0o2 | 0o100 | 0o1000 | 0o2000 | 0o20000000;

impl PathFilter {
    fn action(&self, path: &[u8]) -> Option<Action> {
        let lists = [
            (&self.watch, Action::Watch),
            (&self.ignore, Action::Ignore),
            (&self.watch_writes, Action::WatchWrites),
        ];
        let mut best: Option<(usize, Action)> = None;
        for (list, action) in lists {
            for p in list.iter().filter(|p| path.starts_with(p)) {
                // Equal lengths: the later list wins, as the kernel map's last write does.
                if best.is_none_or(|(len, _)| p.len() >= len) {
                    best = Some((p.len(), action));
                }
            }
        }
        best.map(|(_, a)| a)
    }

    /// Whether `f` would be reported, judged on its normalised paths.
    pub fn reports(&self, f: &File) -> bool {
        let modifies = f.op != VIGIL_FOP_OPEN || f.flags & MODIFYING_OPEN != 0;
        let first =
            (f.op != VIGIL_FOP_SYMLINK).then(|| self.action(&paths::resolve(&f.base, &f.path)));
        let second =
            (!f.path2.is_empty()).then(|| self.action(&paths::resolve(&f.base2, &f.path2)));
        if f.op == VIGIL_FOP_SYMLINK {
            return second.flatten() != Some(Action::Ignore);
        }
        let v1 = first.flatten();
        if modifies {
            v1 != Some(Action::Ignore) || second.is_some_and(|v2| v2 != Some(Action::Ignore))
        } else {
            v1 == Some(Action::Watch)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Header, Kind};

    fn open(base: &str, path: &str, flags: u32) -> File {
        File {
            header: Header {
                kind: Kind::File,
                time_ns: 0,
                pid: 1,
                tgid: 1,
                cgroup_id: 0,
            },
            result: 3,
            syscall: 2,
            op: VIGIL_FOP_OPEN,
            flags,
            mode: 0,
            dirfd: -100,
            dirfd2: -100,
            fd: None,
            uid: 0,
            gid: 0,
            length: 0,
            path: path.into(),
            base: base.into(),
            path2: vec![],
            base2: vec![],
            truncated: false,
            read_failed: false,
            unfiltered: true,
        }
    }

    #[test]
    fn judges_the_normalised_path() {
        let f = PathFilter {
            watch: vec![b"/etc/".to_vec()],
            ignore: vec![b"/proc/".to_vec(), b"/etc/ld.so.cache".to_vec()],
            watch_writes: vec![b"/proc/sys/".to_vec()],
        };
        assert!(f.reports(&open("", "/tmp/../etc/shadow", 0)));
        assert!(f.reports(&open("/", "etc/./passwd", 0)));
        assert!(!f.reports(&open("", "/etc/../tmp/x", 0)));
        assert!(!f.reports(&open("", "/etc//ld.so.cache", 0)));
        assert!(f.reports(&open("", "/tmp/../tmp/new", 0o101)));
        assert!(!f.reports(&open("", "/proc/./self/status", 0o1)));
        assert!(f.reports(&open("", "/proc/./sys/kernel/core_pattern", 0o1)));
    }
}
