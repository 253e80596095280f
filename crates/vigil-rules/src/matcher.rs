//! Operators compiled against their right-hand side: sets are hashed, globs and regexes
//! compiled, `pmatch` prefixes put in a trie, `contains` needles in a memmem finder, all once at
//! load. Matching a value allocates nothing unless a number meets a string operator.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::net::IpAddr;

use memchr::memmem;

use crate::condition::ast::Op;
use crate::glob::Glob;
use crate::value::{parse_int, parse_ip, Net, Val};

/// FNV-1a: set keys are short strings from the rules file, looked up once per check; SipHash's
/// flooding resistance buys nothing there and costs a third of a lookup.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

type FastSet<T> = HashSet<T, BuildHasherDefault<Fnv>>;
type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<Fnv>>;

/// A literal with its possible readings, decided once.
#[derive(Debug, Clone)]
pub(crate) struct Lit {
    bytes: Box<[u8]>,
    int: Option<i64>,
    boolean: Option<bool>,
    ip: Option<IpAddr>,
    net: Option<Net>,
}

impl Lit {
    pub fn new(b: &[u8]) -> Lit {
        let boolean = if b.eq_ignore_ascii_case(b"true") {
            Some(true)
        } else if b.eq_ignore_ascii_case(b"false") {
            Some(false)
        } else {
            None
        };
        Lit {
            bytes: b.into(),
            int: parse_int(b),
            boolean,
            ip: parse_ip(b),
            net: Net::parse(b),
        }
    }

    fn equals(&self, v: &Val<'_>) -> bool {
        match v {
            Val::Str(b) => **b == *self.bytes,
            Val::Int(i) => self.int == Some(*i),
            Val::Bool(b) => self.boolean == Some(*b),
            Val::Named(n, t) => *t.as_bytes() == *self.bytes || self.int == Some(*n),
            Val::Ip(ip) => self.ip == Some(*ip) || self.net.is_some_and(|n| n.contains(ip)),
        }
    }

    fn order(&self, v: &Val<'_>) -> Option<std::cmp::Ordering> {
        match v {
            Val::Str(b) => match (self.int, parse_int(b)) {
                (Some(l), Some(r)) => Some(r.cmp(&l)),
                _ => Some((**b).cmp(&*self.bytes)),
            },
            Val::Ip(ip) => Some(ip.cmp(&self.ip?)),
            other => Some(other.as_int()?.cmp(&self.int?)),
        }
    }
}

/// The items of an `in`/`intersects` list.
#[derive(Debug, Clone, Default)]
pub(crate) struct Set {
    strs: FastSet<Box<[u8]>>,
    ints: FastSet<i64>,
    ips: FastSet<IpAddr>,
    nets: Vec<Net>,
}

impl Set {
    pub fn new<'i>(items: impl IntoIterator<Item = &'i [u8]>) -> Set {
        let mut s = Set::default();
        for it in items {
            if let Some(i) = parse_int(it) {
                s.ints.insert(i);
            }
            if let Some(ip) = parse_ip(it) {
                s.ips.insert(ip);
            }
            if let Some(n) = Net::parse(it) {
                s.nets.push(n);
            }
            s.strs.insert(it.into());
        }
        s
    }

    fn contains(&self, v: &Val<'_>) -> bool {
        match v {
            Val::Str(b) => self.strs.contains(&**b),
            Val::Int(i) => self.ints.contains(i),
            Val::Bool(b) => self
                .strs
                .contains(if *b { &b"true"[..] } else { &b"false"[..] }),
            Val::Named(n, t) => self.ints.contains(n) || self.strs.contains(t.as_bytes()),
            Val::Ip(ip) => self.ips.contains(ip) || self.nets.iter().any(|n| n.contains(ip)),
        }
    }
}

/// Path prefixes by component: `/etc` matches `/etc` and `/etc/passwd`, not `/etcfoo`.
#[derive(Debug, Clone, Default)]
pub(crate) struct PrefixTrie {
    terminal: bool,
    children: FastMap<Box<[u8]>, PrefixTrie>,
}

impl PrefixTrie {
    pub fn new<'i>(items: impl IntoIterator<Item = &'i [u8]>) -> PrefixTrie {
        let mut root = PrefixTrie::default();
        for it in items {
            let mut node = &mut root;
            for comp in components(it) {
                node = node.children.entry(comp.into()).or_default();
            }
            node.terminal = true;
        }
        root
    }

    fn matches(&self, path: &[u8]) -> bool {
        let mut node = self;
        if node.terminal {
            return true;
        }
        for comp in components(path) {
            match node.children.get(comp) {
                Some(n) if n.terminal => return true,
                Some(n) => node = n,
                None => return false,
            }
        }
        false
    }
}

fn components(p: &[u8]) -> impl Iterator<Item = &[u8]> {
    p.split(|c| *c == b'/').filter(|c| !c.is_empty())
}

/// An operator with its compiled right-hand side.
#[derive(Debug, Clone)]
pub(crate) enum Matcher {
    Exists,
    Eq(Lit),
    Ne(Lit),
    Lt(Lit),
    Le(Lit),
    Gt(Lit),
    Ge(Lit),
    In(Set),
    Pmatch(PrefixTrie),
    Contains(Box<memmem::Finder<'static>>),
    /// Lower-cased needle, compared ASCII-case-insensitively like strcasestr.
    IContains(Box<[u8]>),
    StartsWith(Box<[u8]>),
    EndsWith(Box<[u8]>),
    Glob(Glob),
    Regex(regex::bytes::Regex),
}

/// Why a right-hand side cannot be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MatcherError {
    #[error("invalid regex '{pattern}': {reason}")]
    Regex { pattern: String, reason: String },
    #[error("'{0}' is not a hex string (b* operators take hex bytes)")]
    Hex(String),
    #[error("operator {0} needs a list")]
    NeedsList(&'static str),
    #[error("operator {0} takes a single value, not a list")]
    NeedsValue(&'static str),
}

impl Matcher {
    /// A single-value operator.
    pub fn value(op: Op, v: &[u8]) -> Result<Matcher, MatcherError> {
        Ok(match op {
            Op::Exists => Matcher::Exists,
            Op::Eq => Matcher::Eq(Lit::new(v)),
            Op::Ne => Matcher::Ne(Lit::new(v)),
            Op::Lt => Matcher::Lt(Lit::new(v)),
            Op::Le => Matcher::Le(Lit::new(v)),
            Op::Gt => Matcher::Gt(Lit::new(v)),
            Op::Ge => Matcher::Ge(Lit::new(v)),
            Op::Contains => Matcher::Contains(Box::new(memmem::Finder::new(v).into_owned())),
            Op::BContains => {
                Matcher::Contains(Box::new(memmem::Finder::new(&hex(v)?).into_owned()))
            }
            Op::IContains => Matcher::IContains(v.to_ascii_lowercase().into()),
            Op::StartsWith => Matcher::StartsWith(v.into()),
            Op::BStartsWith => Matcher::StartsWith(hex(v)?.into()),
            Op::EndsWith => Matcher::EndsWith(v.into()),
            Op::Glob => Matcher::Glob(Glob::new(v, false)),
            Op::IGlob => Matcher::Glob(Glob::new(v, true)),
            Op::Regex => {
                let pattern = String::from_utf8_lossy(v).into_owned();
                // libsinsp anchors both ends (RE2 ANCHOR_BOTH).
                let re = regex::bytes::Regex::new(&format!("^(?:{pattern})$")).map_err(|e| {
                    MatcherError::Regex {
                        pattern,
                        reason: e.to_string(),
                    }
                })?;
                Matcher::Regex(re)
            }
            Op::In | Op::Intersects | Op::Pmatch => {
                return Err(MatcherError::NeedsList(op.name()));
            }
        })
    }

    /// A list operator.
    pub fn list<'i>(
        op: Op,
        items: impl IntoIterator<Item = &'i [u8]>,
    ) -> Result<Matcher, MatcherError> {
        match op {
            Op::In | Op::Intersects => Ok(Matcher::In(Set::new(items))),
            Op::Pmatch => Ok(Matcher::Pmatch(PrefixTrie::new(items))),
            other => Err(MatcherError::NeedsValue(other.name())),
        }
    }

    pub fn matches(&self, v: &Val<'_>) -> bool {
        use std::cmp::Ordering::*;
        match self {
            Matcher::Exists => true,
            Matcher::Eq(l) => l.equals(v),
            Matcher::Ne(l) => !l.equals(v),
            Matcher::Lt(l) => l.order(v) == Some(Less),
            Matcher::Le(l) => matches!(l.order(v), Some(Less | Equal)),
            Matcher::Gt(l) => l.order(v) == Some(Greater),
            Matcher::Ge(l) => matches!(l.order(v), Some(Greater | Equal)),
            Matcher::In(s) => s.contains(v),
            Matcher::Pmatch(t) => t.matches(&v.bytes()),
            Matcher::Contains(f) => f.find(&v.bytes()).is_some(),
            Matcher::IContains(n) => icontains(&v.bytes(), n),
            Matcher::StartsWith(p) => v.bytes().starts_with(p),
            Matcher::EndsWith(p) => v.bytes().ends_with(p),
            Matcher::Glob(g) => g.matches(&v.bytes()),
            Matcher::Regex(r) => r.is_match(&v.bytes()),
        }
    }
}

fn icontains(hay: &[u8], needle: &[u8]) -> bool {
    if needle.is_empty() {
        return true;
    }
    let first = needle[0];
    hay.windows(needle.len())
        .any(|w| w[0].to_ascii_lowercase() == first && w.eq_ignore_ascii_case(needle))
}

fn hex(v: &[u8]) -> Result<Vec<u8>, MatcherError> {
    let err = || MatcherError::Hex(String::from_utf8_lossy(v).into_owned());
    if !v.len().is_multiple_of(2) {
        return Err(err());
    }
    v.chunks(2)
        .map(|p| {
            std::str::from_utf8(p)
                .ok()
                .and_then(|s| u8::from_str_radix(s, 16).ok())
                .ok_or_else(err)
        })
        .collect()
}

/// Compares two field values (`val(other.field)`): numbers numerically, otherwise as bytes.
pub(crate) fn compare_values(op: Op, l: &Val<'_>, r: &Val<'_>) -> bool {
    use std::cmp::Ordering::*;
    let ord = match (l, r) {
        (Val::Str(a), Val::Str(b)) => Some(a.cmp(b)),
        (Val::Bool(a), Val::Bool(b)) => Some(a.cmp(b)),
        (Val::Ip(a), Val::Ip(b)) => Some(a.cmp(b)),
        _ => match (l.as_int(), r.as_int()) {
            (Some(a), Some(b)) => Some(a.cmp(&b)),
            _ => Some(l.bytes().cmp(&r.bytes())),
        },
    };
    let b = r.bytes();
    match op {
        Op::Eq => ord == Some(Equal),
        Op::Ne => ord != Some(Equal),
        Op::Lt => ord == Some(Less),
        Op::Le => matches!(ord, Some(Less | Equal)),
        Op::Gt => ord == Some(Greater),
        Op::Ge => matches!(ord, Some(Greater | Equal)),
        Op::Contains => memmem::find(&l.bytes(), &b).is_some(),
        Op::IContains => icontains(&l.bytes(), &b.to_ascii_lowercase()),
        Op::StartsWith => l.bytes().starts_with(&b),
        Op::EndsWith => l.bytes().ends_with(&b),
        Op::In | Op::Intersects => ord == Some(Equal),
        Op::Glob => Glob::new(&b, false).matches(&l.bytes()),
        Op::IGlob => Glob::new(&b, true).matches(&l.bytes()),
        Op::Pmatch => PrefixTrie::new([&b[..]]).matches(&l.bytes()),
        Op::BContains | Op::BStartsWith | Op::Regex | Op::Exists => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    fn s(b: &str) -> Val<'_> {
        Val::Str(Cow::Borrowed(b.as_bytes()))
    }

    #[test]
    fn literals_compare_by_type() {
        let eq = Matcher::value(Op::Eq, b"16").unwrap();
        assert!(eq.matches(&Val::Int(16)));
        assert!(eq.matches(&s("16")));
        assert!(eq.matches(&Val::Named(16, "PTRACE_ATTACH".into())));
        let eq = Matcher::value(Op::Eq, b"PTRACE_ATTACH").unwrap();
        assert!(eq.matches(&Val::Named(16, "PTRACE_ATTACH".into())));
        assert!(!eq.matches(&Val::Int(16)));
        let lt = Matcher::value(Op::Lt, b"1000").unwrap();
        assert!(lt.matches(&Val::Int(999)));
        assert!(!lt.matches(&Val::Int(1000)));
        assert!(lt.matches(&s("999")));
        assert!(Matcher::value(Op::Eq, b"true")
            .unwrap()
            .matches(&Val::Bool(true)));
        let set = Matcher::list(Op::In, [&b"a"[..], b"2"]).unwrap();
        assert!(set.matches(&s("a")) && set.matches(&Val::Int(2)) && !set.matches(&s("b")));
    }

    #[test]
    fn ips_compare_as_addresses_and_networks() {
        let ip = |t: &str| Val::Ip(t.parse().unwrap());
        let m = |op, rhs: &str, v: &Val<'_>| Matcher::value(op, rhs.as_bytes()).unwrap().matches(v);
        assert!(m(Op::Eq, "10.0.0.1", &ip("10.0.0.1")));
        assert!(m(Op::Eq, "::ffff:10.0.0.1", &ip("10.0.0.1")));
        assert!(m(Op::Eq, "0:0:0:0:0:0:0:1", &ip("::1")));
        assert!(!m(Op::Eq, "10.0.0.2", &ip("10.0.0.1")));
        assert!(m(Op::Ne, "10.0.0.2", &ip("10.0.0.1")));
        assert!(m(Op::Eq, "10.0.0.0/8", &ip("10.0.0.1")));
        assert!(!m(Op::Eq, "10.0.0.0/8", &ip("::1")));
        assert!(m(Op::StartsWith, "10.", &ip("10.0.0.1")));
        assert!(m(Op::Gt, "10.0.0.1", &ip("10.0.0.2")));
        assert!(!m(Op::Gt, "x", &ip("10.0.0.2")));
        let set = Matcher::list(Op::In, [&b"192.168.0.0/16"[..], b"::1", b"nope"]).unwrap();
        assert!(set.matches(&ip("192.168.7.7")));
        assert!(set.matches(&ip("::1")));
        assert!(!set.matches(&ip("10.0.0.1")));
        assert!(compare_values(Op::Eq, &ip("::1"), &ip("::1")));
        assert!(compare_values(Op::Lt, &ip("10.0.0.1"), &ip("10.0.0.2")));
    }

    #[test]
    fn pmatch_is_by_component() {
        let t = PrefixTrie::new([&b"/etc"[..], b"/usr/bin/"]);
        assert!(t.matches(b"/etc"));
        assert!(t.matches(b"/etc/passwd"));
        assert!(!t.matches(b"/etcfoo"));
        assert!(t.matches(b"/usr/bin/ls"));
        assert!(!t.matches(b"/usr/lib"));
        assert!(PrefixTrie::new([&b"/"[..]]).matches(b"/anything"));
    }

    #[test]
    fn string_operators() {
        let m = |op, rhs: &str, v: &str| Matcher::value(op, rhs.as_bytes()).unwrap().matches(&s(v));
        assert!(m(Op::Contains, "sh", "bash"));
        assert!(m(Op::IContains, "BaSh", "/bin/BASH -c"));
        assert!(!m(Op::IContains, "zsh", "bash"));
        assert!(m(Op::StartsWith, "/etc", "/etc/x"));
        assert!(m(Op::EndsWith, ".sh", "a.sh"));
        assert!(m(Op::Regex, "ba(sh|d)", "bash"));
        assert!(!m(Op::Regex, "ba", "bash"));
        assert!(m(Op::BContains, "6173", "bash"));
        assert!(Matcher::value(Op::Regex, b"(").is_err());
        assert!(Matcher::value(Op::BContains, b"zz").is_err());
    }
}
