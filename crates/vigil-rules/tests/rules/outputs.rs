//! Output interpolation, output fields and the serialized alert.

use crate::common::*;

const RULE: &str = r#"
- rule: Shell spawned
  desc: d
  condition: evt.type = execve and proc.name = bash
  output: >
    Shell (user=%user.name uid=%user.uid cmd=%proc.cmdline gparent=%proc.aname[2]
    file=%fd.name container=%container.id proto=%fd.sproto pct=100% tail=%proc.name)
  priority: WARNING
  tags: [shell, mitre_execution]
"#;

#[test]
fn interpolation_and_missing_fields() {
    let rs = load_ok(RULE);
    assert_eq!(
        rs.rules()[0].warnings,
        ["output: field fd.sproto is not supported yet; shown as <NA>"]
    );
    let e = exec("bash", "/usr/bin/bash", &["/bin/bash", "-c", "id"], "/");
    let a = alerts(&rs, &e);
    assert_eq!(a.len(), 1);
    assert_eq!(
        a[0].output,
        "Shell (user=root uid=0 cmd=bash -c id gparent=systemd file=<NA> container=host \
         proto=<NA> pct=100% tail=bash)"
    );
    let json = serde_json::to_value(&a[0]).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "rule": "Shell spawned",
            "priority": "Warning",
            "output": a[0].output,
            "output_fields": {
                "user.name": "root",
                "user.uid": 0,
                "proc.cmdline": "bash -c id",
                "proc.aname[2]": "systemd",
                "fd.name": null,
                "container.id": "host",
                "fd.sproto": null,
                "proc.name": "bash",
            },
            "tags": ["shell", "mitre_execution"],
            "source": "syscall",
        })
    );
}

#[test]
fn non_utf8_bytes_are_shown_lossily() {
    let rs = load_ok(
        &rule("proc.exepath startswith /tmp").replace("output: o", "output: \"%proc.exepath\""),
    );
    let e = exec("t", "/tmp/t\u{e9}st", &["x"], "/");
    let mut ev = e.clone();
    if let vigil_events::Event::Exec(x) = &mut ev {
        x.exe = b"/tmp/t\xe9st".to_vec();
    }
    assert_eq!(alerts(&rs, &ev)[0].output, "/tmp/t\u{fffd}st");
}
