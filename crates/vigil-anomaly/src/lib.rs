//! Latency anomaly detection: a robust streaming baseline of each window's p50 and p99 per
//! (workload, metric), and verdicts when a series leaves its band for several windows and when
//! it comes back. Pure computation over [`vigil_net::hist::LogHist`] windows; the method and
//! its parameters are in docs/anomaly.md.

mod baseline;
mod config;
mod detector;
mod metric;
mod verdict;

pub use config::{Config, ConfigError};
pub use detector::{Detector, Stats};
pub use metric::{Metric, Quantile};
pub use verdict::{human_us, Verdict, VerdictKind, ALERT_SOURCE};
