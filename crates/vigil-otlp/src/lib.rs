//! OTLP export of Vigil's alerts, events (as logs) and metrics to an OpenTelemetry collector,
//! over gRPC or HTTP/protobuf. See docs/otlp.md.
//!
//! Requests are built from the OTLP protobuf types of `opentelemetry-proto` and sent with its
//! tonic clients (gRPC) or hyper (HTTP), not through the OpenTelemetry SDK: the agent already has
//! its messages rendered and its metrics aggregated, and needs only the protocol.
//!
//! The exporter runs on its own thread with a current-thread runtime and reads the agent's
//! broadcast hub, so a slow or absent collector costs the pipeline nothing: it only fills the
//! exporter's bounded queue, and what does not fit is counted.

mod config;
mod logs;
mod metrics;
mod resource;
mod run;
mod stats;
mod transport;

use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::sync::watch;
use vigil_export::metrics::Snapshot;
use vigil_export::stream::Hub;

pub use config::{ConfigError, EventSelection, OtlpConfig, Protocol, RetryConfig};
pub use stats::{DropCause, OtlpStats, Signal};

/// Where the exporter reads the agent's latest metric snapshot (`None` until there is one).
/// A function rather than a channel so the agent can hand over whatever already holds it, e.g.
/// the API's `Health::metrics`.
pub type MetricsSource = Arc<dyn Fn() -> Option<Snapshot> + Send + Sync>;

/// Why the exporter could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("starting the OTLP exporter: {0}")]
    Start(#[from] std::io::Error),
}

impl OtlpConfig {
    /// Validates the configuration without starting anything (for config checks at load).
    pub fn check(&self) -> Result<(), ConfigError> {
        self.validate().map(|_| ())
    }
}

/// A running exporter. Dropping it (or [`Exporter::shutdown`]) stops it after sending what was
/// queued, waiting at most one request timeout for that.
#[derive(Debug)]
pub struct Exporter {
    stats: Arc<OtlpStats>,
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
}

impl Exporter {
    /// The exporter's counters; [`OtlpStats::families`] turns them into metric families.
    pub fn stats(&self) -> Arc<OtlpStats> {
        self.stats.clone()
    }

    /// Stops the exporter and waits for its last export.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                tracing::error!("the OTLP exporter thread panicked");
            }
        }
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// Starts exporting: alerts and events from `hub` as the configuration selects them (the
/// subscription is taken before this returns), and `metrics` every `metrics_interval_secs`.
/// `host` becomes the `host.name` resource attribute.
pub fn spawn(
    cfg: &OtlpConfig,
    hub: Arc<Hub>,
    metrics: MetricsSource,
    host: &str,
) -> Result<Exporter, Error> {
    let settings = cfg.validate()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let sub = settings.logs.any().then(|| {
        let (recent, rx) = hub.subscribe();
        // Events are rendered for the stream only while someone wants them.
        let interest = settings.logs.events.is_some().then(|| hub.event_interest());
        run::Subscription {
            hub,
            recent,
            rx,
            _interest: interest,
        }
    });
    let stats = Arc::new(OtlpStats::default());
    let ctx = run::Ctx {
        settings,
        resource: resource::Resource::new(host),
        stats: stats.clone(),
        start_ns: run::now_ns(),
    };
    let (stop, stop_rx) = watch::channel(false);
    let thread = std::thread::Builder::new()
        .name("vigil-otlp".into())
        .spawn(move || runtime.block_on(run::run(ctx, sub, metrics, stop_rx)))?;
    Ok(Exporter {
        stats,
        stop,
        thread: Some(thread),
    })
}
