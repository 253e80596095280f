//! The process table: tgid -> what the process runs, kept current by exec/fork/exit events and
//! seeded from /proc. Bounded: exited entries are reaped first (they still serve the ancestry of
//! their orphans for a while), then the oldest live entries are evicted and counted.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use vigil_events::{Bytes, Event};

/// What a process runs: shared between a parent and its forked children until they exec.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Image {
    pub exe: Bytes,
    pub args: Vec<Bytes>,
    pub args_truncated: bool,
    pub exe_truncated: bool,
    pub cwd: Bytes,
    pub cwd_truncated: bool,
    pub comm: Bytes,
}

/// One process (thread group). Serializable so recordings can carry the table's seed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProcInfo {
    pub tgid: u32,
    /// The parent at fork (or when first seen): the lineage, kept when the process is later
    /// reparented to a reaper, so that ancestry still shows who started it.
    pub ppid: u32,
    /// CLOCK_BOOTTIME ns of the process start.
    pub start_time_ns: u64,
    pub image: Arc<Image>,
    pub uid: u32,
    pub gid: u32,
    pub euid: u32,
    pub egid: u32,
    pub loginuid: Option<u32>,
    pub tty_dev: u32,
    pub cgroup_id: u64,
    pub exited: bool,
}

/// One step up the ancestry chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ancestor {
    pub pid: u32,
    pub image: Arc<Image>,
}

/// Counters the table exports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TableStats {
    pub size: usize,
    /// Live entries removed because the table was full: their descendants lose ancestry.
    pub evictions: u64,
    /// Exited entries removed (normal housekeeping).
    pub reaped: u64,
}

/// Bounded tgid -> [`ProcInfo`] map.
#[derive(Debug)]
pub struct ProcessTable {
    /// Looked up several times per event (subject and ancestry): a fast hasher. Pids are the
    /// kernel's to choose, so a flooding attacker cannot aim them at one bucket.
    procs: HashMap<u32, ProcInfo, foldhash::fast::RandomState>,
    /// Insertion order of live entries (lazy: stale items are skipped when popped).
    order: VecDeque<(u32, u64)>,
    exited: VecDeque<(u32, u64)>,
    capacity: usize,
    keep_exited: usize,
    stats: TableStats,
    /// Tolerance when comparing start times: /proc only has clock-tick resolution.
    tick_ns: u64,
}

impl ProcessTable {
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(16);
        Self {
            procs: HashMap::with_capacity_and_hasher(capacity.min(1 << 16), Default::default()),
            order: VecDeque::new(),
            exited: VecDeque::new(),
            capacity,
            keep_exited: (capacity / 8).max(8),
            stats: TableStats::default(),
            tick_ns: 1_000_000_000 / crate::clock_ticks().max(1),
        }
    }

    pub fn get(&self, tgid: u32) -> Option<&ProcInfo> {
        self.procs.get(&tgid)
    }

    /// Every entry, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &ProcInfo> {
        self.procs.values()
    }

    pub fn stats(&self) -> TableStats {
        TableStats {
            size: self.procs.len(),
            ..self.stats
        }
    }

    /// Inserts or replaces an entry (seeding, exec, fork).
    pub fn insert(&mut self, info: ProcInfo) {
        let tgid = info.tgid;
        let start = info.start_time_ns;
        if self.procs.insert(tgid, info).is_none() {
            self.order.push_back((tgid, start));
            self.enforce_capacity();
        }
    }

    /// Updates the table from an event. Call before rendering exec/fork (so the event sees its
    /// own process) and after rendering exit (so the exit still sees it).
    pub fn apply(&mut self, event: &Event) {
        match event {
            Event::Exec(e) => {
                let tick = self.tick_ns;
                let lineage = self
                    .procs
                    .get(&e.header.tgid)
                    .filter(|p| p.start_time_ns.abs_diff(e.start_time_ns) <= tick)
                    .map_or(e.ppid, |p| p.ppid);
                let info = ProcInfo {
                    tgid: e.header.tgid,
                    ppid: lineage,
                    start_time_ns: e.start_time_ns,
                    image: Arc::new(Image {
                        exe: e.exe.clone(),
                        args: e.args.clone(),
                        args_truncated: e.args_truncated,
                        exe_truncated: e.exe_truncated,
                        cwd: e.cwd.clone(),
                        cwd_truncated: e.cwd_truncated,
                        comm: e.comm.clone(),
                    }),
                    uid: e.uid,
                    gid: e.gid,
                    euid: e.euid,
                    egid: e.egid,
                    loginuid: e.loginuid,
                    tty_dev: e.tty_dev,
                    cgroup_id: e.header.cgroup_id,
                    exited: false,
                };
                self.insert(info);
            }
            Event::Fork(f) if !f.thread => {
                let parent = self.procs.get(&f.parent_tgid);
                let mut info = match parent {
                    Some(p) => p.clone(),
                    None => ProcInfo {
                        tgid: 0,
                        ppid: 0,
                        start_time_ns: 0,
                        image: Arc::new(Image {
                            comm: f.comm.clone(),
                            ..Image::default()
                        }),
                        uid: 0,
                        gid: 0,
                        euid: 0,
                        egid: 0,
                        loginuid: None,
                        tty_dev: 0,
                        cgroup_id: 0,
                        exited: false,
                    },
                };
                info.tgid = f.header.tgid;
                info.ppid = f.parent_tgid;
                info.start_time_ns = f.start_time_ns;
                info.cgroup_id = f.header.cgroup_id;
                info.exited = false;
                self.insert(info);
            }
            Event::Fork(_)
            | Event::File(_)
            | Event::Syscall(_)
            | Event::Conn(_)
            | Event::Capture(_)
            | Event::Enforce(_)
            | Event::Cgroup(_)
            | Event::Udp(_)
            | Event::Dns(_)
            | Event::Http(_)
            | Event::Drop(_) => {}
            Event::Exit(x) => {
                let tgid = x.header.tgid;
                let tick = self.tick_ns;
                if let Some(p) = self.procs.get_mut(&tgid) {
                    if !p.exited && p.start_time_ns.abs_diff(x.start_time_ns) <= tick {
                        p.exited = true;
                        self.exited.push_back((tgid, p.start_time_ns));
                        self.reap();
                    }
                }
            }
        }
    }

    /// Parents of `ppid` upward, at most `depth`, stopping at pid 0/1's parent or a loop.
    pub fn ancestry(&self, ppid: u32, depth: usize) -> Vec<Ancestor> {
        let mut out = Vec::with_capacity(depth.min(16));
        let mut pid = ppid;
        while pid != 0 && out.len() < depth {
            let Some(p) = self.procs.get(&pid) else { break };
            out.push(Ancestor {
                pid,
                image: p.image.clone(),
            });
            if p.ppid == pid {
                break;
            }
            pid = p.ppid;
        }
        out
    }

    fn reap(&mut self) {
        while self.exited.len() > self.keep_exited {
            let Some((tgid, start)) = self.exited.pop_front() else {
                break;
            };
            if self
                .procs
                .get(&tgid)
                .is_some_and(|p| p.exited && p.start_time_ns == start)
            {
                self.procs.remove(&tgid);
                self.stats.reaped += 1;
            }
        }
    }

    fn enforce_capacity(&mut self) {
        while self.procs.len() > self.capacity {
            if let Some((tgid, start)) = self.exited.pop_front() {
                if self
                    .procs
                    .get(&tgid)
                    .is_some_and(|p| p.exited && p.start_time_ns == start)
                {
                    self.procs.remove(&tgid);
                    self.stats.reaped += 1;
                }
                continue;
            }
            let Some((tgid, start)) = self.order.pop_front() else {
                break;
            };
            if self
                .procs
                .get(&tgid)
                .is_some_and(|p| p.start_time_ns == start)
            {
                self.procs.remove(&tgid);
                self.stats.evictions += 1;
            }
        }
        // Keep the lazy queue from growing without bound under pid churn.
        if self.order.len() > self.capacity * 2 {
            let procs = &self.procs;
            self.order
                .retain(|(t, s)| procs.get(t).is_some_and(|p| p.start_time_ns == *s));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_events::{Exec, Exit, Fork, Header, Kind};

    fn hdr(kind: Kind, tgid: u32) -> Header {
        Header {
            kind,
            time_ns: 0,
            pid: tgid,
            tgid,
            cgroup_id: 1,
        }
    }

    fn exec(tgid: u32, ppid: u32, exe: &str) -> Event {
        Event::Exec(Exec {
            header: hdr(Kind::Exec, tgid),
            start_time_ns: u64::from(tgid) * 1_000_000_000,
            ppid,
            uid: 0,
            gid: 0,
            euid: 0,
            egid: 0,
            loginuid: None,
            tty_dev: 0,
            comm: vec![],
            exe: exe.into(),
            exe_truncated: false,
            cwd: b"/".to_vec(),
            cwd_truncated: false,
            args: vec![],
            args_truncated: false,
            argc: 0,
        })
    }

    fn fork(child: u32, parent: u32) -> Event {
        Event::Fork(Fork {
            header: hdr(Kind::Fork, child),
            start_time_ns: u64::from(child) * 1_000_000_000,
            parent_pid: parent,
            parent_tgid: parent,
            thread: false,
            comm: vec![],
        })
    }

    fn exit(tgid: u32) -> Event {
        Event::Exit(Exit {
            header: hdr(Kind::Exit, tgid),
            start_time_ns: u64::from(tgid) * 1_000_000_000,
            ppid: 1,
            code: Some(0),
            signal: None,
            core_dumped: false,
            comm: vec![],
            exe: None,
            exe_truncated: false,
        })
    }

    fn exes(t: &ProcessTable, ppid: u32) -> Vec<(u32, String)> {
        t.ancestry(ppid, 8)
            .into_iter()
            .map(|a| (a.pid, String::from_utf8_lossy(&a.image.exe).into_owned()))
            .collect()
    }

    #[test]
    fn fork_inherits_image_and_exec_replaces_it() {
        let mut t = ProcessTable::new(100);
        t.apply(&exec(10, 1, "/bin/sh"));
        t.apply(&fork(11, 10));
        assert_eq!(t.get(11).unwrap().image.exe, b"/bin/sh");
        t.apply(&exec(11, 10, "/bin/ls"));
        assert_eq!(t.get(11).unwrap().image.exe, b"/bin/ls");
        assert_eq!(
            exes(&t, 11),
            vec![(11, "/bin/ls".into()), (10, "/bin/sh".into())]
        );
    }

    #[test]
    fn exited_parents_still_give_ancestry_to_orphans() {
        let mut t = ProcessTable::new(100);
        t.apply(&exec(10, 1, "/bin/sh"));
        t.apply(&fork(11, 10));
        t.apply(&exit(10));
        assert_eq!(exes(&t, 10), vec![(10, "/bin/sh".into())]);
    }

    #[test]
    fn exec_after_reparenting_keeps_the_original_lineage() {
        let mut t = ProcessTable::new(100);
        t.apply(&exec(10, 1, "/bin/sh"));
        t.apply(&fork(11, 10));
        t.apply(&exit(10));
        t.apply(&exec(11, 1, "/bin/ls")); // the kernel now says ppid 1 (the reaper)
        assert_eq!(t.get(11).unwrap().ppid, 10);
    }

    #[test]
    fn capacity_is_enforced_and_evictions_counted() {
        let mut t = ProcessTable::new(16);
        for pid in 100..140 {
            t.apply(&exec(pid, 1, "/x"));
        }
        let s = t.stats();
        assert_eq!(s.size, 16);
        assert_eq!(s.evictions, 24);
        assert!(t.get(139).is_some() && t.get(100).is_none());
    }

    #[test]
    fn exited_entries_are_reaped_before_live_ones_are_evicted() {
        let mut t = ProcessTable::new(16);
        for pid in 100..116 {
            t.apply(&exec(pid, 1, "/x"));
        }
        t.apply(&exit(100));
        t.apply(&exec(200, 1, "/y"));
        let s = t.stats();
        assert_eq!((s.size, s.evictions, s.reaped), (16, 0, 1));
    }

    #[test]
    fn ancestry_stops_on_loops_and_depth() {
        let mut t = ProcessTable::new(100);
        t.apply(&exec(1, 1, "/sbin/init"));
        t.apply(&exec(2, 1, "/a"));
        t.apply(&exec(3, 2, "/b"));
        assert_eq!(t.ancestry(3, 8).len(), 3);
        assert_eq!(t.ancestry(3, 2).len(), 2);
    }
}
