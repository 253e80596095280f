//! What the caller hands to [`crate::RuleSet::evaluate`] for one event.

use std::fmt;
use std::net::IpAddr;

use vigil_enrich::{Ancestor, ProcInfo};
use vigil_events::Event;

/// User, group and host names, resolved by the caller (this crate does no I/O). Return `None`
/// for an id or address without a name: `user.name` or `fd.sip.name` is then missing, as in
/// Falco.
pub trait NameLookup {
    fn user(&self, uid: u32) -> Option<&str>;
    fn group(&self, gid: u32) -> Option<&str>;

    /// The DNS name learned for `ip` (from the answers local processes received), valid at
    /// `time_ns` (the event's CLOCK_BOOTTIME time, so that a replay resolves as the live run
    /// did). Read by `fd.sip.name`, `fd.cip.name`, `fd.lip.name` and `fd.rip.name`. IPv4 comes
    /// as [`IpAddr::V4`], never as IPv4-mapped IPv6. The default knows no names.
    fn ip_name(&self, ip: &IpAddr, time_ns: u64) -> Option<&str> {
        let _ = (ip, time_ns);
        None
    }
}

/// A [`NameLookup`] that knows no names.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoNames;

impl NameLookup for NoNames {
    fn user(&self, _uid: u32) -> Option<&str> {
        None
    }

    fn group(&self, _gid: u32) -> Option<&str> {
        None
    }
}

/// One event with its enrichment, as `vigil-export` renders it: `proc` is the subject's table
/// entry (exec/fork: after applying the event; exit: before retiring it; network events: the
/// socket's owner), `ancestry` starts at its parent.
pub struct EvalContext<'a> {
    pub event: &'a Event,
    pub proc: Option<&'a ProcInfo>,
    pub ancestry: &'a [Ancestor],
    pub names: &'a dyn NameLookup,
    /// The container of the event's cgroup; `None` on the host (`container.id` is `host`).
    pub container: Option<&'a vigil_identity::ContainerRef>,
    /// Its Kubernetes pod, when the agent watches the Kubernetes API and knows it.
    pub pod: Option<&'a vigil_identity::PodMeta>,
}

impl fmt::Debug for EvalContext<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EvalContext")
            .field("event", self.event)
            .field("proc", &self.proc)
            .field("ancestry", &self.ancestry)
            .finish_non_exhaustive()
    }
}
