//! The exporter's tasks, all on its own thread: a receiver that moves wanted messages from the
//! agent's broadcast ring into a bounded queue, a batcher that sends the queue in batches, and a
//! ticker that sends the metric snapshot.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::{broadcast, mpsc, watch};
use tokio::time::{interval, sleep_until, Instant, MissedTickBehavior};
use vigil_export::stream::{Hub, Published};

use crate::config::{LogFilter, Settings};
use crate::resource::Resource;
use crate::stats::{DropCause, OtlpStats, Signal};
use crate::transport::{stopping, with_retry, Client, SendError};
use crate::{logs, metrics, MetricsSource};

pub(crate) fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// What the tasks share.
pub(crate) struct Ctx {
    pub settings: Settings,
    pub resource: Resource,
    pub stats: Arc<OtlpStats>,
    pub start_ns: u64,
}

/// The agent's subscription, taken before `spawn` returns so nothing published after is missed.
pub(crate) struct Subscription {
    pub hub: Arc<Hub>,
    pub recent: Vec<Arc<Published>>,
    pub rx: broadcast::Receiver<Arc<Published>>,
    /// Held while events are exported.
    pub _interest: Option<vigil_export::stream::EventInterest>,
}

/// Runs until asked to stop, then flushes for at most one request timeout.
pub(crate) async fn run(
    ctx: Ctx,
    sub: Option<Subscription>,
    source: MetricsSource,
    stop: watch::Receiver<bool>,
) {
    let client = Client::new(&ctx.settings.transport);
    let work = async {
        let logs = async {
            if let Some(sub) = sub {
                let (tx, rx) = mpsc::channel(ctx.settings.queue_size);
                tokio::join!(
                    receive(sub, &ctx.settings.logs, tx, &ctx.stats, stop.clone()),
                    send_logs(&ctx, &client, rx, stop.clone())
                );
            }
        };
        let metrics = async {
            if let Some(every) = ctx.settings.metrics_interval {
                send_metrics(&ctx, &client, source, every, stop.clone()).await;
            }
        };
        tokio::join!(logs, metrics);
    };
    let mut deadline = stop.clone();
    tokio::select! {
        _ = work => {}
        _ = async {
            stopping(&mut deadline).await;
            tokio::time::sleep(ctx.settings.transport.timeout).await;
        } => tracing::warn!("OTLP exporter stopped before its last export finished"),
    }
}

/// Moves wanted messages into the queue, counting what does not fit and what the ring skipped.
async fn receive(
    sub: Subscription,
    filter: &LogFilter,
    tx: mpsc::Sender<Arc<Published>>,
    stats: &OtlpStats,
    mut stop: watch::Receiver<bool>,
) {
    let offer = |p: Arc<Published>| {
        if filter.wants(p.kind, p.alert.is_some()) && tx.try_send(p).is_err() {
            stats.add_dropped(DropCause::QueueFull, 1);
        }
    };
    let lagged = |n: u64| {
        stats.add_dropped(DropCause::Lagged, n);
        sub.hub.skipped(n);
    };
    sub.recent.into_iter().for_each(offer);
    let mut rx = sub.rx;
    loop {
        tokio::select! {
            biased;
            _ = stopping(&mut stop) => break,
            r = rx.recv() => match r {
                Ok(p) => offer(p),
                Err(RecvError::Lagged(n)) => lagged(n),
                Err(RecvError::Closed) => return,
            },
        }
    }
    // What was published before the stop still goes out.
    loop {
        match rx.try_recv() {
            Ok(p) => offer(p),
            Err(TryRecvError::Lagged(n)) => lagged(n),
            Err(TryRecvError::Empty | TryRecvError::Closed) => return,
        }
    }
}

/// Logs a warning when the collector starts failing and a note when it is back, rather than one
/// line per failed batch.
#[derive(Debug, Default)]
struct Health {
    failing: bool,
}

impl Health {
    fn result<T>(&mut self, signal: Signal, r: &Result<T, SendError>) {
        match r {
            Ok(_) if self.failing => {
                tracing::info!(signal = signal.name(), "OTLP exports succeed again");
                self.failing = false;
            }
            Err(e) if !self.failing => {
                tracing::warn!(signal = signal.name(), error = %e, "OTLP export failed; records are dropped and counted until the collector answers");
                self.failing = true;
            }
            _ => {}
        }
    }
}

/// Sends the queue in batches of at most `max_batch_size`, each at most `max_batch_delay` after
/// its first record; one batch in flight, so the queue is the only buffer.
async fn send_logs(
    ctx: &Ctx,
    client: &Client,
    mut rx: mpsc::Receiver<Arc<Published>>,
    mut stop: watch::Receiver<bool>,
) {
    let s = &ctx.settings;
    let mut health = Health::default();
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        let deadline = Instant::now() + s.max_batch_delay;
        while batch.len() < s.max_batch_size {
            if *stop.borrow() {
                match rx.try_recv() {
                    Ok(p) => batch.push(p),
                    Err(_) => break,
                }
                continue;
            }
            tokio::select! {
                r = rx.recv() => match r {
                    Some(p) => batch.push(p),
                    None => break,
                },
                _ = sleep_until(deadline) => break,
                _ = stopping(&mut stop) => {}
            }
        }
        let observed = now_ns();
        let records = batch.iter().map(|p| logs::record(p, observed)).collect();
        let req = logs::request(&ctx.resource, records);
        let n = batch.len() as u64;
        let r = with_retry(
            &s.retry,
            s.retry.max_elapsed,
            &ctx.stats,
            Signal::Logs,
            &mut stop,
            || client.logs(&req),
        )
        .await;
        health.result(Signal::Logs, &r);
        match r {
            Ok(rejected) => {
                let rejected = rejected.min(n);
                ctx.stats
                    .logs_exported
                    .fetch_add(n - rejected, std::sync::atomic::Ordering::Relaxed);
                ctx.stats.add_dropped(DropCause::Rejected, rejected);
            }
            Err(_) => ctx.stats.add_dropped(DropCause::ExportFailed, n),
        }
    }
}

/// Sends the latest snapshot every `every`, and once more on stop. Values are cumulative, so a
/// failed export is only retried until the next one is due: that one carries everything.
async fn send_metrics(
    ctx: &Ctx,
    client: &Client,
    source: MetricsSource,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let s = &ctx.settings;
    let budget = s.retry.max_elapsed.min(every);
    let mut tick = interval(every);
    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut health = Health::default();
    loop {
        let last = tokio::select! {
            _ = tick.tick() => false,
            _ = stopping(&mut stop) => true,
        };
        if let Some(snapshot) = source() {
            let req = metrics::request(&ctx.resource, &snapshot, ctx.start_ns, now_ns());
            let r = with_retry(
                &s.retry,
                budget,
                &ctx.stats,
                Signal::Metrics,
                &mut stop,
                || client.metrics(&req),
            )
            .await;
            health.result(Signal::Metrics, &r);
            let (counter, rejected) = match r {
                Ok(rejected) => (&ctx.stats.metric_exports_ok, rejected),
                Err(_) => (&ctx.stats.metric_exports_failed, 0),
            };
            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            ctx.stats
                .metric_points_rejected
                .fetch_add(rejected, std::sync::atomic::Ordering::Relaxed);
        }
        if last {
            return;
        }
    }
}
