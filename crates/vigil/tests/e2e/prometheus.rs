//! A real Prometheus server (Debian's `prometheus`) scrapes the agent's /metrics on loopback.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::*;

/// A Prometheus server with its own config and storage, killed on drop.
struct Prometheus {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Scrapes `target` (host:port) every second as job `vigil`.
    fn start(target: &str) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: vigil\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus (Debian package prometheus) must be installed");
        Prometheus {
            child,
            port,
            _dir: dir,
        }
    }

    /// The result vector of an instant query, or None while the server is not answering.
    fn query(&self, promql: &str) -> Option<Vec<Value>> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        // HTTP/1.0: the whole body, never chunked.
        write!(
            s,
            "GET /api/v1/query?query={} HTTP/1.0\r\n\r\n",
            encode(promql)
        )
        .ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).ok()?;
        let (_, body) = out.split_once("\r\n\r\n")?;
        let v: Value = serde_json::from_str(body).ok()?;
        assert_eq!(v["status"], "success", "{promql}: {v}");
        v["data"]["result"].as_array().cloned()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Percent-encodes everything but unreserved characters (RFC 3986).
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Polls `promql` until it returns a series, for at most 60 s.
fn wait_for(prom: &Prometheus, promql: &str) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(r) = prom.query(promql).filter(|r| !r.is_empty()) {
            return r;
        }
        assert!(Instant::now() < deadline, "no result for {promql} in 60 s");
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn prometheus_scrapes_the_agent() {
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
    let prom = Prometheus::start(&addr);
    // Something to count.
    for _ in 0..3 {
        Command::new("/bin/true").status().unwrap();
    }

    let up = wait_for(&prom, r#"up{job="vigil"} == 1"#);
    assert_eq!(up[0]["metric"]["instance"], addr.as_str());
    let events = wait_for(&prom, r#"vigil_events_total{job="vigil"} > 0"#);
    assert!(
        events.iter().any(|s| s["metric"]["kind"] == "exec"),
        "exec events counted: {events:?}"
    );
    // Every scrape succeeded (a page Prometheus cannot parse makes `up` 0).
    let all_up = prom.query(r#"min_over_time(up{job="vigil"}[1m])"#).unwrap();
    assert_eq!(all_up[0]["value"][1], "1", "{all_up:?}");
    drop(prom);
    agent.stop();
}
