//! Container name, image and labels from the container runtimes' own APIs.
//!
//! The cgroup path tells a container's id and runtime (crate `vigil-identity`); what the user
//! called it, the image it runs and its labels are only known to the runtime. [`spawn`] starts
//! a thread (current-thread tokio runtime) that asks containerd (gRPC, `Containers.Get`, also
//! giving the `io.kubernetes.*` labels the CRI sets) or Podman (REST, container inspect) over
//! their unix sockets, and fills a [`MetaCache`]. The agent's pipeline calls
//! [`MetaCache::request`] when it learns a container's cgroup and reads [`MetaCache::get`]
//! for each event; neither waits for the runtime.
//!
//! A lookup takes a few milliseconds (`docs/identity.md`, "Runtime metadata"): the first
//! events of a container can come before its metadata.

mod cache;
mod config;
mod containerd;
mod meta;
mod podman;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, Semaphore};
use vigil_identity::Runtime;

pub use cache::{MetaCache, MetaStats, Requested, RuntimeStats};
pub use config::{ConfigError, ContainerdConfig, PodmanConfig, RuntimeConfig};
pub use meta::{
    ContainerInfo, PodRef, LABEL_CONTAINER_NAME, LABEL_CRI_KIND, LABEL_POD_NAME,
    LABEL_POD_NAMESPACE, LABEL_POD_UID,
};

use cache::{Job, Outcome};

/// Lookups waiting for the worker; [`MetaCache::request`] reports [`Requested::Dropped`] past it.
pub const QUEUE_SIZE: usize = 1024;
/// Lookups running at once, so that one slow runtime does not hold up the other.
pub const MAX_IN_FLIGHT: usize = 16;

/// Errors of [`spawn`]. Lookup failures come later, in [`RuntimeStats`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("runtime.containerd.socket: {0}")]
    Endpoint(#[source] tonic::transport::Error),
    #[error("tokio runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error("spawning runtime metadata thread: {0}")]
    Thread(#[source] std::io::Error),
    #[error("runtime metadata thread died during setup")]
    Died,
}

/// Why one lookup failed (kept as text in [`RuntimeStats::last_error`]).
#[derive(Debug, thiserror::Error)]
pub(crate) enum LookupError {
    #[error("containerd: {0}")]
    Containerd(tonic::Status),
    #[error("podman: invalid container id {0:?}")]
    PodmanId(String),
    #[error("podman: connecting: {0}")]
    PodmanConnect(#[source] std::io::Error),
    #[error("podman: {0}")]
    PodmanHttp(#[source] hyper::Error),
    #[error("podman: HTTP {0}: {1}")]
    PodmanStatus(http::StatusCode, String),
    #[error("podman: decoding the answer: {0}")]
    PodmanJson(#[source] serde_json::Error),
}

/// The running lookup thread. Dropping it stops the thread (without waiting for it).
#[derive(Debug)]
pub struct Handle {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Handle {
    /// Stops the thread and waits for it; lookups in flight are abandoned.
    pub fn stop(mut self) {
        self.stop.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    /// Whether the thread has ended.
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.stop.take();
    }
}

/// Validates `cfg` and starts the lookup thread. Nothing connects yet: a runtime whose socket
/// is missing now (not installed, not started yet) is tried at each lookup, and its failures
/// are counted, not fatal.
pub fn spawn(cfg: RuntimeConfig) -> Result<(MetaCache, Handle), Error> {
    cfg.validate()?;
    let (tx, rx) = mpsc::channel(QUEUE_SIZE);
    let cache = MetaCache::new(
        cfg.capacity,
        cfg.retry(),
        tx,
        cfg.containerd.enabled,
        cfg.podman.enabled,
    );
    let (stop_tx, stop_rx) = oneshot::channel();
    // The runtime is made on the new thread, so that this function can also be called from
    // inside an async context; setup errors come back here.
    let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel::<Result<(), Error>>(1);
    let worker_cache = cache.clone();
    let thread = std::thread::Builder::new()
        .name("vigil-runtime".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = ready_tx.send(Err(Error::Runtime(e)));
                    return;
                }
            };
            let containerd = if cfg.containerd.enabled {
                let _guard = rt.enter();
                match containerd::Client::new(
                    &cfg.containerd.socket,
                    cfg.containerd.namespaces.clone(),
                ) {
                    Ok(c) => Some(c),
                    Err(e) => {
                        let _ = ready_tx.send(Err(Error::Endpoint(e)));
                        return;
                    }
                }
            } else {
                None
            };
            let _ = ready_tx.send(Ok(()));
            let worker = Worker {
                cache: worker_cache,
                containerd,
                podman: cfg.podman.enabled.then(|| cfg.podman.socket.clone()),
                timeout: cfg.timeout(),
                healthy: Arc::new([AtomicBool::new(true), AtomicBool::new(true)]),
            };
            rt.block_on(worker.run(rx, stop_rx));
        })
        .map_err(Error::Thread)?;
    match ready_rx.recv() {
        Ok(Ok(())) => Ok((
            cache,
            Handle {
                stop: Some(stop_tx),
                thread: Some(thread),
            },
        )),
        Ok(Err(e)) => {
            let _ = thread.join();
            Err(e)
        }
        Err(_) => {
            let _ = thread.join();
            Err(Error::Died)
        }
    }
}

#[derive(Debug, Clone)]
struct Worker {
    cache: MetaCache,
    containerd: Option<containerd::Client>,
    podman: Option<PathBuf>,
    timeout: Duration,
    /// Per runtime (containerd, Podman): whether the last lookup reached it, so that an
    /// outage is logged once at warn level, not once per container.
    healthy: Arc<[AtomicBool; 2]>,
}

impl Worker {
    async fn run(self, mut rx: mpsc::Receiver<Job>, mut stop: oneshot::Receiver<()>) {
        let limit = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
        tracing::info!(
            containerd = self.containerd.is_some(),
            podman = ?self.podman,
            "runtime metadata lookups started"
        );
        loop {
            let job = tokio::select! {
                _ = &mut stop => break,
                job = rx.recv() => match job {
                    Some(job) => job,
                    None => break, // every MetaCache is gone
                },
            };
            let Ok(permit) = limit.clone().acquire_owned().await else {
                break;
            };
            let w = self.clone();
            tokio::spawn(async move {
                let outcome = w.lookup(&job).await;
                w.cache.complete(&job, outcome);
                drop(permit);
            });
        }
        tracing::info!("runtime metadata lookups stopped");
    }

    async fn lookup(&self, job: &Job) -> Outcome {
        let (slot, name) = match job.runtime {
            Runtime::Podman => (1, "podman"),
            _ => (0, "containerd"),
        };
        let fut = async {
            match (job.runtime, &self.containerd, &self.podman) {
                (Runtime::Podman, _, Some(socket)) => podman::inspect(socket, &job.id).await,
                (Runtime::Containerd | Runtime::Unknown, Some(c), _) => {
                    c.get(&job.id, job.namespace.as_deref()).await
                }
                // MetaCache::request queues only what an enabled runtime can answer.
                _ => Ok(None),
            }
        };
        let result = match tokio::time::timeout(self.timeout, fut).await {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(_) => Err(format!("{name}: no answer within {:?}", self.timeout)),
        };
        let was_healthy = self.healthy[slot].swap(result.is_ok(), Ordering::Relaxed);
        match result {
            Ok(Some(info)) => {
                tracing::debug!(runtime = name, id = %job.id, name = %info.name, image = %info.image, "container metadata");
                Outcome::Found(info)
            }
            Ok(None) => {
                tracing::debug!(runtime = name, id = %job.id, "container unknown to its runtime");
                Outcome::NotFound
            }
            Err(e) => {
                if was_healthy {
                    tracing::warn!(runtime = name, error = %e, "container runtime API unreachable; metadata lookups fail until it answers");
                } else {
                    tracing::debug!(runtime = name, id = %job.id, error = %e, "container metadata lookup failed");
                }
                Outcome::Failed(e)
            }
        }
    }
}
