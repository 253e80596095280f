//! The agent's metric snapshot as OTLP metrics.
//!
//! Built straight from the snapshot rather than through the SDK's observable instruments: the
//! family list changes as workloads come and go, the values are already cumulative, and the
//! snapshot is the one `/metrics` serves, so both report the same numbers under the same names.

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::{
    metric::Data, number_data_point, AggregationTemporality, Gauge, Histogram, HistogramDataPoint,
    Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
};
use vigil_export::metrics::{Family, HistogramValue, MetricKind, Series, Value};

use crate::resource::{attr, Resource};

/// The UCUM spelling OTLP wants for the units the agent uses; a backend that converts back to
/// Prometheus names (`_seconds`, `_bytes`, `_total`) then arrives at the names `/metrics` shows.
fn unit(u: Option<&str>) -> &str {
    match u {
        Some("seconds") => "s",
        Some("bytes") => "By",
        Some(other) => other,
        None => "",
    }
}

fn labels(s: &Series) -> Vec<KeyValue> {
    s.labels.iter().map(|(k, v)| attr(k, v)).collect()
}

/// Prometheus buckets count everything up to their bound; OTLP buckets count only their own
/// interval, with one more for above the last bound.
fn histogram_point(
    h: &HistogramValue,
    attributes: Vec<KeyValue>,
    start_ns: u64,
    now_ns: u64,
) -> HistogramDataPoint {
    let mut bucket_counts = Vec::with_capacity(h.buckets.len() + 1);
    let mut below = 0u64;
    for (_, cumulative) in &h.buckets {
        bucket_counts.push(cumulative.saturating_sub(below));
        below = *cumulative;
    }
    bucket_counts.push(h.count.saturating_sub(below));
    HistogramDataPoint {
        attributes,
        start_time_unix_nano: start_ns,
        time_unix_nano: now_ns,
        count: h.count,
        sum: Some(h.sum),
        bucket_counts,
        explicit_bounds: h.buckets.iter().map(|(le, _)| *le).collect(),
        ..Default::default()
    }
}

fn metric(f: &Family, start_ns: u64, now_ns: u64) -> Metric {
    // Gauges have no start: each value stands alone.
    let numbers = |start_ns| {
        f.series
            .iter()
            .filter_map(|s| match s.value {
                Value::Number(v) => Some(NumberDataPoint {
                    attributes: labels(s),
                    start_time_unix_nano: start_ns,
                    time_unix_nano: now_ns,
                    value: Some(number_data_point::Value::AsDouble(v)),
                    ..Default::default()
                }),
                Value::Histogram(_) => None,
            })
            .collect()
    };
    let data = match f.kind {
        MetricKind::Counter => Data::Sum(Sum {
            data_points: numbers(start_ns),
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
            is_monotonic: true,
        }),
        MetricKind::Gauge => Data::Gauge(Gauge {
            data_points: numbers(0),
        }),
        MetricKind::Histogram => Data::Histogram(Histogram {
            data_points: f
                .series
                .iter()
                .filter_map(|s| match &s.value {
                    Value::Histogram(h) => Some(histogram_point(h, labels(s), start_ns, now_ns)),
                    Value::Number(_) => None,
                })
                .collect(),
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
        }),
    };
    Metric {
        name: f.name.to_string(),
        description: f.help.to_string(),
        unit: unit(f.unit).to_string(),
        data: Some(data),
        ..Default::default()
    }
}

/// `start_ns` is when the exporter started: the cumulative values count from the agent's start,
/// which is the same moment to within the startup time.
pub(crate) fn request(
    resource: &Resource,
    families: &[Family],
    start_ns: u64,
    now_ns: u64,
) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(resource.resource.clone()),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(resource.scope.clone()),
                metrics: families
                    .iter()
                    .map(|f| metric(f, start_ns, now_ns))
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_map_to_sums_gauges_and_histograms() {
        let mut events = Family::new("vigil_events", "Events", None, MetricKind::Counter);
        events
            .series
            .push(Series::number(vec![("kind", "exec".into())], 3.0));
        let table = Family::single("vigil_procs", "Processes", None, MetricKind::Gauge, 12.0);
        let mut lat = Family::new(
            "vigil_lat",
            "Latency",
            Some("seconds"),
            MetricKind::Histogram,
        );
        lat.series.push(Series {
            labels: vec![],
            value: Value::Histogram(HistogramValue {
                buckets: vec![(0.001, 2), (0.002, 5)],
                count: 6,
                sum: 0.01,
            }),
        });
        let req = request(&Resource::new("h"), &[events, table, lat], 1, 2);
        let m = &req.resource_metrics[0].scope_metrics[0].metrics;
        match &m[0].data {
            Some(Data::Sum(s)) => {
                assert!(s.is_monotonic);
                assert_eq!(
                    s.aggregation_temporality,
                    AggregationTemporality::Cumulative as i32
                );
                let p = &s.data_points[0];
                assert_eq!(p.value, Some(number_data_point::Value::AsDouble(3.0)));
                assert_eq!((p.start_time_unix_nano, p.time_unix_nano), (1, 2));
                assert_eq!(p.attributes[0].key, "kind");
            }
            other => panic!("{other:?}"),
        }
        match &m[1].data {
            Some(Data::Gauge(g)) => assert_eq!(g.data_points[0].start_time_unix_nano, 0),
            other => panic!("{other:?}"),
        }
        assert_eq!(m[2].unit, "s");
        match &m[2].data {
            Some(Data::Histogram(h)) => {
                let p = &h.data_points[0];
                assert_eq!(p.explicit_bounds, [0.001, 0.002]);
                assert_eq!(p.bucket_counts, [2, 3, 1]);
                assert_eq!((p.count, p.sum), (6, Some(0.01)));
            }
            other => panic!("{other:?}"),
        }
    }
}
