//! A recursive-descent parser for Falco conditions, following libsinsp's grammar
//! (`userspace/libsinsp/filter/parser.h`) token for token, so that a condition Falco accepts
//! parses the same way here. Precedence: `not` > `and` > `or`.

use std::ops::{Deref, DerefMut};

use super::ast::{Check, Expr, FieldRef, Modifier, Op, Rhs, Value};
use super::lex::{is_blank, Lexer, ParseError, SyntaxError, MAX_DEPTH};

/// Field transformers libsinsp knows, with their opening parenthesis.
const TRANSFORMERS: &[&str] = &[
    "tolower(",
    "toupper(",
    "b64(",
    "basename(",
    "len(",
    "join(",
    "concat(",
    "getopt(",
];

/// Parses a whole condition.
pub(crate) fn parse(input: &str) -> Result<Expr, ParseError> {
    let mut p = Parser {
        lx: Lexer::new(input),
        depth: 0,
    };
    p.blank();
    if p.i == p.s.len() {
        return Err(p.err(SyntaxError::Empty));
    }
    let e = p.or()?;
    p.blank();
    if p.i != p.s.len() {
        let rest: String = String::from_utf8_lossy(&p.s[p.i..])
            .chars()
            .take(20)
            .collect();
        return Err(p.err(SyntaxError::Trailing(rest)));
    }
    Ok(e)
}

/// Parses a field (with optional `[arg]` and transformers) at the start of `input`, for output
/// templates. Returns the field and the bytes it used.
pub(crate) fn parse_field_prefix(input: &str) -> Option<(FieldRef, usize)> {
    let mut p = Parser {
        lx: Lexer::new(input),
        depth: 0,
    };
    let f = p.field_or_transformer().ok()??;
    Some((f, p.i))
}

/// The grammar on top of the lexer (which it derefs to, for its cursor and token readers).
struct Parser<'a> {
    lx: Lexer<'a>,
    depth: usize,
}

impl<'a> Deref for Parser<'a> {
    type Target = Lexer<'a>;

    fn deref(&self) -> &Lexer<'a> {
        &self.lx
    }
}

impl DerefMut for Parser<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.lx
    }
}

impl Parser<'_> {
    fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err(SyntaxError::TooDeep));
        }
        Ok(())
    }

    fn or(&mut self) -> Result<Expr, ParseError> {
        self.enter()?;
        self.blank();
        let mut children = vec![self.and()?];
        self.blank();
        while self.keyword("or") {
            children.push(self.operand_after("or", Self::and)?);
            self.blank();
        }
        self.depth -= 1;
        Ok(if children.len() == 1 {
            children.remove(0)
        } else {
            Expr::Or(children)
        })
    }

    fn and(&mut self) -> Result<Expr, ParseError> {
        self.enter()?;
        self.blank();
        let mut children = vec![self.not()?];
        self.blank();
        while self.keyword("and") {
            children.push(self.operand_after("and", Self::not)?);
            self.blank();
        }
        self.depth -= 1;
        Ok(if children.len() == 1 {
            children.remove(0)
        } else {
            Expr::And(children)
        })
    }

    /// `and`/`or` followed by a blank or `(`; anything else (`orx`) is not the keyword.
    fn keyword(&mut self, k: &str) -> bool {
        self.s[self.i..].starts_with(k.as_bytes())
    }

    fn operand_after(
        &mut self,
        k: &'static str,
        next: fn(&mut Self) -> Result<Expr, ParseError>,
    ) -> Result<Expr, ParseError> {
        self.i += k.len();
        if self.blank() {
            next(self)
        } else if self.lit("(") {
            self.embedded()
        } else {
            Err(self.err(SyntaxError::ExpectedBlankAfter(k)))
        }
    }

    fn not(&mut self) -> Result<Expr, ParseError> {
        self.enter()?;
        self.blank();
        let pos = self.i;
        let mut negate = false;
        loop {
            let rest = &self.s[self.i..];
            if rest.starts_with(b"not") && rest.get(3).copied().is_some_and(is_blank) {
                self.i += 3;
                self.blank();
                negate = !negate;
            } else {
                break;
            }
        }
        let child = if self.lit("not(") {
            negate = !negate;
            self.embedded()?
        } else {
            self.check()?
        };
        self.depth -= 1;
        Ok(if negate {
            Expr::Not {
                inner: Box::new(child),
                pos,
            }
        } else {
            child
        })
    }

    /// The rest of `( expr )` once `(` is consumed.
    fn embedded(&mut self) -> Result<Expr, ParseError> {
        self.blank();
        let e = self.or()?;
        self.blank();
        if !self.lit(")") {
            return Err(self.err(SyntaxError::ExpectedCloseParen));
        }
        Ok(e)
    }

    fn check(&mut self) -> Result<Expr, ParseError> {
        self.blank();
        let pos = self.i;
        if self.lit("(") {
            return self.embedded();
        }
        if let Some(field) = self.field_or_transformer()? {
            let mut check = self.condition(field, pos)?;
            check.end = self.i;
            return Ok(Expr::Check(check));
        }
        if let Some(name) = self.identifier() {
            return Ok(Expr::Macro { name, pos });
        }
        Err(self.err(SyntaxError::ExpectedCheck))
    }

    fn field_or_transformer(&mut self) -> Result<Option<FieldRef>, ParseError> {
        let pos = self.i;
        if let Some(name) = self.field_name() {
            let arg = self.field_arg()?;
            return Ok(Some(FieldRef {
                name,
                arg,
                transformers: Vec::new(),
                unsupported_transformer: None,
                pos,
            }));
        }
        match self.transformer_open() {
            Some(t) => self.transformer_rest(t, pos).map(Some),
            None => Ok(None),
        }
    }

    fn transformer_open(&mut self) -> Option<String> {
        let t = TRANSFORMERS.iter().find(|t| self.lit(t))?;
        Some(t.trim_end_matches('(').to_string())
    }

    /// After `name(`: arguments, `)` and an optional `[arg]`.
    fn transformer_rest(&mut self, name: String, pos: usize) -> Result<FieldRef, ParseError> {
        self.enter()?;
        self.blank();
        let mut args = Vec::new();
        loop {
            self.blank();
            args.push(self.transformer_arg()?);
            self.blank();
            if !self.lit(",") {
                break;
            }
        }
        if !self.lit(")") {
            return Err(self.err(SyntaxError::ExpectedCloseParen));
        }
        let index = self.field_arg()?;
        self.depth -= 1;
        // One field argument and no index: a chain this engine can apply.
        if let ([Some(inner)], None) = (args.as_mut_slice(), &index) {
            if inner.unsupported_transformer.is_none() {
                let mut f = inner.clone();
                f.transformers.push(name);
                f.pos = pos;
                return Ok(f);
            }
        }
        let first = args.into_iter().flatten().next();
        Ok(FieldRef {
            name: first.as_ref().map_or_else(String::new, |f| f.name.clone()),
            arg: first.and_then(|f| f.arg),
            transformers: Vec::new(),
            unsupported_transformer: Some(name),
            pos,
        })
    }

    /// A transformer argument: `Some(field)` for a field or transformer, `None` for a literal
    /// or a list (parsed for syntax only).
    fn transformer_arg(&mut self) -> Result<Option<FieldRef>, ParseError> {
        if let Some(f) = self.field_or_transformer()? {
            return Ok(Some(f));
        }
        if self.quoted()?.is_some() || self.number().is_some() {
            return Ok(None);
        }
        if self.lit("(") {
            self.blank();
            if !self.lit(")") {
                loop {
                    self.blank();
                    if self.field_or_transformer()?.is_none()
                        && self.quoted()?.is_none()
                        && self.number().is_none()
                    {
                        return Err(self.err(SyntaxError::ExpectedTransformerArg));
                    }
                    self.blank();
                    if !self.lit(",") {
                        break;
                    }
                }
                if !self.lit(")") {
                    return Err(self.err(SyntaxError::ExpectedCloseParen));
                }
            }
            return Ok(None);
        }
        Err(self.err(SyntaxError::ExpectedTransformerArg))
    }

    fn condition(&mut self, field: FieldRef, pos: usize) -> Result<Check, ParseError> {
        self.blank();
        let check = |op, modifier, rhs| Check {
            field: field.clone(),
            op,
            modifier,
            rhs,
            pos,
            end: pos,
        };
        if self.lit("exists") {
            return Ok(check(Op::Exists, Modifier::None, Rhs::None));
        }
        for (t, op) in [("<=", Op::Le), ("<", Op::Lt), (">=", Op::Ge), (">", Op::Gt)] {
            if self.lit(t) {
                self.blank();
                if let Some(f) = self.rhs_field()? {
                    return Ok(check(op, Modifier::None, Rhs::Field(f)));
                }
                let vpos = self.i;
                return match self.number() {
                    Some(text) => Ok(check(
                        op,
                        Modifier::None,
                        Rhs::Value(Value { text, pos: vpos }),
                    )),
                    None => Err(self.err(SyntaxError::ExpectedNumber)),
                };
            }
        }
        if let Some(op) = self.str_op() {
            let had_blank = op.name().as_bytes()[0].is_ascii_alphabetic() | self.blank();
            let saved = self.i;
            if had_blank {
                if let Some(m) = self.modifier() {
                    if self.list_follows() && !self.bool_keyword_follows() {
                        let rhs = self.list_value()?;
                        return Ok(check(op, m, rhs));
                    }
                }
            }
            self.i = saved;
            self.blank();
            if let Some(f) = self.rhs_field()? {
                return Ok(check(op, Modifier::None, Rhs::Field(f)));
            }
            let vpos = self.i;
            return match self.str_value()? {
                Some(text) => Ok(check(
                    op,
                    Modifier::None,
                    Rhs::Value(Value { text, pos: vpos }),
                )),
                None => Err(self.err(SyntaxError::ExpectedValue)),
            };
        }
        for (t, op) in [
            ("intersects", Op::Intersects),
            ("in", Op::In),
            ("pmatch", Op::Pmatch),
        ] {
            if self.lit(t) {
                self.blank();
                if self.peek() == Some(b'(') {
                    return Ok(check(op, Modifier::None, self.list_value()?));
                }
                if let Some(f) = self.rhs_field()? {
                    return Ok(check(op, Modifier::None, Rhs::Field(f)));
                }
                return Ok(check(op, Modifier::None, self.list_value()?));
            }
        }
        Err(self.err(SyntaxError::ExpectedOperator(field.display_name())))
    }

    /// String operators; word operators need a blank after them.
    fn str_op(&mut self) -> Option<Op> {
        for (t, op) in [("==", Op::Eq), ("=", Op::Eq), ("!=", Op::Ne)] {
            if self.lit(t) {
                return Some(op);
            }
        }
        for (t, op) in [
            ("glob", Op::Glob),
            ("iglob", Op::IGlob),
            ("contains", Op::Contains),
            ("icontains", Op::IContains),
            ("bcontains", Op::BContains),
            ("startswith", Op::StartsWith),
            ("bstartswith", Op::BStartsWith),
            ("endswith", Op::EndsWith),
            ("regex", Op::Regex),
        ] {
            let saved = self.i;
            if self.lit(t) {
                if self.blank() {
                    return Some(op);
                }
                self.i = saved;
            }
        }
        None
    }

    fn modifier(&mut self) -> Option<Modifier> {
        for t in ["oneof", "anyof", "allof"] {
            let saved = self.i;
            if self.lit(t) {
                if self.blank() {
                    return Modifier::parse(t);
                }
                self.i = saved;
            }
        }
        None
    }

    fn list_follows(&mut self) -> bool {
        if self.peek() == Some(b'(') {
            return true;
        }
        let saved = self.i;
        let ok = self.identifier().is_some();
        self.i = saved;
        ok
    }

    fn bool_keyword_follows(&self) -> bool {
        let rest = &self.s[self.i..];
        ["and", "or", "not"].iter().any(|k| {
            rest.starts_with(k.as_bytes())
                && !rest.get(k.len()).is_some_and(u8::is_ascii_alphanumeric)
        })
    }

    /// `val(field)` or a transformer on the right-hand side.
    fn rhs_field(&mut self) -> Result<Option<FieldRef>, ParseError> {
        let pos = self.i;
        if self.lit("val(") {
            self.blank();
            let Some(name) = self.field_name() else {
                return Err(self.err(SyntaxError::ExpectedFieldInTransformer("val".into())));
            };
            let arg = self.field_arg()?;
            self.blank();
            if !self.lit(")") {
                return Err(self.err(SyntaxError::ExpectedCloseParen));
            }
            // libsinsp allows an index after val(...); it has no meaning for a plain field.
            let extra = self.field_arg()?;
            return Ok(Some(FieldRef {
                name,
                arg,
                transformers: Vec::new(),
                unsupported_transformer: extra.map(|_| "val".to_string()),
                pos,
            }));
        }
        match self.transformer_open() {
            Some(t) => self.transformer_rest(t, pos).map(Some),
            None => Ok(None),
        }
    }

    /// `( v, v, ... )` or a bare list name.
    fn list_value(&mut self) -> Result<Rhs, ParseError> {
        self.blank();
        if self.lit("(") {
            let mut items = Vec::new();
            self.blank();
            let pos = self.i;
            if let Some(text) = self.str_value()? {
                items.push(Value { text, pos });
                self.blank();
                while self.lit(",") {
                    self.blank();
                    let pos = self.i;
                    match self.str_value()? {
                        Some(text) => items.push(Value { text, pos }),
                        None => return Err(self.err(SyntaxError::ExpectedValue)),
                    }
                    self.blank();
                }
            }
            if !self.lit(")") {
                return Err(self.err(SyntaxError::ExpectedListClose));
            }
            return Ok(Rhs::List(items));
        }
        let pos = self.i;
        match self.identifier() {
            Some(name) => Ok(Rhs::ListName(Value {
                text: name.into_bytes(),
                pos,
            })),
            None => Err(self.err(SyntaxError::ExpectedList)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(e: &Expr) -> &Check {
        match e {
            Expr::Check(c) => c,
            other => panic!("not a check: {other:?}"),
        }
    }

    #[test]
    fn precedence_not_and_or() {
        let e = parse("a or b and not c").unwrap();
        let Expr::Or(kids) = e else { panic!() };
        assert!(matches!(&kids[0], Expr::Macro { name, .. } if name == "a"));
        let Expr::And(inner) = &kids[1] else { panic!() };
        assert!(matches!(&inner[1], Expr::Not { .. }));
        let e = parse("(a or b) and c").unwrap();
        assert!(matches!(e, Expr::And(_)));
        assert!(matches!(parse("not not a").unwrap(), Expr::Macro { .. }));
        assert!(matches!(parse("not(a)").unwrap(), Expr::Not { .. }));
        assert!(matches!(parse("a and(b)").unwrap(), Expr::And(_)));
        let Expr::And(kids) = parse("a and  not b").unwrap() else {
            panic!()
        };
        assert!(matches!(&kids[1], Expr::Not { pos: 7, .. }));
    }

    #[test]
    fn checks_know_their_extent() {
        let text = "evt.type = execve and proc.name in (a, 'b c')  or fd.name exists";
        let Expr::Or(kids) = parse(text).unwrap() else {
            panic!()
        };
        let Expr::And(first) = &kids[0] else { panic!() };
        let spans: Vec<&str> = [&first[0], &first[1], &kids[1]]
            .iter()
            .map(|e| {
                let c = check(e);
                &text[c.pos..c.end]
            })
            .collect();
        assert_eq!(
            spans,
            [
                "evt.type = execve",
                "proc.name in (a, 'b c')",
                "fd.name exists"
            ]
        );
    }

    #[test]
    fn checks_values_and_lists() {
        let e = parse("proc.aname[2] in (bash, \"a b\", 'c', shell_binaries)").unwrap();
        let c = check(&e);
        assert_eq!(c.field.name, "proc.aname");
        assert_eq!(c.field.arg.as_deref(), Some("2"));
        let Rhs::List(items) = &c.rhs else { panic!() };
        let texts: Vec<_> = items.iter().map(|v| v.text.clone()).collect();
        assert_eq!(texts, [&b"bash"[..], b"a b", b"c", b"shell_binaries"]);
        let e = parse("fd.name pmatch sensitive").unwrap();
        assert!(matches!(&check(&e).rhs, Rhs::ListName(v) if v.text == b"sensitive"));
        let e = parse("proc.name=bash").unwrap();
        assert_eq!(check(&e).op, Op::Eq);
        let e = parse("fd.name exists").unwrap();
        assert_eq!(check(&e).op, Op::Exists);
        let e = parse("proc.pid >= 0x10").unwrap();
        assert!(matches!(&check(&e).rhs, Rhs::Value(v) if v.text == b"0x10"));
        let e = parse("proc.name = val(proc.pname)").unwrap();
        assert!(matches!(&check(&e).rhs, Rhs::Field(f) if f.name == "proc.pname"));
        let e = parse("tolower(proc.name) = bash").unwrap();
        assert_eq!(check(&e).field.transformers, ["tolower"]);
        let e = parse("proc.args startswith anyof (a, b)").unwrap();
        assert_eq!(check(&e).modifier, Modifier::AnyOf);
        let e = parse("proc.name in ()").unwrap();
        assert!(matches!(&check(&e).rhs, Rhs::List(v) if v.is_empty()));
        let e = parse(r#"proc.cmdline contains "a\"b\x41""#).unwrap();
        assert!(matches!(&check(&e).rhs, Rhs::Value(v) if v.text == b"a\"bA"));
    }

    #[test]
    fn errors_have_offsets() {
        let e = parse("proc.name in (a, b").unwrap_err();
        assert_eq!(e.kind, SyntaxError::ExpectedListClose);
        assert_eq!(e.offset, 18);
        let e = parse("proc.name bash").unwrap_err();
        assert_eq!(e.kind, SyntaxError::ExpectedOperator("proc.name".into()));
        let e = parse("proc.pid > abc").unwrap_err();
        assert_eq!(e.kind, SyntaxError::ExpectedNumber);
        let e = parse("a and (b").unwrap_err();
        assert_eq!(e.kind, SyntaxError::ExpectedCloseParen);
        let e = parse("a b").unwrap_err();
        assert_eq!((e.offset, e.kind), (2, SyntaxError::Trailing("b".into())));
        assert_eq!(parse("  ").unwrap_err().kind, SyntaxError::Empty);
        assert_eq!(
            parse("proc.name = \"abc").unwrap_err().kind,
            SyntaxError::UnterminatedString
        );
        let deep = "(".repeat(500) + "a" + &")".repeat(500);
        assert_eq!(parse(&deep).unwrap_err().kind, SyntaxError::TooDeep);
    }
}
