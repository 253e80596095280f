//! Compiled conditions and their evaluation. A check on a missing field is false whatever the
//! operator (`!=` included); `not` inverts the result, as in Falco.

use std::borrow::Cow;

use crate::condition::ast::{Modifier, Op};
use crate::extract::Ev;
use crate::fields::{Field, Level};
use crate::matcher::{compare_values, Matcher};
use crate::value::Val;

/// Field transformers this engine applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transform {
    Lower,
    Upper,
    Basename,
    Len,
}

impl Transform {
    pub fn parse(name: &str) -> Option<Transform> {
        Some(match name {
            "tolower" => Transform::Lower,
            "toupper" => Transform::Upper,
            "basename" => Transform::Basename,
            "len" => Transform::Len,
            _ => return None,
        })
    }

    fn apply<'a>(self, v: Val<'a>) -> Val<'a> {
        match (self, v) {
            (Transform::Len, v) => Val::Int(v.bytes().len() as i64),
            (Transform::Lower, v) => Val::owned(v.bytes().to_ascii_lowercase()),
            (Transform::Upper, v) => Val::owned(v.bytes().to_ascii_uppercase()),
            (Transform::Basename, Val::Str(Cow::Borrowed(b))) => {
                Val::borrowed(b.rsplit(|c| *c == b'/').next().unwrap_or(b))
            }
            (Transform::Basename, v) => {
                let b = v.bytes();
                Val::owned(b.rsplit(|c| *c == b'/').next().unwrap_or(&b).to_vec())
            }
        }
    }
}

/// A field with its transformers.
#[derive(Debug, Clone)]
pub(crate) struct FieldExpr {
    pub field: Field,
    pub transforms: Box<[Transform]>,
}

impl FieldExpr {
    fn transformed<'a>(&self, v: Val<'a>) -> Val<'a> {
        self.transforms.iter().fold(v, |v, t| t.apply(v))
    }

    /// Whether `pred` holds for some value of the field (multi-valued only for "any ancestor"
    /// and for `fd.ip`/`fd.port`/`fd.net`).
    pub fn any(&self, ev: &Ev<'_>, mut pred: impl FnMut(&Val<'_>) -> bool) -> bool {
        let mut test = |v: Val<'_>| {
            if self.transforms.is_empty() {
                pred(&v)
            } else {
                pred(&self.transformed(v))
            }
        };
        match &self.field {
            Field::Proc(attr, Level::AnyAncestor) => {
                (1..=ev.ancestor_count()).any(|n| ev.proc_at(*attr, n).is_some_and(&mut test))
            }
            Field::FdEither(kind) => ev.either(*kind).into_iter().flatten().any(test),
            f => ev.get(f).is_some_and(test),
        }
    }

    /// Whether the field has a value and `pred` holds for every one of its values.
    fn every(&self, ev: &Ev<'_>, mut pred: impl FnMut(&Val<'_>) -> bool) -> bool {
        let mut seen = false;
        !self.any(ev, |v| {
            seen = true;
            !pred(v)
        }) && seen
    }

    /// The value shown in outputs: for "any ancestor" fields, the parent's.
    pub fn first<'e>(&self, ev: &'e Ev<'_>) -> Option<Val<'e>> {
        let v = match &self.field {
            Field::Proc(attr, Level::AnyAncestor) => ev.proc_at(*attr, 1),
            f => ev.get(f),
        };
        v.map(|v| self.transformed(v))
    }
}

/// A compiled condition.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    And(Box<[Node]>),
    Or(Box<[Node]>),
    Not(Box<Node>),
    /// `evt.type = x` / `evt.type in (...)`: a bit per type id. `names` keeps every name as
    /// written, including ones Vigil never produces, for the observability check.
    Types {
        mask: u128,
        names: Box<[String]>,
    },
    Check {
        field: FieldExpr,
        matcher: Matcher,
    },
    /// `op anyof|allof|oneof (list)`.
    Each {
        field: FieldExpr,
        modifier: Modifier,
        matchers: Box<[Matcher]>,
    },
    /// `field op val(other)`.
    Compare {
        field: FieldExpr,
        op: Op,
        other: FieldExpr,
    },
}

impl Node {
    pub fn eval(&self, ev: &Ev<'_>) -> bool {
        match self {
            Node::And(kids) => kids.iter().all(|k| k.eval(ev)),
            Node::Or(kids) => kids.iter().any(|k| k.eval(ev)),
            Node::Not(k) => !k.eval(ev),
            Node::Types { mask, .. } => mask & (1u128 << ev.type_id) != 0,
            // libsinsp: `fd.ip != x` holds when neither end is x (`=` when either is).
            Node::Check {
                field,
                matcher: matcher @ Matcher::Ne(_),
            } if matches!(field.field, Field::FdEither(_)) => {
                field.every(ev, |v| matcher.matches(v))
            }
            Node::Check { field, matcher } => field.any(ev, |v| matcher.matches(v)),
            Node::Each {
                field,
                modifier,
                matchers,
            } => field.any(ev, |v| match modifier {
                Modifier::AllOf => matchers.iter().all(|m| m.matches(v)),
                Modifier::OneOf => matchers.iter().filter(|m| m.matches(v)).count() == 1,
                Modifier::AnyOf | Modifier::None => matchers.iter().any(|m| m.matches(v)),
            }),
            Node::Compare { field, op, other } => {
                field.any(ev, |l| other.any(ev, |r| compare_values(*op, l, r)))
            }
        }
    }
}
