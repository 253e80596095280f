//! Which event types a rule can fire on, from its condition: rules are evaluated only for the
//! types they can match, and rules that only name types this node never observes are disabled.

use std::collections::{BTreeSet, HashSet};

use crate::eval::Node;
use crate::evtype;

/// The event types a condition can match: a finite set, or everything but a finite set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TypeSet {
    Only(BTreeSet<String>),
    AllBut(BTreeSet<String>),
}

impl TypeSet {
    fn all() -> TypeSet {
        TypeSet::AllBut(BTreeSet::new())
    }

    fn and(self, other: TypeSet) -> TypeSet {
        use TypeSet::*;
        match (self, other) {
            (Only(a), Only(b)) => Only(a.intersection(&b).cloned().collect()),
            (Only(a), AllBut(b)) | (AllBut(b), Only(a)) => {
                Only(a.difference(&b).cloned().collect())
            }
            (AllBut(a), AllBut(b)) => AllBut(a.union(&b).cloned().collect()),
        }
    }

    fn or(self, other: TypeSet) -> TypeSet {
        use TypeSet::*;
        match (self, other) {
            (Only(a), Only(b)) => Only(a.union(&b).cloned().collect()),
            (Only(a), AllBut(b)) | (AllBut(b), Only(a)) => {
                AllBut(b.difference(&a).cloned().collect())
            }
            (AllBut(a), AllBut(b)) => AllBut(a.intersection(&b).cloned().collect()),
        }
    }

    fn not(self) -> TypeSet {
        match self {
            TypeSet::Only(a) => TypeSet::AllBut(a),
            TypeSet::AllBut(a) => TypeSet::Only(a),
        }
    }
}

/// An upper bound of the types `node` matches, and whether it is exact (the node's value
/// depends on the type alone), which is what makes negating it sound.
pub(crate) fn possible(node: &Node) -> (TypeSet, bool) {
    match node {
        // Aliases (`accept4`) stand for the name Vigil produces, so that `accept` and `accept4`
        // are one type here as in the masks.
        Node::Types { names, .. } => (
            TypeSet::Only(
                names
                    .iter()
                    .map(|n| evtype::canonical(n).to_string())
                    .collect(),
            ),
            true,
        ),
        Node::And(kids) => kids.iter().fold((TypeSet::all(), true), |(s, e), k| {
            let (ks, ke) = possible(k);
            (s.and(ks), e && ke)
        }),
        Node::Or(kids) => kids
            .iter()
            .fold((TypeSet::Only(BTreeSet::new()), true), |(s, e), k| {
                let (ks, ke) = possible(k);
                (s.or(ks), e && ke)
            }),
        Node::Not(k) => match possible(k) {
            (s, true) => (s.not(), true),
            (_, false) => (TypeSet::all(), false),
        },
        Node::Check { .. } | Node::Each { .. } | Node::Compare { .. } => (TypeSet::all(), false),
    }
}

/// Where a rule goes in the index.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Placement {
    /// Type ids to index under, and a warning when some named types are not observed.
    Ids(Vec<usize>, Option<String>),
    Disabled(String),
}

pub(crate) fn place(node: &Node, observable: &HashSet<String>) -> Placement {
    match possible(node).0 {
        TypeSet::AllBut(excluded) => {
            let ids = (0..evtype::id_count())
                .filter(|id| !excluded.contains(evtype::name_of(*id)))
                .collect();
            Placement::Ids(ids, None)
        }
        TypeSet::Only(names) if names.is_empty() => Placement::Disabled(
            "the condition can never match: its evt.type tests exclude every event type".into(),
        ),
        TypeSet::Only(names) => {
            let (seen, unseen): (Vec<&String>, Vec<&String>) = names
                .iter()
                .partition(|n| evtype::observed(n, observable) && evtype::id_of(n).is_some());
            let list = |v: &[&String]| v.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ");
            let what = if unseen.len() == 1 {
                "evt.type"
            } else {
                "evt.types"
            };
            let verb = if unseen.len() == 1 { "is" } else { "are" };
            if seen.is_empty() {
                return Placement::Disabled(format!(
                    "{what} {} {verb} not observed by this node's sensors",
                    list(&unseen)
                ));
            }
            let warning = (!unseen.is_empty()).then(|| {
                format!(
                    "{what} {} {verb} not observed by this node's sensors; the rule runs on {} only",
                    list(&unseen),
                    list(&seen)
                )
            });
            let ids = seen.iter().filter_map(|n| evtype::id_of(n)).collect();
            Placement::Ids(ids, warning)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn types(names: &[&str]) -> Node {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let mask = names
            .iter()
            .filter_map(|n| evtype::id_of(n))
            .fold(0u128, |m, id| m | 1 << id);
        Node::Types {
            mask,
            names: names.into(),
        }
    }

    fn only(names: &[&str]) -> TypeSet {
        TypeSet::Only(names.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn set_algebra() {
        let and = Node::And(Box::new([types(&["open", "openat"]), types(&["openat"])]));
        assert_eq!(possible(&and), (only(&["openat"]), true));
        let or = Node::Or(Box::new([types(&["open"]), types(&["execve"])]));
        assert_eq!(possible(&or).0, only(&["execve", "open"]));
        let not = Node::Not(Box::new(types(&["execve"])));
        assert_eq!(
            possible(&not).0,
            TypeSet::AllBut(["execve".to_string()].into())
        );
        let and_not = Node::And(Box::new([types(&["execve", "clone"]), not]));
        assert_eq!(possible(&and_not).0, only(&["clone"]));
        assert!(evtype::id_count() <= 128);
    }

    #[test]
    fn placement_and_observability() {
        let all: HashSet<String> = evtype::all_event_types()
            .iter()
            .map(|s| s.to_string())
            .collect();
        let p = place(&types(&["sendto"]), &all);
        assert_eq!(
            p,
            Placement::Disabled("evt.type sendto is not observed by this node's sensors".into())
        );
        let Placement::Ids(ids, Some(w)) = place(&types(&["sendto", "execve"]), &all) else {
            panic!()
        };
        assert_eq!(ids, [0]);
        assert!(
            w.contains("sendto") && w.contains("runs on execve only"),
            "{w}"
        );
        // Without the network sensor, `connect` is not observed.
        let no_net: HashSet<String> = all
            .iter()
            .filter(|n| !["connect", "accept", "close"].contains(&n.as_str()))
            .cloned()
            .collect();
        assert_eq!(
            place(&types(&["connect"]), &no_net),
            Placement::Disabled("evt.type connect is not observed by this node's sensors".into())
        );
        // An alias is one type with what it stands for: indexed once.
        let accept = evtype::id_of("accept").unwrap();
        assert_eq!(
            place(&types(&["accept", "accept4"]), &all),
            Placement::Ids(vec![accept], None)
        );
        let and = Node::And(Box::new([types(&["accept"]), types(&["accept4"])]));
        assert_eq!(place(&and, &all), Placement::Ids(vec![accept], None));
        let Placement::Ids(ids, None) = place(&Node::Not(Box::new(types(&["execve"]))), &all)
        else {
            panic!()
        };
        assert_eq!(ids.len(), evtype::id_count() - 1);
    }
}
