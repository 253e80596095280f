//! Reports of the enforcement programs: what a rule with an action blocked, killed or audited.

use std::net::SocketAddr;

use vigil_abi::{
    EnforceEvent, VIGIL_OUT_AUDIT, VIGIL_OUT_DENIED, VIGIL_OUT_KILLED, VIGIL_OUT_PROTECTED,
    VIGIL_OUT_RATE_LIMITED,
};

use crate::{Bytes, Header};

/// What the kernel did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The call failed with EPERM.
    Denied,
    /// SIGKILL was sent.
    Killed,
    /// Audit mode: it would have been blocked; nothing was done.
    Audit,
    /// A kill was due but the kill rate limit was reached: nothing was done.
    RateLimited,
    /// A kill was due but the process is protected (pid 1, the agent, the allow-list).
    Protected,
}

impl Outcome {
    /// The alert's `action` value.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Denied => "denied",
            Outcome::Killed => "killed",
            Outcome::Audit => "audit",
            Outcome::RateLimited => "kill_rate_limited",
            Outcome::Protected => "protected",
        }
    }
}

/// One enforcement report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enforce {
    pub header: Header,
    /// Every rule id that matched (bits).
    pub rules: u64,
    /// The rule acted on (the lowest matching id).
    pub rule: u32,
    /// The install generation whose rule ids these are.
    pub generation: u32,
    pub uid: u32,
    /// `enum vigil_enf_hook`.
    pub hook: u32,
    pub outcome: Outcome,
    /// Network hooks: the destination (connect, sendmsg) or the bound address (bind).
    pub addr: Option<SocketAddr>,
    pub protocol: u8,
    /// Exec and open hooks: the file.
    pub path: Bytes,
    pub comm: Bytes,
}

pub(crate) fn enforce(e: &EnforceEvent, header: Header, path: &[u8]) -> Enforce {
    let outcome = match u32::from(e.outcome) {
        VIGIL_OUT_DENIED => Outcome::Denied,
        VIGIL_OUT_KILLED => Outcome::Killed,
        VIGIL_OUT_RATE_LIMITED => Outcome::RateLimited,
        VIGIL_OUT_PROTECTED => Outcome::Protected,
        VIGIL_OUT_AUDIT => Outcome::Audit,
        _ => Outcome::Audit,
    };
    Enforce {
        header,
        rules: e.rules,
        rule: e.rule,
        generation: e.generation,
        uid: e.uid,
        hook: u32::from(e.hook),
        outcome,
        addr: (e.family != 0).then(|| crate::net::socket_addr(e.family, &e.addr, e.port)),
        protocol: e.protocol,
        path: path.to_vec(),
        comm: crate::decode::cstr(&e.comm),
    }
}
