//! The HTTP API answers liveness and readiness once the sensors are attached.

use std::io::{Read, Write};
use std::net::TcpStream;

use serde_json::Value;

use crate::harness::*;

fn get(addr: &str, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn healthz_and_readyz() {
    if !require_root() {
        return;
    }
    let agent = Agent::start(&["--api", "127.0.0.1:0"]);
    let log = agent.stderr();
    let addr = log
        .lines()
        .find_map(|l| l.split("api listening on http://").nth(1))
        .unwrap_or_else(|| panic!("no api address in {log}"))
        .trim()
        .to_string();
    assert!(get(&addr, "/healthz").starts_with("HTTP/1.1 200"));
    let ready = get(&addr, "/readyz");
    assert!(
        ready.starts_with("HTTP/1.1 200") && ready.contains("ready"),
        "{ready}"
    );
    assert!(get(&addr, "/nope").starts_with("HTTP/1.1 404"));
    agent.stop();
}

/// The value of the series `name{labels}` (labels as written, e.g. `kind="exec"`).
fn metric(text: &str, name: &str, labels: &str) -> Option<f64> {
    let prefix = if labels.is_empty() {
        format!("{name} ")
    } else {
        format!("{name}{{{labels}}} ")
    };
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
}

fn body(response: &str) -> &str {
    response.split_once("\r\n\r\n").map_or("", |(_, b)| b)
}

#[test]
fn metrics_count_events_alerts_and_program_runs() {
    if !require_root() {
        return;
    }
    let agent = Agent::start(&["--api", "127.0.0.1:0"]);
    let addr = agent.api_addr();
    let cg = TestCgroup::new();
    let mut cmd = std::process::Command::new("cat");
    cmd.arg("/etc/shadow").stdout(std::process::Stdio::null());
    cg.enter(&mut cmd);
    assert!(cmd.status().unwrap().success());
    // The snapshot is rebuilt every second.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let text = loop {
        let r = get(&addr, "/metrics");
        assert!(r.starts_with("HTTP/1.1 200"), "{r}");
        let text = body(&r).to_string();
        let alerts = metric(
            &text,
            "vigil_alerts_total",
            "rule=\"Read sensitive file\",priority=\"Warning\"",
        );
        if alerts.is_some_and(|n| n >= 1.0) || std::time::Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
    };
    assert!(
        metric(
            &text,
            "vigil_alerts_total",
            "rule=\"Read sensitive file\",priority=\"Warning\""
        )
        .is_some_and(|n| n >= 1.0),
        "{text}"
    );
    assert!(metric(&text, "vigil_events_total", "kind=\"exec\"").is_some_and(|n| n >= 1.0));
    assert_eq!(
        metric(
            &text,
            "vigil_events_dropped_total",
            "kind=\"exec\",cause=\"ringbuf_full\""
        ),
        Some(0.0)
    );
    assert!(
        metric(
            &text,
            "vigil_bpf_program_runs_total",
            "program=\"vigil_exec\""
        )
        .is_some_and(|n| n >= 1.0),
        "{text}"
    );
    assert!(
        metric(
            &text,
            "vigil_bpf_program_run_seconds_total",
            "program=\"vigil_exec\""
        )
        .is_some_and(|n| n > 0.0),
        "run time is measured: {text}"
    );
    assert!(metric(&text, "vigil_process_table_entries", "").is_some_and(|n| n > 10.0));
    assert!(metric(&text, "vigil_rule_evaluations_total", "").is_some_and(|n| n >= 1.0));
    assert!(text.contains("vigil_bpf_map_capacity{map="), "{text}");
    // Prometheus conventions: every counter ends in _total, every family has HELP and TYPE.
    for l in text.lines().filter(|l| l.starts_with("# TYPE ")) {
        let mut parts = l.split(' ').skip(2);
        let (name, kind) = (parts.next().unwrap(), parts.next().unwrap());
        assert!(name.starts_with("vigil_"), "{l}");
        assert_eq!(kind == "counter", name.ends_with("_total"), "{l}");
        assert!(text.contains(&format!("# HELP {name} ")), "{l}");
    }
    agent.stop();
}

/// `vigil events` as a user runs it.
fn events_cli(args: &[&str]) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_vigil"))
        .arg("events")
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// A `vigil events --follow --json` whose output is read as it comes (a pipe nobody reads
/// would make it a slow client, which the agent would rightly skip ahead of).
struct Follower {
    child: std::process::Child,
    lines: std::sync::Arc<std::sync::Mutex<Vec<Value>>>,
}

impl Follower {
    fn start(args: &[&str]) -> Follower {
        let mut child = events_cli(args);
        let out = child.stdout.take().unwrap();
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for l in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                let v = serde_json::from_str(&l).unwrap_or_else(|e| panic!("{e}: {l}"));
                sink.lock().unwrap().push(v);
            }
        });
        Follower { child, lines }
    }

    fn stop(mut self) -> Vec<Value> {
        let _ = self.child.kill();
        let out = wait_output(self.child, std::time::Duration::from_secs(10));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("fell behind"), "{err}");
        std::thread::sleep(std::time::Duration::from_millis(200));
        std::mem::take(&mut *self.lines.lock().unwrap())
    }
}

#[test]
fn live_streams_filter_events_and_replay_recent_alerts() {
    if !require_root() {
        return;
    }
    let agent = Agent::start(&["--api", "127.0.0.1:0"]);
    let addr = agent.api_addr();
    let cg = TestCgroup::new();
    // Followers first: events are streamed from the moment of subscription.
    let execs = Follower::start(&["--api", &addr, "--kind", "exec", "--follow", "--json"]);
    let files = Follower::start(&["--api", &addr, "--kind", "file", "--follow", "--json"]);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let marker = format!("/tmp/vigil-stream-{}", std::process::id());
    let mut cmd = std::process::Command::new("sh");
    cmd.args([
        "-c",
        &format!("cat /etc/shadow > /dev/null; echo {marker} > /dev/null"),
    ]);
    cg.enter(&mut cmd);
    assert!(cmd.status().unwrap().success());
    // The recent alerts are replayed to a client that connects afterwards (once the agent has
    // read the event: it drains the kernel every 100 ms).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let recent: Vec<Value> = loop {
        let out = wait_output(
            events_cli(&[
                "--api",
                &addr,
                "--alerts",
                "--json",
                "--priority",
                "warning",
            ]),
            std::time::Duration::from_secs(20),
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let recent: Vec<Value> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let found = recent
            .iter()
            .any(|a| a["rule"] == "Read sensitive file" && a["cgroup_id"] == cg.id);
        if found || std::time::Instant::now() > deadline {
            break recent;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    std::thread::sleep(std::time::Duration::from_secs(2));
    let execs = execs.stop();
    let files = files.stop();
    assert!(execs.iter().all(|e| e["kind"] == "exec"));
    let mine: Vec<&Value> = execs.iter().filter(|e| e["cgroup_id"] == cg.id).collect();
    assert!(
        mine.iter().any(|e| e["process"]["args"][2]
            .as_str()
            .is_some_and(|a| a.contains(&marker))),
        "{} execs, of the test's cgroup: {mine:?}",
        execs.len()
    );
    assert!(files.iter().all(|e| e["kind"] == "file"));
    let mine: Vec<&Value> = files.iter().filter(|e| e["cgroup_id"] == cg.id).collect();
    assert!(
        mine.iter().any(|e| e["file"]["path"] == "/etc/shadow"),
        "{} file events, of the test's cgroup: {:?}",
        files.len(),
        mine.iter().map(|e| &e["file"]["path"]).collect::<Vec<_>>()
    );
    assert!(
        recent
            .iter()
            .any(|a| a["rule"] == "Read sensitive file" && a["cgroup_id"] == cg.id),
        "{} recent alerts: {:?}",
        recent.len(),
        recent.iter().map(|a| &a["rule"]).collect::<Vec<_>>()
    );
    assert!(recent.iter().all(|a| a["kind"] == "alert"));
    agent.stop();
}

#[test]
fn a_client_that_does_not_read_gets_a_counted_gap_and_never_slows_the_agent() {
    if !require_root() {
        return;
    }
    let agent = Agent::start_with_config(
        Some("api:\n  stream_buffer: 16\nbudget:\n  events_per_sec: 0\n"),
        &["--api", "127.0.0.1:0"],
    );
    let addr = agent.api_addr();
    let mut slow = TcpStream::connect(&addr).unwrap();
    write!(
        slow,
        "GET /api/v1/events?kind=file HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    // Far more file events than the client's buffer while it does not read.
    let cg = TestCgroup::new();
    let mut cmd = std::process::Command::new("sh");
    cmd.args([
        "-c",
        "i=0; while [ $i -lt 3000 ]; do cat /etc/hostname; i=$((i+1)); done > /dev/null",
    ]);
    cg.enter(&mut cmd);
    assert!(cmd.status().unwrap().success());
    std::thread::sleep(std::time::Duration::from_secs(2));
    // Meanwhile the agent served others.
    assert!(get(&addr, "/healthz").starts_with("HTTP/1.1 200"));
    slow.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 65536];
    while !String::from_utf8_lossy(&seen).contains("event: gap") {
        match slow.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&seen);
    assert!(
        text.contains("event: gap"),
        "{}",
        &text[..text.len().min(2000)]
    );
    let metrics = get(&addr, "/metrics");
    assert!(metric(body(&metrics), "vigil_stream_skipped_total", "").is_some_and(|n| n > 0.0));
    let done = agent.stop();
    // The pipeline went on while the client was stalled: far more of the storm's events were
    // written than the client's buffer (16) holds. A pipeline that waited for the client would
    // have stopped at that.
    let written = in_cgroup(&done.events, "file", cg.id).len();
    assert!(written > 1000, "{written} file events of the storm written");
}
