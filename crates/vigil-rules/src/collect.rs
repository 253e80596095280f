//! Applies items in load order: definitions, redefinitions (which replace in place, as Falco's
//! indexed vectors do), `append: true` and `override:`. The result is the final text of every
//! list, macro and rule; nothing is parsed or compiled here.

use std::collections::HashMap;

use crate::document::{Change, ExceptionDef, Item, RuleItem, Span};
use crate::enforce::{Action, Mode};
use crate::error::{Diagnostic, ErrorKind, ExceptionProblem};
use crate::priority::Priority;
use crate::source;
use crate::RuleFile;

/// Text assembled from one or more items (a condition and its appends), remembering which item
/// each part came from so that a position in it can be traced back to a file.
#[derive(Debug, Clone)]
pub(crate) struct Text {
    pub value: String,
    /// (start offset in `value`, item it came from); sorted by offset.
    pub segments: Vec<(usize, Span)>,
}

impl Text {
    fn new(value: String, span: Span) -> Text {
        Text {
            value,
            segments: vec![(0, span)],
        }
    }

    /// Falco joins appended conditions with one space.
    fn append(&mut self, more: &str, span: Span) {
        if more.is_empty() {
            return;
        }
        self.value.push(' ');
        self.segments.push((self.value.len(), span));
        self.value.push_str(more);
    }

    /// The item a byte offset came from, and the offset within that item's own text.
    pub fn origin(&self, offset: usize) -> (Span, &str, usize) {
        let i = self
            .segments
            .iter()
            .rposition(|(start, _)| *start <= offset)
            .unwrap_or(0);
        let (start, span) = self.segments[i];
        let end = self
            .segments
            .get(i + 1)
            .map_or(self.value.len(), |(s, _)| s.saturating_sub(1));
        let part = self.value.get(start..end.max(start)).unwrap_or("");
        (span, part, offset - start)
    }
}

#[derive(Debug, Clone)]
pub(crate) struct ListDef {
    pub items: Vec<String>,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub(crate) struct MacroDef {
    pub cond: Text,
}

#[derive(Debug, Clone)]
pub(crate) struct RuleDef {
    pub name: String,
    pub span: Span,
    pub desc: String,
    pub cond: Text,
    pub output: String,
    pub priority: Priority,
    pub tags: Vec<String>,
    pub enabled: bool,
    pub source: Option<String>,
    pub exceptions: Vec<ExceptionDef>,
    /// Vigil's `action:` (`None`: detection only) and `mode:`.
    pub action: Option<Action>,
    pub mode: Mode,
    /// The item that set `action` last (the rule's own, or an override).
    pub action_span: Span,
}

/// Everything defined once all items are applied.
#[derive(Debug, Default)]
pub(crate) struct Definitions {
    pub lists: HashMap<String, ListDef>,
    pub macros: HashMap<String, MacroDef>,
    /// Macro names in definition order, so that errors are reported in file order.
    pub macro_order: Vec<String>,
    pub rules: Vec<RuleDef>,
}

/// A diagnostic at an item.
pub(crate) fn at(files: &[RuleFile], span: Span, item: String, kind: ErrorKind) -> Diagnostic {
    let file = &files[span.file];
    Diagnostic {
        file: file.name.clone(),
        line: span.lines.0,
        column: source::item_column(&file.text, span.lines.0),
        item: Some(item),
        kind,
    }
}

pub(crate) fn collect(
    files: &[RuleFile],
    items: Vec<Item>,
    errors: &mut Vec<Diagnostic>,
) -> Definitions {
    let mut d = Definitions::default();
    for item in items {
        match item {
            Item::List {
                name,
                items,
                change,
                span,
            } => match (change, d.lists.get_mut(&name)) {
                (Change::Append, Some(l)) => l.items.extend(items),
                (Change::Append, None) => errors.push(not_defined(files, span, "list", name)),
                (Change::Define, _) => {
                    d.lists.insert(name, ListDef { items, span });
                }
            },
            Item::Macro {
                name,
                condition,
                change,
                span,
            } => match (change, d.macros.get_mut(&name)) {
                (Change::Append, Some(m)) => m.cond.append(&condition, span),
                (Change::Append, None) => errors.push(not_defined(files, span, "macro", name)),
                (Change::Define, _) => {
                    if !d.macros.contains_key(&name) {
                        d.macro_order.push(name.clone());
                    }
                    let cond = Text::new(condition, span);
                    d.macros.insert(name, MacroDef { cond });
                }
            },
            Item::Rule(r) => {
                if let Err(e) = apply_rule(files, &mut d, *r) {
                    errors.push(*e);
                }
            }
        }
    }
    d
}

fn not_defined(files: &[RuleFile], span: Span, kind: &'static str, name: String) -> Diagnostic {
    let item = format!("{kind} '{name}'");
    at(
        files,
        span,
        item,
        ErrorKind::NotDefined {
            how: "append to",
            kind,
            name,
        },
    )
}

fn apply_rule(files: &[RuleFile], d: &mut Definitions, r: RuleItem) -> Result<(), Box<Diagnostic>> {
    let span = r.span;
    let label = format!("rule '{}'", r.name);
    let err = |kind| Box::new(at(files, span, label.clone(), kind));
    let existing = d.rules.iter().position(|x| x.name == r.name);
    let updates = r.legacy_append || !r.appends.is_empty() || !r.replaces.is_empty();
    let enable_only = !updates
        && r.condition.is_none()
        && r.output.is_none()
        && r.desc.is_none()
        && r.priority.is_none()
        && r.action.is_none()
        && r.mode.is_none()
        && r.enabled.is_some();
    if updates || enable_only {
        let how = if r.replaces.is_empty() || r.legacy_append {
            "append to"
        } else {
            "override"
        };
        let Some(i) = existing else {
            return Err(err(ErrorKind::NotDefined {
                how: if enable_only {
                    "enable or disable"
                } else {
                    how
                },
                kind: "rule",
                name: r.name.clone(),
            }));
        };
        let prev = &mut d.rules[i];
        if enable_only {
            prev.enabled = r.enabled.unwrap_or(prev.enabled);
            return Ok(());
        }
        let appends = |k: &str| r.legacy_append || r.appends.contains(k);
        let replaces = |k: &str| r.replaces.contains(k);
        if let Some(c) = &r.condition {
            if appends("condition") {
                prev.cond.append(c, span);
            } else if replaces("condition") {
                prev.cond = Text::new(c.clone(), span);
            }
        }
        if let Some(exs) = r.exceptions.clone() {
            if appends("exceptions") {
                merge_exceptions(&mut prev.exceptions, exs).map_err(&err)?;
            } else if replaces("exceptions") {
                prev.exceptions = exs;
            }
        }
        if r.legacy_append {
            return Ok(());
        }
        for (key, value, target) in [
            ("output", &r.output, &mut prev.output),
            ("desc", &r.desc, &mut prev.desc),
        ] {
            if let Some(v) = value {
                if appends(key) {
                    target.push(' ');
                    target.push_str(v);
                } else if replaces(key) {
                    target.clone_from(v);
                }
            }
        }
        if let Some(tags) = &r.tags {
            if replaces("tags") {
                prev.tags.clear();
            }
            for t in tags {
                if !prev.tags.contains(t) {
                    prev.tags.push(t.clone());
                }
            }
        }
        if let (Some(p), true) = (r.priority, replaces("priority")) {
            prev.priority = p;
        }
        if let (Some(e), true) = (r.enabled, replaces("enabled")) {
            prev.enabled = e;
        }
        if let (Some(a), true) = (r.action, replaces("action")) {
            prev.action = a;
            prev.action_span = span;
        }
        if let (Some(m), true) = (r.mode, replaces("mode")) {
            prev.mode = m;
        }
        return Ok(());
    }
    let Some(condition) = r.condition else {
        return Err(err(ErrorKind::MissingKey("condition")));
    };
    let Some(output) = r.output else {
        return Err(err(ErrorKind::MissingKey("output")));
    };
    let Some(priority) = r.priority else {
        return Err(err(ErrorKind::MissingKey("priority")));
    };
    let mut tags: Vec<String> = Vec::new();
    for t in r.tags.unwrap_or_default() {
        if !tags.contains(&t) {
            tags.push(t);
        }
    }
    let def = RuleDef {
        name: r.name,
        span,
        desc: r.desc.unwrap_or_default(),
        cond: Text::new(condition, span),
        output,
        priority,
        tags,
        enabled: r.enabled.unwrap_or(true),
        source: r.source,
        exceptions: r.exceptions.unwrap_or_default(),
        action: r.action.flatten(),
        mode: r.mode.unwrap_or(Mode::Enforce),
        action_span: span,
    };
    match existing {
        Some(i) => d.rules[i] = def,
        None => d.rules.push(def),
    }
    Ok(())
}

/// Appending exceptions: a known name gets more values, a new name is added whole.
fn merge_exceptions(
    prev: &mut Vec<ExceptionDef>,
    more: Vec<ExceptionDef>,
) -> Result<(), ErrorKind> {
    for ex in more {
        match prev.iter_mut().find(|p| p.name == ex.name) {
            Some(p) => {
                if ex.fields.is_some() || ex.comps.is_some() {
                    return Err(ErrorKind::Exception {
                        name: ex.name,
                        problem: ExceptionProblem::Redefined,
                    });
                }
                p.values.extend(ex.values);
            }
            None => prev.push(ex),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_segments_map_back() {
        let a = Span {
            file: 0,
            lines: (1, 3),
        };
        let b = Span {
            file: 0,
            lines: (5, 7),
        };
        let mut t = Text::new("proc.name = x".into(), a);
        t.append("and fd.name = y", b);
        assert_eq!(t.value, "proc.name = x and fd.name = y");
        assert_eq!(t.origin(2), (a, "proc.name = x", 2));
        assert_eq!(t.origin(18), (b, "and fd.name = y", 4));
    }
}
