//! Per-workload accounting: events, alerts and connections counted per cgroup on the hot path,
//! latency windows from the kernel's histograms and the network events, the anomaly detector
//! fed with them, and the views `/metrics`, `/api/v1/workloads` and `vigil top` read.
//!
//! A workload is what an operator names: a Kubernetes owner (`shop/deployment/web`), a bare pod
//! (`shop/pod/debug`), a container (its id's first 12 characters) or `host`. Pods of one
//! Deployment are one workload, so latency baselines survive rollouts and label cardinality
//! stays bounded by the number of workloads, not of pods or processes.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use vigil_anomaly::{Detector, Metric, Verdict};
use vigil_events::{Event, Kind};
use vigil_export::metrics::{Family, HistogramValue, MetricKind, Series, Value};
use vigil_identity::{ContainerRef, PodMeta};
use vigil_net::hist::{bucket_upper, LogHist};
use vigil_net::ConnPhase;

/// Workloads tracked at once; the rest are counted under `other`.
const MAX_WORKLOADS: usize = 2048;

/// What one cgroup did since the last fold (hot path: array increments only).
#[derive(Debug, Default, Clone)]
struct CgroupCounts {
    events: [u64; Kind::ALL.len()],
    alerts: u64,
    connections: u64,
}

/// A latency histogram with its exact sum (the buckets only bound each value).
#[derive(Debug, Default, Clone)]
pub struct Hist {
    pub hist: LogHist,
    pub sum_us: u64,
}

impl Hist {
    fn record(&mut self, us: u64) {
        self.hist.record(us);
        self.sum_us += us;
    }

    fn merge(&mut self, other: &Hist) {
        self.hist.merge(&other.hist);
        self.sum_us += other.sum_us;
    }
}

/// The latest complete window of one metric, as the API shows it.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct WindowSummary {
    pub count: u64,
    pub p50_us: u64,
    pub p99_us: u64,
}

/// One workload, cumulative since the agent started (latency: the last window).
#[derive(Debug, Default, Clone, Serialize)]
pub struct WorkloadView {
    pub workload: String,
    pub container_id: Option<String>,
    pub namespace: Option<String>,
    pub pod: Option<String>,
    pub events: u64,
    pub events_by_kind: BTreeMap<&'static str, u64>,
    pub alerts: u64,
    pub connections: u64,
    /// Records lost to its cgroups' event budget.
    pub dropped: u64,
    /// Syscalls measured by the syscall-latency histograms.
    pub syscalls: u64,
    pub latency: BTreeMap<&'static str, WindowSummary>,
    #[serde(skip)]
    cumulative: BTreeMap<Metric, Hist>,
}

/// `GET /api/v1/workloads`.
#[derive(Debug, Serialize)]
pub struct WorkloadsResponse<'a> {
    pub window_secs: u64,
    pub workloads: Vec<&'a WorkloadView>,
}

#[derive(Debug)]
pub struct Workloads {
    by_cgroup: HashMap<u64, CgroupCounts>,
    /// The cumulative per-cgroup kernel histograms as last read, to take window deltas.
    kernel_prev: HashMap<(u64, vigil_bpf::latency::Metric), (Vec<u64>, u64)>,
    /// This window's latency per (workload, metric), from the kernel and the network events.
    window: HashMap<(String, Metric), Hist>,
    /// Per-cgroup budget drops as last read (cumulative in the kernel).
    budget_prev: HashMap<u64, u64>,
    pub views: BTreeMap<String, WorkloadView>,
    pub detector: Option<Detector>,
    pub window_secs: u64,
}

/// Identity of the workload a cgroup belongs to.
pub fn workload_of(container: Option<&ContainerRef>, pod: Option<&PodMeta>) -> String {
    match (container, pod) {
        (_, Some(p)) => match &p.owner {
            Some(o) => format!("{}/{}/{}", p.namespace, o.kind.to_lowercase(), o.name),
            None => format!("{}/pod/{}", p.namespace, p.name),
        },
        (Some(c), None) => c.id.chars().take(12).collect(),
        (None, None) => "host".into(),
    }
}

/// The LogHist of a kernel bucket array (each value at its bucket's upper bound).
fn from_buckets(buckets: &[u64]) -> LogHist {
    let mut h = LogHist::new();
    for (i, &n) in buckets.iter().enumerate() {
        if n > 0 {
            let v = bucket_upper(i);
            // The open-ended last bucket: its lower bound stands for it.
            let v = if v == u64::MAX {
                bucket_upper(i - 1) + 1
            } else {
                v
            };
            h.record_n(v, n);
        }
    }
    h
}

fn kernel_metric(m: vigil_bpf::latency::Metric) -> Metric {
    use vigil_bpf::latency::Metric as K;
    match m {
        K::SyscallFile => Metric::SyscallFile,
        K::SyscallNet => Metric::SyscallNet,
        K::SyscallOther => Metric::SyscallOther,
        K::RunQueue => Metric::Runq,
        K::Block => Metric::BlockIo,
    }
}

/// Resolves a cgroup to its container and pod.
pub type Resolve<'a> = &'a dyn Fn(u64) -> (Option<ContainerRef>, Option<std::sync::Arc<PodMeta>>);

impl Workloads {
    pub fn new(detector: Option<Detector>, window_secs: u64) -> Self {
        Self {
            by_cgroup: HashMap::new(),
            kernel_prev: HashMap::new(),
            window: HashMap::new(),
            budget_prev: HashMap::new(),
            views: BTreeMap::new(),
            detector,
            window_secs,
        }
    }

    /// Counts one event (and the latencies it carries) for its cgroup.
    pub fn event(&mut self, event: &Event, kind_index: usize, workload: impl FnOnce() -> String) {
        let h = event.header();
        let c = self.by_cgroup.entry(h.cgroup_id).or_default();
        c.events[kind_index] += 1;
        let (metric, us) = match event {
            Event::Conn(conn) => match conn.phase {
                ConnPhase::Connect | ConnPhase::Accept => {
                    c.connections += 1;
                    match conn.connect_latency_ns {
                        Some(ns) => (Metric::TcpConnect, ns / 1000),
                        None => return,
                    }
                }
                // The smoothed RTT at close summarises the connection's life.
                ConnPhase::Close if conn.srtt_us > 0 => (Metric::TcpRtt, u64::from(conn.srtt_us)),
                _ => return,
            },
            Event::Dns(d) => match d.exchange.latency_ns {
                Some(ns) => (Metric::Dns, ns / 1000),
                None => return,
            },
            Event::Http(x) => match x.exchange.latency_ns {
                Some(ns) => (Metric::Http, ns / 1000),
                None => return,
            },
            _ => return,
        };
        self.window
            .entry((workload(), metric))
            .or_default()
            .record(us);
    }

    pub fn alert(&mut self, cgroup_id: u64) {
        self.by_cgroup.entry(cgroup_id).or_default().alerts += 1;
    }

    fn view(
        &mut self,
        key: &str,
        resolve: impl FnOnce() -> (Option<String>, Option<String>, Option<String>),
    ) -> &mut WorkloadView {
        let key = if self.views.contains_key(key) || self.views.len() < MAX_WORKLOADS {
            key.to_string()
        } else {
            "other".to_string()
        };
        self.views.entry(key.clone()).or_insert_with(|| {
            let (container_id, namespace, pod) = resolve();
            WorkloadView {
                workload: key,
                container_id,
                namespace,
                pod,
                ..Default::default()
            }
        })
    }

    /// Moves the per-cgroup counters into the workload views (about once a second).
    pub fn fold(&mut self, resolve: Resolve<'_>, budget: &[(u64, u64)]) {
        let counts = std::mem::take(&mut self.by_cgroup);
        for (cg, c) in counts {
            let (container, pod) = resolve(cg);
            let key = workload_of(container.as_ref(), pod.as_deref());
            let v = self.view(&key, || ids(container.as_ref(), pod.as_deref()));
            for (k, n) in Kind::ALL.iter().zip(c.events) {
                if n > 0 {
                    *v.events_by_kind.entry(k.name()).or_default() += n;
                    v.events += n;
                }
            }
            v.alerts += c.alerts;
            v.connections += c.connections;
        }
        for &(cg, total) in budget {
            let prev = self.budget_prev.insert(cg, total).unwrap_or(0);
            if total > prev {
                let (container, pod) = resolve(cg);
                let key = workload_of(container.as_ref(), pod.as_deref());
                self.view(&key, || ids(container.as_ref(), pod.as_deref()))
                    .dropped += total - prev;
            }
        }
    }

    /// Closes a window: kernel histogram deltas plus the network latencies recorded since the
    /// last one, judged by the anomaly detector. Returns its verdicts with the workload's
    /// namespace (for tenant-scoped streams).
    pub fn close_window(
        &mut self,
        kernel: &[vigil_bpf::latency::LatencySample],
        resolve: Resolve<'_>,
        now_ns: u64,
    ) -> Vec<(Verdict, Option<String>)> {
        for s in kernel {
            let key = (s.cgroup_id, s.metric);
            let (prev_buckets, prev_sum) = self
                .kernel_prev
                .get(&key)
                .cloned()
                .unwrap_or_else(|| (vec![0; s.buckets.len()], 0));
            // A histogram that restarted (evicted and recreated) counts from zero.
            let restarted = s.buckets.iter().zip(&prev_buckets).any(|(a, b)| a < b);
            let delta: Vec<u64> = if restarted {
                s.buckets.clone()
            } else {
                s.buckets
                    .iter()
                    .zip(&prev_buckets)
                    .map(|(a, b)| a - b)
                    .collect()
            };
            let sum = if restarted {
                s.sum_us
            } else {
                s.sum_us.saturating_sub(prev_sum)
            };
            self.kernel_prev.insert(key, (s.buckets.clone(), s.sum_us));
            if delta.iter().all(|&n| n == 0) {
                continue;
            }
            let (container, pod) = resolve(s.cgroup_id);
            let workload = workload_of(container.as_ref(), pod.as_deref());
            let h = self
                .window
                .entry((workload.clone(), kernel_metric(s.metric)))
                .or_default();
            h.hist.merge(&from_buckets(&delta));
            h.sum_us += sum;
            self.view(&workload, || ids(container.as_ref(), pod.as_deref()));
        }
        let mut verdicts = Vec::new();
        for ((workload, metric), h) in std::mem::take(&mut self.window) {
            let Some(v) = self.views.get_mut(&workload) else {
                // Network latencies of a workload not folded yet: it will be next second.
                continue;
            };
            let summary = WindowSummary {
                count: h.hist.count(),
                p50_us: h.hist.quantile(0.5).unwrap_or(0),
                p99_us: h.hist.quantile(0.99).unwrap_or(0),
            };
            v.latency.insert(metric.as_str(), summary);
            if matches!(
                metric,
                Metric::SyscallFile | Metric::SyscallNet | Metric::SyscallOther
            ) {
                v.syscalls += h.hist.count();
            }
            v.cumulative.entry(metric).or_default().merge(&h);
            let ns = v.namespace.clone();
            if let Some(d) = &mut self.detector {
                if let Some(verdict) = d.observe(&workload, metric, &h.hist, now_ns) {
                    verdicts.push((verdict, ns));
                }
            }
        }
        verdicts
    }

    /// Forgets a removed cgroup's kernel baseline (its histograms are deleted in the kernel).
    pub fn forget_cgroup(&mut self, cgroup_id: u64) {
        self.kernel_prev.retain(|(cg, _), _| *cg != cgroup_id);
        self.budget_prev.remove(&cgroup_id);
    }

    pub fn response(&self) -> WorkloadsResponse<'_> {
        WorkloadsResponse {
            window_secs: self.window_secs,
            workloads: self.views.values().collect(),
        }
    }

    /// `vigil_latency_seconds{workload,metric}` histograms and per-workload counters.
    pub fn families(&self) -> Vec<Family> {
        let mut lat = Family::new(
            "vigil_latency",
            "Latency per workload: syscalls by class, run queue, block I/O, TCP connect and RTT, DNS, HTTP.",
            Some("seconds"),
            MetricKind::Histogram,
        );
        let mut events = Family::new(
            "vigil_workload_events",
            "Events attributed to each workload.",
            None,
            MetricKind::Counter,
        );
        for v in self.views.values() {
            events.series.push(Series::number(
                vec![("workload", v.workload.clone())],
                v.events as f64,
            ));
            for (m, h) in &v.cumulative {
                lat.series.push(Series {
                    labels: vec![
                        ("workload", v.workload.clone()),
                        ("metric", m.as_str().into()),
                    ],
                    value: Value::Histogram(prometheus_buckets(h)),
                });
            }
        }
        let mut out = vec![events, lat];
        if let Some(d) = &self.detector {
            let s = d.stats();
            out.push(Family::single(
                "vigil_anomaly_series",
                "(workload, metric) series with a latency baseline.",
                None,
                MetricKind::Gauge,
                s.series as f64,
            ));
            out.push(Family::single(
                "vigil_anomaly_series_refused",
                "Latency windows not judged because the detector was at anomaly.max_series.",
                None,
                MetricKind::Counter,
                s.refused as f64,
            ));
        }
        out
    }
}

fn ids(
    c: Option<&ContainerRef>,
    p: Option<&PodMeta>,
) -> (Option<String>, Option<String>, Option<String>) {
    (
        c.map(|c| c.id.clone()),
        p.map(|p| p.namespace.clone()),
        p.map(|p| p.name.clone()),
    )
}

/// Cumulative buckets in seconds at every power of two of microseconds (1 µs .. ~2.3 h), which
/// keeps each series at ~34 buckets while the log-linear histogram underneath stays exact.
fn prometheus_buckets(h: &Hist) -> HistogramValue {
    let mut buckets = Vec::new();
    let counts: Vec<(u64, u64)> = h.hist.buckets().collect();
    let mut cum = 0u64;
    let mut i = 0;
    for k in 0..34u32 {
        let le = 1u64 << k;
        while i < counts.len() && counts[i].0 <= le {
            cum += counts[i].1;
            i += 1;
        }
        buckets.push((le as f64 / 1e6, cum));
    }
    HistogramValue {
        buckets,
        count: h.hist.count(),
        sum: h.sum_us as f64 / 1e6,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_buckets_become_the_same_quantiles() {
        let mut direct = LogHist::new();
        let mut buckets = vec![0u64; vigil_net::hist::BUCKET_COUNT];
        for v in [3u64, 20, 20, 150, 20_000] {
            direct.record(v);
            buckets[vigil_net::hist::bucket_index(v)] += 1;
        }
        let h = from_buckets(&buckets);
        assert_eq!(h.count(), 5);
        for q in [0.5, 0.99] {
            let (a, b) = (h.quantile(q).unwrap(), direct.quantile(q).unwrap());
            assert_eq!(
                vigil_net::hist::bucket_index(a),
                vigil_net::hist::bucket_index(b)
            );
        }
    }

    #[test]
    fn prometheus_buckets_are_cumulative_powers_of_two() {
        let mut h = Hist::default();
        for v in [1, 3, 3, 100, 5000] {
            h.record(v);
        }
        let p = prometheus_buckets(&h);
        assert_eq!(p.count, 5);
        assert_eq!(p.buckets[0], (1e-6, 1));
        assert_eq!(p.buckets[2], (4e-6, 3));
        assert!(p.buckets.windows(2).all(|w| w[0].1 <= w[1].1));
        assert_eq!(p.buckets.last().unwrap().1, 5);
        assert!((p.sum - 5107e-6).abs() < 1e-12);
    }
}
