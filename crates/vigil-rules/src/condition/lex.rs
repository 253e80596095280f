//! The token readers of the condition grammar (libsinsp's `lex_*` functions): blanks,
//! identifiers, field names and arguments, numbers, bare and quoted strings with escapes.

/// Recursion bound, as libsinsp's: keeps hostile input from exhausting the stack.
pub(super) const MAX_DEPTH: usize = 100;

/// A syntax error at a byte offset of the condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParseError {
    pub offset: usize,
    pub kind: SyntaxError,
}

/// What is wrong with a condition's syntax.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyntaxError {
    #[error("the condition is empty")]
    Empty,
    #[error("expected '(', a field check or a macro name")]
    ExpectedCheck,
    #[error("expected ')'")]
    ExpectedCloseParen,
    #[error("expected ')' after list")]
    ExpectedListClose,
    #[error("expected blank or '(' after '{0}'")]
    ExpectedBlankAfter(&'static str),
    #[error("expected an operator after field {0}")]
    ExpectedOperator(String),
    #[error("expected a number")]
    ExpectedNumber,
    #[error("expected a value")]
    ExpectedValue,
    #[error("expected a list '(...)' or a list name")]
    ExpectedList,
    #[error("expected a field argument (a quoted or bare string) after '['")]
    ExpectedFieldArg,
    #[error("expected ']'")]
    ExpectedBracket,
    #[error(
        "expected a field, transformer, quoted string, number or list as transformer argument"
    )]
    ExpectedTransformerArg,
    #[error("expected a field inside '{0}('")]
    ExpectedFieldInTransformer(String),
    #[error("unexpected '{0}', expected 'and', 'or' or the end of the condition")]
    Trailing(String),
    #[error("unterminated quoted string")]
    UnterminatedString,
    #[error("unsupported escape sequence '\\{0}' in quoted string")]
    BadEscape(char),
    #[error("conditions nest deeper than {MAX_DEPTH} levels")]
    TooDeep,
}

/// Blanks as libsinsp skips them.
pub(super) fn is_blank(c: u8) -> bool {
    matches!(
        c,
        b' ' | b'\t' | b'\x08' | b'\r' | b'\n' | b'\x0c' | b'\x0b'
    )
}

/// A cursor over the condition's bytes.
pub(super) struct Lexer<'a> {
    pub s: &'a [u8],
    pub i: usize,
}

impl<'a> Lexer<'a> {
    pub fn new(input: &'a str) -> Lexer<'a> {
        Lexer {
            s: input.as_bytes(),
            i: 0,
        }
    }

    pub fn err(&self, kind: SyntaxError) -> ParseError {
        ParseError {
            offset: self.i.min(self.s.len()),
            kind,
        }
    }

    pub fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    pub fn blank(&mut self) -> bool {
        let start = self.i;
        while self.peek().is_some_and(is_blank) {
            self.i += 1;
        }
        self.i > start
    }

    pub fn lit(&mut self, t: &str) -> bool {
        if self.s[self.i..].starts_with(t.as_bytes()) {
            self.i += t.len();
            true
        } else {
            false
        }
    }

    pub fn identifier(&mut self) -> Option<String> {
        let start = self.i;
        let rest = &self.s[start..];
        if !rest.first().is_some_and(u8::is_ascii_alphabetic) {
            return None;
        }
        let len = rest
            .iter()
            .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
            .count();
        self.i += len;
        Some(String::from_utf8_lossy(&rest[..len]).into_owned())
    }

    /// `[a-zA-Z][a-zA-Z0-9_]*(\.[a-zA-Z][a-zA-Z0-9_]*)+`.
    pub fn field_name(&mut self) -> Option<String> {
        let start = self.i;
        let mut segments = 0;
        loop {
            let before = self.i;
            if self.identifier().is_none() {
                self.i = before;
                break;
            }
            segments += 1;
            if self.peek() == Some(b'.')
                && self.s.get(self.i + 1).is_some_and(u8::is_ascii_alphabetic)
            {
                self.i += 1;
            } else {
                break;
            }
        }
        if segments < 2 {
            self.i = start;
            return None;
        }
        Some(String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }

    /// `[quoted]` or `[bare]` right after a field name.
    pub fn field_arg(&mut self) -> Result<Option<String>, ParseError> {
        if !self.lit("[") {
            return Ok(None);
        }
        let arg = if let Some(q) = self.quoted()? {
            q
        } else {
            let start = self.i;
            while self
                .peek()
                .is_some_and(|c| !matches!(c, b'[' | b']' | b'"' | b'\'') && !is_blank(c))
            {
                self.i += 1;
            }
            if self.i == start {
                return Err(self.err(SyntaxError::ExpectedFieldArg));
            }
            self.s[start..self.i].to_vec()
        };
        if !self.lit("]") {
            return Err(self.err(SyntaxError::ExpectedBracket));
        }
        Ok(Some(String::from_utf8_lossy(&arg).into_owned()))
    }

    pub fn str_value(&mut self) -> Result<Option<Vec<u8>>, ParseError> {
        if let Some(q) = self.quoted()? {
            return Ok(Some(q));
        }
        let start = self.i;
        while self
            .peek()
            .is_some_and(|c| !matches!(c, b'(' | b')' | b'"' | b'\'' | b'=' | b',') && !is_blank(c))
        {
            self.i += 1;
        }
        Ok((self.i > start).then(|| self.s[start..self.i].to_vec()))
    }

    /// `[+-]?[0-9]+\.?[0-9]*([eE][+-][0-9]+)?` or `0x...`.
    pub fn number(&mut self) -> Option<Vec<u8>> {
        let s = &self.s[self.i..];
        if (s.starts_with(b"0x") || s.starts_with(b"0X"))
            && s.get(2).is_some_and(u8::is_ascii_hexdigit)
        {
            let len = 2 + s[2..].iter().take_while(|c| c.is_ascii_hexdigit()).count();
            self.i += len;
            return Some(s[..len].to_vec());
        }
        let mut n = usize::from(matches!(s.first(), Some(b'+' | b'-')));
        let digits = s[n..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return None;
        }
        n += digits;
        if s.get(n) == Some(&b'.') {
            n += 1;
            n += s[n..].iter().take_while(|c| c.is_ascii_digit()).count();
        }
        if matches!(s.get(n), Some(b'e' | b'E'))
            && matches!(s.get(n + 1), Some(b'+' | b'-'))
            && s.get(n + 2).is_some_and(u8::is_ascii_digit)
        {
            n += 2;
            n += s[n..].iter().take_while(|c| c.is_ascii_digit()).count();
        }
        self.i += n;
        Some(s[..n].to_vec())
    }

    /// A '- or "-quoted string with libsinsp's escapes (`\n`, `\xHH`, `\"` ...).
    pub fn quoted(&mut self) -> Result<Option<Vec<u8>>, ParseError> {
        let Some(delim @ (b'"' | b'\'')) = self.peek() else {
            return Ok(None);
        };
        let start = self.i;
        let mut out = Vec::new();
        let mut j = start + 1;
        loop {
            let Some(&c) = self.s.get(j) else {
                self.i = start;
                return Err(self.err(SyntaxError::UnterminatedString));
            };
            if c == delim {
                self.i = j + 1;
                return Ok(Some(out));
            }
            if c != b'\\' {
                out.push(c);
                j += 1;
                continue;
            }
            let Some(&e) = self.s.get(j + 1) else {
                self.i = start;
                return Err(self.err(SyntaxError::UnterminatedString));
            };
            j += 2;
            match e {
                b'b' => out.push(b'\x08'),
                b'f' => out.push(b'\x0c'),
                b'n' => out.push(b'\n'),
                b'r' => out.push(b'\r'),
                b't' => out.push(b'\t'),
                b' ' | b'\\' => out.push(b'\\'),
                b'/' => out.push(b'/'),
                b'"' | b'\'' if e == delim => out.push(e),
                b'x' => {
                    let hex = self
                        .s
                        .get(j..j + 2)
                        .and_then(|h| std::str::from_utf8(h).ok());
                    match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                        Some(b) => out.push(b),
                        None => {
                            self.i = j;
                            return Err(self.err(SyntaxError::BadEscape('x')));
                        }
                    }
                    j += 2;
                }
                other => {
                    self.i = j - 1;
                    return Err(self.err(SyntaxError::BadEscape(char::from(other))));
                }
            }
        }
    }
}
