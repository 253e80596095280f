//! What the detector reports, and its Falco-shaped alert.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;
use vigil_rules::{Alert, Priority};

use crate::{Metric, Quantile};

/// The alert `source`: these alerts come from latency windows, not from a syscall event.
pub const ALERT_SOURCE: &str = "latency";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VerdictKind {
    /// A quantile stayed above its band for `trigger_windows` windows.
    Anomaly,
    /// Every quantile stayed inside its band for `recover_windows` windows.
    Recovery,
    /// The anomaly lasted `relearn_windows` windows: the level is accepted as the new normal
    /// and the series learns again (ends the anomaly without a recovery).
    Rebaselined,
}

/// A change of a series' state. Values are whole microseconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    pub kind: VerdictKind,
    pub workload: String,
    pub metric: Metric,
    /// The quantile that raised the anomaly (the same one in its recovery).
    pub quantile: Quantile,
    /// The frozen baseline of `quantile`.
    pub baseline_us: u64,
    /// How far above the baseline `quantile` may go; out of band is `> baseline + band`.
    pub band_us: u64,
    /// `quantile` in the window that produced the verdict.
    pub current_us: u64,
    /// Consecutive windows behind the verdict: out of band for an anomaly, in band for a
    /// recovery, anomalous in all for a rebaseline.
    pub windows: u32,
    /// `now_ns` of the first window of the anomaly.
    pub since_ns: u64,
    /// `now_ns` of the window that produced the verdict.
    pub time_ns: u64,
}

impl Verdict {
    /// The alert the agent emits, in the shape of rule alerts so the same outputs carry it:
    /// rule "Latency anomaly" (Warning), "Latency recovered" or "Latency baseline reset"
    /// (Notice), with the numbers in `vigil.*` output fields.
    pub fn to_alert(&self) -> Alert {
        let (rule, priority) = match self.kind {
            VerdictKind::Anomaly => ("Latency anomaly", Priority::Warning),
            VerdictKind::Recovery => ("Latency recovered", Priority::Notice),
            VerdictKind::Rebaselined => ("Latency baseline reset", Priority::Notice),
        };
        let what = format!(
            "{} of {} for workload {}",
            self.quantile, self.metric, self.workload
        );
        let output = match self.kind {
            VerdictKind::Rebaselined => format!(
                "{rule}: {what} stayed anomalous for {} windows, now {}; learning a new baseline (was {})",
                self.windows,
                human_us(self.current_us),
                human_us(self.baseline_us),
            ),
            _ => format!(
                "{rule}: {what} is {}, baseline {} (band {}) for {} windows",
                human_us(self.current_us),
                human_us(self.baseline_us),
                human_us(self.band_us),
                self.windows,
            ),
        };
        let output_fields = BTreeMap::from([
            ("vigil.metric".to_owned(), Value::from(self.metric.as_str())),
            (
                "vigil.workload".to_owned(),
                Value::from(self.workload.as_str()),
            ),
            (
                "vigil.quantile".to_owned(),
                Value::from(self.quantile.as_str()),
            ),
            (
                "vigil.baseline_us".to_owned(),
                Value::from(self.baseline_us),
            ),
            ("vigil.band_us".to_owned(), Value::from(self.band_us)),
            ("vigil.current_us".to_owned(), Value::from(self.current_us)),
            ("vigil.windows".to_owned(), Value::from(self.windows)),
        ]);
        Alert {
            rule: rule.to_owned(),
            priority,
            output,
            output_fields,
            tags: vec!["latency".to_owned(), "anomaly".to_owned()],
            source: ALERT_SOURCE,
        }
    }
}

/// `µs` in the unit an operator reads at a glance: "850 us", "1.8 ms", "2.5 s".
pub fn human_us(us: u64) -> String {
    if us < 1_000 {
        format!("{us} us")
    } else if us < 1_000_000 {
        format!("{:.1} ms", us as f64 / 1e3)
    } else {
        format!("{:.1} s", us as f64 / 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(kind: VerdictKind) -> Verdict {
        Verdict {
            kind,
            workload: "shop/cart".to_owned(),
            metric: Metric::Runq,
            quantile: Quantile::P99,
            baseline_us: 120,
            band_us: 180,
            current_us: 1_800,
            windows: 3,
            since_ns: 10,
            time_ns: 30,
        }
    }

    #[test]
    fn anomaly_alert_has_every_field() {
        let a = verdict(VerdictKind::Anomaly).to_alert();
        assert_eq!(a.rule, "Latency anomaly");
        assert_eq!(a.priority, Priority::Warning);
        assert_eq!(
            a.output,
            "Latency anomaly: p99 of runq for workload shop/cart is 1.8 ms, baseline 120 us (band 180 us) for 3 windows"
        );
        assert_eq!(
            serde_json::to_value(&a.output_fields).unwrap(),
            serde_json::json!({
                "vigil.metric": "runq",
                "vigil.workload": "shop/cart",
                "vigil.quantile": "p99",
                "vigil.baseline_us": 120,
                "vigil.band_us": 180,
                "vigil.current_us": 1800,
                "vigil.windows": 3,
            })
        );
        assert_eq!(a.tags, ["latency", "anomaly"]);
        assert_eq!(a.source, "latency");
    }

    #[test]
    fn recovery_and_rebaseline_alerts() {
        let mut v = verdict(VerdictKind::Recovery);
        v.current_us = 130;
        let a = v.to_alert();
        assert_eq!(
            (a.rule.as_str(), a.priority),
            ("Latency recovered", Priority::Notice)
        );
        assert_eq!(
            a.output,
            "Latency recovered: p99 of runq for workload shop/cart is 130 us, baseline 120 us (band 180 us) for 3 windows"
        );
        let mut v = verdict(VerdictKind::Rebaselined);
        v.windows = 360;
        let a = v.to_alert();
        assert_eq!(
            (a.rule.as_str(), a.priority),
            ("Latency baseline reset", Priority::Notice)
        );
        assert_eq!(
            a.output,
            "Latency baseline reset: p99 of runq for workload shop/cart stayed anomalous for 360 windows, now 1.8 ms; learning a new baseline (was 120 us)"
        );
    }

    #[test]
    fn human_units() {
        assert_eq!(human_us(0), "0 us");
        assert_eq!(human_us(999), "999 us");
        assert_eq!(human_us(1_000), "1.0 ms");
        assert_eq!(human_us(123_456), "123.5 ms");
        assert_eq!(human_us(2_500_000), "2.5 s");
    }
}
