//! Field values as the evaluator sees them, and their text and JSON forms for alerts.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::net::IpAddr;

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
    /// An IP address (`fd.sip`, `fd.snet`, ...): equals an address literal in any spelling
    /// (`::1`, `0:0:0:0:0:0:0:1`, `::ffff:10.0.0.1` for IPv4) and matches a `net/prefix`
    /// literal it is in; string operators see its text. IPv4 is never IPv4-mapped IPv6.
    Ip(IpAddr),
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
            Val::Ip(ip) => {
                let _ = write!(out, "{ip}");
            }
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Val::Str(b) => serde_json::Value::from(String::from_utf8_lossy(b).into_owned()),
            Val::Int(i) => serde_json::Value::from(*i),
            Val::Bool(b) => serde_json::Value::from(*b),
            Val::Named(_, n) => serde_json::Value::from(n.to_string()),
            Val::Ip(ip) => serde_json::Value::from(ip.to_string()),
        }
    }

    /// The value's bytes for string operators (numbers in decimal, allocated only then).
    pub fn bytes(&self) -> Cow<'_, [u8]> {
        match self {
            Val::Str(b) => Cow::Borrowed(b),
            Val::Named(_, n) => Cow::Borrowed(n.as_bytes()),
            Val::Int(i) => Cow::Owned(i.to_string().into_bytes()),
            Val::Bool(b) => Cow::Borrowed(if *b { b"true" } else { b"false" }),
            Val::Ip(ip) => Cow::Owned(ip.to_string().into_bytes()),
        }
    }

    /// The value as a number, when it is one or a string that parses as one.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Val::Int(i) | Val::Named(i, _) => Some(*i),
            Val::Bool(b) => Some(i64::from(*b)),
            Val::Str(b) => parse_int(b),
            Val::Ip(_) => None,
        }
    }
}

/// An IP address literal (`10.0.0.1`, `::1`, `[::1]`), IPv4-mapped IPv6 as IPv4.
pub(crate) fn parse_ip(b: &[u8]) -> Option<IpAddr> {
    let s = std::str::from_utf8(b).ok()?.trim();
    let s = s
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or(s);
    s.parse::<IpAddr>().ok().map(|ip| ip.to_canonical())
}

/// A network in CIDR notation (`10.0.0.0/8`, `fd00::/8`), as Falco's `fd.net` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Net {
    addr: IpAddr,
    prefix: u8,
}

impl Net {
    /// `addr/prefix`; the prefix must fit the family. `::ffff:a.b.c.d/n` with n >= 96 is the
    /// IPv4 network `a.b.c.d/(n-96)`, as addresses are compared as IPv4.
    pub fn parse(b: &[u8]) -> Option<Net> {
        let s = std::str::from_utf8(b).ok()?.trim();
        let (addr, prefix) = s.split_once('/')?;
        let prefix: u8 = prefix.trim().parse().ok()?;
        let addr: IpAddr = addr.trim().parse().ok()?;
        let (addr, prefix) = match addr {
            IpAddr::V4(_) if prefix <= 32 => (addr, prefix),
            IpAddr::V6(v6) if prefix <= 128 => match v6.to_ipv4_mapped() {
                Some(v4) if prefix >= 96 => (IpAddr::V4(v4), prefix - 96),
                _ => (addr, prefix),
            },
            _ => return None,
        };
        Some(Net { addr, prefix })
    }

    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    pub fn contains(&self, ip: &IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(*a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(*a) & mask
            }
            _ => false,
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

    #[test]
    fn ips_and_networks() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(parse_ip(b"10.0.0.1"), Some(ip("10.0.0.1")));
        assert_eq!(parse_ip(b"::ffff:10.0.0.1"), Some(ip("10.0.0.1")));
        assert_eq!(parse_ip(b"[0:0:0:0:0:0:0:1]"), Some(ip("::1")));
        assert_eq!(parse_ip(b"10.0.0.0/8"), None);
        assert_eq!(parse_ip(b"host"), None);
        let n = Net::parse(b"10.0.0.0/8").unwrap();
        assert!(n.contains(&ip("10.200.3.4")));
        assert!(!n.contains(&ip("11.0.0.1")));
        assert!(!n.contains(&ip("::1")));
        let all4 = Net::parse(b"0.0.0.0/0").unwrap();
        assert!(all4.contains(&ip("1.2.3.4")) && !all4.contains(&ip("::1")));
        let host = Net::parse(b"192.168.1.1/32").unwrap();
        assert!(host.contains(&ip("192.168.1.1")) && !host.contains(&ip("192.168.1.2")));
        let v6 = Net::parse(b"fd00::/8").unwrap();
        assert!(v6.contains(&ip("fd12:3456::1")) && !v6.contains(&ip("fe80::1")));
        assert!(Net::parse(b"::/0").unwrap().contains(&ip("2001:db8::1")));
        let mapped = Net::parse(b"::ffff:10.0.0.0/104").unwrap();
        assert!(mapped.contains(&ip("10.1.2.3")));
        assert_eq!(Net::parse(b"10.0.0.0/33"), None);
        assert_eq!(Net::parse(b"10.0.0.0"), None);
        assert_eq!(Net::parse(b"x/8"), None);
    }
}
