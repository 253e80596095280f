//! `glob`/`iglob`: fnmatch(3) without flags, as libsinsp calls it. `*` and `?` also match `/`,
//! `[...]` classes take ranges and `!`/`^` negation, `\` quotes the next character, and a `[`
//! without its `]` is an ordinary character. Patterns are compiled once, at load.

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Byte(u8),
    AnyByte,
    Star,
    Class {
        negated: bool,
        ranges: Vec<(u8, u8)>,
    },
}

/// A compiled pattern.
#[derive(Debug, Clone)]
pub(crate) struct Glob {
    tokens: Vec<Token>,
    fold_case: bool,
}

impl Glob {
    pub fn new(pattern: &[u8], fold_case: bool) -> Glob {
        let fold = |b: u8| if fold_case { b.to_ascii_lowercase() } else { b };
        let mut tokens = Vec::new();
        let mut i = 0;
        while i < pattern.len() {
            let c = pattern[i];
            i += 1;
            match c {
                b'*' => {
                    if tokens.last() != Some(&Token::Star) {
                        tokens.push(Token::Star);
                    }
                }
                b'?' => tokens.push(Token::AnyByte),
                b'\\' if i < pattern.len() => {
                    tokens.push(Token::Byte(fold(pattern[i])));
                    i += 1;
                }
                b'[' => match class(&pattern[i..], fold) {
                    Some((class, used)) => {
                        tokens.push(class);
                        i += used;
                    }
                    None => tokens.push(Token::Byte(b'[')),
                },
                _ => tokens.push(Token::Byte(fold(c))),
            }
        }
        Glob { tokens, fold_case }
    }

    /// Whole-string match; backtracks only to the last `*`, so it is linear in practice.
    pub fn matches(&self, text: &[u8]) -> bool {
        let fold = |b: u8| {
            if self.fold_case {
                b.to_ascii_lowercase()
            } else {
                b
            }
        };
        let (mut t, mut s) = (0, 0);
        let mut resume: Option<(usize, usize)> = None;
        while s < text.len() {
            let c = fold(text[s]);
            let step = match self.tokens.get(t) {
                Some(Token::Star) => {
                    resume = Some((t, s));
                    t += 1;
                    continue;
                }
                Some(Token::Byte(b)) => *b == c,
                Some(Token::AnyByte) => true,
                Some(Token::Class { negated, ranges }) => {
                    ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&c)) != *negated
                }
                None => false,
            };
            if step {
                t += 1;
                s += 1;
            } else if let Some((st, ss)) = resume {
                // Let the last star absorb one more byte.
                t = st + 1;
                s = ss + 1;
                resume = Some((st, ss + 1));
            } else {
                return false;
            }
        }
        self.tokens[t..].iter().all(|tok| *tok == Token::Star)
    }
}

/// Parses a class after `[`: the token and the bytes used, including `]`.
fn class(p: &[u8], fold: impl Fn(u8) -> u8) -> Option<(Token, usize)> {
    let mut i = 0;
    let negated = matches!(p.first(), Some(b'!' | b'^'));
    if negated {
        i += 1;
    }
    let mut ranges = Vec::new();
    let mut first = true;
    loop {
        let mut c = *p.get(i)?;
        if c == b']' && !first {
            return Some((Token::Class { negated, ranges }, i + 1));
        }
        first = false;
        if c == b'\\' {
            i += 1;
            c = *p.get(i)?;
        }
        i += 1;
        if p.get(i) == Some(&b'-') && p.get(i + 1).is_some_and(|n| *n != b']') {
            let mut hi = p[i + 1];
            i += 2;
            if hi == b'\\' {
                hi = *p.get(i)?;
                i += 1;
            }
            ranges.push((fold(c), fold(hi)));
        } else {
            ranges.push((fold(c), fold(c)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Glob;

    fn m(p: &str, s: &str) -> bool {
        Glob::new(p.as_bytes(), false).matches(s.as_bytes())
    }

    #[test]
    fn fnmatch_semantics() {
        assert!(m("/etc/*", "/etc/passwd"));
        assert!(m("/etc/*", "/etc/ssh/sshd_config"));
        assert!(m("*.sh", "/tmp/x.sh"));
        assert!(!m("*.sh", "/tmp/x.shx"));
        assert!(m("/tmp/?", "/tmp/a"));
        assert!(!m("/tmp/?", "/tmp/ab"));
        assert!(m("[a-c]x", "bx"));
        assert!(!m("[!a-c]x", "bx"));
        assert!(m("[]]", "]"));
        assert!(m("a[", "a["));
        assert!(m("\\*", "*"));
        assert!(!m("\\*", "a"));
        assert!(m("*a*b*c*", "xxaxxbxxcxx"));
        assert!(!m("*a*b*c", "xxaxxbxxcxx"));
        assert!(m("", ""));
        assert!(!m("", "a"));
        assert!(Glob::new(b"/ETC/*", true).matches(b"/etc/Passwd"));
        assert!(!Glob::new(b"/ETC/*", false).matches(b"/etc/passwd"));
    }
}
