//! Pod metadata for events, from the Kubernetes API.
//!
//! The agent knows a container's pod uid (from its cgroup path) and container id;
//! [`spawn_watcher`] keeps a [`PodCache`] of every pod on this node (namespace,
//! name, labels, owning workload, IPs, containers) up to date with a list+watch
//! of `/api/v1/pods`, on a thread of its own with a current-thread tokio runtime.
//!
//! Deleted pods stay readable for [`WatchConfig::grace`] so that events racing the
//! deletion (exit, last connections) still get their metadata.

mod cache;
mod meta;

use std::path::PathBuf;
use std::thread::JoinHandle;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, Client, Config};
use tokio::sync::oneshot;

pub use cache::{CacheStats, PodCache};
pub use meta::{owner_of, strip_runtime_prefix, ContainerMeta, Owner, PodMeta, POD_TEMPLATE_HASH};

/// Default for [`WatchConfig::grace`].
pub const DEFAULT_GRACE: Duration = Duration::from_secs(60);

/// Where and what to watch.
#[derive(Debug, Clone)]
pub struct WatchConfig {
    /// Kubeconfig file to use (its current context); `None`: in-cluster service
    /// account (`KUBERNETES_SERVICE_HOST`/`_PORT` and the mounted token and CA).
    pub kubeconfig: Option<PathBuf>,
    /// Only pods on this node (field selector `spec.nodeName=<name>`); `None`: all pods.
    pub node_name: Option<String>,
    /// How long a deleted pod stays readable.
    pub grace: Duration,
}

impl Default for WatchConfig {
    fn default() -> Self {
        Self {
            kubeconfig: None,
            node_name: None,
            grace: DEFAULT_GRACE,
        }
    }
}

/// Errors of [`spawn_watcher`] (later list/watch errors are retried, logged and
/// counted in [`CacheStats::watch_errors`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading kubeconfig {path}: {source}")]
    Kubeconfig {
        path: PathBuf,
        #[source]
        source: kube::config::KubeconfigError,
    },
    #[error("in-cluster config: {0}")]
    InCluster(#[from] kube::config::InClusterError),
    #[error("kubernetes client: {0}")]
    Client(#[from] kube::Error),
    #[error("tokio runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error("spawning watcher thread: {0}")]
    Thread(#[source] std::io::Error),
    #[error("watcher thread died during setup")]
    Died,
}

/// The running watcher. Dropping it stops the watcher (without waiting for it).
#[derive(Debug)]
pub struct WatcherHandle {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl WatcherHandle {
    /// Stop the watcher and wait for its thread to end.
    pub fn stop(mut self) {
        self.stop.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    /// Whether the watcher thread has ended.
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }
}

impl Drop for WatcherHandle {
    fn drop(&mut self) {
        // Dropping the sender wakes the watcher, which then returns.
        self.stop.take();
    }
}

/// Start watching pods. The client is configured before returning (so a bad
/// kubeconfig is reported here); the list+watch itself runs on its own thread
/// and fills the returned cache, reconnecting with exponential backoff
/// (0.8 s doubling to 30 s) after errors.
pub fn spawn_watcher(cfg: WatchConfig) -> Result<(PodCache, WatcherHandle), Error> {
    let cache = PodCache::new();
    let (stop_tx, stop_rx) = oneshot::channel();
    // The runtime and client are made on the new thread, so that this function can
    // also be called from inside an async context; setup errors come back here.
    let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel::<Result<(), Error>>(1);
    let thread = {
        let cache = cache.clone();
        std::thread::Builder::new()
            .name("vigil-kube".into())
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
                let client = match rt.block_on(make_client(&cfg)) {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                rt.block_on(run(client, cfg, cache, stop_rx));
            })
            .map_err(Error::Thread)?
    };
    match ready_rx.recv() {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            let _ = thread.join();
            return Err(e);
        }
        Err(_) => {
            let _ = thread.join();
            return Err(Error::Died);
        }
    }
    Ok((
        cache,
        WatcherHandle {
            stop: Some(stop_tx),
            thread: Some(thread),
        },
    ))
}

async fn make_client(cfg: &WatchConfig) -> Result<Client, Error> {
    let config = match &cfg.kubeconfig {
        Some(path) => {
            let kc = Kubeconfig::read_from(path).map_err(|source| Error::Kubeconfig {
                path: path.clone(),
                source,
            })?;
            Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
                .await
                .map_err(|source| Error::Kubeconfig {
                    path: path.clone(),
                    source,
                })?
        }
        None => Config::incluster()?,
    };
    Ok(Client::try_from(config)?)
}

async fn run(client: Client, cfg: WatchConfig, cache: PodCache, mut stop: oneshot::Receiver<()>) {
    let api: Api<Pod> = Api::all(client);
    let mut wc = watcher::Config::default();
    if let Some(node) = &cfg.node_name {
        wc = wc.fields(&format!("spec.nodeName={node}"));
    }
    let stream = watcher::watcher(api, wc).default_backoff();
    futures::pin_mut!(stream);
    // Deleted pods are dropped lazily by readers at their deadline; this only frees memory.
    let mut prune = tokio::time::interval(
        (cfg.grace / 2).clamp(Duration::from_millis(50), Duration::from_secs(10)),
    );
    prune.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tracing::info!(node = ?cfg.node_name, "pod watcher started");
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = prune.tick() => {
                let n = cache.prune();
                if n > 0 {
                    tracing::debug!(dropped = n, "expired deleted pods");
                }
            }
            ev = stream.next() => match ev {
                Some(Ok(ev)) => handle(&cache, &cfg, ev),
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "pod list/watch failed; retrying with backoff");
                    cache.record_error(e.to_string());
                }
                None => {
                    // The watcher stream is endless; treat an end as fatal for this thread.
                    tracing::error!("pod watch stream ended");
                    break;
                }
            },
        }
    }
    tracing::info!("pod watcher stopped");
}

fn handle(cache: &PodCache, cfg: &WatchConfig, ev: Event<Pod>) {
    match ev {
        Event::Init => cache.begin_list(),
        Event::InitApply(pod) | Event::Apply(pod) => match meta::pod_meta(&pod) {
            Some(m) => cache.apply(m),
            None => tracing::debug!(name = ?pod.metadata.name, "pod without uid ignored"),
        },
        Event::Delete(pod) => match meta::pod_meta(&pod) {
            Some(m) => cache.delete(m, cfg.grace),
            None => tracing::debug!(name = ?pod.metadata.name, "deleted pod without uid ignored"),
        },
        Event::InitDone => {
            cache.end_list(cfg.grace);
            tracing::debug!(pods = cache.len(), "pod list complete");
        }
    }
}
