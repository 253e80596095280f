//! The inputs this crate works on, as the agent hands them over from kernel records.

use std::net::SocketAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Tcp,
    Udp,
}

/// Which way a packet crossed the socket it was captured on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Sent by the local socket.
    Egress,
    /// Received by the local socket.
    Ingress,
}

/// Which end of an exchange the observing socket is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Client,
    Server,
}

/// The first bytes of one packet's payload, captured in the kernel on a local socket.
#[derive(Debug, Clone, Copy)]
pub struct Segment<'a> {
    /// CLOCK_BOOTTIME nanoseconds.
    pub time_ns: u64,
    /// Kernel socket cookie of the observing socket.
    pub cookie: u64,
    pub transport: Transport,
    pub direction: Direction,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// The captured prefix of the payload.
    pub payload: &'a [u8],
    /// The payload's real length (>= `payload.len()`).
    pub payload_len: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeKind {
    /// A host process (keyed by cgroup and executable).
    Process,
    /// A container (keyed by container id).
    Container,
    /// A remote endpoint no local socket owns, keyed by IP.
    External,
}

/// A local workload as the agent identifies it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Workload {
    /// Stable identity: equal keys are the same node.
    pub key: String,
    pub kind: NodeKind,
    /// What a person reads (exe name, container name).
    pub label: String,
    pub cgroup_id: u64,
    pub exe: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnPhase {
    /// An active open reached ESTABLISHED.
    Connect,
    /// An active open failed.
    ConnectFailed,
    /// `accept()` returned the socket.
    Accept,
    /// An established connection closed (final counters).
    Close,
}

/// One TCP connection event from one local socket.
#[derive(Debug, Clone)]
pub struct ConnRecord {
    pub time_ns: u64,
    pub phase: ConnPhase,
    pub role: Role,
    pub netns: u32,
    pub cookie: u64,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub workload: Workload,
    pub connect_latency_us: Option<u64>,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub srtt_us: u32,
    pub retransmits: u32,
}
