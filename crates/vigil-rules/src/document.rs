//! YAML text → typed items (lists, macros, rules), in file order, with their lines. Shapes are
//! checked here (a key of the wrong type is an error at the item); meaning (what an append
//! applies to, whether a field exists) is decided later.

use std::collections::BTreeSet;

use serde::Deserialize;
use serde_yaml::{Mapping, Value};

use crate::enforce::{Action, Mode};
use crate::error::{Diagnostic, ErrorKind};
use crate::priority::Priority;
use crate::source;

/// Where an item is: file index and its lines `[start, next item)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub file: usize,
    pub lines: (usize, usize),
}

/// How an item relates to an earlier one of the same name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    Define,
    Append,
}

#[derive(Debug, Clone)]
pub(crate) enum Item {
    List {
        name: String,
        items: Vec<String>,
        change: Change,
        span: Span,
    },
    Macro {
        name: String,
        condition: String,
        change: Change,
        span: Span,
    },
    Rule(Box<RuleItem>),
}

/// A `rule:` item as written.
#[derive(Debug, Clone)]
pub(crate) struct RuleItem {
    pub name: String,
    pub span: Span,
    pub source: Option<String>,
    pub legacy_append: bool,
    /// Keys under `override:` with `append` and with `replace`.
    pub appends: BTreeSet<String>,
    pub replaces: BTreeSet<String>,
    pub desc: Option<String>,
    pub condition: Option<String>,
    pub output: Option<String>,
    pub priority: Option<Priority>,
    pub tags: Option<Vec<String>>,
    pub enabled: Option<bool>,
    pub exceptions: Option<Vec<ExceptionDef>>,
    /// Vigil's `action:`; `Some(None)` is an explicit `none`.
    pub action: Option<Option<Action>>,
    /// Vigil's `mode:`.
    pub mode: Option<Mode>,
}

/// One entry of a rule's `exceptions:`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ExceptionDef {
    pub name: String,
    pub fields: Option<Shape>,
    pub comps: Option<Shape>,
    pub values: Vec<ExValue>,
}

/// `fields:`/`comps:`: one name or a list.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Shape {
    One(String),
    Many(Vec<String>),
}

/// An exception value: a string or a (nested) list.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ExValue {
    Scalar(String),
    List(Vec<ExValue>),
}

const RULE_KEYS: &[&str] = &[
    "rule",
    "desc",
    "condition",
    "output",
    "priority",
    "tags",
    "enabled",
    "exceptions",
    "source",
    "append",
    "override",
    "warn_evttypes",
    "skip-if-unknown-filter",
    "capture",
    "capture_duration",
    "action",
    "mode",
];
const APPENDABLE: &[&str] = &["condition", "output", "desc", "tags", "exceptions"];
const REPLACEABLE: &[&str] = &[
    "condition",
    "output",
    "desc",
    "priority",
    "tags",
    "exceptions",
    "enabled",
    "capture",
    "capture_duration",
    "warn_evttypes",
    "skip-if-unknown-filter",
    "action",
    "mode",
];

/// Reads one file. Hard errors go to `errors` (the item is skipped); ignorable oddities to
/// `warnings`.
pub(crate) fn read(
    file: usize,
    name: &str,
    text: &str,
    errors: &mut Vec<Diagnostic>,
    warnings: &mut Vec<String>,
) -> Vec<Item> {
    let mut values = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(text) {
        match Value::deserialize(doc) {
            Ok(Value::Null) => {}
            Ok(Value::Sequence(items)) => values.extend(items),
            Ok(_) => {
                errors.push(diag(name, 1, 1, None, ErrorKind::NotASequence));
                return Vec::new();
            }
            Err(e) => {
                let (line, col) = e.location().map_or((1, 1), |l| (l.line(), l.column()));
                let msg = e.to_string();
                let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
                errors.push(diag(name, line, col, None, ErrorKind::Yaml(msg)));
                return Vec::new();
            }
        }
    }
    let names: Vec<Option<String>> = values.iter().map(item_name).collect();
    let lines = source::assign_lines(text, &names);
    let src_lines: Vec<&str> = text.lines().collect();
    let total_lines = src_lines.len() + 1;
    let mut out = Vec::new();
    for (i, v) in values.iter().enumerate() {
        let start = lines.get(i).copied().unwrap_or(1);
        let end = lines
            .get(i + 1)
            .copied()
            .unwrap_or(total_lines)
            .max(start + 1);
        let span = Span {
            file,
            lines: (start, end),
        };
        let mut cx = ItemCx {
            file: name,
            line: start,
            col: src_lines
                .get(start.saturating_sub(1))
                .map_or(1, |l| source::key_column(l)),
            item: None,
            errors,
        };
        if let Some(item) = read_item(v, span, &mut cx, warnings) {
            out.push(item);
        }
    }
    out
}

fn diag(
    file: &str,
    line: usize,
    column: usize,
    item: Option<String>,
    kind: ErrorKind,
) -> Diagnostic {
    Diagnostic {
        file: file.to_string(),
        line,
        column,
        item,
        kind,
    }
}

/// The name of an item, to find its line when the scan cannot.
fn item_name(v: &Value) -> Option<String> {
    let m = v.as_mapping()?;
    ["rule", "macro", "list"]
        .iter()
        .find_map(|k| m.get(*k).and_then(scalar))
}

/// Errors at one item.
struct ItemCx<'a> {
    file: &'a str,
    line: usize,
    col: usize,
    item: Option<String>,
    errors: &'a mut Vec<Diagnostic>,
}

impl ItemCx<'_> {
    fn err(&mut self, kind: ErrorKind) {
        self.errors.push(diag(
            self.file,
            self.line,
            self.col,
            self.item.clone(),
            kind,
        ));
    }

    fn wrong(&mut self, key: &str, expected: &'static str) {
        self.err(ErrorKind::WrongType {
            key: key.to_string(),
            expected,
        });
    }

    fn warn(&self, warnings: &mut Vec<String>, msg: String) {
        let item = self
            .item
            .as_deref()
            .map_or(String::new(), |i| format!("{i}: "));
        warnings.push(format!(
            "{}:{}:{}: {item}{msg}",
            self.file, self.line, self.col
        ));
    }

    fn string(&mut self, m: &Mapping, key: &str) -> Result<Option<String>, ()> {
        match m.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => match scalar(v) {
                Some(s) => Ok(Some(s)),
                None => {
                    self.wrong(key, "a string");
                    Err(())
                }
            },
        }
    }

    fn strings(&mut self, m: &Mapping, key: &str) -> Result<Option<Vec<String>>, ()> {
        match m.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Sequence(s)) => match s.iter().map(scalar).collect::<Option<Vec<_>>>() {
                Some(v) => Ok(Some(v)),
                None => {
                    self.wrong(key, "a list of strings");
                    Err(())
                }
            },
            Some(_) => {
                self.wrong(key, "a list of strings");
                Err(())
            }
        }
    }

    fn boolean(&mut self, m: &Mapping, key: &str) -> Result<Option<bool>, ()> {
        match m.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => {
                self.wrong(key, "true or false");
                Err(())
            }
        }
    }
}

/// A YAML scalar as text (numbers and booleans as written by serde_yaml).
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Tagged(t) => scalar(&t.value),
        _ => None,
    }
}

fn read_item(
    v: &Value,
    span: Span,
    cx: &mut ItemCx<'_>,
    warnings: &mut Vec<String>,
) -> Option<Item> {
    let Some(m) = v.as_mapping() else {
        cx.err(ErrorKind::NotAMapping);
        return None;
    };
    for (key, kind) in [("list", "list"), ("macro", "macro"), ("rule", "rule")] {
        if m.contains_key(key) {
            let name = cx.string(m, key).ok()?;
            let Some(name) = name else {
                cx.wrong(key, "a name");
                return None;
            };
            cx.item = Some(format!("{kind} '{name}'"));
            return match key {
                "list" => read_list(m, name, span, cx, warnings),
                "macro" => read_macro(m, name, span, cx, warnings),
                _ => read_rule(m, name, span, cx, warnings).map(|r| Item::Rule(Box::new(r))),
            };
        }
    }
    let what = m
        .keys()
        .next()
        .and_then(scalar)
        .unwrap_or_else(|| "?".to_string());
    if what != "required_engine_version" && what != "required_plugin_versions" {
        cx.warn(
            warnings,
            format!("item '{what}' is not a list, macro or rule; ignored"),
        );
    }
    None
}

fn unknown_keys(m: &Mapping, known: &[&str], cx: &ItemCx<'_>, warnings: &mut Vec<String>) {
    for k in m.keys().filter_map(scalar) {
        if !known.contains(&k.as_str()) {
            cx.warn(warnings, format!("unknown key '{k}' ignored"));
        }
    }
}

/// `append:` and `override:` of a list or macro, whose only overridable key is `key`.
fn change(m: &Mapping, key: &str, cx: &mut ItemCx<'_>) -> Option<Change> {
    let append = cx.boolean(m, "append").ok()?.unwrap_or(false);
    let (appends, replaces) = overrides(m, &[key], &[key], cx)?;
    if append && !(appends.is_empty() && replaces.is_empty()) {
        cx.err(ErrorKind::AppendAndOverride);
        return None;
    }
    Some(if append || appends.contains(key) {
        Change::Append
    } else {
        Change::Define
    })
}

/// Parses `override:` into the keys to append and to replace.
fn overrides(
    m: &Mapping,
    appendable: &[&str],
    replaceable: &[&str],
    cx: &mut ItemCx<'_>,
) -> Option<(BTreeSet<String>, BTreeSet<String>)> {
    let (mut a, mut r) = (BTreeSet::new(), BTreeSet::new());
    let Some(o) = m.get("override") else {
        return Some((a, r));
    };
    let Some(o) = o.as_mapping() else {
        cx.wrong("override", "a mapping of key: append|replace");
        return None;
    };
    for (k, v) in o {
        let (Some(k), Some(how)) = (scalar(k), scalar(v)) else {
            cx.wrong("override", "a mapping of key: append|replace");
            return None;
        };
        let (allowed, set) = match how.as_str() {
            "append" => (appendable, &mut a),
            "replace" => (replaceable, &mut r),
            _ => {
                cx.err(ErrorKind::BadOverride { key: k, how });
                return None;
            }
        };
        if !allowed.contains(&k.as_str()) {
            cx.err(ErrorKind::BadOverride { key: k, how });
            return None;
        }
        if !m.contains_key(k.as_str()) {
            cx.err(ErrorKind::OverrideWithoutKey(k));
            return None;
        }
        set.insert(k);
    }
    Some((a, r))
}

fn read_list(
    m: &Mapping,
    name: String,
    span: Span,
    cx: &mut ItemCx<'_>,
    w: &mut Vec<String>,
) -> Option<Item> {
    unknown_keys(m, &["list", "items", "append", "override"], cx, w);
    let change = change(m, "items", cx)?;
    let items = cx.strings(m, "items").ok()?.unwrap_or_default();
    Some(Item::List {
        name,
        items,
        change,
        span,
    })
}

fn read_macro(
    m: &Mapping,
    name: String,
    span: Span,
    cx: &mut ItemCx<'_>,
    w: &mut Vec<String>,
) -> Option<Item> {
    unknown_keys(m, &["macro", "condition", "append", "override"], cx, w);
    let change = change(m, "condition", cx)?;
    let Some(condition) = cx.string(m, "condition").ok()? else {
        cx.err(ErrorKind::MissingKey("condition"));
        return None;
    };
    Some(Item::Macro {
        name,
        condition,
        change,
        span,
    })
}

fn read_rule(
    m: &Mapping,
    name: String,
    span: Span,
    cx: &mut ItemCx<'_>,
    w: &mut Vec<String>,
) -> Option<RuleItem> {
    unknown_keys(m, RULE_KEYS, cx, w);
    let legacy_append = cx.boolean(m, "append").ok()?.unwrap_or(false);
    let (appends, replaces) = overrides(m, APPENDABLE, REPLACEABLE, cx)?;
    if legacy_append && !(appends.is_empty() && replaces.is_empty()) {
        cx.err(ErrorKind::AppendAndOverride);
        return None;
    }
    let priority = match cx.string(m, "priority").ok()? {
        None => None,
        Some(p) => match Priority::parse(&p) {
            Some(p) => Some(p),
            None => {
                cx.err(ErrorKind::Priority(p));
                return None;
            }
        },
    };
    let exceptions = match m.get("exceptions") {
        None | Some(Value::Null) => None,
        Some(v) => Some(read_exceptions(v, cx)?),
    };
    let action = match cx.string(m, "action").ok()? {
        None => None,
        Some(a) => match Action::parse(&a) {
            Ok(a) => Some(a),
            Err(()) => {
                cx.wrong("action", "deny, kill or none");
                return None;
            }
        },
    };
    let mode = match cx.string(m, "mode").ok()? {
        None => None,
        Some(s) => match Mode::parse(&s) {
            Some(mode) => Some(mode),
            None => {
                cx.wrong("mode", "enforce or audit");
                return None;
            }
        },
    };
    let rule = RuleItem {
        name,
        span,
        source: cx.string(m, "source").ok()?,
        legacy_append,
        desc: cx.string(m, "desc").ok()?,
        condition: cx.string(m, "condition").ok()?,
        output: cx.string(m, "output").ok()?,
        priority,
        tags: cx.strings(m, "tags").ok()?,
        enabled: cx.boolean(m, "enabled").ok()?,
        exceptions,
        action,
        mode,
        appends,
        replaces,
    };
    if !rule.appends.is_empty() || !rule.replaces.is_empty() {
        // Every overridable key present must be covered by `override`.
        for key in APPENDABLE.iter().chain(REPLACEABLE) {
            if m.contains_key(*key) && !rule.appends.contains(*key) && !rule.replaces.contains(*key)
            {
                cx.err(ErrorKind::KeyWithoutOverride((*key).to_string()));
                return None;
            }
        }
    } else if legacy_append {
        if rule.condition.is_none() && rule.exceptions.is_none() {
            cx.err(ErrorKind::EmptyAppend);
            return None;
        }
        for key in [
            "desc", "output", "priority", "tags", "enabled", "action", "mode",
        ] {
            if m.contains_key(key) {
                cx.warn(w, format!("'{key}' is ignored on an 'append: true' rule"));
            }
        }
    }
    Some(rule)
}

fn read_exceptions(v: &Value, cx: &mut ItemCx<'_>) -> Option<Vec<ExceptionDef>> {
    let Some(seq) = v.as_sequence() else {
        cx.wrong("exceptions", "a list");
        return None;
    };
    let mut out = Vec::new();
    for e in seq {
        let Some(m) = e.as_mapping() else {
            cx.wrong("exceptions", "a list of mappings");
            return None;
        };
        let Some(name) = cx.string(m, "name").ok()? else {
            cx.err(ErrorKind::MissingKey("name"));
            return None;
        };
        let shape = |cx: &mut ItemCx<'_>, key: &str| -> Result<Option<Shape>, ()> {
            match m.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Sequence(_)) => Ok(cx.strings(m, key)?.map(Shape::Many)),
                Some(_) => Ok(cx.string(m, key)?.map(Shape::One)),
            }
        };
        let fields = shape(cx, "fields").ok()?;
        let comps = shape(cx, "comps").ok()?;
        let values = match m.get("values") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Sequence(s)) => match s.iter().map(ex_value).collect::<Option<Vec<_>>>() {
                Some(v) => v,
                None => {
                    cx.wrong("values", "a list of strings or lists");
                    return None;
                }
            },
            Some(_) => {
                cx.wrong("values", "a list");
                return None;
            }
        };
        out.push(ExceptionDef {
            name,
            fields,
            comps,
            values,
        });
    }
    Some(out)
}

fn ex_value(v: &Value) -> Option<ExValue> {
    match v {
        Value::Sequence(s) => s
            .iter()
            .map(ex_value)
            .collect::<Option<_>>()
            .map(ExValue::List),
        other => scalar(other).map(ExValue::Scalar),
    }
}
