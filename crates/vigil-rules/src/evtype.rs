//! `evt.type` names and the small integer ids the rule index uses.
//!
//! Every event maps to one name: exec → `execve`, fork → `clone`, exit → `procexit`, file and
//! syscall events → their syscall's name. Ids are positions in [`all_event_types`], plus one
//! extra id for a syscall number this build cannot name, so that rules indexed by type never
//! see it but type-agnostic rules still do.

use std::sync::OnceLock;

use vigil_events::{names, Event};

/// Syscall numbers Vigil's sensors report (`enum vigil_syscall`): file calls, then security calls.
const SYSCALL_IDS: [std::ops::RangeInclusive<u32>; 2] = [1..=26, 40..=70];

struct Table {
    names: Vec<&'static str>,
    /// Syscall number → type id (index into `names`).
    by_syscall: Vec<Option<u16>>,
}

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut names: Vec<&'static str> = vec!["execve", "clone", "procexit"];
        let max = SYSCALL_IDS.iter().map(|r| *r.end()).max().unwrap_or(0);
        let mut by_syscall = vec![None; max as usize + 1];
        for id in SYSCALL_IDS.iter().flat_map(|r| r.clone()) {
            let name = names::syscall(id);
            if name == "unknown" {
                continue;
            }
            let pos = match names.iter().position(|n| *n == name) {
                Some(p) => p,
                None => {
                    names.push(name);
                    names.len() - 1
                }
            };
            by_syscall[id as usize] = u16::try_from(pos).ok();
        }
        Table { names, by_syscall }
    })
}

/// Every `evt.type` Vigil can produce, without duplicates. Use it to build
/// [`crate::LoadOptions::observable`] from the sensors that are running.
pub fn all_event_types() -> &'static [&'static str] {
    &table().names
}

/// Number of distinct type ids, including the one for unnamed syscalls.
pub(crate) fn id_count() -> usize {
    table().names.len() + 1
}

/// The id of a name Vigil produces, `None` for names it never produces (`connect`, `fork`).
pub(crate) fn id_of(name: &str) -> Option<usize> {
    table().names.iter().position(|n| *n == name)
}

/// The name for an id (the extra id is "unknown").
pub(crate) fn name_of(id: usize) -> &'static str {
    table().names.get(id).copied().unwrap_or("unknown")
}

/// The type id of an event.
pub(crate) fn id_of_event(event: &Event) -> usize {
    let syscall = match event {
        Event::Exec(_) => return 0,
        Event::Fork(_) => return 1,
        Event::Exit(_) => return 2,
        Event::File(f) => f.syscall,
        Event::Syscall(s) => s.syscall,
    };
    let t = table();
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
        ] {
            assert!(id_of(n).is_some(), "{n}");
        }
        assert_eq!(id_of("connect"), None);
        assert_eq!(id_count(), all.len() + 1);
        assert_eq!(name_of(id_of("setuid").unwrap()), "setuid");
    }
}
