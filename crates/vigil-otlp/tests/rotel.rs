//! The exporter against a real OTLP collector: rotel on loopback, printing what it receives
//! with its debug log, over gRPC and HTTP, including a collector that is down and comes back
//! and one that never answers.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use vigil_export::metrics::{Family, HistogramValue, MetricKind, Series, Snapshot, Value};
use vigil_export::stream::{AlertInfo, Hub, Published};
use vigil_otlp::{DropCause, OtlpConfig, OtlpStats, Signal};
use vigil_rules::Priority;

/// rotel's agent binary: `$VIGIL_ROTEL`, `rotel-agent` on PATH, or the one inside the venv
/// scripts/deps.sh installs the `rotel` PyPI package into. Outside CI a missing rotel skips;
/// in CI it fails.
fn rotel_bin() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("VIGIL_ROTEL") {
        return Some(PathBuf::from(p));
    }
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|d| d.join("rotel-agent"))
            .find(|p| p.is_file())
    });
    let in_venv = || {
        std::fs::read_dir("/opt/vigil-rotel/lib")
            .ok()?
            .find_map(|e| {
                let p = e.ok()?.path().join("site-packages/rotel/rotel-agent");
                p.is_file().then_some(p)
            })
    };
    let found = on_path.or_else(in_venv);
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI=true and rotel is missing: scripts/deps.sh installs it into /opt/vigil-rotel"
        );
        eprintln!("skipping: rotel not installed (pip install rotel, or set VIGIL_ROTEL)");
    }
    found
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls `cond` every 50 ms for at most 30 s (a bound, not a speed expectation).
fn wait_until(what: &str, mut cond: impl FnMut() -> bool, context: impl Fn() -> String) {
    let end = Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(
            Instant::now() < end,
            "timed out waiting for {what}\n{}",
            context()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A rotel collector on two loopback ports, killed on drop.
struct Rotel {
    child: Child,
    out: PathBuf,
    grpc: u16,
    http: u16,
}

impl Rotel {
    fn start(bin: &Path, dir: &Path, grpc: u16, http: u16) -> Rotel {
        let out = dir.join(format!("rotel-{grpc}.out"));
        let child = Command::new(bin)
            .arg("start")
            .args(["--exporter", "blackhole"])
            .args(["--debug-log", "logs", "--debug-log", "metrics"])
            .args(["--debug-log-verbosity", "detailed"])
            .arg("--otlp-receiver-traces-disabled")
            .args(["--otlp-grpc-endpoint", &format!("127.0.0.1:{grpc}")])
            .args(["--otlp-http-endpoint", &format!("127.0.0.1:{http}")])
            .arg("--pid-file")
            .arg(dir.join(format!("rotel-{grpc}.pid")))
            .arg("--log-file")
            .arg(dir.join(format!("rotel-{grpc}.log")))
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .expect("start rotel");
        let r = Rotel {
            child,
            out,
            grpc,
            http,
        };
        wait_until(
            "rotel to listen",
            || {
                [r.grpc, r.http]
                    .iter()
                    .all(|p| TcpStream::connect(("127.0.0.1", *p)).is_ok())
            },
            || r.output(),
        );
        r
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }
}

impl Drop for Rotel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One log record as rotel's debug log prints it.
#[derive(Debug, Default)]
struct Record {
    severity_text: String,
    severity_number: String,
    body: String,
    attributes: Vec<(String, String)>,
}

impl Record {
    fn attr(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

fn records(out: &str) -> Vec<Record> {
    let mut all = Vec::new();
    for block in out.split("\nLogRecord #").skip(1) {
        let mut r = Record::default();
        for line in block.lines().skip(1) {
            let line = line.trim();
            if line.starts_with("ResourceLog") || line.starts_with("Resource") {
                break;
            }
            if let Some(v) = line.strip_prefix("SeverityText: ") {
                r.severity_text = v.into();
            } else if let Some(v) = line.strip_prefix("SeverityNumber: ") {
                r.severity_number = v.into();
            } else if let Some(v) = line.strip_prefix("Body: Str(") {
                r.body = v.strip_suffix(')').unwrap_or(v).into();
            } else if let Some((k, v)) = line
                .strip_prefix("-> ")
                .and_then(|l| l.split_once(": Str("))
            {
                r.attributes
                    .push((k.into(), v.strip_suffix(')').unwrap_or(v).into()));
            }
        }
        all.push(r);
    }
    all
}

/// The lines rotel printed for the last export of metric `name`.
fn metric(out: &str, name: &str) -> Option<String> {
    let start = out.rfind(&format!("-> Name: {name}\n"))?;
    let rest = &out[start..];
    let end = ["Metric #", "ResourceMetrics #", "ResourceLog #"]
        .iter()
        .filter_map(|m| rest[1..].find(m))
        .min()
        .map_or(rest.len(), |e| e + 1);
    Some(rest[..end].to_string())
}

fn alert(rule: &str, priority: Priority) -> Published {
    Published {
        line: Arc::from(format!(r#"{{"kind":"alert","rule":"{rule}"}}"#)),
        kind: "alert",
        time_ns: 1_700_000_000_000_000_000,
        alert: Some(AlertInfo {
            rule: rule.into(),
            priority,
            event_kind: "exec",
        }),
        container_id: Some("0123456789ab".into()),
        namespace: Some("shop".into()),
        pod: Some("cart-7d9f".into()),
    }
}

fn event(kind: &'static str, i: u32) -> Published {
    Published {
        line: Arc::from(format!(r#"{{"kind":"{kind}","i":{i}}}"#)),
        kind,
        time_ns: 1_700_000_000_000_000_000 + u64::from(i),
        alert: None,
        container_id: None,
        namespace: None,
        pod: None,
    }
}

fn snapshot(events: f64) -> Snapshot {
    let mut ev = Family::new("vigil_events", "Events received", None, MetricKind::Counter);
    ev.series
        .push(Series::number(vec![("kind", "exec".into())], events));
    let procs = Family::single(
        "vigil_process_table_entries",
        "Processes tracked",
        None,
        MetricKind::Gauge,
        17.0,
    );
    let mut lat = Family::new(
        "vigil_rule_eval",
        "Rule evaluation time",
        Some("seconds"),
        MetricKind::Histogram,
    );
    lat.series.push(Series {
        labels: vec![],
        value: Value::Histogram(HistogramValue {
            buckets: vec![(0.001, 2), (0.01, 5)],
            count: 6,
            sum: 0.02,
        }),
    });
    Arc::new(vec![ev, procs, lat])
}

type Shared = Arc<Mutex<Option<Snapshot>>>;

fn source(s: &Shared) -> vigil_otlp::MetricsSource {
    let s = s.clone();
    Arc::new(move || s.lock().unwrap().clone())
}

fn config(yaml: &str) -> OtlpConfig {
    serde_yaml::from_str(yaml).unwrap()
}

fn total_dropped(s: &OtlpStats) -> u64 {
    [
        DropCause::QueueFull,
        DropCause::Lagged,
        DropCause::ExportFailed,
        DropCause::Rejected,
    ]
    .iter()
    .map(|c| s.dropped(*c))
    .sum()
}

/// Alerts (one replayed from before the start), selected events and metrics arrive intact.
fn delivers(protocol: &str) {
    let Some(bin) = rotel_bin() else { return };
    let dir = tempfile::tempdir().unwrap();
    let rotel = Rotel::start(&bin, dir.path(), free_port(), free_port());
    let port = if protocol == "grpc" {
        rotel.grpc
    } else {
        rotel.http
    };
    let hub = Arc::new(Hub::new(1024, 16));
    hub.publish(alert("Replayed alert", Priority::Warning));
    let metrics: Shared = Arc::new(Mutex::new(Some(snapshot(42.0))));
    let cfg = config(&format!(
        "{{protocol: {protocol}, endpoint: 'http://127.0.0.1:{port}', events: [exec], \
         metrics_interval_secs: 1, max_batch_delay_ms: 100, headers: {{x-vigil-test: yes}}}}"
    ));
    let exporter = vigil_otlp::spawn(&cfg, hub.clone(), source(&metrics), "test-host").unwrap();
    hub.publish(alert("Shell in container", Priority::Critical));
    for i in 0..3 {
        hub.publish(event("exec", i));
    }
    hub.publish(event("file", 9));

    let stats = exporter.stats();
    wait_until(
        "5 log records and the metrics",
        || {
            let out = rotel.output();
            records(&out).len() >= 5 && metric(&out, "vigil_rule_eval").is_some()
        },
        || rotel.output(),
    );
    // The counter grows; the next export carries the new cumulative value.
    *metrics.lock().unwrap() = Some(snapshot(43.0));
    wait_until(
        "the updated counter",
        || metric(&rotel.output(), "vigil_events").is_some_and(|m| m.contains("Value: 43")),
        || rotel.output(),
    );
    exporter.shutdown();

    let out = rotel.output();
    let recs = records(&out);
    assert_eq!(recs.len(), 5, "{out}");
    let shell = recs
        .iter()
        .find(|r| r.attr("vigil.rule") == Some("Shell in container"))
        .expect("the alert");
    assert_eq!(shell.severity_text, "Critical");
    assert_eq!(shell.severity_number, "SEVERITY_NUMBER_ERROR2(18)");
    assert_eq!(
        shell.body,
        r#"{"kind":"alert","rule":"Shell in container"}"#
    );
    assert_eq!(shell.attr("vigil.kind"), Some("alert"));
    assert_eq!(shell.attr("vigil.priority"), Some("Critical"));
    assert_eq!(shell.attr("container.id"), Some("0123456789ab"));
    assert_eq!(shell.attr("k8s.namespace.name"), Some("shop"));
    assert_eq!(shell.attr("k8s.pod.name"), Some("cart-7d9f"));
    let replayed = recs
        .iter()
        .find(|r| r.attr("vigil.rule") == Some("Replayed alert"))
        .expect("the alert published before the exporter started");
    assert_eq!(replayed.severity_number, "SEVERITY_NUMBER_WARN(13)");
    let execs: Vec<_> = recs
        .iter()
        .filter(|r| r.attr("vigil.kind") == Some("exec"))
        .collect();
    assert_eq!(execs.len(), 3, "{out}");
    assert!(execs
        .iter()
        .all(|r| r.severity_number == "SEVERITY_NUMBER_INFO(9)"));
    assert!(
        execs.iter().any(|r| r.body == r#"{"kind":"exec","i":2}"#),
        "{out}"
    );
    assert!(
        !out.contains(r#""kind":"file""#),
        "file events were not selected\n{out}"
    );
    assert!(out.contains("-> service.name: Str(vigil)"), "{out}");
    assert!(out.contains("-> host.name: Str(test-host)"), "{out}");

    let events = metric(&out, "vigil_events").unwrap();
    assert!(events.contains("DataType: Sum"), "{events}");
    assert!(events.contains("IsMonotonic: true"), "{events}");
    assert!(
        events.contains("AGGREGATION_TEMPORALITY_CUMULATIVE"),
        "{events}"
    );
    assert!(events.contains("-> kind: Str(exec)"), "{events}");
    let procs = metric(&out, "vigil_process_table_entries").unwrap();
    assert!(
        procs.contains("DataType: Gauge") && procs.contains("Value: 17"),
        "{procs}"
    );
    let lat = metric(&out, "vigil_rule_eval").unwrap();
    assert!(lat.contains("-> Unit: s"), "{lat}");
    for line in [
        "DataType: Histogram",
        "Count: 6",
        "Sum: 0.02",
        "ExplicitBounds #1: 0.01",
        "Buckets #1, Count: 3",
        "Buckets #2, Count: 1",
    ] {
        assert!(lat.contains(line), "{line}\n{lat}");
    }

    assert_eq!(
        stats
            .logs_exported
            .load(std::sync::atomic::Ordering::Relaxed),
        5
    );
    assert_eq!(total_dropped(&stats), 0);
    assert!(
        stats
            .metric_exports_ok
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 2
    );
    assert_eq!(
        stats
            .metric_exports_failed
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
}

#[test]
fn grpc_delivers_alerts_events_and_metrics() {
    delivers("grpc");
}

#[test]
fn http_delivers_alerts_events_and_metrics() {
    delivers("http");
}

/// With the collector down the queue stays bounded and every record is either exported later
/// or counted as dropped; once the collector is up, the held batch, the queue and new alerts
/// go out.
fn survives_an_outage(protocol: &str) {
    let Some(bin) = rotel_bin() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (grpc, http) = (free_port(), free_port());
    let port = if protocol == "grpc" { grpc } else { http };
    let hub = Arc::new(Hub::new(1024, 0));
    let metrics: Shared = Arc::new(Mutex::new(Some(snapshot(1.0))));
    // The retry budget outlasts the outage, so the batch in flight is held, not dropped.
    let cfg = config(&format!(
        "{{protocol: {protocol}, endpoint: 'http://127.0.0.1:{port}', queue_size: 8, \
         max_batch_size: 4, max_batch_delay_ms: 50, metrics_interval_secs: 1, timeout_secs: 2, \
         retry: {{initial_backoff_ms: 50, max_backoff_ms: 200, max_elapsed_secs: 120}}}}"
    ));
    let exporter = vigil_otlp::spawn(&cfg, hub.clone(), source(&metrics), "test-host").unwrap();
    let stats = exporter.stats();
    let load = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);

    for i in 0..40 {
        hub.publish(alert(&format!("Outage {i}"), Priority::Error));
    }
    let held: u64 = 8 + 4;
    let report = || {
        format!(
            "queue_full {}, retries {}, metric exports failed {}",
            stats.dropped(DropCause::QueueFull),
            stats.retries(Signal::Logs),
            load(&stats.metric_exports_failed)
        )
    };
    wait_until(
        "the overflow to be counted and the batch retried",
        || {
            stats.dropped(DropCause::QueueFull) >= 40 - held
                && stats.retries(Signal::Logs) >= 2
                && load(&stats.metric_exports_failed) >= 1
        },
        report,
    );
    let overflow = stats.dropped(DropCause::QueueFull);
    assert!(overflow <= 40, "{overflow}");
    assert_eq!(load(&stats.logs_exported), 0);

    let rotel = Rotel::start(&bin, dir.path(), grpc, http);
    wait_until(
        "the held records to go out once the collector is up",
        || load(&stats.logs_exported) + stats.dropped(DropCause::QueueFull) == 40,
        || {
            format!(
                "exported {}\n{}",
                load(&stats.logs_exported),
                rotel.output()
            )
        },
    );
    let recovered = load(&stats.logs_exported);
    assert!((1..=held).contains(&recovered), "{recovered}");
    eprintln!(
        "{protocol} outage: {overflow} of 40 dropped (queue_full), {recovered} held and sent"
    );
    for i in 0..5 {
        hub.publish(alert(&format!("After {i}"), Priority::Error));
    }
    wait_until(
        "new alerts and metrics after the outage",
        || load(&stats.logs_exported) == recovered + 5 && load(&stats.metric_exports_ok) >= 1,
        || rotel.output(),
    );
    exporter.shutdown();

    // rotel prints what it accepted after answering; wait for the print, not just the answer.
    wait_until(
        "rotel to print every exported record",
        || records(&rotel.output()).len() as u64 == recovered + 5,
        || rotel.output(),
    );
    let out = rotel.output();
    assert!(out.contains("Str(After 4)"), "{out}");
    assert_eq!(load(&stats.logs_exported) + total_dropped(&stats), 45);
    assert_eq!(stats.dropped(DropCause::ExportFailed), 0);
    assert!(metric(&out, "vigil_events").is_some(), "{out}");
}

#[test]
fn grpc_survives_an_outage() {
    survives_an_outage("grpc");
}

#[test]
fn http_survives_an_outage() {
    survives_an_outage("http");
}

/// A burst far larger than the agent's ring and the exporter's queue: every record is either
/// exported or counted under a cause, none is lost silently.
#[test]
fn a_burst_is_exported_or_counted() {
    let Some(bin) = rotel_bin() else { return };
    let dir = tempfile::tempdir().unwrap();
    let rotel = Rotel::start(&bin, dir.path(), free_port(), free_port());
    let hub = Arc::new(Hub::new(4, 0));
    let metrics: Shared = Arc::new(Mutex::new(None));
    let cfg = config(&format!(
        "{{endpoint: 'http://127.0.0.1:{}', queue_size: 8, max_batch_size: 4, \
         max_batch_delay_ms: 10}}",
        rotel.grpc
    ));
    let exporter = vigil_otlp::spawn(&cfg, hub.clone(), source(&metrics), "test-host").unwrap();
    let stats = exporter.stats();
    const N: u64 = 2000;
    for i in 0..N {
        hub.publish(alert(&format!("Burst {i}"), Priority::Notice));
    }
    let exported = || {
        stats
            .logs_exported
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    wait_until(
        "every record to be exported or counted",
        || exported() + total_dropped(&stats) == N,
        || format!("exported {}, dropped {}", exported(), total_dropped(&stats)),
    );
    exporter.shutdown();
    let (lagged, full) = (
        stats.dropped(DropCause::Lagged),
        stats.dropped(DropCause::QueueFull),
    );
    eprintln!(
        "burst of {N}: {} exported, {lagged} lagged, {full} queue_full",
        exported()
    );
    assert_eq!(
        hub.stats.skipped.load(std::sync::atomic::Ordering::Relaxed),
        lagged
    );
    wait_until(
        "rotel to print every exported record",
        || records(&rotel.output()).len() as u64 == exported(),
        || rotel.output(),
    );
    assert!(exported() >= 1);
}

/// Stopping while the collector is unreachable ends the exporter and counts every record it
/// held as failed: nothing is lost silently, and shutdown does not wait out the retry budget.
#[test]
fn shutdown_with_the_collector_down_counts_what_it_held() {
    let port = free_port();
    let hub = Arc::new(Hub::new(1024, 0));
    let metrics: Shared = Arc::new(Mutex::new(Some(snapshot(1.0))));
    let cfg = config(&format!(
        "{{endpoint: 'http://127.0.0.1:{port}', queue_size: 16, max_batch_size: 4, \
         retry: {{initial_backoff_ms: 50, max_elapsed_secs: 3600}}}}"
    ));
    let exporter = vigil_otlp::spawn(&cfg, hub.clone(), source(&metrics), "test-host").unwrap();
    let stats = exporter.stats();
    for i in 0..10 {
        hub.publish(alert(&format!("Down {i}"), Priority::Error));
    }
    wait_until("a retry", || stats.retries(Signal::Logs) >= 1, String::new);
    exporter.shutdown();
    assert_eq!(
        stats
            .logs_exported
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    assert_eq!(stats.dropped(DropCause::ExportFailed), 10);
    assert_eq!(total_dropped(&stats), 10);
}
