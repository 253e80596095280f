//! Load errors name file:line:column and what is wrong; any error fails the whole load.

use vigil_rules::{load, ErrorKind, RuleFile, SyntaxError};

use crate::common::*;

#[test]
fn yaml_syntax_error_has_its_location() {
    let e = try_load("- rule: R\n  desc: [unclosed\n  condition: x\n").unwrap_err();
    assert_eq!(e.errors.len(), 1);
    let d = &e.errors[0];
    assert!(matches!(d.kind, ErrorKind::Yaml(_)));
    assert_eq!((d.file.as_str(), d.line), ("rules.yaml", 3));
    assert!(e.to_string().starts_with("rules.yaml:3:"), "{e}");
    let e = try_load("rule: R\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        "rules.yaml:1:1: a rules file must be a YAML sequence of items"
    );
}

#[test]
fn condition_syntax_error_points_into_the_file() {
    let yaml = "\
- list: l
  items: [a]

- rule: Bad list
  desc: d
  condition: >
    evt.type = execve and
    proc.name in (a, b
  output: o
  priority: INFO
";
    let e = try_load(yaml).unwrap_err();
    assert_eq!(
        e.to_string(),
        "rules.yaml:8:23: rule 'Bad list': condition: expected ')' after list (condition column 42)"
    );
    let d = &e.errors[0];
    assert_eq!(
        d.kind,
        ErrorKind::Syntax {
            kind: SyntaxError::ExpectedListClose,
            column: 42
        }
    );
    let e = try_load(&rule("proc.name = bash and (proc.pid = 1")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "rules.yaml:3:49: rule 'R': condition: expected ')' (condition column 35)"
    );
    let e = try_load(&rule("proc.name bash")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "rules.yaml:3:25: rule 'R': condition: expected an operator after field proc.name (condition column 11)"
    );
}

#[test]
fn errors_in_macros_and_appends_point_at_their_item() {
    let yaml = "\
- macro: m
  condition: proc.name in (a
- rule: R
  desc: d
  condition: m
  output: o
  priority: INFO
";
    let e = try_load(yaml).unwrap_err();
    assert_eq!(
        e.to_string(),
        "rules.yaml:2:29: macro 'm': condition: expected ')' after list (condition column 16)"
    );
    let yaml = format!(
        "{}- rule: R\n  condition: and (x\n  append: true\n",
        rule("proc.pid = 1")
    );
    let e = try_load(&yaml).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("rules.yaml:7:20: rule 'R': condition: expected ')'"),
        "{e}"
    );
}

#[test]
fn semantic_errors() {
    let e = try_load(&rule("proc.name = x and undefined_macro")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "rules.yaml:3:33: rule 'R': condition: macro 'undefined_macro' is not defined (condition column 19)"
    );
    let e = try_load(&rule("proc.name in no_such_list")).unwrap_err();
    assert!(
        e.to_string().contains("list 'no_such_list' is not defined"),
        "{e}"
    );
    let e = try_load(&rule("proc.name regex '(('")).unwrap_err();
    assert!(e.to_string().contains("invalid regex '(('"), "{e}");
    let e = try_load(
        "- macro: a\n  condition: b\n- macro: b\n  condition: a\n"
            .to_string()
            .as_str(),
    )
    .map(|_| ());
    assert!(e.is_ok(), "unused cycles are not an error");
    let yaml = format!(
        "- macro: a\n  condition: b\n- macro: b\n  condition: a\n{}",
        rule("a")
    );
    let e = try_load(&yaml).unwrap_err();
    assert!(
        e.to_string()
            .contains("macro 'a' uses itself (through a -> b)"),
        "{e}"
    );
    let yaml = format!(
        "- list: a\n  items: [b]\n- list: b\n  items: [a]\n{}",
        rule("proc.name in (a)")
    );
    let e = try_load(&yaml).unwrap_err();
    assert!(e.to_string().contains("contains itself"), "{e}");
    let e = try_load("- rule: R\n  desc: d\n  condition: proc.pid = 1\n  priority: INFO\n")
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "rules.yaml:1:3: rule 'R': missing required key 'output'"
    );
    let e = try_load("- rule: R\n  condition: [a]\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        "rules.yaml:1:3: rule 'R': 'condition' must be a string"
    );
}

#[test]
fn one_bad_file_fails_the_whole_load_and_all_errors_are_listed() {
    let good = RuleFile {
        name: "good.yaml".into(),
        text: rule("proc.pid = 1"),
    };
    let bad = RuleFile {
        name: "bad.yaml".into(),
        text: format!(
            "{}{}",
            rule("proc.pid = ("),
            rule("proc.pid >").replace("R\n", "S\n")
        ),
    };
    let e = load(&[good, bad], &all_types()).unwrap_err();
    assert_eq!(e.errors.len(), 2, "{e}");
    let text = e.to_string();
    assert_eq!(text.lines().count(), 2);
    assert!(text.lines().all(|l| l.starts_with("bad.yaml:")), "{text}");
}

#[test]
fn unknown_items_and_keys_are_warnings() {
    let yaml = format!(
        "- required_engine_version: 0.26.0\n- required_plugin_versions:\n    - name: x\n      version: 1.0.0\n- something_new: 1\n{}",
        rule("proc.pid = 1").replace("  priority:", "  future_key: 1\n  priority:")
    );
    let rs = load_ok(&yaml);
    assert_eq!(
        rs.warnings(),
        [
            "rules.yaml:5:3: item 'something_new' is not a list, macro or rule; ignored",
            "rules.yaml:6:3: rule 'R': unknown key 'future_key' ignored",
        ]
    );
}
