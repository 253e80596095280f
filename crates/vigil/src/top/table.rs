//! The per-workload table of `vigil top`: the `/api/v1/workloads` answer, rates from two samples,
//! sorting and plain-text rendering (shared by the full-screen view and `--once`).

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use serde::Deserialize;

use vigil_anomaly::Metric;

use super::SortKey;

/// The answer of `GET /api/v1/workloads`. Unknown fields are ignored: the agent may be newer.
#[derive(Debug, Deserialize)]
pub struct Workloads {
    /// The length of the latency window, in seconds.
    pub window_secs: u64,
    pub workloads: Vec<Workload>,
}

/// One workload's counters: cumulative since the agent started, latency of the last window.
#[derive(Debug, Deserialize)]
pub struct Workload {
    pub workload: String,
    pub events: u64,
    #[serde(default)]
    pub alerts: u64,
    #[serde(default)]
    pub connections: u64,
    #[serde(default)]
    pub dropped: u64,
    #[serde(default)]
    pub syscalls: u64,
    /// Keyed by metric name; a metric is present only when measured.
    #[serde(default)]
    pub latency: BTreeMap<String, Latency>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct Latency {
    pub p50_us: u64,
    pub p99_us: u64,
}

/// One answer and when it arrived (rates divide by the time between two).
#[derive(Debug)]
pub struct Sample {
    pub at: Instant,
    pub data: Workloads,
}

/// A table row: the counters plus what the previous sample lets us compute.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub workload: String,
    pub events: u64,
    /// Events per second since the previous sample; `None` on a workload's first sample.
    pub rate: Option<f64>,
    /// Percent of all workloads' events: of the last interval's, or (first sample) of all.
    pub share: f64,
    pub syscall_rate: Option<f64>,
    pub latency: BTreeMap<String, Latency>,
    pub connections: u64,
    pub dropped: u64,
    pub alerts: u64,
}

/// Rows of `cur`, with rates against `prev` when there is one. A counter that went backwards
/// (the agent restarted) has no rate rather than a negative one.
pub fn rows(prev: Option<&Sample>, cur: &Sample) -> Vec<Row> {
    let before: HashMap<&str, &Workload> = prev
        .map(|p| {
            p.data
                .workloads
                .iter()
                .map(|w| (w.workload.as_str(), w))
                .collect()
        })
        .unwrap_or_default();
    let secs = prev.map(|p| cur.at.duration_since(p.at).as_secs_f64());
    let per_sec = |now: u64, then: Option<u64>| match (secs, then) {
        (Some(s), Some(t)) if s > 0.0 && now >= t => Some((now - t) as f64 / s),
        _ => None,
    };
    let mut out: Vec<Row> = cur
        .data
        .workloads
        .iter()
        .map(|w| {
            let old = before.get(w.workload.as_str());
            Row {
                workload: w.workload.clone(),
                events: w.events,
                rate: per_sec(w.events, old.map(|o| o.events)),
                share: 0.0,
                syscall_rate: per_sec(w.syscalls, old.map(|o| o.syscalls)),
                latency: w.latency.clone(),
                connections: w.connections,
                dropped: w.dropped,
                alerts: w.alerts,
            }
        })
        .collect();
    let total_rate: f64 = out.iter().filter_map(|r| r.rate).sum();
    let total_events: u64 = out.iter().map(|r| r.events).sum();
    for r in &mut out {
        r.share = if prev.is_some() {
            if total_rate > 0.0 {
                100.0 * r.rate.unwrap_or(0.0) / total_rate
            } else {
                0.0
            }
        } else if total_events > 0 {
            100.0 * r.events as f64 / total_events as f64
        } else {
            0.0
        };
    }
    out
}

/// Sorts descending by `key` (a missing value last), then by name so the order is stable
/// between refreshes.
pub fn sort(rows: &mut [Row], key: SortKey, metric: Metric) {
    let value = |r: &Row| -> Option<f64> {
        match key {
            SortKey::Events => Some(r.events as f64),
            SortKey::Rate => r.rate,
            SortKey::Syscalls => r.syscall_rate,
            SortKey::P99 => r.latency.get(metric.as_str()).map(|l| l.p99_us as f64),
            SortKey::Conns => Some(r.connections as f64),
            SortKey::Drops => Some(r.dropped as f64),
            SortKey::Alerts => Some(r.alerts as f64),
        }
    };
    rows.sort_by(|a, b| {
        let (va, vb) = (value(a), value(b));
        vb.partial_cmp(&va)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then_with(|| a.workload.cmp(&b.workload))
    });
}

/// The widest workload name shown; longer ones are cut with `~` at the end.
const MAX_NAME: usize = 48;

/// The header line and one line per row. The sorted column's header carries a `*`.
pub fn render(rows: &[Row], key: SortKey, metric: Metric) -> (String, Vec<String>) {
    let name_w = rows
        .iter()
        .map(|r| r.workload.chars().count())
        .max()
        .unwrap_or(0)
        .clamp("WORKLOAD".len(), MAX_NAME);
    let mark = |title: &str, k: SortKey| {
        if k == key {
            format!("{title}*")
        } else {
            title.to_string()
        }
    };
    let header = format!(
        "{:<name_w$} {:>9} {:>9} {:>6} {:>9} {:>8} {:>8} {:>8} {:>7} {:>7}",
        "WORKLOAD",
        mark("EVENTS", SortKey::Events),
        mark("EV/S", SortKey::Rate),
        "EV%",
        mark("SYSC/S", SortKey::Syscalls),
        "P50",
        mark("P99", SortKey::P99),
        mark("CONNS", SortKey::Conns),
        mark("DROPS", SortKey::Drops),
        mark("ALERTS", SortKey::Alerts),
    );
    let lines = rows
        .iter()
        .map(|r| {
            let lat = r.latency.get(metric.as_str());
            format!(
                "{:<name_w$} {:>9} {:>9} {:>6.1} {:>9} {:>8} {:>8} {:>8} {:>7} {:>7}",
                cut(&r.workload, name_w),
                r.events,
                rate(r.rate),
                r.share,
                rate(r.syscall_rate),
                lat.map_or("-".into(), |l| micros(l.p50_us)),
                lat.map_or("-".into(), |l| micros(l.p99_us)),
                r.connections,
                r.dropped,
                r.alerts,
            )
        })
        .collect();
    (header, lines)
}

fn cut(s: &str, w: usize) -> String {
    if s.chars().count() <= w {
        return s.to_string();
    }
    let mut out: String = s.chars().take(w - 1).collect();
    out.push('~');
    out
}

fn rate(r: Option<f64>) -> String {
    match r {
        None => "-".into(),
        Some(v) if v >= 10_000.0 => format!("{:.0}k", v / 1000.0),
        Some(v) if v >= 100.0 => format!("{v:.0}"),
        Some(v) => format!("{v:.1}"),
    }
}

/// A latency in the unit that keeps it short, without a space (unlike the alerts'
/// `human_us`) so that `--once` columns split on whitespace: `250us`, `3.2ms`, `1.50s`.
fn micros(us: u64) -> String {
    match us {
        0..=9_999 => format!("{us}us"),
        10_000..=9_999_999 => format!("{:.1}ms", us as f64 / 1e3),
        _ => format!("{:.2}s", us as f64 / 1e6),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// A canned answer in the shape of the agent's `/api/v1/workloads`.
    fn canned(web_events: u64, db_events: u64, syscalls: u64) -> Workloads {
        serde_json::from_str(&format!(
            r#"{{"window_secs": 10, "workloads": [
              {{"workload": "shop/deployment/web", "container_id": "0123456789ab", "namespace": "shop",
               "pod": "web-7c9", "events": {web_events}, "events_by_kind": {{"exec": 3, "file": 10}},
               "alerts": 2, "connections": 17, "dropped": 0,
               "latency": {{"syscall_file": {{"count": 120, "p50_us": 3, "p99_us": 250}},
                           "tcp_rtt": {{"count": 9, "p50_us": 120, "p99_us": 45000}}}},
               "syscalls": {syscalls}}},
              {{"workload": "0123456789ab", "container_id": "0123456789abcdef", "namespace": null,
               "pod": null, "events": {db_events}, "events_by_kind": {{}}, "alerts": 0,
               "connections": 0, "dropped": 5, "latency": {{}}, "syscalls": 0}}
            ]}}"#
        ))
        .unwrap()
    }

    #[test]
    fn first_sample_has_no_rates_and_shares_the_totals() {
        let now = Instant::now();
        let r = rows(
            None,
            &Sample {
                at: now,
                data: canned(300, 100, 9000),
            },
        );
        assert_eq!(r[0].rate, None);
        assert_eq!(r[0].share, 75.0);
        assert_eq!(r[1].share, 25.0);
        assert_eq!(
            r[0].latency["tcp_rtt"],
            Latency {
                p50_us: 120,
                p99_us: 45000
            }
        );
    }

    #[test]
    fn rates_are_deltas_over_the_elapsed_time() {
        let t0 = Instant::now();
        let a = Sample {
            at: t0,
            data: canned(300, 100, 9000),
        };
        let b = Sample {
            at: t0 + Duration::from_secs(2),
            data: canned(500, 300, 13000),
        };
        let r = rows(Some(&a), &b);
        assert_eq!(r[0].rate, Some(100.0));
        assert_eq!(r[0].syscall_rate, Some(2000.0));
        assert_eq!(r[1].rate, Some(100.0));
        assert_eq!((r[0].share, r[1].share), (50.0, 50.0));
        // The agent restarted: counters went down, no rate rather than a wrong one.
        let c = Sample {
            at: t0 + Duration::from_secs(4),
            data: canned(10, 400, 0),
        };
        let r = rows(Some(&b), &c);
        assert_eq!((r[0].rate, r[1].rate), (None, Some(50.0)));
        assert_eq!(r[1].share, 100.0);
    }

    #[test]
    fn sorting_puts_missing_values_last_and_ties_by_name() {
        let t0 = Instant::now();
        let mut r = rows(
            None,
            &Sample {
                at: t0,
                data: canned(1, 1, 0),
            },
        );
        sort(&mut r, SortKey::P99, Metric::SyscallFile);
        assert_eq!(r[0].workload, "shop/deployment/web");
        sort(&mut r, SortKey::Drops, Metric::SyscallFile);
        assert_eq!(r[0].workload, "0123456789ab");
        sort(&mut r, SortKey::Events, Metric::SyscallFile);
        assert_eq!(r[0].workload, "0123456789ab", "a tie is ordered by name");
    }

    #[test]
    fn rendering_shows_the_selected_metric_and_the_sort_column() {
        let t0 = Instant::now();
        let r = rows(
            None,
            &Sample {
                at: t0,
                data: canned(300, 100, 9000),
            },
        );
        let (header, lines) = render(&r, SortKey::Alerts, Metric::TcpRtt);
        assert!(
            header.starts_with("WORKLOAD") && header.contains("ALERTS*"),
            "{header}"
        );
        assert!(lines[0].starts_with("shop/deployment/web "), "{}", lines[0]);
        assert!(
            lines[0].contains("120us") && lines[0].contains("45.0ms"),
            "{}",
            lines[0]
        );
        assert!(lines[0].contains(" 75.0 "), "{}", lines[0]);
        let dashes = lines[1].split_whitespace().filter(|c| *c == "-").count();
        assert_eq!(dashes, 4, "no rates, no latency: {}", lines[1]);
        assert_eq!(header.len(), lines[0].len());
    }

    #[test]
    fn long_names_are_cut_and_units_stay_short() {
        assert_eq!(cut("abcdef", 4), "abc~");
        assert_eq!(micros(9_999), "9999us");
        assert_eq!(micros(1_500_000), "1500.0ms");
        assert_eq!(micros(15_000_000), "15.00s");
        assert_eq!(rate(Some(123_456.0)), "123k");
    }
}
