//! Lists, macros, append/override, exceptions, enabling and sources.

use vigil_rules::{load, RuleFile};

use crate::common::*;

fn bash() -> vigil_events::Event {
    exec("bash", "/usr/bin/bash", &["/bin/bash", "-c", "id"], "/tmp")
}

fn zsh() -> vigil_events::Event {
    exec("zsh", "/usr/bin/zsh", &["zsh"], "/tmp")
}

const BASE: &str = r#"
- list: shells
  items: [sh, dash]
- list: all_shells
  items: [shells, bash]
- macro: spawned
  condition: evt.type = execve
- macro: shell_spawned
  condition: spawned and proc.name in (all_shells)
- rule: Shell
  desc: a shell started
  condition: shell_spawned
  output: "shell %proc.name"
  priority: NOTICE
  tags: [shell]
"#;

#[test]
fn nested_lists_and_macros() {
    let rs = load_ok(BASE);
    assert_eq!(fired(&rs, &bash()), ["Shell"]);
    assert!(fired(&rs, &zsh()).is_empty());
    let dash = exec("dash", "/usr/bin/dash", &["sh"], "/");
    assert_eq!(fired(&rs, &dash), ["Shell"]);
    // A bare list name after `in`.
    let rs = load_ok(&format!(
        "{BASE}{}",
        rule("proc.name in all_shells").replace("R\n", "R2\n")
    ));
    assert_eq!(fired(&rs, &bash()), ["Shell", "R2"]);
}

#[test]
fn old_style_append() {
    let yaml = format!(
        "{BASE}
- list: shells
  items: [zsh]
  append: true
- macro: spawned
  condition: and proc.pid = 100
  append: true
- rule: Shell
  condition: and proc.cwd = /tmp/
  append: true
"
    );
    let rs = load_ok(&yaml);
    assert_eq!(fired(&rs, &zsh()), ["Shell"]);
    let elsewhere = exec("zsh", "/usr/bin/zsh", &["zsh"], "/root");
    assert!(fired(&rs, &elsewhere).is_empty());
    assert!(rs.warnings().is_empty(), "{:?}", rs.warnings());
}

#[test]
fn new_style_override() {
    let yaml = format!(
        "{BASE}
- list: shells
  items: [zsh]
  override:
    items: append
- list: all_shells
  items: [shells]
  override:
    items: replace
- macro: spawned
  condition: evt.type in (execve, execveat)
  override:
    condition: replace
- rule: Shell
  condition: and proc.cwd = /tmp/
  output: \"cwd=%proc.cwd\"
  tags: [extra]
  override:
    condition: append
    output: append
    tags: append
- rule: Shell
  priority: critical
  enabled: false
  override:
    priority: replace
    enabled: replace
- rule: Shell
  enabled: true
  desc: replaced
  override:
    enabled: replace
    desc: replace
"
    );
    let rs = load_ok(&yaml);
    let info = &rs.rules()[0];
    assert_eq!(info.priority, vigil_rules::Priority::Critical);
    assert_eq!(info.tags, ["shell", "extra"]);
    assert_eq!(info.desc, "replaced");
    assert!(info.enabled);
    let a = alerts(&rs, &zsh());
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].output, "shell zsh cwd=/tmp/");
    // bash was dropped from all_shells by the replace.
    assert!(fired(&rs, &bash()).is_empty());
}

#[test]
fn override_and_append_errors() {
    let e = try_load("- list: x\n  items: [a]\n  append: true\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        "rules.yaml:1:3: list 'x': cannot append to list 'x': no list of that name is defined before this item"
    );
    let e =
        try_load("- macro: m\n  condition: a\n  override:\n    condition: append\n").unwrap_err();
    assert!(e.to_string().contains("cannot append to macro 'm'"), "{e}");
    let e = try_load(&format!(
        "{BASE}- rule: Nope\n  condition: x\n  append: true\n"
    ))
    .unwrap_err();
    assert!(
        e.to_string().contains("cannot append to rule 'Nope'"),
        "{e}"
    );
    let e = try_load(&format!(
        "{BASE}- rule: Shell\n  condition: x\n  output: y\n  override:\n    condition: append\n"
    ))
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("key 'output' is given without an entry"),
        "{e}"
    );
    let e = try_load(&format!(
        "{BASE}- rule: Shell\n  priority: debug\n  override:\n    priority: append\n"
    ))
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("'override' cannot append 'priority'"),
        "{e}"
    );
    let e = try_load(&format!(
        "{BASE}- rule: Shell\n  condition: x\n  append: true\n  override:\n    condition: append\n"
    ))
    .unwrap_err();
    assert!(e.to_string().contains("cannot be used together"), "{e}");
}

#[test]
fn redefinition_replaces_in_place() {
    let yaml = format!(
        "{BASE}{}- rule: Shell\n  desc: d\n  condition: proc.name = zsh\n  output: o\n  priority: INFO\n",
        rule("proc.name = nothing")
    );
    let rs = load_ok(&yaml);
    let names: Vec<_> = rs.rules().iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["Shell", "R"]);
    assert_eq!(fired(&rs, &zsh()), ["Shell"]);
}

#[test]
fn later_files_extend_earlier_ones() {
    let files = [
        RuleFile {
            name: "a.yaml".into(),
            text: BASE.into(),
        },
        RuleFile {
            name: "b.yaml".into(),
            text: "- list: shells\n  items: [zsh]\n  append: true\n".into(),
        },
    ];
    let rs = load(&files, &all_types()).unwrap();
    assert_eq!(fired(&rs, &zsh()), ["Shell"]);
    assert_eq!(rs.rules()[0].file, "a.yaml");
    assert_eq!(rs.rules()[0].line, 10);
}

const EXC: &str = r#"
- list: trusted
  items: [/usr/bin/bash]
- rule: Exec
  desc: d
  condition: evt.type = execve
  output: o
  priority: ERROR
  exceptions:
    - name: by_name
      fields: proc.name
      values: [zsh, fish]
    - name: by_tuple
      fields: [proc.name, proc.cwd]
      values:
        - [sh, /tmp/]
    - name: by_in
      fields: [proc.exepath, proc.pname]
      comps: [in, =]
      values:
        - [trusted, sshd]
        - [[/usr/bin/dash, /usr/bin/ksh], cron]
    - name: empty
      fields: [proc.name]
"#;

#[test]
fn exceptions() {
    let rs = load_ok(EXC);
    assert!(fired(&rs, &zsh()).is_empty(), "single field");
    let sh_tmp = exec("sh", "/usr/bin/sh", &["sh"], "/tmp");
    let sh_root = exec("sh", "/usr/bin/sh", &["sh"], "/root");
    assert!(fired(&rs, &sh_tmp).is_empty(), "tuple");
    assert_eq!(fired(&rs, &sh_root), ["Exec"]);
    // Parent is sshd (from the standard ancestry): the list name expands under `in`.
    assert!(fired(&rs, &bash()).is_empty(), "in with a list name");
    let dash = exec("dash", "/usr/bin/dash", &["dash"], "/");
    assert_eq!(fired(&rs, &dash), ["Exec"], "parent is not cron");
}

#[test]
fn exceptions_append_values() {
    let yaml = format!(
        "{EXC}
- rule: Exec
  exceptions:
    - name: by_tuple
      values:
        - [sh, /root/]
    - name: new_one
      fields: proc.exepath
      comps: pmatch
      values: [/usr/local]
  append: true
"
    );
    let rs = load_ok(&yaml);
    let sh_root = exec("sh", "/usr/bin/sh", &["sh"], "/root");
    assert!(fired(&rs, &sh_root).is_empty());
    let local = exec("x", "/usr/local/bin/x", &["x"], "/");
    assert!(fired(&rs, &local).is_empty());
}

#[test]
fn malformed_exceptions_fail_the_load() {
    let bad = |ex: &str| {
        let yaml = format!(
            "- rule: R\n  desc: d\n  condition: evt.type = execve\n  output: o\n  priority: ERROR\n  exceptions:\n{ex}"
        );
        try_load(&yaml).unwrap_err().to_string()
    };
    let e = bad("    - name: x\n      fields: [proc.name, proc.cwd]\n      values: [[a]]\n");
    assert!(
        e.contains("exception 'x': value 0 has 1 entries but 'fields' has 2"),
        "{e}"
    );
    let e =
        bad("    - name: x\n      fields: [proc.name]\n      comps: [=, in]\n      values: []\n");
    assert!(
        e.contains("'fields' has 1 entries but 'comps' has 2"),
        "{e}"
    );
    let e =
        bad("    - name: x\n      fields: proc.name\n      comps: startswith\n      values: [a]\n");
    assert!(e.contains("with a single field"), "{e}");
    let e =
        bad("    - name: x\n      fields: [proc.name]\n      comps: [like]\n      values: [[a]]\n");
    assert!(e.contains("'like' is not a comparison operator"), "{e}");
}

#[test]
fn enabled_and_sources() {
    let yaml = r#"
- rule: Off
  desc: d
  condition: evt.type = execve
  output: o
  priority: INFO
  enabled: false
- rule: K8s
  desc: d
  condition: ka.verb = create and ka.target.resource = pods
  output: o
  priority: INFO
  source: k8s_audit
- rule: Cloud
  desc: d
  condition: ct.name = x
  output: o
  priority: INFO
  source: aws_cloudtrail
- rule: Reenabled
  desc: d
  condition: evt.type = execve
  output: o
  priority: INFO
  enabled: false
- rule: Reenabled
  enabled: true
"#;
    let rs = load_ok(yaml);
    let reasons: Vec<_> = rs
        .rules()
        .iter()
        .map(|r| (r.name.as_str(), r.enabled, r.disabled_reason.as_deref()))
        .collect();
    assert_eq!(
        reasons,
        [
            (
                "Off",
                false,
                Some("disabled in the rules file (enabled: false)")
            ),
            ("K8s", false, Some("source k8s_audit is not supported")),
            (
                "Cloud",
                false,
                Some("source aws_cloudtrail is not supported")
            ),
            ("Reenabled", true, None),
        ]
    );
    assert_eq!(rs.enabled_count(), 1);
    assert_eq!(fired(&rs, &bash()), ["Reenabled"]);
}

#[test]
fn unsupported_fields_disable_the_rule() {
    let yaml = format!(
        "{}{}{}",
        rule("evt.type = execve and thread.cap_effective contains CAP_SYS_ADMIN"),
        rule("proc.nmae = bash").replace("R\n", "R2\n"),
        rule("evt.type = execve and container.id != host").replace("R\n", "R3\n"),
    );
    let rs = load_ok(&yaml);
    let r = rs.rules();
    assert_eq!(
        r[0].disabled_reason.as_deref(),
        Some("field thread.cap_effective is not supported yet")
    );
    assert_eq!(
        r[1].disabled_reason.as_deref(),
        Some("field proc.nmae is not supported yet")
    );
    assert!(r[2].enabled, "container.* is known, always missing");
    let yaml = rule("foo.bar = 1");
    assert_eq!(
        load_ok(&yaml).rules()[0].disabled_reason.as_deref(),
        Some("unknown field foo.bar")
    );
}

#[test]
fn observability_by_event_type() {
    let opts = vigil_rules::LoadOptions {
        observable: ["execve", "clone", "procexit", "openat"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
    };
    let yaml = format!(
        "{}{}{}",
        rule("evt.type = connect and fd.rport = 22"),
        rule("evt.type in (execve, ptrace, accept)").replace("R\n", "R2\n"),
        rule("evt.type in (ptrace, setuid)").replace("R\n", "R3\n"),
    );
    let files = [RuleFile {
        name: "r.yaml".into(),
        text: yaml,
    }];
    let rs = load(&files, &opts).unwrap();
    let r = rs.rules();
    assert_eq!(
        r[0].disabled_reason.as_deref(),
        Some("evt.type connect is not observed by this node's sensors")
    );
    assert!(r[1].enabled);
    assert_eq!(
        r[1].warnings,
        ["evt.types accept, ptrace are not observed by this node's sensors; the rule runs on execve only"]
    );
    assert!(rs.warnings()[0].starts_with("r.yaml:6: rule 'R2': evt.types accept, ptrace"));
    assert_eq!(
        r[2].disabled_reason.as_deref(),
        Some("evt.types ptrace, setuid are not observed by this node's sensors")
    );
    assert_eq!(rs.event_types(), ["execve"]);
}

#[test]
fn index_runs_rules_only_on_their_types() {
    let yaml = format!(
        "{}{}{}{}",
        rule("evt.type = execve and proc.pid = 100"),
        rule("evt.type in (openat, unlinkat) and proc.pid = 100").replace("R\n", "File\n"),
        rule("proc.pid = 100").replace("R\n", "Any\n"),
        rule("not evt.type = execve and proc.pid = 100").replace("R\n", "NotExec\n"),
    );
    let rs = load_ok(&yaml);
    assert_eq!(fired(&rs, &bash()), ["R", "Any"]);
    assert_eq!(fired(&rs, &open("/etc/x", 1)), ["File", "Any", "NotExec"]);
    assert_eq!(fired(&rs, &fork("bash")), ["Any", "NotExec"]);
    let ptrace = syscall(
        vigil_abi::VIGIL_SYS_PTRACE,
        [16, 7, 0, 0, 0, 0],
        ["", "", ""],
        0,
    );
    assert_eq!(fired(&rs, &ptrace), ["Any", "NotExec"]);
    // An unnamed syscall number still reaches type-agnostic rules.
    let odd = syscall(33, [0; 6], ["", "", ""], 0);
    assert_eq!(fired(&rs, &odd), ["Any", "NotExec"]);
    assert!(vigil_rules::all_event_types().contains(&"io_uring_submit"));
}

#[test]
fn priorities() {
    for (text, p) in [
        ("EMERGENCY", "Emergency"),
        ("alert", "Alert"),
        ("Critical", "Critical"),
        ("ERROR", "Error"),
        ("warning", "Warning"),
        ("NOTICE", "Notice"),
        ("INFO", "Informational"),
        ("informational", "Informational"),
        ("debug", "Debug"),
    ] {
        let yaml = rule("proc.pid = 1").replace("WARNING", text);
        let rs = load_ok(&yaml);
        assert_eq!(rs.rules()[0].priority.as_str(), p);
    }
    let e = try_load(&rule("proc.pid = 1").replace("WARNING", "loud")).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("rules.yaml:1:3: rule 'R': invalid priority 'loud'"),
        "{e}"
    );
}

#[test]
fn rule_sets_can_be_shared_across_threads() {
    fn shared<T: Send + Sync>() {}
    shared::<vigil_rules::RuleSet>();
    shared::<vigil_rules::Alert>();
}

#[test]
fn quoted_list_items_are_values() {
    // Falco pastes list items into the condition: `'"a b"'` is the value `a b`, and a quoted
    // item is never a list name.
    let yaml = format!(
        "- list: shells\n  items: [zsh]\n- list: names\n  items: ['\"bash\"', '\"shells\"', \"'x y'\"]\n{}",
        rule("proc.name in (names)")
    );
    let rs = load_ok(&yaml);
    assert_eq!(fired(&rs, &bash()), ["R"]);
    assert!(fired(&rs, &zsh()).is_empty());
    let shells = exec("shells", "/usr/bin/shells", &["shells"], "/");
    assert_eq!(fired(&rs, &shells), ["R"]);
    let spaced = exec("x y", "/usr/bin/xy", &["x y"], "/");
    assert_eq!(fired(&rs, &spaced), ["R"]);
}
