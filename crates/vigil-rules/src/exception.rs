//! Rule exceptions as conditions, built the way Falco's `build_rule_exception_infos` builds
//! their text: one field with `in`/`pmatch`/`intersects` over the values, or for a list of
//! fields, one `(f1 c1 v1 and f2 c2 v2)` per value tuple, all or-ed. The rule then fires only
//! when `not (that)` holds too.

use crate::condition::ast::{Check, Expr, FieldRef, Modifier, Op, Rhs, Value};
use crate::condition::parse_field_prefix;
use crate::document::{ExValue, ExceptionDef, Shape};
use crate::error::ExceptionProblem;
use crate::fields::FieldError;

/// Why an exception cannot be built: a malformed definition, or a field name that is not one.
#[derive(Debug)]
pub(crate) enum ExceptionError {
    Shape(ExceptionProblem),
    Field(FieldError),
}

impl From<ExceptionProblem> for ExceptionError {
    fn from(p: ExceptionProblem) -> Self {
        ExceptionError::Shape(p)
    }
}

/// The exception's condition; `None` when it has no values yet (values often come in a later
/// `append`).
pub(crate) fn condition(ex: &ExceptionDef) -> Result<Option<Expr>, ExceptionError> {
    match (&ex.fields, &ex.comps) {
        (None, _) => Err(ExceptionProblem::NoFields.into()),
        (Some(Shape::One(f)), comps) => {
            let op = match comps {
                None => (Op::In, Modifier::None),
                Some(Shape::One(c)) => comp(c, true)?,
                Some(Shape::Many(_)) => return Err(ExceptionProblem::ShapeMismatch.into()),
            };
            let mut items = Vec::new();
            for (i, v) in ex.values.iter().enumerate() {
                match v {
                    ExValue::Scalar(s) => items.push(value(s)),
                    ExValue::List(_) => return Err(ExceptionProblem::NotAString(i).into()),
                }
            }
            if items.is_empty() {
                return Ok(None);
            }
            Ok(Some(check(field(f)?, op, Rhs::List(items))))
        }
        (Some(Shape::Many(fs)), comps) => {
            let ops = match comps {
                None => vec![(Op::Eq, Modifier::None); fs.len()],
                Some(Shape::Many(cs)) if cs.len() == fs.len() => cs
                    .iter()
                    .map(|c| comp(c, false))
                    .collect::<Result<_, _>>()?,
                Some(Shape::Many(cs)) => {
                    let problem = ExceptionProblem::CompsLength {
                        fields: fs.len(),
                        comps: cs.len(),
                    };
                    return Err(problem.into());
                }
                Some(Shape::One(_)) => return Err(ExceptionProblem::ShapeMismatch.into()),
            };
            let fields = fs.iter().map(|f| field(f)).collect::<Result<Vec<_>, _>>()?;
            let mut tuples = Vec::new();
            for (i, v) in ex.values.iter().enumerate() {
                tuples.push(tuple(i, v, &fields, &ops)?);
            }
            Ok((!tuples.is_empty()).then_some(Expr::Or(tuples)))
        }
    }
}

/// `(f1 c1 v1 and f2 c2 v2 ...)` for value tuple `index`.
fn tuple(
    index: usize,
    v: &ExValue,
    fields: &[FieldRef],
    ops: &[(Op, Modifier)],
) -> Result<Expr, ExceptionError> {
    let ExValue::List(items) = v else {
        return Err(ExceptionProblem::NotATuple(index).into());
    };
    if items.len() != fields.len() {
        let problem = ExceptionProblem::TupleLength {
            index,
            got: items.len(),
            fields: fields.len(),
        };
        return Err(problem.into());
    }
    let mut checks = Vec::new();
    for ((f, op), item) in fields.iter().zip(ops).zip(items) {
        // A single value under a list operator is a one-item list, which may name a list.
        let list_rhs = op.0.takes_list() || op.1 != Modifier::None;
        let rhs = match item {
            ExValue::Scalar(s) if list_rhs => Rhs::List(vec![value(s)]),
            ExValue::Scalar(s) => Rhs::Value(value(s)),
            ExValue::List(l) => Rhs::List(
                l.iter()
                    .map(|x| match x {
                        ExValue::Scalar(s) => Ok(value(s)),
                        ExValue::List(_) => Err(ExceptionProblem::NotAString(index)),
                    })
                    .collect::<Result<_, _>>()?,
            ),
        };
        checks.push(check(f.clone(), *op, rhs));
    }
    Ok(Expr::And(checks))
}

/// A `comps` entry: an operator, optionally with a modifier (`startswith anyof`). With a single
/// field only list operators make sense, as in Falco.
fn comp(text: &str, single: bool) -> Result<(Op, Modifier), ExceptionProblem> {
    let mut words = text.split_whitespace();
    let op = words.next().and_then(Op::parse);
    let modifier = words.next().map(Modifier::parse);
    match (op, modifier, words.next()) {
        (Some(op), None, None) if !single || op.takes_list() => Ok((op, Modifier::None)),
        (Some(op), Some(Some(m)), None) => Ok((op, m)),
        (Some(_), None, None) => Err(ExceptionProblem::SingleFieldComp(text.into())),
        _ => Err(ExceptionProblem::BadComp(text.into())),
    }
}

fn field(name: &str) -> Result<FieldRef, ExceptionError> {
    match parse_field_prefix(name.trim()) {
        Some((f, used)) if used == name.trim().len() => Ok(f),
        _ => Err(ExceptionError::Field(FieldError::Unknown(name.to_string()))),
    }
}

fn value(text: &str) -> Value {
    Value {
        text: text.as_bytes().to_vec(),
        pos: 0,
    }
}

fn check(field: FieldRef, (op, modifier): (Op, Modifier), rhs: Rhs) -> Expr {
    Expr::Check(Check {
        field,
        op,
        modifier,
        rhs,
        pos: 0,
        end: 0,
    })
}
