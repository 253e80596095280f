//! The web UI in headless Chromium: the map shows two workloads in two network namespaces and
//! the edge between them, an alert and an event arrive over server-sent events, and the
//! coverage report renders. Screenshots go to target/ui-map.png and target/ui-alerts.png.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::*;
use crate::netlab::*;
use crate::webdriver::Browser;

const NET_CONFIG: &str =
    "network:\n  enabled: true\n  capture_bytes: 512\n  http: true\n  flow_interval_secs: 1\n";
const WAIT: Duration = Duration::from_secs(30);

/// The map as the page drew it: the data attributes of the SVG nodes and edges.
const MAP_DOM: &str = r##"
    const q = (s) => [...document.querySelectorAll(s)];
    return {
      nodes: q("#map g.node").map((g) => ({ ...g.dataset })),
      edges: q("#map g.edge").map((g) => ({ ...g.dataset })),
    };"##;

/// The rows matching `arguments[0]`: their data attributes and text.
const ROWS: &str =
    "return [...document.querySelectorAll(arguments[0])].map((r) => ({ ...r.dataset, text: r.textContent }));";

/// A detail panel (`arguments[0]`): its title and its field list.
const DETAIL: &str = r#"
    const panel = document.querySelector(arguments[0]);
    const fields = {};
    for (const dt of panel.querySelectorAll("dt")) fields[dt.textContent] = dt.nextElementSibling.textContent;
    return { title: panel.querySelector("h2")?.textContent ?? "", fields, text: panel.textContent };"#;

fn text_of(b: &Browser, css: &str) -> String {
    let v = b.script(
        "return document.querySelector(arguments[0])?.textContent ?? '';",
        json!([css]),
    );
    v.as_str().unwrap_or_default().to_string()
}

/// A number the page wrote into a data attribute.
fn num(v: &Value) -> Option<u64> {
    v.as_str()?.parse().ok()
}

fn rows(b: &Browser, css: &str) -> Vec<Value> {
    b.script(ROWS, json!([css]))
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Where screenshots go: the workspace's target directory.
fn target_file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target/tmp has a parent")
        .join(name)
}

fn wget(lab: &NetLab, cg: &TestCgroup, url: &str) -> (bool, String) {
    let mut p = lab
        .cli
        .spawn("busybox", &["wget", "-q", "-O", "-", url], Some(cg));
    p.output(Duration::from_secs(30))
}

#[test]
fn ui_shows_the_map_alerts_events_and_coverage() {
    if !require_root() {
        return;
    }
    let Some(browser) = Browser::start() else {
        return;
    };
    let lab = NetLab::new();
    let cg_cli = TestCgroup::new();
    let cg_srv = TestCgroup::new();
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("index.html"), "hello\n").unwrap();
    let agent = Agent::start_with_config(Some(NET_CONFIG), &["--api", "127.0.0.1:0"]);
    let log = agent.stderr();
    let api = log
        .lines()
        .find_map(|l| l.split("api listening on http://").nth(1))
        .unwrap_or_else(|| panic!("no api address in {log}"))
        .trim()
        .to_string();

    // Three requests from the client namespace to a server in the other, and one connect to a
    // port nothing listens on (an external node with a failed edge).
    let port = 8080;
    let _httpd = start_httpd(&lab, port, root.path(), Some(&cg_srv));
    for _ in 0..3 {
        let url = format!("http://{}/index.html", lab.srv.addr4(port));
        let (ok, out) = wget(&lab, &cg_cli, &url);
        assert!(ok, "{out}");
    }
    let closed = port + 1;
    let (ok, _) = wget(&lab, &cg_cli, &format!("http://{}/", lab.srv.addr4(closed)));
    assert!(!ok, "nothing listens on {closed}");
    // A default rule's alert ("Read sensitive file"), raised in the client's cgroup.
    let mut cat = Command::new("cat");
    cat.arg("/etc/shadow").stdout(Stdio::null());
    cg_cli.enter(&mut cat);
    assert!(cat.status().unwrap().success());

    // The map: both workloads, the edge between them, and the failed edge to the closed port.
    browser.goto(&format!("http://{api}/#map"));
    let external = format!("ip:{}", lab.srv.ip4);
    let (cli, srv, map) = browser.wait(WAIT, "both workloads and their edges on the map", |b| {
        let map = b.script(MAP_DOM, json!([]));
        let node = |cg: &TestCgroup| {
            map["nodes"]
                .as_array()?
                .iter()
                .find(|n| num(&n["cgroup"]) == Some(cg.id))
                .cloned()
        };
        let (cli, srv) = (node(&cg_cli)?, node(&cg_srv)?);
        let edges = map["edges"].as_array()?;
        let has = |target: &Value, port: u16| {
            edges.iter().any(|e| {
                e["source"] == cli["id"]
                    && e["target"] == *target
                    && num(&e["port"]) == Some(port.into())
            })
        };
        (has(&srv["id"], port) && has(&json!(external), closed)).then(|| (cli, srv, map.clone()))
    });
    for n in [&cli, &srv] {
        assert_eq!(n["kind"], "process", "{map:#}");
        assert_eq!(n["label"], "busybox", "{map:#}");
    }
    assert_ne!(cli["id"], srv["id"], "two workloads: {map:#}");
    let edge = |target: &str, port: u16| {
        map["edges"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| {
                e["source"] == cli["id"]
                    && e["target"] == target
                    && num(&e["port"]) == Some(port.into())
            })
            .unwrap()
            .clone()
    };
    assert_eq!(
        edge(srv["id"].as_str().unwrap(), port)["health"],
        "ok",
        "{map:#}"
    );
    assert_eq!(
        edge(&external, closed)["health"],
        "bad",
        "failed connects are red: {map:#}"
    );
    let ext = map["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == *external);
    assert_eq!(ext.unwrap()["kind"], "external", "{map:#}");

    // Details: the client node, then its edge to the server through the panel's link.
    browser.click(&format!(r#"#map g.node[data-cgroup="{}"]"#, cg_cli.id));
    let panel = browser.script(DETAIL, json!(["#map-detail"]));
    assert_eq!(panel["fields"]["id"], cli["id"], "{panel:#}");
    assert!(
        panel["text"].as_str().unwrap().contains("Connects to"),
        "{panel:#}"
    );
    browser.click(&format!(
        r#"#map-detail a[data-target="{}"][data-port="{port}"]"#,
        srv["id"].as_str().unwrap()
    ));
    let panel = browser.wait(WAIT, "the edge's three connections in its details", |b| {
        let p = b.script(DETAIL, json!(["#map-detail"]));
        (p["fields"]["connections"] == "3").then_some(p)
    });
    assert_eq!(panel["title"], "busybox → busybox", "{panel:#}");
    assert_eq!(panel["fields"]["port"], format!("tcp/{port}"), "{panel:#}");
    assert_eq!(panel["fields"]["failed connects"], "0", "{panel:#}");
    let selected = browser.script(
        "return document.querySelectorAll('#map g.edge.selected').length;",
        json!([]),
    );
    assert_eq!(selected, 1, "the edge is highlighted");
    let shot = target_file("ui-map.png");
    browser.screenshot(&shot);

    // Alerts: counted on the tab while another view is shown, then listed with their fields.
    browser.wait(WAIT, "the alert count on the tab", |b| {
        (!text_of(b, "#alert-count").is_empty()).then_some(())
    });
    browser.click(r#"nav a[data-view="alerts"]"#);
    let alert_row = format!(
        r#"#alerts-table tbody tr[data-rule="Read sensitive file"][data-cgroup="{}"]"#,
        cg_cli.id
    );
    let row = browser.wait(WAIT, "the alert in the alerts view", |b| {
        rows(b, &alert_row).into_iter().next()
    });
    assert_eq!(row["priority"], "Warning", "{row:#}");
    assert!(
        row["text"].as_str().unwrap().contains("/etc/shadow"),
        "{row:#}"
    );
    browser.click(&alert_row);
    let panel = browser.script(DETAIL, json!(["#alerts-detail"]));
    assert_eq!(panel["title"], "Read sensitive file", "{panel:#}");
    assert_eq!(panel["fields"]["fd.name"], "/etc/shadow", "{panel:#}");
    assert_eq!(
        text_of(&browser, "#alert-count"),
        "",
        "seen once the view is shown"
    );
    browser.screenshot(&target_file("ui-alerts.png"));

    // Events: only `exec` once that filter is applied; a program run now shows up.
    browser.click(r#"nav a[data-view="events"]"#);
    browser.click(r#"#events-kinds input[value="exec"]"#);
    browser.click(r#"#events-form button[type="submit"]"#);
    browser.wait(WAIT, "the filtered event stream", |b| {
        text_of(b, "#events-status")
            .starts_with("live")
            .then_some(())
    });
    let dir = tempfile::tempdir().unwrap();
    let prog = test_program(dir.path(), "vigil-ui-probe".as_ref());
    let exec_row = format!(
        r#"#events-table tbody tr[data-kind="exec"][data-cgroup="{}"]"#,
        cg_cli.id
    );
    let row = browser.wait(WAIT, "the program's exec in the events view", |b| {
        // Run again on every poll: an exec before the subscription took effect is not replayed.
        let mut cmd = Command::new(&prog);
        cg_cli.enter(&mut cmd);
        assert!(cmd.status().unwrap().success());
        rows(b, &exec_row).into_iter().find(|r| {
            r["text"]
                .as_str()
                .unwrap_or_default()
                .contains("vigil-ui-probe")
        })
    });
    assert!(row["text"].as_str().unwrap().contains("exec"), "{row:#}");
    let kinds: Vec<Value> = rows(&browser, "#events-table tbody tr[data-kind]")
        .into_iter()
        .map(|r| r["kind"].clone())
        .collect();
    assert!(kinds.iter().all(|k| k == "exec"), "{kinds:?}");

    // Coverage: the sensors `vigil probe` reports, each with its status.
    browser.click(r#"nav a[data-view="coverage"]"#);
    let shown = browser.wait(WAIT, "the coverage report", |b| {
        let r = rows(b, r#"#coverage table[data-section="sensors"] tbody tr"#);
        (!r.is_empty()).then_some(r)
    });
    let probe = probe_json();
    let want: Vec<&Value> = probe["sensors"].as_array().unwrap().iter().collect();
    assert_eq!(shown.len(), want.len(), "{shown:#?}");
    for (row, check) in shown.iter().zip(want) {
        assert_eq!(row["status"], check["status"], "{row:#}");
        let text = row["text"].as_str().unwrap();
        assert!(text.contains(check["name"].as_str().unwrap()), "{row:#}");
    }

    drop(browser);
    agent.stop();
    assert!(
        std::fs::metadata(&shot).unwrap().len() > 10_000,
        "a real screenshot"
    );
}

#[test]
fn ui_passes_its_token_to_the_api_and_streams() {
    if !require_root() {
        return;
    }
    let Some(browser) = Browser::start() else {
        return;
    };
    let token = "ui-e2e-token-0123456789";
    let config = format!("{NET_CONFIG}api:\n  tokens:\n    - name: ui\n      token: {token}\n");
    let agent = Agent::start_with_config(Some(&config), &["--api", "127.0.0.1:0"]);
    let log = agent.stderr();
    let api = log
        .lines()
        .find_map(|l| l.split("api listening on http://").nth(1))
        .unwrap_or_else(|| panic!("no api address in {log}"))
        .trim()
        .to_string();
    let cg = TestCgroup::new();
    let mut cat = Command::new("cat");
    cat.arg("/etc/shadow").stdout(Stdio::null());
    cg.enter(&mut cat);
    assert!(cat.status().unwrap().success());

    // Without the token: the page loads, and says why it shows nothing.
    browser.goto(&format!("http://{api}/#map"));
    let status = browser.wait(WAIT, "the map's refusal", |b| {
        Some(text_of(b, "#map-status")).filter(|s| !s.is_empty())
    });
    assert!(
        status.starts_with("401") && status.contains("?token="),
        "{status}"
    );
    let status = browser.wait(WAIT, "the alert stream's refusal", |b| {
        Some(text_of(b, "#alerts-status")).filter(|s| s.starts_with("closed"))
    });
    assert!(status.contains("token"), "{status}");

    // With it: the map (a bearer header) and the alert stream (`access_token`) both answer.
    browser.goto(&format!("http://{api}/?token={token}#alerts"));
    let alert_row = format!(
        r#"#alerts-table tbody tr[data-rule="Read sensitive file"][data-cgroup="{}"]"#,
        cg.id
    );
    browser.wait(WAIT, "the replayed alert", |b| {
        rows(b, &alert_row).into_iter().next()
    });
    browser.click(r#"nav a[data-view="map"]"#);
    let status = browser.wait(WAIT, "the map with the token", |b| {
        Some(text_of(b, "#map-status")).filter(|s| s.contains("nodes"))
    });
    assert!(!status.contains("401"), "{status}");
    drop(browser);
    agent.stop();
}
