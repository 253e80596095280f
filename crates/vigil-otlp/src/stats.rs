//! The exporter's own counters, shared with the agent's `/metrics` (and so with OTLP itself).

use std::sync::atomic::{AtomicU64, Ordering};

use vigil_export::metrics::{Family, MetricKind, Series};

/// Why log records never reached the collector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropCause {
    /// The exporter's queue was full (the collector was slow or down).
    QueueFull,
    /// The exporter fell behind the agent's broadcast ring and skipped messages.
    Lagged,
    /// Retries ran out or the collector refused the batch for good.
    ExportFailed,
    /// The collector accepted the request but rejected these records (partial success).
    Rejected,
}

impl DropCause {
    const ALL: [DropCause; 4] = [
        DropCause::QueueFull,
        DropCause::Lagged,
        DropCause::ExportFailed,
        DropCause::Rejected,
    ];

    pub fn name(self) -> &'static str {
        match self {
            DropCause::QueueFull => "queue_full",
            DropCause::Lagged => "lagged",
            DropCause::ExportFailed => "export_failed",
            DropCause::Rejected => "rejected",
        }
    }
}

/// Which stream a request carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Logs,
    Metrics,
}

impl Signal {
    pub fn name(self) -> &'static str {
        match self {
            Signal::Logs => "logs",
            Signal::Metrics => "metrics",
        }
    }
}

/// Counters since the exporter started; all monotonic.
#[derive(Debug, Default)]
pub struct OtlpStats {
    pub logs_exported: AtomicU64,
    logs_dropped: [AtomicU64; 4],
    pub metric_exports_ok: AtomicU64,
    pub metric_exports_failed: AtomicU64,
    /// Data points the collector rejected in otherwise accepted metric exports.
    pub metric_points_rejected: AtomicU64,
    retries: [AtomicU64; 2],
}

impl OtlpStats {
    pub fn dropped(&self, cause: DropCause) -> u64 {
        self.logs_dropped[cause as usize].load(Ordering::Relaxed)
    }

    pub fn retries(&self, signal: Signal) -> u64 {
        self.retries[signal as usize].load(Ordering::Relaxed)
    }

    pub(crate) fn add_dropped(&self, cause: DropCause, n: u64) {
        self.logs_dropped[cause as usize].fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn add_retry(&self, signal: Signal) {
        self.retries[signal as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// The counters as metric families, for the agent to append to its snapshot.
    pub fn families(&self) -> Vec<Family> {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed) as f64;
        let mut dropped = Family::new(
            "vigil_otlp_logs_dropped",
            "Log records (alerts, events) that never reached the OTLP collector, by cause",
            None,
            MetricKind::Counter,
        );
        dropped.series = DropCause::ALL
            .iter()
            .map(|c| Series::number(vec![("cause", c.name().into())], self.dropped(*c) as f64))
            .collect();
        let mut exports = Family::new(
            "vigil_otlp_metric_exports",
            "Metric export requests to the OTLP collector, by result",
            None,
            MetricKind::Counter,
        );
        exports.series = vec![
            Series::number(vec![("result", "ok".into())], load(&self.metric_exports_ok)),
            Series::number(
                vec![("result", "failed".into())],
                load(&self.metric_exports_failed),
            ),
        ];
        let mut retries = Family::new(
            "vigil_otlp_retries",
            "Export requests to the OTLP collector sent again after a retryable failure",
            None,
            MetricKind::Counter,
        );
        retries.series = [Signal::Logs, Signal::Metrics]
            .iter()
            .map(|s| Series::number(vec![("signal", s.name().into())], self.retries(*s) as f64))
            .collect();
        vec![
            Family::single(
                "vigil_otlp_logs_exported",
                "Log records (alerts, events) the OTLP collector accepted",
                None,
                MetricKind::Counter,
                load(&self.logs_exported),
            ),
            dropped,
            exports,
            Family::single(
                "vigil_otlp_metric_points_rejected",
                "Metric data points the OTLP collector rejected in accepted exports",
                None,
                MetricKind::Counter,
                load(&self.metric_points_rejected),
            ),
            retries,
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_export::metrics::to_prometheus;

    #[test]
    fn counters_become_prometheus_families() {
        let s = OtlpStats::default();
        s.logs_exported.fetch_add(3, Ordering::Relaxed);
        s.add_dropped(DropCause::QueueFull, 2);
        s.add_retry(Signal::Metrics);
        let text = to_prometheus(&s.families());
        assert!(text.contains("vigil_otlp_logs_exported_total 3"), "{text}");
        assert!(
            text.contains("vigil_otlp_logs_dropped_total{cause=\"queue_full\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("vigil_otlp_logs_dropped_total{cause=\"lagged\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("vigil_otlp_retries_total{signal=\"metrics\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("vigil_otlp_metric_exports_total{result=\"failed\"} 0"),
            "{text}"
        );
    }
}
