//! Field values as the evaluator sees them, and their text and JSON forms for alerts.

use std::borrow::Cow;
use std::fmt::Write as _;

/// One value of a field for one event. A field that does not apply is `None` at the call site,
/// never a special variant, so every comparison handles "missing" the same way.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Val<'a> {
    /// Bytes from the kernel (paths, argv) or computed text; compared as bytes.
    Str(Cow<'a, [u8]>),
    Int(i64),
    Bool(bool),
    /// A number that also has a symbolic name (`PTRACE_ATTACH`, `O_WRONLY|O_CREAT`, `SIGKILL`):
    /// it equals either spelling, orders by the number, and prints as the name, like Falco.
    Named(i64, Cow<'a, str>),
}

impl<'a> Val<'a> {
    pub fn borrowed(b: &'a [u8]) -> Val<'a> {
        Val::Str(Cow::Borrowed(b))
    }

    pub fn owned(b: Vec<u8>) -> Val<'a> {
        Val::Str(Cow::Owned(b))
    }

    pub fn text(s: &'a str) -> Val<'a> {
        Val::Str(Cow::Borrowed(s.as_bytes()))
    }

    /// Appends the value as alert text (bytes shown lossily as UTF-8).
    pub fn write_text(&self, out: &mut String) {
        match self {
            Val::Str(b) => out.push_str(&String::from_utf8_lossy(b)),
            Val::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Val::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Val::Named(_, n) => out.push_str(n),
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Val::Str(b) => serde_json::Value::from(String::from_utf8_lossy(b).into_owned()),
            Val::Int(i) => serde_json::Value::from(*i),
            Val::Bool(b) => serde_json::Value::from(*b),
            Val::Named(_, n) => serde_json::Value::from(n.to_string()),
        }
    }

    /// The value's bytes for string operators (numbers in decimal, allocated only then).
    pub fn bytes(&self) -> Cow<'_, [u8]> {
        match self {
            Val::Str(b) => Cow::Borrowed(b),
            Val::Named(_, n) => Cow::Borrowed(n.as_bytes()),
            Val::Int(i) => Cow::Owned(i.to_string().into_bytes()),
            Val::Bool(b) => Cow::Borrowed(if *b { b"true" } else { b"false" }),
        }
    }

    /// The value as a number, when it is one or a string that parses as one.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Val::Int(i) | Val::Named(i, _) => Some(*i),
            Val::Bool(b) => Some(i64::from(*b)),
            Val::Str(b) => parse_int(b),
        }
    }
}

/// Parses a decimal, `0x` hexadecimal or signed integer, as Falco's numeric literals.
pub(crate) fn parse_int(b: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(b).ok()?.trim();
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let magnitude = if let Some(hex) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        u64::from_str_radix(hex, 16).ok()?
    } else {
        digits.parse::<u64>().ok()?
    };
    if neg {
        0i64.checked_sub_unsigned(magnitude)
    } else {
        // Unsigned 64-bit values (masks, user_data) keep their bits.
        Some(magnitude as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ints_parse_like_falco_literals() {
        assert_eq!(parse_int(b"42"), Some(42));
        assert_eq!(parse_int(b"-1"), Some(-1));
        assert_eq!(parse_int(b"0x10"), Some(16));
        assert_eq!(parse_int(b"18446744073709551615"), Some(-1));
        assert_eq!(parse_int(b"abc"), None);
        assert_eq!(parse_int(b""), None);
        let mut s = String::new();
        Val::Named(16, "PTRACE_ATTACH".into()).write_text(&mut s);
        Val::Int(-3).write_text(&mut s);
        assert_eq!(s, "PTRACE_ATTACH-3");
    }
}
