//! Rule conditions (with macros inlined, lists expanded and exceptions appended) → [`Node`]s.
//!
//! Two kinds of failure: hard ones (syntax, undefined macro or list, invalid regex, malformed
//! exception) fail the whole load; soft ones (a field Vigil cannot fill) disable the rule with a
//! reason and keep the rest.

use std::collections::HashMap;

use crate::collect::{at, Definitions, RuleDef, Text};
use crate::condition::ast::{Check, Expr, FieldRef, Modifier, Op, Rhs};
use crate::condition::parse;
use crate::document::Span;
use crate::enforce::{Action, Plan};
use crate::error::{Diagnostic, ErrorKind};
use crate::eval::{FieldExpr, Node, Transform};
use crate::evtype;
use crate::exception::{self, ExceptionError};
use crate::fields::{self, Field, FieldError};
use crate::matcher::Matcher;
use crate::source;
use crate::RuleFile;

/// Bound on nodes plus list items per rule once macros are inlined: a few macros that each use
/// the next one twice would otherwise grow exponentially.
const MAX_NODES: usize = 200_000;

/// Bound on the nesting of a condition once macros are inlined (and of lists in lists), so that
/// compiling and evaluating it stays well within a thread's stack. Falco's own rules nest less
/// than 20 deep.
const MAX_DEPTH: usize = 250;

/// Why a rule did not compile.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Fails the load.
    Hard(Box<Diagnostic>),
    /// Already reported (a macro with a syntax error).
    Reported,
    /// Disables the rule.
    Soft(String),
}

impl From<FieldError> for Failure {
    fn from(e: FieldError) -> Failure {
        Failure::Soft(e.to_string())
    }
}

/// The text a position refers to.
#[derive(Clone, Copy)]
pub(crate) enum Origin<'a> {
    Rule(&'a Text),
    Macro(&'a str, &'a Text),
    /// Built from a rule's `exceptions:`: no text, only the rule's item.
    Exception,
}

impl<'a> Origin<'a> {
    /// The condition text that positions are offsets of (none for exceptions).
    pub fn text(self) -> &'a str {
        match self {
            Origin::Rule(t) | Origin::Macro(_, t) => &t.value,
            Origin::Exception => "",
        }
    }
}

pub(crate) struct Compiler<'d> {
    files: &'d [RuleFile],
    defs: &'d Definitions,
    /// Each macro parsed once; `None` when its syntax error was already reported.
    macros: HashMap<&'d str, Option<Expr>>,
}

impl<'d> Compiler<'d> {
    /// Parses every macro, reporting syntax errors even for unused ones, as Falco does.
    pub fn new(files: &'d [RuleFile], defs: &'d Definitions, errors: &mut Vec<Diagnostic>) -> Self {
        let mut macros = HashMap::new();
        for name in &defs.macro_order {
            let Some(m) = defs.macros.get(name) else {
                continue;
            };
            let parsed = match parse(&m.cond.value) {
                Ok(e) => Some(e),
                Err(e) => {
                    let kind = ErrorKind::Syntax {
                        kind: e.kind,
                        column: 0,
                    };
                    errors.push(text_diag(
                        files,
                        &m.cond,
                        e.offset,
                        format!("macro '{name}'"),
                        kind,
                    ));
                    None
                }
            };
            macros.insert(name.as_str(), parsed);
        }
        Compiler {
            files,
            defs,
            macros,
        }
    }

    /// The rule's condition, parsed.
    fn parse_rule(&self, r: &RuleDef) -> Result<Expr, Failure> {
        parse(&r.cond.value).map_err(|e| {
            let kind = ErrorKind::Syntax {
                kind: e.kind,
                column: 0,
            };
            Failure::Hard(Box::new(text_diag(
                self.files,
                &r.cond,
                e.offset,
                format!("rule '{}'", r.name),
                kind,
            )))
        })
    }

    fn rule_cx<'c>(&'c self, r: &'c RuleDef) -> RuleCx<'c, 'd> {
        RuleCx {
            c: self,
            rule: r,
            label: format!("rule '{}'", r.name),
            stack: Vec::new(),
            budget: MAX_NODES,
            depth: 0,
        }
    }

    /// The rule's condition and exceptions as one node.
    pub fn rule(&self, r: &RuleDef) -> Result<Node, Failure> {
        let expr = self.parse_rule(r)?;
        let mut rc = self.rule_cx(r);
        let node = rc.expr(&expr, Origin::Rule(&r.cond))?;
        let mut excluded = Vec::new();
        for ex in &r.exceptions {
            let e = exception::condition(ex).map_err(|e| match e {
                ExceptionError::Field(f) => Failure::from(f),
                ExceptionError::Shape(problem) => {
                    let kind = ErrorKind::Exception {
                        name: ex.name.clone(),
                        problem,
                    };
                    rc.hard(Origin::Exception, 0, kind)
                }
            })?;
            if let Some(e) = e {
                excluded.push(rc.expr(&e, Origin::Exception)?);
            }
        }
        Ok(match excluded.len() {
            0 => node,
            1 => Node::And(Box::new([node, Node::Not(Box::new(excluded.remove(0)))])),
            _ => Node::And(Box::new([
                node,
                Node::Not(Box::new(Node::Or(excluded.into_boxed_slice()))),
            ])),
        })
    }

    /// The kernel plan of a rule with an action: every failure is a hard error (a rule meant
    /// to be enforced must never load silently unenforced).
    pub fn enforcement(&self, r: &RuleDef, action: Action) -> Result<Plan, Failure> {
        let expr = self.parse_rule(r)?;
        let mut rc = self.rule_cx(r);
        crate::lower::plan(&mut rc, &expr, action)
    }

    /// A field for outputs: resolved the same way as in conditions.
    pub fn output_field(f: &FieldRef) -> Result<FieldExpr, FieldError> {
        field_expr(f)
    }
}

/// A diagnostic at the value of `key` in the item spanning `span` (at the item when the key
/// cannot be found).
pub(crate) fn key_diag(
    files: &[RuleFile],
    span: Span,
    key: &str,
    value: &str,
    item: String,
    kind: ErrorKind,
) -> Diagnostic {
    let file = &files[span.file];
    match source::locate(&file.text, span.lines, key, value, 0) {
        Some((line, column)) => Diagnostic {
            file: file.name.clone(),
            line,
            column,
            item: Some(item),
            kind,
        },
        None => at(files, span, item, kind),
    }
}

/// A diagnostic at `offset` of an assembled text, with the file position when the text can be
/// traced, and the column inside the condition string in any case.
fn text_diag(
    files: &[RuleFile],
    text: &Text,
    offset: usize,
    item: String,
    kind: ErrorKind,
) -> Diagnostic {
    let (span, part, off) = text.origin(offset);
    let column = source::column_of(part, off);
    let kind = with_column(kind, column);
    let file = &files[span.file];
    let (line, col) = source::locate(&file.text, span.lines, "condition", part, off)
        .unwrap_or((span.lines.0, source::item_column(&file.text, span.lines.0)));
    Diagnostic {
        file: file.name.clone(),
        line,
        column: col,
        item: Some(item),
        kind,
    }
}

fn with_column(kind: ErrorKind, c: usize) -> ErrorKind {
    match kind {
        ErrorKind::Syntax { kind, .. } => ErrorKind::Syntax { kind, column: c },
        ErrorKind::UndefinedMacro { name, .. } => ErrorKind::UndefinedMacro { name, column: c },
        ErrorKind::UndefinedList { name, .. } => ErrorKind::UndefinedList { name, column: c },
        ErrorKind::Matcher { error, .. } => ErrorKind::Matcher { error, column: c },
        ErrorKind::Enforce {
            part: Some(part),
            reason,
            ..
        } => ErrorKind::Enforce {
            part: Some(part),
            reason,
            column: Some(c),
        },
        other => other,
    }
}

fn field_expr(f: &FieldRef) -> Result<FieldExpr, FieldError> {
    if let Some(t) = &f.unsupported_transformer {
        return Err(FieldError::Transformer(t.clone()));
    }
    let field = fields::resolve(&f.name, f.arg.as_deref())?;
    let transforms = f
        .transformers
        .iter()
        .map(|t| Transform::parse(t).ok_or_else(|| FieldError::Transformer(t.clone())))
        .collect::<Result<_, _>>()?;
    Ok(FieldExpr { field, transforms })
}

/// State while compiling one rule.
pub(crate) struct RuleCx<'c, 'd> {
    c: &'c Compiler<'d>,
    pub rule: &'c RuleDef,
    label: String,
    /// Macros being expanded, to report cycles.
    stack: Vec<String>,
    budget: usize,
    /// Nesting of the tree being built.
    depth: usize,
}

impl<'c> RuleCx<'c, '_> {
    pub fn hard(&self, origin: Origin<'_>, offset: usize, kind: ErrorKind) -> Failure {
        Failure::Hard(Box::new(match origin {
            Origin::Rule(t) => text_diag(self.c.files, t, offset, self.label.clone(), kind),
            Origin::Macro(name, t) => {
                let item = format!("macro '{name}' (used by {})", self.label);
                text_diag(self.c.files, t, offset, item, kind)
            }
            Origin::Exception => at(self.c.files, self.rule.span, self.label.clone(), kind),
        }))
    }

    fn too_large(&self) -> Failure {
        let label = self.label.clone();
        Failure::Hard(Box::new(at(
            self.c.files,
            self.rule.span,
            label,
            ErrorKind::TooLarge,
        )))
    }

    /// A hard error at the value of `key` of the item spanning `span`.
    pub fn hard_at_key(&self, span: Span, key: &str, value: &str, kind: ErrorKind) -> Failure {
        let label = self.label.clone();
        Failure::Hard(Box::new(key_diag(
            self.c.files,
            span,
            key,
            value,
            label,
            kind,
        )))
    }

    /// A hard error at the rule's item.
    pub fn hard_at_rule(&self, kind: ErrorKind) -> Failure {
        let label = self.label.clone();
        Failure::Hard(Box::new(at(self.c.files, self.rule.span, label, kind)))
    }

    pub fn spend(&mut self, n: usize) -> Result<(), Failure> {
        self.budget = self.budget.checked_sub(n).ok_or_else(|| self.too_large())?;
        Ok(())
    }

    /// One level deeper into the tree being built (paired with [`Self::leave`]).
    pub fn enter(&mut self) -> Result<(), Failure> {
        self.spend(1)?;
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.too_large());
        }
        Ok(())
    }

    pub fn leave(&mut self) {
        self.depth -= 1;
    }

    fn expr(&mut self, e: &Expr, origin: Origin<'_>) -> Result<Node, Failure> {
        self.enter()?;
        let node = match e {
            Expr::And(kids) => Node::And(self.all(kids, origin)?),
            Expr::Or(kids) => Node::Or(self.all(kids, origin)?),
            Expr::Not { inner, .. } => Node::Not(Box::new(self.expr(inner, origin)?)),
            Expr::Macro { name, pos } => self.macro_ref(name, *pos, origin)?,
            Expr::Check(c) => self.check(c, origin)?,
        };
        self.leave();
        Ok(node)
    }

    fn all(&mut self, kids: &[Expr], origin: Origin<'_>) -> Result<Box<[Node]>, Failure> {
        kids.iter().map(|k| self.expr(k, origin)).collect()
    }

    /// The parsed body of macro `name` (referenced at `pos` of `origin`) and where its text
    /// is. Errors: undefined, already reported, or used inside itself. The caller brackets the
    /// expansion with [`Self::push_macro`] and [`Self::pop_macro`].
    pub fn macro_body(
        &self,
        name: &str,
        pos: usize,
        origin: Origin<'_>,
    ) -> Result<(&'c Expr, Origin<'c>), Failure> {
        let c = self.c;
        let Some((key, parsed)) = c.macros.get_key_value(name) else {
            let kind = ErrorKind::UndefinedMacro {
                name: name.to_string(),
                column: 0,
            };
            return Err(self.hard(origin, pos, kind));
        };
        let Some(ast) = parsed else {
            return Err(Failure::Reported);
        };
        if self.stack.iter().any(|s| s == name) {
            let chain = self.stack.join(" -> ");
            return Err(self.hard(origin, pos, ErrorKind::MacroCycle(name.to_string(), chain)));
        }
        let text = &c.defs.macros[*key].cond;
        Ok((ast, Origin::Macro(key, text)))
    }

    pub fn push_macro(&mut self, name: &str) {
        self.stack.push(name.to_string());
    }

    pub fn pop_macro(&mut self) {
        self.stack.pop();
    }

    fn macro_ref(&mut self, name: &str, pos: usize, origin: Origin<'_>) -> Result<Node, Failure> {
        let (ast, body) = self.macro_body(name, pos, origin)?;
        self.push_macro(name);
        let node = self.expr(ast, body);
        self.pop_macro();
        node
    }

    fn check(&mut self, c: &Check, origin: Origin<'_>) -> Result<Node, Failure> {
        let field = field_expr(&c.field)?;
        if let Some(n) = self.types(&field, c, origin)? {
            return Ok(n);
        }
        let value_err = |s: &Self, pos: usize, error| {
            s.hard(origin, pos, ErrorKind::Matcher { error, column: 0 })
        };
        match &c.rhs {
            Rhs::None => Ok(Node::Check {
                field,
                matcher: Matcher::Exists,
            }),
            Rhs::Field(other) => Ok(Node::Compare {
                field,
                op: c.op,
                other: field_expr(other)?,
            }),
            Rhs::Value(v) => {
                let matcher =
                    Matcher::value(c.op, &v.text).map_err(|e| value_err(self, v.pos, e))?;
                Ok(Node::Check { field, matcher })
            }
            Rhs::List(_) | Rhs::ListName(_) => {
                let items = self.list_items(&c.rhs, origin)?;
                let pos = c.pos;
                if c.modifier != Modifier::None {
                    let matchers = items
                        .iter()
                        .map(|i| Matcher::value(c.op, i))
                        .collect::<Result<Box<[_]>, _>>()
                        .map_err(|e| value_err(self, pos, e))?;
                    return Ok(Node::Each {
                        field,
                        modifier: c.modifier,
                        matchers,
                    });
                }
                let matcher = Matcher::list(c.op, items.iter().map(Vec::as_slice))
                    .map_err(|e| value_err(self, pos, e))?;
                Ok(Node::Check { field, matcher })
            }
        }
    }

    /// `evt.type` compared by equality becomes a bit test.
    fn types(
        &mut self,
        field: &FieldExpr,
        c: &Check,
        origin: Origin<'_>,
    ) -> Result<Option<Node>, Failure> {
        if field.field != Field::EvtType
            || !field.transforms.is_empty()
            || c.modifier != Modifier::None
        {
            return Ok(None);
        }
        let names: Vec<Vec<u8>> = match (c.op, &c.rhs) {
            (Op::Eq | Op::Ne, Rhs::Value(v)) => vec![v.text.clone()],
            (Op::In | Op::Intersects, Rhs::List(_) | Rhs::ListName(_)) => {
                self.list_items(&c.rhs, origin)?
            }
            _ => return Ok(None),
        };
        let names: Vec<String> = names
            .iter()
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .collect();
        let mask = names
            .iter()
            .filter_map(|n| evtype::id_of(n))
            .fold(0u128, |m, id| m | 1 << id);
        let node = Node::Types {
            mask,
            names: names.into_boxed_slice(),
        };
        Ok(Some(if c.op == Op::Ne {
            Node::Not(Box::new(node))
        } else {
            node
        }))
    }

    /// The items of a list literal or list name, with list names expanded.
    pub fn list_items(&mut self, rhs: &Rhs, origin: Origin<'_>) -> Result<Vec<Vec<u8>>, Failure> {
        let mut out = Vec::new();
        match rhs {
            Rhs::List(items) => {
                for v in items {
                    self.expand(&v.text, &mut Vec::new(), &mut out)?;
                }
            }
            Rhs::ListName(v) => {
                let name = String::from_utf8_lossy(&v.text);
                if !self.c.defs.lists.contains_key(name.as_ref()) {
                    let kind = ErrorKind::UndefinedList {
                        name: name.into_owned(),
                        column: 0,
                    };
                    return Err(self.hard(origin, v.pos, kind));
                }
                self.expand(&v.text, &mut Vec::new(), &mut out)?;
            }
            Rhs::None | Rhs::Value(_) | Rhs::Field(_) => {}
        }
        self.spend(out.len())?;
        Ok(out)
    }

    /// An item that names a list is replaced by that list's items, recursively.
    fn expand(
        &mut self,
        item: &[u8],
        seen: &mut Vec<String>,
        out: &mut Vec<Vec<u8>>,
    ) -> Result<(), Failure> {
        let name = String::from_utf8_lossy(item);
        let Some(list) = self.c.defs.lists.get(name.as_ref()) else {
            out.push(item.to_vec());
            return Ok(());
        };
        if seen.len() > MAX_DEPTH {
            return Err(self.too_large());
        }
        if seen.iter().any(|s| *s == name) {
            let label = format!("list '{name}'");
            let kind = ErrorKind::ListCycle(name.into_owned(), seen.join(" -> "));
            return Err(Failure::Hard(Box::new(at(
                self.c.files,
                list.span,
                label,
                kind,
            ))));
        }
        seen.push(name.into_owned());
        for i in &list.items {
            self.spend(1)?;
            // A quoted item is a value, never a list name, as in Falco.
            match crate::condition::unquote_item(i) {
                Some(v) => out.push(v),
                None => self.expand(i.as_bytes(), seen, out)?,
            }
        }
        seen.pop();
        Ok(())
    }
}
