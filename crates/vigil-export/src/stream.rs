//! The live stream of rendered events and alerts that API clients and the OTLP exporter
//! subscribe to.
//!
//! Publishing never blocks the pipeline: the channel is a bounded broadcast ring, and a reader
//! that falls behind loses the oldest messages and is told how many (a counted gap) instead of
//! slowing everyone down. Nothing is rendered for the stream while nobody subscribes.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;
use vigil_rules::Priority;

/// What an alert message says about its rule, for filtering without parsing the JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertInfo {
    pub rule: String,
    pub priority: Priority,
    /// The kind of the event that raised it.
    pub event_kind: &'static str,
}

/// One rendered line with the attributes subscribers filter on.
#[derive(Debug, Clone)]
pub struct Published {
    /// The JSON object, exactly as written to the outputs (no trailing newline).
    pub line: Arc<str>,
    /// The event kind (`exec`, `connection`, ...), or `alert`.
    pub kind: &'static str,
    /// Wall-clock nanoseconds since the Unix epoch.
    pub time_ns: u64,
    pub alert: Option<AlertInfo>,
    pub container_id: Option<String>,
    /// The Kubernetes namespace of the pod the event came from, when known.
    pub namespace: Option<String>,
    pub pod: Option<String>,
}

/// Counters of the stream, exported as metrics.
#[derive(Debug, Default)]
pub struct HubStats {
    pub published: AtomicU64,
    /// Messages that slow subscribers skipped (each gap reported to its subscriber).
    pub skipped: AtomicU64,
    /// Subscribers connected since start.
    pub subscriptions: AtomicU64,
}

/// The fan-out point between the pipeline and its live readers.
#[derive(Debug)]
pub struct Hub {
    tx: broadcast::Sender<Arc<Published>>,
    /// Subscribers that want events, not only alerts.
    event_interest: Arc<AtomicUsize>,
    recent_alerts: Mutex<VecDeque<Arc<Published>>>,
    recent_cap: usize,
    pub stats: HubStats,
}

impl Hub {
    /// `capacity`: messages a subscriber may fall behind before it skips; `recent_alerts`:
    /// alerts replayed to a new alert subscriber.
    pub fn new(capacity: usize, recent_alerts: usize) -> Self {
        let (tx, _) = broadcast::channel(capacity.max(1));
        Self {
            tx,
            event_interest: Arc::new(AtomicUsize::new(0)),
            recent_alerts: Mutex::new(VecDeque::with_capacity(recent_alerts)),
            recent_cap: recent_alerts,
            stats: HubStats::default(),
        }
    }

    /// Whether a subscriber wants events: the pipeline renders events for the stream only
    /// then. Alerts are always published (they are rendered anyway and kept for replay).
    pub fn wants_events(&self) -> bool {
        self.event_interest.load(Ordering::Relaxed) > 0 && self.tx.receiver_count() > 0
    }

    /// Registers interest in events for as long as the returned guard lives.
    pub fn event_interest(&self) -> EventInterest {
        self.event_interest.fetch_add(1, Ordering::Relaxed);
        EventInterest(self.event_interest.clone())
    }

    pub fn publish(&self, p: Published) {
        let p = Arc::new(p);
        if p.alert.is_some() && self.recent_cap > 0 {
            if let Ok(mut r) = self.recent_alerts.lock() {
                if r.len() == self.recent_cap {
                    r.pop_front();
                }
                r.push_back(p.clone());
            }
        }
        self.stats.published.fetch_add(1, Ordering::Relaxed);
        // Err only means nobody listens right now.
        let _ = self.tx.send(p);
    }

    /// A new reader from now on, plus the recent alerts to replay first.
    pub fn subscribe(&self) -> (Vec<Arc<Published>>, broadcast::Receiver<Arc<Published>>) {
        self.stats.subscriptions.fetch_add(1, Ordering::Relaxed);
        // Subscribe under the lock so an alert published meanwhile is in exactly one of the two.
        let guard = self.recent_alerts.lock();
        let rx = self.tx.subscribe();
        let recent = guard
            .map(|r| r.iter().cloned().collect())
            .unwrap_or_default();
        (recent, rx)
    }

    /// Records that a subscriber skipped `n` messages.
    pub fn skipped(&self, n: u64) {
        self.stats.skipped.fetch_add(n, Ordering::Relaxed);
    }
}

/// Held by a subscriber that wants events; dropping it withdraws the interest.
#[derive(Debug)]
pub struct EventInterest(Arc<AtomicUsize>);

impl Drop for EventInterest {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(alert: bool, i: u32) -> Published {
        Published {
            line: Arc::from(format!("{{\"i\":{i}}}")),
            kind: if alert { "alert" } else { "exec" },
            time_ns: 0,
            alert: alert.then(|| AlertInfo {
                rule: "r".into(),
                priority: Priority::Warning,
                event_kind: "exec",
            }),
            container_id: None,
            namespace: None,
            pod: None,
        }
    }

    #[test]
    fn a_slow_reader_skips_with_a_count_and_never_blocks_the_writer() {
        let hub = Hub::new(4, 2);
        let (_, mut rx) = hub.subscribe();
        assert!(
            !hub.wants_events(),
            "an alert subscriber alone does not want events"
        );
        let interest = hub.event_interest();
        assert!(hub.wants_events());
        for i in 0..10 {
            hub.publish(msg(false, i));
        }
        match rx.try_recv() {
            Err(broadcast::error::TryRecvError::Lagged(n)) => assert_eq!(n, 6),
            other => panic!("{other:?}"),
        }
        assert_eq!(&*rx.try_recv().unwrap().line, "{\"i\":6}");
        assert_eq!(hub.stats.published.load(Ordering::Relaxed), 10);
        drop(interest);
        assert!(!hub.wants_events());
    }

    #[test]
    fn recent_alerts_are_replayed_bounded() {
        let hub = Hub::new(4, 2);
        for i in 0..3 {
            hub.publish(msg(true, i));
        }
        hub.publish(msg(false, 9));
        let (recent, _) = hub.subscribe();
        let lines: Vec<&str> = recent.iter().map(|p| &*p.line).collect();
        assert_eq!(lines, ["{\"i\":1}", "{\"i\":2}"]);
    }
}
