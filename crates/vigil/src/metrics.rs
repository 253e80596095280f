//! The agent's metrics, built on the pipeline thread from the counters it already keeps and
//! published as one snapshot for `/metrics` and OTLP.
//!
//! Labels are bounded by design: event kinds, causes, rules, programs, maps and workloads
//! (containers), never pids or connections; every family is capped at `metrics.max_series`
//! and what the cap refuses is itself counted.

use vigil_bpf::runstats::{MapFill, ProgramStat};
use vigil_export::metrics::{cap_series, Family, MetricKind, Series};

use crate::network::NetStats;
use crate::stats::{Snapshot, UserStats};

/// Everything the metrics are made of, gathered by the run loop.
#[derive(Debug)]
pub struct Inputs<'a> {
    pub snapshot: &'a Snapshot,
    pub user: &'a UserStats,
    pub programs: &'a [ProgramStat],
    pub maps: &'a [MapFill],
    /// Enforcement outcome counters, when enforcement is installed.
    pub enforcement: Option<[u64; 6]>,
    pub network: Option<&'a NetStats>,
    /// Containers known, by cgroup.
    pub containers: usize,
    /// Pods cached from the Kubernetes API, when watched.
    pub pods: Option<usize>,
    pub max_series: usize,
}

use MetricKind::{Counter, Gauge};

fn labelled(
    name: &'static str,
    help: &'static str,
    unit: Option<&'static str>,
    kind: MetricKind,
    series: impl IntoIterator<Item = (Vec<(&'static str, String)>, f64)>,
) -> Family {
    let mut f = Family::new(name, help, unit, kind);
    f.series = series
        .into_iter()
        .map(|(labels, v)| Series::number(labels, v))
        .collect();
    f
}

pub fn families(i: &Inputs<'_>) -> Vec<Family> {
    let s = i.snapshot;
    let kind = |k: &str| vec![("kind", k.to_string())];
    let mut out = vec![
        labelled(
            "vigil_events",
            "Events received from the kernel (or made in user space), by kind.",
            None,
            Counter,
            s.kinds.iter().map(|k| (kind(k.kind), k.received as f64)),
        ),
        labelled(
            "vigil_events_generated",
            "Events the sensors produced, by kind: received + dropped on the way.",
            None,
            Counter,
            s.kinds.iter().map(|k| (kind(k.kind), k.generated as f64)),
        ),
        labelled(
            "vigil_events_dropped",
            "Events lost, by kind and cause (ringbuf_full, budget, sink_error).",
            None,
            Counter,
            s.kinds.iter().flat_map(|k| {
                [
                    ("ringbuf_full", k.dropped_ringbuf_full),
                    ("budget", k.dropped_budget),
                    ("sink_error", k.dropped_sink_error),
                ]
                .map(|(cause, n)| {
                    (
                        vec![("kind", k.kind.to_string()), ("cause", cause.to_string())],
                        n as f64,
                    )
                })
            }),
        ),
        labelled(
            "vigil_events_filtered",
            "Events dropped on purpose, by kind and stage (kernel filter, user-space path filter, output selection).",
            None,
            Counter,
            s.kinds.iter().flat_map(|k| {
                [
                    ("kernel", k.filtered_kernel),
                    ("user", k.filtered_user),
                    ("output", k.filtered_output),
                ]
                .map(|(stage, n)| {
                    (
                        vec![("kind", k.kind.to_string()), ("stage", stage.to_string())],
                        n as f64,
                    )
                })
            }),
        ),
        labelled(
            "vigil_event_read_errors",
            "Events sent with a field missing because a kernel read failed, by kind.",
            None,
            Counter,
            s.kinds.iter().map(|k| (kind(k.kind), k.read_errors as f64)),
        ),
        Family::single(
            "vigil_decode_errors",
            "Ring-buffer records that could not be decoded.",
            None,
            Counter,
            s.decode_errors as f64,
        ),
        labelled(
            "vigil_alerts",
            "Alerts raised, by rule and priority.",
            None,
            Counter,
            {
                let mut v: Vec<_> = i.user.alerts_by_rule.iter().collect();
                v.sort();
                v.into_iter()
                    .map(|((rule, p), n)| {
                        (
                            vec![("rule", rule.clone()), ("priority", p.as_str().to_string())],
                            *n as f64,
                        )
                    })
                    .collect::<Vec<_>>()
            },
        ),
        Family::single(
            "vigil_alerts_dropped",
            "Alert lines an output failed to write.",
            None,
            Counter,
            s.alerts_dropped_sink_error as f64,
        ),
        Family::single(
            "vigil_rule_evaluation",
            "Time spent evaluating rules.",
            Some("seconds"),
            Counter,
            i.user.rule_eval_ns as f64 / 1e9,
        ),
        Family::single(
            "vigil_rule_evaluations",
            "Events evaluated against the rules.",
            None,
            Counter,
            i.user.rule_evals as f64,
        ),
        Family::single(
            "vigil_process_table_entries",
            "Processes in the process table.",
            None,
            Gauge,
            s.process_table_size as f64,
        ),
        Family::single(
            "vigil_process_table_evictions",
            "Live processes evicted because the table was full.",
            None,
            Counter,
            s.process_table_evictions as f64,
        ),
        Family::single(
            "vigil_process_table_reaped",
            "Entries removed because their process was found gone.",
            None,
            Counter,
            s.process_table_reaped as f64,
        ),
        Family::single(
            "vigil_containers",
            "Containers known (by cgroup).",
            None,
            Gauge,
            i.containers as f64,
        ),
        labelled(
            "vigil_budget_dropped",
            "Records a workload's cgroup lost to its per-cgroup event budget, by workload (container id, or `host`).",
            None,
            Counter,
            {
                let mut by: std::collections::BTreeMap<String, u64> = Default::default();
                for d in &s.budget_drops {
                    let w = d.container_id.clone().unwrap_or_else(|| "host".into());
                    *by.entry(w).or_default() += d.dropped;
                }
                by.into_iter()
                    .map(|(w, n)| (vec![("workload", w)], n as f64))
                    .collect::<Vec<_>>()
            },
        ),
        labelled(
            "vigil_bpf_program_runs",
            "Times the kernel ran each BPF program.",
            None,
            Counter,
            i.programs
                .iter()
                .map(|p| (vec![("program", p.name.clone())], p.runs as f64)),
        ),
        labelled(
            "vigil_bpf_program_run",
            "Time the kernel spent in each BPF program (0 when metrics.bpf_stats is off).",
            Some("seconds"),
            Counter,
            i.programs.iter().map(|p| {
                (
                    vec![("program", p.name.clone())],
                    p.run_time_ns as f64 / 1e9,
                )
            }),
        ),
        labelled(
            "vigil_bpf_map_entries",
            "Entries in each BPF hash map.",
            None,
            Gauge,
            i.maps
                .iter()
                .map(|m| (vec![("map", m.name.clone())], m.entries as f64)),
        ),
        labelled(
            "vigil_bpf_map_capacity",
            "Maximum entries of each BPF hash map.",
            None,
            Gauge,
            i.maps
                .iter()
                .map(|m| (vec![("map", m.name.clone())], m.capacity as f64)),
        ),
    ];
    if let Some(p) = i.pods {
        out.push(Family::single(
            "vigil_kubernetes_pods",
            "Pods of this node cached from the Kubernetes API.",
            None,
            Gauge,
            p as f64,
        ));
    }
    if let Some(e) = i.enforcement {
        out.push(labelled(
            "vigil_enforcement_actions",
            "In-kernel enforcement decisions, by outcome.",
            None,
            Counter,
            ["denied", "killed", "audit", "rate_limited", "protected"]
                .iter()
                .zip(&e[1..])
                .map(|(o, n)| (vec![("outcome", o.to_string())], *n as f64)),
        ));
        out.push(Family::single(
            "vigil_enforcement_reports_dropped",
            "Enforcement reports lost to a full ring buffer (the decision itself was made).",
            None,
            Counter,
            e[0] as f64,
        ));
    }
    if let Some(n) = i.network {
        out.extend(network(n));
    }
    let refused = cap_series(&mut out, i.max_series);
    let mut f = Family::new(
        "vigil_metric_series_refused",
        "Series left out of a metric family because it reached metrics.max_series.",
        None,
        Gauge,
    );
    f.series = refused
        .into_iter()
        .map(|(name, n)| Series::number(vec![("metric", name.to_string())], n as f64))
        .collect();
    out.push(f);
    out
}

fn network(n: &NetStats) -> Vec<Family> {
    let c = |name, help, v: u64| Family::single(name, help, None, Counter, v as f64);
    let g = |name, help, v: usize| Family::single(name, help, None, Gauge, v as f64);
    vec![
        c(
            "vigil_net_sockets_forgotten",
            "Sockets whose owner was forgotten because the owner table was full.",
            n.sockets_forgotten,
        ),
        g(
            "vigil_net_dns_names",
            "IP-to-name entries learned from DNS answers.",
            n.dns_names,
        ),
        c(
            "vigil_net_dns_name_evictions",
            "IP-to-name entries evicted because the cache was full.",
            n.dns_name_evictions,
        ),
        g(
            "vigil_net_exchanges_pending",
            "DNS queries and HTTP requests waiting for their answer.",
            n.exchanges_pending,
        ),
        c(
            "vigil_net_exchanges_evicted",
            "Pending DNS/HTTP exchanges evicted because the table was full.",
            n.exchanges_evicted,
        ),
        c(
            "vigil_net_payload_parse_errors",
            "Captured DNS/HTTP payloads that did not parse.",
            n.payload_parse_errors,
        ),
        c(
            "vigil_net_responses_unmatched",
            "DNS/HTTP responses without a matching request.",
            n.responses_unmatched,
        ),
        g(
            "vigil_service_map_nodes",
            "Nodes in the service map.",
            n.map_nodes,
        ),
        g(
            "vigil_service_map_edges",
            "Edges in the service map.",
            n.map_edges,
        ),
        c(
            "vigil_service_map_refused",
            "Nodes and edges the service map refused because it was full.",
            n.map_refused_nodes + n.map_refused_edges,
        ),
        c(
            "vigil_net_kernel_map_full",
            "UDP flows and packet-drop keys the kernel could not count because its map was full.",
            n.udp_flow_map_full + n.drop_map_full,
        ),
    ]
}
