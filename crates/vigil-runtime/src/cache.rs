//! The shared table of looked-up containers, and the queue of lookups to do.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use vigil_identity::{ContainerRef, Runtime};

use crate::meta::ContainerInfo;

/// Counters of one runtime's lookups.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuntimeStats {
    /// Lookups finished (found, not found or failed).
    pub lookups: u64,
    pub found: u64,
    /// The runtime answered and does not know the container.
    pub not_found: u64,
    /// The runtime could not be asked or gave no usable answer (socket missing, timeout, error).
    pub failures: u64,
    /// Text of the most recent failure.
    pub last_error: Option<String>,
}

/// Sizes and counters of a [`MetaCache`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetaStats {
    /// Containers whose metadata is held.
    pub known: usize,
    /// Lookups queued or running.
    pub pending: usize,
    /// Containers remembered as not found or failed, until their retry time.
    pub negative: usize,
    /// [`MetaCache::get`] calls that returned metadata.
    pub hits: u64,
    /// [`MetaCache::get`] calls that did not.
    pub misses: u64,
    /// Requests not queued because the queue was full (asked again later, they are retried).
    pub dropped: u64,
    /// Entries dropped to stay within the capacity.
    pub evicted: u64,
    /// Requests for containers of a runtime that is not supported or not enabled.
    pub unsupported: u64,
    pub containerd: RuntimeStats,
    pub podman: RuntimeStats,
}

/// What [`MetaCache::request`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requested {
    /// Metadata is already there.
    Known,
    /// A lookup is already queued or running.
    Pending,
    /// A lookup was queued.
    Queued,
    /// The last lookup found nothing or failed; no new one before its retry time.
    Backoff,
    /// No enabled runtime API can describe this container (Docker, CRI-O, or a disabled one).
    Unsupported,
    /// The lookup queue is full; nothing was queued (counted in [`MetaStats::dropped`]).
    Dropped,
}

/// One lookup for the worker.
#[derive(Debug)]
pub(crate) struct Job {
    pub runtime: Runtime,
    pub id: String,
    /// The containerd namespace named by the container's cgroup path.
    pub namespace: Option<String>,
}

/// How a lookup ended.
#[derive(Debug)]
pub(crate) enum Outcome {
    Found(ContainerInfo),
    NotFound,
    Failed(String),
}

#[derive(Debug)]
enum State {
    Pending,
    Known(Arc<ContainerInfo>),
    /// Not found or failed: not looked up again before this instant.
    Negative(Instant),
}

#[derive(Debug)]
struct Slot {
    state: State,
    /// Insertion number, to tell this slot's place in `Inner::order` from stale ones.
    seq: u64,
}

#[derive(Debug)]
struct Inner {
    slots: HashMap<String, Slot>,
    /// Container ids in insertion order, for eviction; may hold stale entries (see `seq`).
    order: VecDeque<(String, u64)>,
    next_seq: u64,
    stats: MetaStats,
}

/// Container metadata by container id, filled in the background.
///
/// Cheap to clone; clones share the table. No method waits for a runtime: [`MetaCache::request`]
/// queues a lookup and returns, [`MetaCache::get`] reads what is there. Each takes one short
/// mutex, never held across I/O.
#[derive(Debug, Clone)]
pub struct MetaCache {
    inner: Arc<Mutex<Inner>>,
    queue: mpsc::Sender<Job>,
    capacity: usize,
    retry: Duration,
    containerd: bool,
    podman: bool,
}

impl MetaCache {
    pub(crate) fn new(
        capacity: usize,
        retry: Duration,
        queue: mpsc::Sender<Job>,
        containerd: bool,
        podman: bool,
    ) -> Self {
        MetaCache {
            inner: Arc::new(Mutex::new(Inner {
                slots: HashMap::new(),
                order: VecDeque::new(),
                next_seq: 0,
                stats: MetaStats::default(),
            })),
            queue,
            capacity,
            retry,
            containerd,
            podman,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Asks for the metadata of `c` if it is not known yet; never blocks.
    ///
    /// Call it when a container's cgroup is learnt; [`Self::get`] answers once the lookup is
    /// done. containerd containers (and `unknown`, the Kubernetes cgroupfs form) are asked of
    /// containerd, Podman ones of Podman.
    pub fn request(&self, c: &ContainerRef) -> Requested {
        self.enqueue(c, None)
    }

    /// [`Self::request`], also telling the cgroup path: when it is containerd's
    /// `/<namespace>/<id>` form (`ctr`, nerdctl with cgroupfs), that namespace is asked first.
    pub fn request_for_path(&self, c: &ContainerRef, cgroup_path: &str) -> Requested {
        let mut parts = cgroup_path.split('/').filter(|p| !p.is_empty());
        let ns = match (parts.next(), parts.next(), parts.next()) {
            (Some(ns), Some(id), None) if id == c.id && crate::config::is_namespace_name(ns) => {
                Some(ns.to_owned())
            }
            _ => None,
        };
        self.enqueue(c, ns)
    }

    fn enqueue(&self, c: &ContainerRef, namespace: Option<String>) -> Requested {
        let supported = match c.runtime {
            Runtime::Containerd | Runtime::Unknown => self.containerd,
            Runtime::Podman => self.podman,
            Runtime::Docker | Runtime::CriO => false,
        };
        let mut g = self.lock();
        if !supported {
            g.stats.unsupported += 1;
            return Requested::Unsupported;
        }
        let now = Instant::now();
        match g.slots.get(&c.id).map(|s| &s.state) {
            Some(State::Known(_)) => return Requested::Known,
            Some(State::Pending) => return Requested::Pending,
            Some(State::Negative(until)) if now < *until => return Requested::Backoff,
            Some(State::Negative(_)) | None => {}
        }
        let job = Job {
            runtime: c.runtime,
            id: c.id.clone(),
            namespace,
        };
        if self.queue.try_send(job).is_err() {
            g.stats.dropped += 1;
            return Requested::Dropped;
        }
        match g.slots.get_mut(&c.id) {
            Some(slot) => slot.state = State::Pending,
            None => self.insert(&mut g, c.id.clone()),
        }
        Requested::Queued
    }

    /// The metadata of container `id`, if a lookup has found it.
    pub fn get(&self, id: &str) -> Option<Arc<ContainerInfo>> {
        let mut g = self.lock();
        let found = match g.slots.get(id) {
            Some(Slot {
                state: State::Known(m),
                ..
            }) => Some(m.clone()),
            _ => None,
        };
        match found {
            Some(_) => g.stats.hits += 1,
            None => g.stats.misses += 1,
        }
        found
    }

    /// Drops what is known about container `id` (call it when its cgroup is removed).
    pub fn forget(&self, id: &str) {
        self.lock().slots.remove(id);
    }

    /// Sizes and counters.
    pub fn stats(&self) -> MetaStats {
        let g = self.lock();
        let mut s = g.stats.clone();
        (s.known, s.pending, s.negative) = (0, 0, 0);
        for slot in g.slots.values() {
            match slot.state {
                State::Known(_) => s.known += 1,
                State::Pending => s.pending += 1,
                State::Negative(_) => s.negative += 1,
            }
        }
        s
    }

    /// Records how the lookup of `job` ended (called by the worker).
    pub(crate) fn complete(&self, job: &Job, outcome: Outcome) {
        let mut g = self.lock();
        let stats = match job.runtime {
            Runtime::Podman => &mut g.stats.podman,
            _ => &mut g.stats.containerd,
        };
        stats.lookups += 1;
        let state = match outcome {
            Outcome::Found(m) => {
                stats.found += 1;
                State::Known(Arc::new(m))
            }
            Outcome::NotFound => {
                stats.not_found += 1;
                State::Negative(Instant::now() + self.retry)
            }
            Outcome::Failed(e) => {
                stats.failures += 1;
                stats.last_error = Some(e);
                State::Negative(Instant::now() + self.retry)
            }
        };
        // Forgotten while the lookup ran: the container is gone, do not bring it back.
        if let Some(slot) = g.slots.get_mut(&job.id) {
            slot.state = state;
        }
    }

    /// A new pending slot, evicting the oldest entries past the capacity.
    fn insert(&self, g: &mut Inner, id: String) {
        while g.slots.len() >= self.capacity {
            let Some((old, seq)) = g.order.pop_front() else {
                break;
            };
            if g.slots.get(&old).is_some_and(|s| s.seq == seq) {
                g.slots.remove(&old);
                g.stats.evicted += 1;
            }
        }
        let seq = g.next_seq;
        g.next_seq += 1;
        g.order.push_back((id.clone(), seq));
        g.slots.insert(
            id,
            Slot {
                state: State::Pending,
                seq,
            },
        );
        // Forgotten and re-requested ids leave stale entries behind: keep the queue bounded.
        if g.order.len() > 2 * self.capacity {
            let slots = &g.slots;
            g.order
                .retain(|(id, seq)| slots.get(id).is_some_and(|s| s.seq == *seq));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cref(runtime: Runtime, id: &str) -> ContainerRef {
        ContainerRef {
            runtime,
            id: id.into(),
            pod_uid: None,
            qos: None,
            meta: None,
        }
    }

    fn info(id: &str) -> ContainerInfo {
        ContainerInfo::from_containerd(
            id.into(),
            "default".into(),
            "img".into(),
            Default::default(),
        )
    }

    #[test]
    fn request_lookup_and_negative_caching() {
        let (tx, mut rx) = mpsc::channel(8);
        let c = MetaCache::new(8, Duration::from_secs(3600), tx, true, false);
        let a = cref(Runtime::Containerd, "a");
        assert_eq!(c.request(&a), Requested::Queued);
        assert_eq!(c.request(&a), Requested::Pending);
        assert!(c.get("a").is_none());
        let job = rx.try_recv().unwrap();
        assert!(rx.try_recv().is_err(), "one job for two requests");
        c.complete(&job, Outcome::Found(info("a")));
        assert_eq!(c.get("a").unwrap().image, "img");
        assert_eq!(c.request(&a), Requested::Known);

        let b = cref(Runtime::Unknown, "b");
        assert_eq!(c.request(&b), Requested::Queued);
        c.complete(&rx.try_recv().unwrap(), Outcome::Failed("boom".into()));
        assert_eq!(c.request(&b), Requested::Backoff);
        assert_eq!(
            c.request(&cref(Runtime::Podman, "p")),
            Requested::Unsupported
        );
        assert_eq!(
            c.request(&cref(Runtime::Docker, "d")),
            Requested::Unsupported
        );

        let s = c.stats();
        assert_eq!((s.known, s.negative, s.pending), (1, 1, 0));
        assert_eq!((s.hits, s.misses, s.unsupported), (1, 1, 2));
        assert_eq!(
            (
                s.containerd.lookups,
                s.containerd.found,
                s.containerd.failures
            ),
            (2, 1, 1)
        );
        assert_eq!(s.containerd.last_error.as_deref(), Some("boom"));
    }

    #[test]
    fn retry_after_the_delay() {
        let (tx, mut rx) = mpsc::channel(8);
        let c = MetaCache::new(8, Duration::ZERO, tx, true, true);
        let p = cref(Runtime::Podman, "p");
        c.request(&p);
        c.complete(&rx.try_recv().unwrap(), Outcome::NotFound);
        assert_eq!(c.stats().podman.not_found, 1);
        assert_eq!(c.request(&p), Requested::Queued);
    }

    #[test]
    fn full_queue_and_capacity() {
        let (tx, mut rx) = mpsc::channel(2);
        let c = MetaCache::new(2, Duration::ZERO, tx, true, true);
        for id in ["a", "b"] {
            assert_eq!(c.request(&cref(Runtime::Containerd, id)), Requested::Queued);
        }
        assert_eq!(
            c.request(&cref(Runtime::Containerd, "c")),
            Requested::Dropped
        );
        while let Ok(job) = rx.try_recv() {
            let id = job.id.clone();
            c.complete(&job, Outcome::Found(info(&id)));
        }
        // "c" was not marked pending: asked again, it is queued, evicting the oldest ("a").
        assert_eq!(
            c.request(&cref(Runtime::Containerd, "c")),
            Requested::Queued
        );
        assert!(c.get("a").is_none() && c.get("b").is_some());
        let s = c.stats();
        assert_eq!((s.dropped, s.evicted, s.known, s.pending), (1, 1, 1, 1));
        // A lookup finishing after `forget` does not resurrect the entry.
        let job = rx.try_recv().unwrap();
        c.forget("c");
        c.complete(&job, Outcome::Found(info("c")));
        assert!(c.get("c").is_none());
        // Churn through forget/re-request keeps the order queue bounded.
        for _ in 0..100 {
            c.forget("x");
            c.request(&cref(Runtime::Containerd, "x"));
            let _ = rx.try_recv();
        }
        assert!(c.lock().order.len() <= 4);
    }

    #[test]
    fn namespace_from_the_cgroup_path() {
        let (tx, mut rx) = mpsc::channel(8);
        let c = MetaCache::new(8, Duration::ZERO, tx, true, true);
        c.request_for_path(&cref(Runtime::Containerd, "web"), "/tenant-a/web");
        assert_eq!(
            rx.try_recv().unwrap().namespace.as_deref(),
            Some("tenant-a")
        );
        let id = "a".repeat(64);
        let path = format!("/kubepods.slice/x.slice/cri-containerd-{id}.scope");
        c.request_for_path(&cref(Runtime::Containerd, &id), &path);
        assert_eq!(rx.try_recv().unwrap().namespace, None);
    }
}
