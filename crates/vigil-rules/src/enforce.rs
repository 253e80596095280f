//! In-kernel enforcement: what a rule with an `action` becomes.
//!
//! A rule with `action: deny` or `action: kill` is not evaluated in user space: the rule
//! compiler lowers its condition into a [`Plan`], entries for the BPF maps that generic kernel
//! programs read, or fails the load with an error naming the part of the condition the kernel
//! cannot check. The kernel acts (or, in [`Mode::Audit`], only reports) and reports each match;
//! [`crate::RuleSet::evaluate`] skips these rules so that a match is never reported twice.
//!
//! A plan matches an attempt when **every** non-empty list of the plan has an entry that
//! matches it (an empty list matches anything): lists are alternatives, fields are required
//! together.

use std::fmt;
use std::net::IpAddr;

use serde::Serialize;

use crate::priority::Priority;

/// What the kernel does when a plan matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// The `connect`, `sendto`/`sendmsg` or `bind` call fails with `EPERM`.
    Deny,
    /// The process gets `SIGKILL` (at exec, or at an open for writing).
    Kill,
}

/// Whether the kernel acts or only reports what it would have done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Enforce,
    /// Report the match, let the call proceed.
    Audit,
}

/// The kernel program that checks a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Hook {
    /// cgroup `connect4`/`connect6`: `connect()` on TCP and UDP sockets.
    Connect,
    /// cgroup `sendmsg4`/`sendmsg6`: `sendto`, `sendmsg`, `sendmmsg` on UDP sockets.
    Sendmsg,
    /// cgroup `bind4`/`bind6`.
    Bind,
    /// An `execve`/`execveat` of a file.
    Exec,
    /// An open for writing: `open`, `openat`, `openat2` or `creat` whose flags have a write
    /// access mode (`O_WRONLY`, `O_RDWR`) or any of `O_CREAT`, `O_TRUNC`, `O_APPEND`,
    /// `__O_TMPFILE` (Falco's `evt.is_open_write`, as Vigil defines it).
    OpenWrite,
}

/// Transport protocol of a network plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum L4 {
    Tcp,
    Udp,
}

/// An address or network: `prefix` leading bits of `addr` (32 for one IPv4 address, 128 for
/// one IPv6 address). IPv4-mapped IPv6 (`::ffff:a.b.c.d`) is always given as IPv4, and the bits
/// past the prefix are zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Net {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Net {
    /// Whether `ip` is in this network; an IPv4-mapped IPv6 `ip` is compared as IPv4.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }

    /// Whether every address of `other` is in this network.
    pub fn covers(&self, other: &Net) -> bool {
        self.prefix <= other.prefix && self.contains(other.addr)
    }
}

impl fmt::Display for Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// A path test, on the resolved absolute path (as `fd.name` and `proc.exepath` show it).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PathMatch {
    /// The path is exactly this.
    Exact(Vec<u8>),
    /// The path starts with these bytes (not only at a `/`: `/tmp` also matches `/tmpfoo`).
    Prefix(Vec<u8>),
}

impl PathMatch {
    pub fn matches(&self, path: &[u8]) -> bool {
        match self {
            PathMatch::Exact(p) => path == p.as_slice(),
            PathMatch::Prefix(p) => path.starts_with(p),
        }
    }

    /// Whether every path this matches, `other` matches too.
    pub(crate) fn within(&self, other: &PathMatch) -> bool {
        match (self, other) {
            (PathMatch::Exact(a), o) => o.matches(a),
            (PathMatch::Prefix(a), PathMatch::Prefix(b)) => a.starts_with(b),
            (PathMatch::Prefix(_), PathMatch::Exact(_)) => false,
        }
    }
}

impl fmt::Display for PathMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathMatch::Exact(p) => write!(f, "{}", String::from_utf8_lossy(p)),
            PathMatch::Prefix(p) => write!(f, "{}*", String::from_utf8_lossy(p)),
        }
    }
}

/// What the kernel must check for one rule, and what to do on a match. Its position in
/// [`crate::RuleSet::enforcement`] identifies it for this load (the kernel reports it back, and
/// [`crate::RuleSet::enforcement_alert`] renders the alert).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The rule's name.
    pub rule: String,
    pub priority: Priority,
    /// The rule's output template, as written (`%field`s not filled in).
    pub output: String,
    pub action: Action,
    pub mode: Mode,
    pub hook: Hook,
    /// Connect and sendmsg: the destination; bind: the local address. Empty: any.
    pub nets: Vec<Net>,
    /// Connect and sendmsg: the destination port; bind: the port bound. Empty: any.
    pub ports: Vec<u16>,
    /// `None`: TCP and UDP. Always `Some(Udp)` for [`Hook::Sendmsg`]; `None` for exec and open.
    pub protocol: Option<L4>,
    /// Exec: the executed file; open: the opened file. Never empty for these two hooks, always
    /// empty for the network ones.
    pub paths: Vec<PathMatch>,
    /// The acting process's effective uid. Empty: any.
    pub uids: Vec<u32>,
    /// The acting process's executable (its resolved path), for every hook but exec. Empty:
    /// any.
    pub exe: Vec<PathMatch>,
    /// The workload scope: the acting process's pod is in one of these namespaces. Empty: any.
    pub namespaces: Vec<String>,
    /// The workload scope: the pod has each key with one of its values. Empty: any.
    pub pod_labels: Vec<(String, Vec<String>)>,
}

impl Plan {
    /// Whether the rule applies only to some workloads (Kubernetes namespaces or pod labels).
    pub fn scoped(&self) -> bool {
        !self.namespaces.is_empty() || !self.pod_labels.is_empty()
    }

    /// Whether a pod with this namespace and these labels is in the rule's workload scope.
    pub fn in_scope(
        &self,
        namespace: &str,
        labels: &std::collections::BTreeMap<String, String>,
    ) -> bool {
        (self.namespaces.is_empty() || self.namespaces.iter().any(|n| n == namespace))
            && self
                .pod_labels
                .iter()
                .all(|(k, vs)| labels.get(k).is_some_and(|v| vs.contains(v)))
    }
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Deny => "deny",
            Action::Kill => "kill",
        }
    }

    /// `deny`, `kill`, or `None` for `none` (ASCII case ignored); `Err` for anything else.
    pub(crate) fn parse(s: &str) -> Result<Option<Action>, ()> {
        match s.trim().to_ascii_lowercase().as_str() {
            "deny" => Ok(Some(Action::Deny)),
            "kill" => Ok(Some(Action::Kill)),
            "none" => Ok(None),
            _ => Err(()),
        }
    }
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Audit => "audit",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Mode> {
        match s.trim().to_ascii_lowercase().as_str() {
            "enforce" => Some(Mode::Enforce),
            "audit" => Some(Mode::Audit),
            _ => None,
        }
    }
}

impl Hook {
    pub fn as_str(self) -> &'static str {
        match self {
            Hook::Connect => "connect",
            Hook::Sendmsg => "sendmsg",
            Hook::Bind => "bind",
            Hook::Exec => "exec",
            Hook::OpenWrite => "open_write",
        }
    }

    /// The action the hook takes.
    pub fn action(self) -> Action {
        match self {
            Hook::Connect | Hook::Sendmsg | Hook::Bind => Action::Deny,
            Hook::Exec | Hook::OpenWrite => Action::Kill,
        }
    }

    pub(crate) fn is_network(self) -> bool {
        self.action() == Action::Deny
    }

    /// The hook for an `evt.type` name.
    pub(crate) fn of_type(name: &str) -> Option<Hook> {
        Some(match name {
            "connect" => Hook::Connect,
            "sendto" | "sendmsg" | "sendmmsg" => Hook::Sendmsg,
            "bind" => Hook::Bind,
            "execve" | "execveat" => Hook::Exec,
            "open" | "openat" | "openat2" | "creat" => Hook::OpenWrite,
            _ => return None,
        })
    }

    /// How rules of this hook are called in messages.
    pub(crate) fn rule_kind(self) -> &'static str {
        match self {
            Hook::Connect => "connect",
            Hook::Sendmsg => "sendto/sendmsg",
            Hook::Bind => "bind",
            Hook::Exec => "execve",
            Hook::OpenWrite => "open",
        }
    }
}

impl L4 {
    pub fn as_str(self) -> &'static str {
        match self {
            L4::Tcp => "tcp",
            L4::Udp => "udp",
        }
    }
}

macro_rules! display_as_str {
    ($($t:ty),*) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    )*};
}

display_as_str!(Action, Mode, Hook, L4);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nets_and_paths() {
        let n = Net {
            addr: "10.0.0.0".parse().unwrap(),
            prefix: 8,
        };
        assert!(n.contains("10.2.3.4".parse().unwrap()));
        assert!(n.contains("::ffff:10.2.3.4".parse().unwrap()));
        assert!(!n.contains("11.0.0.1".parse().unwrap()));
        let all6 = Net {
            addr: "::".parse().unwrap(),
            prefix: 0,
        };
        assert!(all6.contains("2001:db8::1".parse().unwrap()));
        assert!(!all6.contains("10.0.0.1".parse().unwrap()));
        let host = Net {
            addr: "10.1.0.0".parse().unwrap(),
            prefix: 16,
        };
        assert!(n.covers(&host) && !host.covers(&n));
        assert_eq!(n.to_string(), "10.0.0.0/8");
        let p = PathMatch::Prefix(b"/tmp/".to_vec());
        assert!(p.matches(b"/tmp/x") && !p.matches(b"/tmp"));
        assert!(PathMatch::Exact(b"/tmp/x".to_vec()).within(&p));
        assert!(PathMatch::Prefix(b"/tmp/a/".to_vec()).within(&p));
        assert!(!p.within(&PathMatch::Exact(b"/tmp/".to_vec())));
        assert_eq!(p.to_string(), "/tmp/*");
        assert_eq!(Action::parse("Deny"), Ok(Some(Action::Deny)));
        assert_eq!(Action::parse("none"), Ok(None));
        assert_eq!(Action::parse("block"), Err(()));
        assert_eq!(Hook::OpenWrite.to_string(), "open_write");
        assert_eq!(
            serde_json::to_string(&Hook::OpenWrite).unwrap(),
            "\"open_write\""
        );
    }
}
