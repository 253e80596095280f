//! Container and pod identity from the cgroup v2 hierarchy.
//!
//! The kernel tags every event with a cgroup id (the inode number of the cgroup's directory in
//! the cgroup v2 mount). The agent learns id -> path from the `cgroup_mkdir` tracepoint and by
//! walking the mount at start ([`IdentityTable::seed_from_dir`]); this crate turns a path into a
//! [`ContainerRef`] ([`parse`]) and keeps a bounded id -> [`Entry`] table ([`IdentityTable`]).
//!
//! Pure logic, no I/O, except [`IdentityTable::seed_from_dir`], which reads the directory it is
//! given. The supported path formats are documented in `docs/identity.md` and on [`parse_with`].

mod parse;
mod pod;
mod table;

pub use parse::{
    parse, parse_with, pod_cgroup_uid, ContainerRef, Hints, Qos, Runtime, RuntimeMeta,
    DEFAULT_CONTAINERD_NAMESPACES,
};
pub use pod::{ContainerMeta, Owner, PodMeta};
pub use table::{
    Entry, IdentityTable, TableStats, DEFAULT_CAPACITY, DEFAULT_GRACE, MAX_SEED_DEPTH,
};
