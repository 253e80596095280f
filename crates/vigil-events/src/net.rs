//! Network events: TCP connections and captured payloads from the kernel, and the records user
//! space makes from maps and payloads (UDP flows, DNS, HTTP, packet drops).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use vigil_abi::{
    CaptureEvent, ConnEvent, VIGIL_CLOSE_ERROR, VIGIL_CLOSE_LOCAL, VIGIL_CLOSE_PEER,
    VIGIL_CLOSE_RESET_RECEIVED, VIGIL_CLOSE_RESET_SENT, VIGIL_CONN_ACCEPT, VIGIL_CONN_CLOSE,
    VIGIL_CONN_CONNECT, VIGIL_CONN_CONNECT_FAILED, VIGIL_DIR_EGRESS, VIGIL_ROLE_CLIENT,
};
pub use vigil_net::track::{DnsExchange, HttpExchange};
pub use vigil_net::{ConnPhase, Direction, Role, Transport};

use crate::{Bytes, Header};

const AF_INET: u8 = 2;
const IPPROTO_UDP: u8 = 17;

/// Why an established connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    LocalClose,
    PeerClose,
    ResetReceived,
    ResetSent,
    Error,
}

impl CloseReason {
    pub fn name(self) -> &'static str {
        match self {
            CloseReason::LocalClose => "local_close",
            CloseReason::PeerClose => "peer_close",
            CloseReason::ResetReceived => "reset_received",
            CloseReason::ResetSent => "reset_sent",
            CloseReason::Error => "error",
        }
    }
}

/// A TCP connection event. The header names the socket's owner, not the interrupted task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conn {
    pub header: Header,
    pub phase: ConnPhase,
    pub role: Role,
    pub cookie: u64,
    pub netns: u32,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub ipv6: bool,
    pub connect_latency_ns: Option<u64>,
    pub duration_ns: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub segs_out: u32,
    pub segs_in: u32,
    pub srtt_us: u32,
    pub retransmits: u32,
    pub resets_sent: u16,
    pub resets_received: u16,
    /// The socket error of a failed connect (0: aborted by its owner).
    pub sk_err: u32,
    pub close_reason: Option<CloseReason>,
    pub comm: Bytes,
}

/// The first bytes of a DNS or HTTP message seen on a local socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capture {
    pub header: Header,
    pub cookie: u64,
    pub netns: u32,
    pub transport: Transport,
    pub direction: Direction,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub payload_len: u32,
    pub payload: Bytes,
}

impl Capture {
    pub fn segment(&self) -> vigil_net::Segment<'_> {
        vigil_net::Segment {
            time_ns: self.header.time_ns,
            cookie: self.cookie,
            transport: self.transport,
            direction: self.direction,
            local: self.local,
            remote: self.remote,
            payload: &self.payload,
            payload_len: self.payload_len,
        }
    }
}

/// One UDP flow's traffic over one report interval (aggregated in the kernel).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpFlow {
    pub header: Header,
    pub netns: u32,
    pub cookie: u64,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub ipv6: bool,
    pub packets_sent: u64,
    pub bytes_sent: u64,
    pub packets_received: u64,
    pub bytes_received: u64,
    pub first_ns: u64,
    pub last_ns: u64,
    pub comm: Bytes,
}

/// A DNS query and its answer (or its time-out), seen at one socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dns {
    pub header: Header,
    pub exchange: DnsExchange,
}

/// An HTTP/1.x request and its response (or none), seen at one socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Http {
    pub header: Header,
    pub exchange: HttpExchange,
    /// The process at the other end, when it is local (its own line is then not written).
    pub peer: Option<Peer>,
}

/// A local process at the other end of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    pub pid: u32,
    pub tgid: u32,
    pub cgroup_id: u64,
}

/// Packets the kernel dropped for one reason at one place, over one report interval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacketDrop {
    pub header: Header,
    /// `enum skb_drop_reason` name without its prefix, or `REASON_<n>` if unknown.
    pub reason: String,
    pub count: u64,
    pub netns: u32,
    pub ifindex: u32,
    pub interface: Option<String>,
    /// IP protocol number, 0 when not parsed.
    pub protocol: u8,
}

/// An address from ABI bytes: IPv4 in the first four bytes, IPv4-mapped IPv6 shown as IPv4.
pub fn socket_addr(family: u8, addr: &[u8; 16], port: u16) -> SocketAddr {
    let ip = if family == AF_INET {
        IpAddr::V4(Ipv4Addr::new(addr[0], addr[1], addr[2], addr[3]))
    } else {
        let v6 = Ipv6Addr::from(*addr);
        match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        }
    };
    SocketAddr::new(ip, port)
}

pub(crate) fn conn(e: &ConnEvent, header: Header) -> Conn {
    let phase = match u32::from(e.phase) {
        VIGIL_CONN_CONNECT => ConnPhase::Connect,
        VIGIL_CONN_CONNECT_FAILED => ConnPhase::ConnectFailed,
        VIGIL_CONN_ACCEPT => ConnPhase::Accept,
        VIGIL_CONN_CLOSE => ConnPhase::Close,
        _ => ConnPhase::Close,
    };
    let close_reason = match u32::from(e.close_reason) {
        VIGIL_CLOSE_LOCAL => Some(CloseReason::LocalClose),
        VIGIL_CLOSE_PEER => Some(CloseReason::PeerClose),
        VIGIL_CLOSE_RESET_RECEIVED => Some(CloseReason::ResetReceived),
        VIGIL_CLOSE_RESET_SENT => Some(CloseReason::ResetSent),
        VIGIL_CLOSE_ERROR => Some(CloseReason::Error),
        _ => None,
    };
    Conn {
        header,
        phase,
        role: if u32::from(e.role) == VIGIL_ROLE_CLIENT {
            Role::Client
        } else {
            Role::Server
        },
        cookie: e.cookie,
        netns: e.netns,
        local: socket_addr(e.family, &e.local_addr, e.local_port),
        remote: socket_addr(e.family, &e.remote_addr, e.remote_port),
        ipv6: e.family != AF_INET,
        connect_latency_ns: (e.connect_latency_ns > 0).then_some(e.connect_latency_ns),
        duration_ns: e.duration_ns,
        bytes_sent: e.bytes_sent,
        bytes_received: e.bytes_received,
        segs_out: e.segs_out,
        segs_in: e.segs_in,
        srtt_us: e.srtt_us,
        retransmits: e.retransmits,
        resets_sent: e.resets_sent,
        resets_received: e.resets_received,
        sk_err: e.sk_err,
        close_reason,
        comm: crate::decode::cstr(&e.comm),
    }
}

pub(crate) fn capture(e: &CaptureEvent, header: Header, payload: &[u8]) -> Capture {
    Capture {
        header,
        cookie: e.cookie,
        netns: e.netns,
        transport: if e.protocol == IPPROTO_UDP {
            Transport::Udp
        } else {
            Transport::Tcp
        },
        direction: if u32::from(e.direction) == VIGIL_DIR_EGRESS {
            Direction::Egress
        } else {
            Direction::Ingress
        },
        local: socket_addr(e.family, &e.local_addr, e.local_port),
        remote: socket_addr(e.family, &e.remote_addr, e.remote_port),
        payload_len: e.payload_len,
        payload: payload.to_vec(),
    }
}
