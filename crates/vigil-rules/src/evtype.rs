//! `evt.type` names and the small integer ids the rule index uses.
//!
//! Every event maps to one name: exec → `execve`, fork → `clone`, exit → `procexit`, file and
//! syscall events → their syscall's name; TCP connection events → `connect` (an active open,
//! established or failed), `accept` or `close`; the records user space makes → Vigil's own
//! names `udp_flow`, `dns`, `http` and `packet_drop`. Ids are positions in
//! [`all_event_types`], plus one extra id for a syscall number this build cannot name (and for
//! `capture` records, which rules never see), so that rules indexed by type never see it but
//! type-agnostic rules still do.
//!
//! A few Falco names are aliases of a name Vigil produces: `accept4` is `accept` (the
//! connection event does not say which of the two calls returned the socket).

use std::sync::OnceLock;

use vigil_events::net::ConnPhase;
use vigil_events::{names, Event};

/// Syscall numbers Vigil's sensors report (`enum vigil_syscall`): file calls, then security calls.
const SYSCALL_IDS: [std::ops::RangeInclusive<u32>; 2] = [1..=26, 40..=70];

/// Names of the network events, in [`NetType`] order.
const NET_NAMES: [&str; 7] = [
    "connect",
    "accept",
    "close",
    "udp_flow",
    "dns",
    "http",
    "packet_drop",
];

/// Falco names that mean a name Vigil produces: (alias, name).
const ALIASES: &[(&str, &str)] = &[("accept4", "accept")];

/// Index into [`NET_NAMES`] / `Table::net`.
#[derive(Clone, Copy)]
enum NetType {
    Connect,
    Accept,
    Close,
    UdpFlow,
    Dns,
    Http,
    PacketDrop,
}

struct Table {
    names: Vec<&'static str>,
    /// Syscall number → type id (index into `names`).
    by_syscall: Vec<Option<u16>>,
    /// [`NetType`] → type id.
    net: [u16; NET_NAMES.len()],
}

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut names: Vec<&'static str> = vec!["execve", "clone", "procexit"];
        let mut add = |name: &'static str| -> u16 {
            let pos = match names.iter().position(|n| *n == name) {
                Some(p) => p,
                None => {
                    names.push(name);
                    names.len() - 1
                }
            };
            u16::try_from(pos).unwrap_or(u16::MAX)
        };
        let max = SYSCALL_IDS.iter().map(|r| *r.end()).max().unwrap_or(0);
        let mut by_syscall = vec![None; max as usize + 1];
        for id in SYSCALL_IDS.iter().flat_map(|r| r.clone()) {
            let name = names::syscall(id);
            if name == "unknown" {
                continue;
            }
            by_syscall[id as usize] = Some(add(name));
        }
        let net = NET_NAMES.map(&mut add);
        Table {
            names,
            by_syscall,
            net,
        }
    })
}

/// Every `evt.type` Vigil can produce, without duplicates (aliases such as `accept4` are not
/// listed). Use it to build [`crate::LoadOptions::observable`] from the sensors that are
/// running.
pub fn all_event_types() -> &'static [&'static str] {
    &table().names
}

/// Number of distinct type ids, including the one for unnamed syscalls.
pub(crate) fn id_count() -> usize {
    table().names.len() + 1
}

/// The name Vigil produces for `name`: itself, or what an alias stands for (`accept4` →
/// `accept`).
pub(crate) fn canonical(name: &str) -> &str {
    ALIASES
        .iter()
        .find(|(alias, _)| *alias == name)
        .map_or(name, |(_, n)| n)
}

/// Whether `name` (canonical) is in `observable`, directly or through an alias.
pub(crate) fn observed(name: &str, observable: &std::collections::HashSet<String>) -> bool {
    observable.contains(name)
        || ALIASES
            .iter()
            .any(|(alias, n)| *n == name && observable.contains(*alias))
}

/// The id of a name Vigil produces (or of an alias of one), `None` for names it never produces
/// (`fork`, `sendto`).
pub(crate) fn id_of(name: &str) -> Option<usize> {
    let name = canonical(name);
    table().names.iter().position(|n| *n == name)
}

/// The name for an id (the extra id is "unknown").
pub(crate) fn name_of(id: usize) -> &'static str {
    table().names.get(id).copied().unwrap_or("unknown")
}

/// The type id of an event.
pub(crate) fn id_of_event(event: &Event) -> usize {
    let t = table();
    let net = |n: NetType| usize::from(t.net[n as usize]);
    let syscall = match event {
        Event::Exec(_) => return 0,
        Event::Fork(_) => return 1,
        Event::Exit(_) => return 2,
        Event::File(f) => f.syscall,
        Event::Syscall(s) => s.syscall,
        Event::Conn(c) => {
            return net(match c.phase {
                ConnPhase::Connect | ConnPhase::ConnectFailed => NetType::Connect,
                ConnPhase::Accept => NetType::Accept,
                ConnPhase::Close => NetType::Close,
            })
        }
        Event::Udp(_) => return net(NetType::UdpFlow),
        Event::Dns(_) => return net(NetType::Dns),
        Event::Http(_) => return net(NetType::Http),
        Event::Drop(_) => return net(NetType::PacketDrop),
        Event::Capture(_) | Event::Enforce(_) | Event::Cgroup(_) => return t.names.len(),
    };
    t.by_syscall
        .get(syscall as usize)
        .copied()
        .flatten()
        .map_or(t.names.len(), usize::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_complete() {
        let all = all_event_types();
        assert_eq!(&all[..3], ["execve", "clone", "procexit"]);
        let mut sorted = all.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), all.len());
        for n in [
            "openat",
            "unlinkat",
            "ptrace",
            "clone3",
            "execveat",
            "io_uring_submit",
            "connect",
            "accept",
            "close",
            "udp_flow",
            "dns",
            "http",
            "packet_drop",
        ] {
            assert!(id_of(n).is_some(), "{n}");
        }
        assert_eq!(id_of("sendto"), None);
        assert_eq!(id_of("fork"), None);
        assert_eq!(id_of("accept4"), id_of("accept"));
        assert_eq!(canonical("accept4"), "accept");
        assert!(!all.contains(&"accept4"));
        assert_eq!(id_count(), all.len() + 1);
        assert!(id_count() <= 128, "type masks are u128");
        assert_eq!(name_of(id_of("setuid").unwrap()), "setuid");
        assert_eq!(name_of(id_of("packet_drop").unwrap()), "packet_drop");
    }
}
