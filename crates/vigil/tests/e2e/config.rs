//! Bad configuration and arguments: a clear error naming the location, and a non-zero exit.

use std::process::Command;

use crate::harness::*;

fn vigil(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn unknown_config_key_names_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.yaml");
    std::fs::write(&p, "ancestry_depth: 4\nancestry_dept: 5\n").unwrap();
    let (ok, err) = vigil(&["run", "--config", p.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        err.contains("bad.yaml") && err.contains("ancestry_dept") && err.contains("line 2"),
        "{err}"
    );
}

#[test]
fn bad_event_kind_and_output_are_rejected() {
    let (ok, err) = vigil(&["run", "--events", "exec,nope"]);
    assert!(!ok && err.contains("nope"), "{err}");
    let (ok, err) = vigil(&["run", "--output", "tcp:1.2.3.4"]);
    assert!(!ok && err.contains("file:PATH"), "{err}");
}

#[test]
fn version_and_probe_report() {
    let (ok, _) = vigil(&["version"]);
    assert!(ok);
    if !require_root() {
        return;
    }
    let r = probe_json();
    assert_eq!(r["sensors"][0]["name"], "process");
    assert_eq!(r["sensors"][0]["status"], "supported");
    let fentry = r["hooks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["name"] == "fentry")
        .unwrap();
    assert_ne!(fentry["status"], "failed");
}
