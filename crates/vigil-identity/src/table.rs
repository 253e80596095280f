//! The bounded cgroup id -> identity table.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::parse::{parse_impl, ContainerRef, DEFAULT_CONTAINERD_NAMESPACES};

/// A capacity well above the number of cgroups of a busy host (a Kubernetes node with 110 pods
/// has a few hundred to a few thousand).
pub const DEFAULT_CAPACITY: usize = 16_384;

/// How long a retired cgroup stays attributed: events read from the ring buffer after the
/// cgroup's removal still name it.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(30);

/// How deep [`IdentityTable::seed_from_dir`] goes below the root it is given (the root is depth
/// 0). Container cgroups are at depth 2 to 6 in every supported layout.
pub const MAX_SEED_DEPTH: usize = 16;

/// What the table knows about one cgroup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// The cgroup's path relative to the cgroup v2 root, as given to [`IdentityTable::insert`]
    /// (`/` for the root itself).
    pub path: String,
    /// The container the path names, if any ([`crate::parse_with`]).
    pub container: Option<ContainerRef>,
}

/// Counters of an [`IdentityTable`], for the agent's stats.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TableStats {
    /// Entries held, retired ones included.
    pub len: usize,
    /// Of those, retired ones waiting for [`IdentityTable::expire`].
    pub retired: usize,
    pub capacity: usize,
    /// Entries dropped to make room for another (retired ones first, then the oldest insert).
    pub evictions: u64,
    /// Retired entries removed by [`IdentityTable::expire`] after their grace period.
    pub expired: u64,
}

#[derive(Debug)]
struct Slot {
    entry: Entry,
    /// Insertion sequence number: the key in `order`.
    seq: u64,
    /// When retired: the time (ns, the caller's clock) from which `expire` drops it.
    deadline: Option<u64>,
}

/// A bounded map cgroup id -> [`Entry`].
///
/// When full, an insert of a new id evicts first the retired entry closest to its deadline, then
/// the entry inserted (or re-inserted) longest ago; evictions are counted. A lookup that misses
/// is the caller's to resolve again (e.g. from `/proc/<pid>/cgroup`) and insert.
///
/// Removal has two forms: [`remove`](Self::remove) forgets at once; [`retire`](Self::retire)
/// (for `cgroup_rmdir`) keeps the entry readable for the grace period, until an
/// [`expire`](Self::expire) after its deadline, so that events still in flight when a container
/// goes away are attributed to it. Times are nanoseconds on any monotonic clock of the caller's
/// (the events' `bpf_ktime_get_ns`, say), the same one for `retire` and `expire`.
#[derive(Debug)]
pub struct IdentityTable {
    /// Looked up for every event: a fast hasher (cgroup ids are the kernel's to choose).
    slots: HashMap<u64, Slot, foldhash::fast::RandomState>,
    /// seq -> cgroup id, every entry, oldest insert first.
    order: BTreeMap<u64, u64>,
    /// (deadline, cgroup id) of the retired entries.
    retired: BTreeSet<(u64, u64)>,
    next_seq: u64,
    capacity: usize,
    grace_ns: u64,
    namespaces: Vec<String>,
    evictions: u64,
    expired: u64,
}

impl IdentityTable {
    /// A table of at most `capacity` entries (at least 1) keeping retired entries for `grace`,
    /// parsing paths with [`DEFAULT_CONTAINERD_NAMESPACES`].
    pub fn new(capacity: usize, grace: Duration) -> Self {
        Self::with_namespaces(
            capacity,
            grace,
            DEFAULT_CONTAINERD_NAMESPACES.iter().map(|s| s.to_string()),
        )
    }

    /// [`new`](Self::new) with the containerd namespaces to recognise in `/<ns>/<id>` paths
    /// ([`crate::Hints`]).
    pub fn with_namespaces(
        capacity: usize,
        grace: Duration,
        namespaces: impl IntoIterator<Item = String>,
    ) -> Self {
        IdentityTable {
            slots: HashMap::default(),
            order: BTreeMap::new(),
            retired: BTreeSet::new(),
            next_seq: 0,
            capacity: capacity.max(1),
            grace_ns: u64::try_from(grace.as_nanos()).unwrap_or(u64::MAX),
            namespaces: namespaces.into_iter().collect(),
            evictions: 0,
            expired: 0,
        }
    }

    /// Parses `path` (relative to the cgroup v2 root) and stores it under `cgroup_id`,
    /// replacing what was there (a retired entry under the same id becomes live again).
    pub fn insert(&mut self, cgroup_id: u64, path: &str) -> &Entry {
        let namespaces = &self.namespaces;
        let container = parse_impl(path, |ns| namespaces.iter().any(|n| n == ns));
        let entry = Entry {
            path: path.to_owned(),
            container,
        };
        if self.take(cgroup_id).is_none() {
            while self.slots.len() >= self.capacity {
                self.evict_one();
            }
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.order.insert(seq, cgroup_id);
        let slot = self.slots.entry(cgroup_id).or_insert(Slot {
            entry,
            seq,
            deadline: None,
        });
        &slot.entry
    }

    /// Attaches what the runtime's API says to the container of `cgroup_id`.
    pub fn set_meta(&mut self, cgroup_id: u64, meta: std::sync::Arc<crate::RuntimeMeta>) {
        if let Some(c) = self
            .slots
            .get_mut(&cgroup_id)
            .and_then(|s| s.entry.container.as_mut())
        {
            c.meta = Some(meta);
        }
    }

    /// Every entry, retired or not, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &Entry)> {
        self.slots.iter().map(|(id, s)| (*id, &s.entry))
    }

    /// The entry of `cgroup_id`, retired or not.
    pub fn get(&self, cgroup_id: u64) -> Option<&Entry> {
        self.slots.get(&cgroup_id).map(|s| &s.entry)
    }

    /// Shorthand for the container of `cgroup_id`.
    pub fn container(&self, cgroup_id: u64) -> Option<&ContainerRef> {
        self.get(cgroup_id).and_then(|e| e.container.as_ref())
    }

    /// Forgets `cgroup_id` now.
    pub fn remove(&mut self, cgroup_id: u64) -> Option<Entry> {
        self.take(cgroup_id)
    }

    /// Marks `cgroup_id` as removed at `now_ns`: it stays readable until an
    /// [`expire`](Self::expire) at or after `now_ns + grace`. Retiring an entry again does not
    /// move its deadline. `false` when the id is unknown.
    pub fn retire(&mut self, cgroup_id: u64, now_ns: u64) -> bool {
        let Some(slot) = self.slots.get_mut(&cgroup_id) else {
            return false;
        };
        if slot.deadline.is_none() {
            let deadline = now_ns.saturating_add(self.grace_ns);
            slot.deadline = Some(deadline);
            self.retired.insert((deadline, cgroup_id));
        }
        true
    }

    /// Whether `cgroup_id` is held and retired.
    pub fn is_retired(&self, cgroup_id: u64) -> bool {
        self.slots
            .get(&cgroup_id)
            .is_some_and(|s| s.deadline.is_some())
    }

    /// Drops the retired entries whose deadline is at or before `now_ns`; returns how many.
    pub fn expire(&mut self, now_ns: u64) -> usize {
        let mut n = 0;
        while let Some(&(deadline, id)) = self.retired.first() {
            if deadline > now_ns {
                break;
            }
            self.take(id);
            n += 1;
        }
        self.expired += n as u64;
        n
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    pub fn stats(&self) -> TableStats {
        TableStats {
            len: self.slots.len(),
            retired: self.retired.len(),
            capacity: self.capacity,
            evictions: self.evictions,
            expired: self.expired,
        }
    }

    /// Walks a cgroup v2 mount (`/sys/fs/cgroup`; any directory in tests) and inserts every
    /// directory, `root` included, under its inode number (which is the cgroup id), with its
    /// path relative to `root` (`/`, `/system.slice`, ...). Goes at most [`MAX_SEED_DEPTH`]
    /// levels below `root`, does not follow symbolic links, and skips subdirectories it cannot
    /// read (cgroups removed during the walk); names that are not UTF-8 are stored lossily.
    /// Returns the number of directories inserted (more than the capacity means that some of
    /// them were evicted again). Fails only when `root` itself cannot be read.
    pub fn seed_from_dir(&mut self, root: &Path) -> io::Result<usize> {
        let meta = std::fs::metadata(root)?;
        if !meta.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not a directory", root.display()),
            ));
        }
        let top = std::fs::read_dir(root)?;
        self.insert(meta.ino(), "/");
        let mut inserted = 1;
        // (directory, its path relative to root, its depth, its listing when already open).
        let mut stack: Vec<(PathBuf, String, usize, Option<std::fs::ReadDir>)> =
            vec![(root.to_path_buf(), String::new(), 0, Some(top))];
        while let Some((dir, rel, depth, listing)) = stack.pop() {
            let listing = match listing {
                Some(l) => l,
                None => match std::fs::read_dir(&dir) {
                    Ok(l) => l,
                    Err(_) => continue,
                },
            };
            for entry in listing {
                let Ok(entry) = entry else { continue };
                // DirEntry::metadata does not follow symbolic links.
                let Ok(meta) = entry.metadata() else { continue };
                if !meta.is_dir() {
                    continue;
                }
                let child_rel = format!("{rel}/{}", entry.file_name().to_string_lossy());
                self.insert(meta.ino(), &child_rel);
                inserted += 1;
                if depth + 1 < MAX_SEED_DEPTH {
                    stack.push((entry.path(), child_rel, depth + 1, None));
                }
            }
        }
        Ok(inserted)
    }

    /// Removes `cgroup_id` from every index.
    fn take(&mut self, cgroup_id: u64) -> Option<Entry> {
        let slot = self.slots.remove(&cgroup_id)?;
        self.order.remove(&slot.seq);
        if let Some(deadline) = slot.deadline {
            self.retired.remove(&(deadline, cgroup_id));
        }
        Some(slot.entry)
    }

    fn evict_one(&mut self) {
        let victim = match self.retired.first() {
            Some(&(_, id)) => id,
            None => match self.order.first_key_value() {
                Some((_, &id)) => id,
                None => return,
            },
        };
        self.take(victim);
        self.evictions += 1;
    }
}
