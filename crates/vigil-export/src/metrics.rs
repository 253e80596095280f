//! One point-in-time model of every metric the agent exports, so that the Prometheus endpoint and
//! the OTLP exporter report the same numbers under the same names.
//!
//! The pipeline builds a `Vec<Family>` about once a second on its own thread and publishes it;
//! readers (the API thread, the OTLP exporter) only ever see whole snapshots.

use std::fmt::Write as _;
use std::sync::Arc;

/// How a family's values behave over time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// Only grows (resets when the agent restarts). Exposed with a `_total` suffix.
    Counter,
    /// Any value at the time of the snapshot.
    Gauge,
    /// Cumulative bucket counts, their sum and count.
    Histogram,
}

/// A cumulative histogram: `buckets` holds (inclusive upper bound, cumulative count) pairs in
/// increasing order, without the `+Inf` bucket (which is `count`).
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramValue {
    pub buckets: Vec<(f64, u64)>,
    pub count: u64,
    pub sum: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Number(f64),
    Histogram(HistogramValue),
}

/// One labelled time series.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub labels: Vec<(&'static str, String)>,
    pub value: Value,
}

impl Series {
    pub fn number(labels: Vec<(&'static str, String)>, v: f64) -> Self {
        Self {
            labels,
            value: Value::Number(v),
        }
    }
}

/// A metric family: a base name (the unit and, for counters, `_total` are appended on exposition,
/// as the Prometheus conventions and OpenMetrics want), its help text and its series.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    pub name: &'static str,
    pub help: &'static str,
    /// "seconds", "bytes", ...: part of the exposed name.
    pub unit: Option<&'static str>,
    pub kind: MetricKind,
    pub series: Vec<Series>,
}

impl Family {
    pub fn new(
        name: &'static str,
        help: &'static str,
        unit: Option<&'static str>,
        kind: MetricKind,
    ) -> Self {
        Self {
            name,
            help,
            unit,
            kind,
            series: Vec::new(),
        }
    }

    /// A family with one unlabelled series.
    pub fn single(
        name: &'static str,
        help: &'static str,
        unit: Option<&'static str>,
        kind: MetricKind,
        v: f64,
    ) -> Self {
        let mut f = Self::new(name, help, unit, kind);
        f.series.push(Series::number(Vec::new(), v));
        f
    }

    /// The full exposed name of the family, e.g. `vigil_bpf_program_run_seconds_total`.
    pub fn exposed_name(&self) -> String {
        let mut n = self.name.to_string();
        if let Some(u) = self.unit {
            n.push('_');
            n.push_str(u);
        }
        if self.kind == MetricKind::Counter {
            n.push_str("_total");
        }
        n
    }
}

/// Keeps at most `max` series per family (the first ones, in the order they were built) and
/// returns how many each family lost, so that cardinality stays bounded whatever the workload
/// and the loss is itself exported.
pub fn cap_series(families: &mut [Family], max: usize) -> Vec<(&'static str, u64)> {
    let mut refused = Vec::new();
    for f in families.iter_mut() {
        if f.series.len() > max {
            refused.push((f.name, (f.series.len() - max) as u64));
            f.series.truncate(max);
        }
    }
    refused
}

/// A snapshot shared between the pipeline that makes it and the readers.
pub type Snapshot = Arc<Vec<Family>>;

/// Renders families in the Prometheus text exposition format (version 0.0.4).
///
/// Written here rather than with prometheus-client: its text encoder (0.24) leaves quotes,
/// backslashes and newlines in label values unescaped and spells the last bucket `le="inf"`, and
/// rule names and container names are exactly the label values that contain such characters.
pub fn to_prometheus(families: &[Family]) -> String {
    let mut out = String::new();
    for f in families {
        let name = f.exposed_name();
        let base = name.strip_suffix("_total").unwrap_or(&name);
        let kind = match f.kind {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
            MetricKind::Histogram => "histogram",
        };
        let _ = writeln!(out, "# HELP {name} {}", escape_help(f.help));
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for s in &f.series {
            match &s.value {
                Value::Number(v) => {
                    out.push_str(&name);
                    labels(&mut out, &s.labels, None);
                    let _ = writeln!(out, " {}", number(*v));
                }
                Value::Histogram(h) => {
                    for (le, cum) in &h.buckets {
                        let _ = write!(out, "{base}_bucket");
                        labels(&mut out, &s.labels, Some(&number(*le)));
                        let _ = writeln!(out, " {cum}");
                    }
                    let _ = write!(out, "{base}_bucket");
                    labels(&mut out, &s.labels, Some("+Inf"));
                    let _ = writeln!(out, " {}", h.count);
                    let _ = write!(out, "{base}_sum");
                    labels(&mut out, &s.labels, None);
                    let _ = writeln!(out, " {}", number(h.sum));
                    let _ = write!(out, "{base}_count");
                    labels(&mut out, &s.labels, None);
                    let _ = writeln!(out, " {}", h.count);
                }
            }
        }
    }
    out
}

fn labels(out: &mut String, labels: &[(&'static str, String)], le: Option<&str>) {
    if labels.is_empty() && le.is_none() {
        return;
    }
    out.push('{');
    let mut first = true;
    for (k, v) in labels
        .iter()
        .map(|(k, v)| (*k, v.as_str()))
        .chain(le.map(|le| ("le", le)))
    {
        if !first {
            out.push(',');
        }
        first = false;
        out.push_str(k);
        out.push_str("=\"");
        for c in v.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out.push('}');
}

fn escape_help(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\n', "\\n")
}

/// Integers without a fraction (counts read better), the rest as Rust prints them.
fn number(v: f64) -> String {
    if v.is_infinite() {
        return if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    if v.is_nan() {
        return "NaN".into();
    }
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_follows_prometheus_conventions() {
        let mut events = Family::new("vigil_events", "Events received", None, MetricKind::Counter);
        events
            .series
            .push(Series::number(vec![("kind", "exec".into())], 3.0));
        let run = Family::single(
            "vigil_bpf_program_run",
            "Time in BPF programs",
            Some("seconds"),
            MetricKind::Counter,
            0.5,
        );
        let mut lat = Family::new(
            "vigil_latency",
            "Latency",
            Some("seconds"),
            MetricKind::Histogram,
        );
        lat.series.push(Series {
            labels: vec![("metric", "runq".into())],
            value: Value::Histogram(HistogramValue {
                buckets: vec![(0.001, 2), (0.002, 5)],
                count: 6,
                sum: 0.01,
            }),
        });
        let text = to_prometheus(&[events, run, lat]);
        assert!(text.contains("# TYPE vigil_events_total counter"), "{text}");
        assert!(
            text.contains("vigil_events_total{kind=\"exec\"} 3"),
            "{text}"
        );
        assert!(
            text.contains("vigil_bpf_program_run_seconds_total 0.5"),
            "{text}"
        );
        assert!(
            text.contains("vigil_latency_seconds_bucket{metric=\"runq\",le=\"0.002\"} 5"),
            "{text}"
        );
        assert!(
            text.contains("vigil_latency_seconds_bucket{metric=\"runq\",le=\"+Inf\"} 6"),
            "{text}"
        );
        assert!(
            text.contains("vigil_latency_seconds_count{metric=\"runq\"} 6"),
            "{text}"
        );
    }

    #[test]
    fn label_values_are_escaped() {
        let mut f = Family::new("vigil_alerts", "Alerts", None, MetricKind::Counter);
        f.series.push(Series::number(
            vec![("rule", "a \"quoted\"\nrule\\".into())],
            1.0,
        ));
        let text = to_prometheus(&[f]);
        assert!(
            text.contains(r#"vigil_alerts_total{rule="a \"quoted\"\nrule\\"} 1"#),
            "{text}"
        );
    }

    #[test]
    fn cap_keeps_the_first_series_and_counts_the_rest() {
        let mut f = Family::new("vigil_x", "x", None, MetricKind::Gauge);
        for i in 0..5 {
            f.series
                .push(Series::number(vec![("i", i.to_string())], i as f64));
        }
        let mut fams = vec![f];
        assert_eq!(cap_series(&mut fams, 3), vec![("vigil_x", 2)]);
        assert_eq!(fams[0].series.len(), 3);
        assert_eq!(fams[0].exposed_name(), "vigil_x");
    }
}
