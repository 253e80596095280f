//! The shared pod table.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use crate::meta::PodMeta;

/// Counters and sizes of a [`PodCache`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Pods currently known and not deleted.
    pub live: usize,
    /// Deleted pods still readable until their grace ends.
    pub tombstoned: usize,
    /// Container ids indexed.
    pub containers: usize,
    /// Pods inserted or replaced (list items and ADDED/MODIFIED events).
    pub applied: u64,
    /// Pods marked deleted (DELETED events, or missing from a re-list).
    pub deleted: u64,
    /// Deleted pods dropped after their grace.
    pub expired: u64,
    /// Completed (re)lists.
    pub lists: u64,
    /// Errors from the list/watch (connection, HTTP, decoding); each is retried with backoff.
    pub watch_errors: u64,
    /// Text of the most recent error.
    pub last_error: Option<String>,
    /// Whether at least one full list has completed.
    pub synced: bool,
}

#[derive(Debug)]
struct Entry {
    meta: Arc<PodMeta>,
    /// Set when the pod was deleted: the entry is dropped at this instant.
    expires: Option<Instant>,
}

impl Entry {
    fn visible(&self, now: Instant) -> bool {
        self.expires.is_none_or(|t| now < t)
    }
}

#[derive(Debug, Default)]
struct Inner {
    pods: HashMap<String, Entry>,
    /// container id -> pod uid
    containers: HashMap<String, String>,
    stats: CacheStats,
    /// Uids seen during a re-list in progress.
    relist: Option<HashSet<String>>,
}

/// Pod metadata keyed by pod uid and by container id.
///
/// Cheap to clone; clones share the same table. Readers never block on the
/// network: the watcher thread does the I/O and only takes the write lock to update.
#[derive(Debug, Clone, Default)]
pub struct PodCache {
    inner: Arc<RwLock<Inner>>,
}

impl PodCache {
    /// An empty cache (normally obtained from [`crate::spawn_watcher`]).
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The pod with this uid, including a deleted one within its grace.
    pub fn get(&self, uid: &str) -> Option<Arc<PodMeta>> {
        let now = Instant::now();
        let g = self.read();
        g.pods
            .get(uid)
            .filter(|e| e.visible(now))
            .map(|e| e.meta.clone())
    }

    /// The pod running the container with this id (without `containerd://` prefix).
    pub fn by_container(&self, container_id: &str) -> Option<Arc<PodMeta>> {
        let now = Instant::now();
        let g = self.read();
        let uid = g.containers.get(container_id)?;
        g.pods
            .get(uid)
            .filter(|e| e.visible(now))
            .map(|e| e.meta.clone())
    }

    /// Number of readable pods (live, and deleted within their grace).
    pub fn len(&self) -> usize {
        let now = Instant::now();
        self.read().pods.values().filter(|e| e.visible(now)).count()
    }

    /// Whether no pod is readable.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sizes and counters.
    pub fn stats(&self) -> CacheStats {
        let now = Instant::now();
        let g = self.read();
        let mut s = g.stats.clone();
        s.live = g.pods.values().filter(|e| e.expires.is_none()).count();
        s.tombstoned = g
            .pods
            .values()
            .filter(|e| e.expires.is_some() && e.visible(now))
            .count();
        s.containers = g.containers.len();
        s
    }

    // ---- updates, used by the watcher ----

    /// Insert or replace a pod (un-deleting it if it was tombstoned).
    pub(crate) fn apply(&self, meta: PodMeta) {
        let mut g = self.write();
        g.stats.applied += 1;
        if let Some(seen) = g.relist.as_mut() {
            seen.insert(meta.uid.clone());
        }
        upsert(&mut g, meta, None);
    }

    /// Mark a pod deleted: it stays readable for `grace`. The last known state
    /// (the DELETED event's object) replaces the cached one.
    pub(crate) fn delete(&self, meta: PodMeta, grace: Duration) {
        let mut g = self.write();
        let expires = match g.pods.get(&meta.uid).and_then(|e| e.expires) {
            Some(t) => t, // already deleted: keep the first deadline
            None => {
                g.stats.deleted += 1;
                Instant::now() + grace
            }
        };
        upsert(&mut g, meta, Some(expires));
    }

    /// A (re)list starts: remember which pods it returns.
    pub(crate) fn begin_list(&self) {
        self.write().relist = Some(HashSet::new());
    }

    /// A (re)list ended: pods not in it were deleted while we were not watching.
    pub(crate) fn end_list(&self, grace: Duration) {
        let mut g = self.write();
        let g = &mut *g;
        let seen = g.relist.take().unwrap_or_default();
        let expires = Instant::now() + grace;
        for (uid, e) in g.pods.iter_mut() {
            if e.expires.is_none() && !seen.contains(uid) {
                e.expires = Some(expires);
                g.stats.deleted += 1;
            }
        }
        g.stats.lists += 1;
        g.stats.synced = true;
    }

    pub(crate) fn record_error(&self, err: String) {
        let mut g = self.write();
        g.stats.watch_errors += 1;
        g.stats.last_error = Some(err);
    }

    /// Drop deleted pods whose grace has ended. Returns how many were dropped.
    pub(crate) fn prune(&self) -> usize {
        let now = Instant::now();
        {
            let g = self.read();
            if g.pods.values().all(|e| e.visible(now)) {
                return 0;
            }
        }
        let mut g = self.write();
        let g = &mut *g;
        let before = g.pods.len();
        g.pods.retain(|_, e| e.visible(now));
        let dropped = before - g.pods.len();
        if dropped > 0 {
            let pods = &g.pods;
            g.containers.retain(|_, uid| pods.contains_key(uid));
            g.stats.expired += dropped as u64;
        }
        dropped
    }
}

fn upsert(g: &mut Inner, meta: PodMeta, expires: Option<Instant>) {
    let meta = Arc::new(meta);
    if let Some(old) = g.pods.get(&meta.uid) {
        for id in old.meta.container_ids() {
            if g.containers.get(id) == Some(&meta.uid) {
                g.containers.remove(id);
            }
        }
    }
    for id in meta.container_ids() {
        g.containers.insert(id.to_string(), meta.uid.clone());
    }
    g.pods.insert(meta.uid.clone(), Entry { meta, expires });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::ContainerMeta;

    fn meta(uid: &str, cid: &str) -> PodMeta {
        PodMeta {
            uid: uid.into(),
            namespace: "ns".into(),
            name: format!("pod-{uid}"),
            labels: Default::default(),
            owner: None,
            node: None,
            ips: vec![],
            containers: vec![ContainerMeta {
                name: "c".into(),
                id: Some(cid.into()),
                image: "img".into(),
            }],
        }
    }

    #[test]
    fn relist_tombstones_missing_pods() {
        let c = PodCache::new();
        c.begin_list();
        c.apply(meta("a", "ca"));
        c.apply(meta("b", "cb"));
        c.end_list(Duration::from_secs(60));
        assert_eq!(c.len(), 2);
        // Re-list after a lost watch: "b" is gone.
        c.begin_list();
        c.apply(meta("a", "ca"));
        c.end_list(Duration::ZERO);
        assert!(c.get("b").is_none());
        assert!(c.by_container("cb").is_none());
        assert!(c.get("a").is_some());
        let s = c.stats();
        assert_eq!((s.live, s.deleted, s.lists), (1, 1, 2));
        assert_eq!(c.prune(), 1);
        assert_eq!(c.stats().expired, 1);
        assert_eq!(c.stats().containers, 1);
    }

    #[test]
    fn replaced_container_ids_are_unindexed() {
        let c = PodCache::new();
        c.apply(meta("a", "old"));
        c.apply(meta("a", "new"));
        assert!(c.by_container("old").is_none());
        assert_eq!(c.by_container("new").unwrap().uid, "a");
        // Deleted then re-applied (same uid): live again.
        c.delete(meta("a", "new"), Duration::ZERO);
        assert!(c.get("a").is_none());
        c.apply(meta("a", "new"));
        assert!(c.get("a").is_some());
        assert_eq!(c.prune(), 0);
    }
}
