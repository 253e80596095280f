//! The `connection`, `udp`, `dns`, `http` and `drop` objects of network events
//! (docs/events.md).

use std::net::{IpAddr, SocketAddr};

use serde::Serialize;
use vigil_events::net::{ConnPhase, Role};
use vigil_events::{Conn, Dns, Http, PacketDrop, UdpFlow};
use vigil_net::dns::{self, AnswerData};

use crate::json::Clock;

/// Looks up the DNS name the agent learned for an IP.
pub type IpNames<'a> = &'a dyn Fn(&IpAddr) -> Option<String>;

#[derive(Serialize)]
pub struct Addr {
    ip: IpAddr,
    port: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
}

fn addr(a: &SocketAddr, names: Option<IpNames<'_>>) -> Addr {
    Addr {
        ip: a.ip(),
        port: a.port(),
        name: names.and_then(|n| n(&a.ip())),
    }
}

fn family(ipv6: bool) -> &'static str {
    if ipv6 {
        "ipv6"
    } else {
        "ipv4"
    }
}

fn role(r: Role) -> &'static str {
    match r {
        Role::Client => "client",
        Role::Server => "server",
    }
}

fn us(ns: u64) -> u64 {
    ns / 1000
}

pub struct ConnOut {
    phase: &'static str,
    role: &'static str,
    protocol: &'static str,
    family: &'static str,
    local: Addr,
    remote: Addr,
    cookie: u64,
    netns: u32,
    connect_latency_us: Option<u64>,
    error: Option<String>,
    errno: Option<u32>,
    /// A close's totals, inline in the object.
    close: Option<CloseOut>,
}

/// By hand rather than derived: `#[serde(flatten)]` turns the whole object into a map
/// serialized through a buffering adapter, a tenth of the agent's CPU in a connection storm.
impl Serialize for ConnOut {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut o = s.serialize_struct("ConnOut", 22)?;
        o.serialize_field("phase", self.phase)?;
        o.serialize_field("role", self.role)?;
        o.serialize_field("protocol", self.protocol)?;
        o.serialize_field("family", self.family)?;
        o.serialize_field("local", &self.local)?;
        o.serialize_field("remote", &self.remote)?;
        o.serialize_field("cookie", &self.cookie)?;
        o.serialize_field("netns", &self.netns)?;
        if let Some(v) = self.connect_latency_us {
            o.serialize_field("connect_latency_us", &v)?;
        }
        if let Some(v) = &self.error {
            o.serialize_field("error", v)?;
        }
        if let Some(v) = self.errno {
            o.serialize_field("errno", &v)?;
        }
        if let Some(c) = &self.close {
            o.serialize_field("duration_us", &c.duration_us)?;
            o.serialize_field("bytes_sent", &c.bytes_sent)?;
            o.serialize_field("bytes_received", &c.bytes_received)?;
            o.serialize_field("segs_out", &c.segs_out)?;
            o.serialize_field("segs_in", &c.segs_in)?;
            o.serialize_field("srtt_us", &c.srtt_us)?;
            o.serialize_field("retransmits", &c.retransmits)?;
            o.serialize_field("resets_sent", &c.resets_sent)?;
            o.serialize_field("resets_received", &c.resets_received)?;
            o.serialize_field("close_reason", c.close_reason)?;
        }
        o.end()
    }
}

struct CloseOut {
    duration_us: u64,
    bytes_sent: u64,
    bytes_received: u64,
    segs_out: u32,
    segs_in: u32,
    srtt_us: u32,
    retransmits: u32,
    resets_sent: u16,
    resets_received: u16,
    close_reason: &'static str,
}

/// Why an active open failed, as users search for it.
pub fn connect_error(sk_err: u32) -> String {
    match sk_err as i32 {
        0 => "aborted".into(),
        libc::ECONNREFUSED => "refused".into(),
        libc::ETIMEDOUT => "timeout".into(),
        libc::EHOSTUNREACH => "host_unreachable".into(),
        libc::ENETUNREACH => "net_unreachable".into(),
        e => vigil_events::names::errno(-i64::from(e))
            .map(str::to_string)
            .unwrap_or_else(|| format!("errno {e}")),
    }
}

pub fn conn(c: &Conn, names: IpNames<'_>) -> ConnOut {
    let phase = match c.phase {
        ConnPhase::Connect => "connect",
        ConnPhase::ConnectFailed => "connect_failed",
        ConnPhase::Accept => "accept",
        ConnPhase::Close => "close",
    };
    let failed = c.phase == ConnPhase::ConnectFailed;
    ConnOut {
        phase,
        role: role(c.role),
        protocol: "tcp",
        family: family(c.ipv6),
        local: addr(&c.local, None),
        remote: addr(&c.remote, Some(names)),
        cookie: c.cookie,
        netns: c.netns,
        connect_latency_us: c.connect_latency_ns.map(us),
        error: failed.then(|| connect_error(c.sk_err)),
        errno: failed.then_some(c.sk_err),
        close: (c.phase == ConnPhase::Close).then(|| CloseOut {
            duration_us: us(c.duration_ns),
            bytes_sent: c.bytes_sent,
            bytes_received: c.bytes_received,
            segs_out: c.segs_out,
            segs_in: c.segs_in,
            srtt_us: c.srtt_us,
            retransmits: c.retransmits,
            resets_sent: c.resets_sent,
            resets_received: c.resets_received,
            close_reason: c.close_reason.map_or("local_close", |r| r.name()),
        }),
    }
}

#[derive(Serialize)]
pub struct UdpOut {
    family: &'static str,
    local: Addr,
    remote: Addr,
    netns: u32,
    cookie: u64,
    packets_sent: u64,
    bytes_sent: u64,
    packets_received: u64,
    bytes_received: u64,
    first_seen: String,
    last_seen: String,
}

pub fn udp(u: &UdpFlow, names: IpNames<'_>, clock: &Clock) -> UdpOut {
    UdpOut {
        family: family(u.ipv6),
        local: addr(&u.local, None),
        remote: addr(&u.remote, Some(names)),
        netns: u.netns,
        cookie: u.cookie,
        packets_sent: u.packets_sent,
        bytes_sent: u.bytes_sent,
        packets_received: u.packets_received,
        bytes_received: u.bytes_received,
        first_seen: clock.rfc3339(u.first_ns),
        last_seen: clock.rfc3339(u.last_ns),
    }
}

#[derive(Serialize)]
pub struct AnswerOut {
    name: String,
    #[serde(rename = "type")]
    rtype: String,
    ttl: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<String>,
}

#[derive(Serialize)]
pub struct DnsOut {
    role: &'static str,
    transport: vigil_events::net::Transport,
    client: Addr,
    server: Addr,
    id: u16,
    query: String,
    #[serde(rename = "type")]
    qtype: String,
    rcode: Option<String>,
    answers: Vec<AnswerOut>,
    latency_us: Option<u64>,
    timed_out: bool,
}

pub fn dns(d: &Dns) -> DnsOut {
    let x = &d.exchange;
    DnsOut {
        role: role(x.role),
        transport: x.transport,
        client: addr(&x.client, None),
        server: addr(&x.server, None),
        id: x.id,
        query: x.query.clone(),
        qtype: dns::type_name(x.qtype).into_owned(),
        rcode: x.rcode.map(|r| dns::rcode_name(r).into_owned()),
        answers: x
            .answers
            .iter()
            .map(|a| AnswerOut {
                name: a.name.clone(),
                rtype: dns::type_name(a.rtype).into_owned(),
                ttl: a.ttl,
                data: a.data.as_ref().map(|d| match d {
                    AnswerData::Ip(ip) => ip.to_string(),
                    AnswerData::Name(n) => n.clone(),
                }),
            })
            .collect(),
        latency_us: x.latency_ns.map(us),
        timed_out: x.rcode.is_none(),
    }
}

#[derive(Serialize)]
pub struct HttpOut {
    role: &'static str,
    local: Addr,
    remote: Addr,
    cookie: u64,
    method: String,
    path: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    path_truncated: bool,
    version: String,
    status: Option<u16>,
    latency_us: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_process: Option<PeerOut>,
}

#[derive(Serialize)]
pub struct PeerOut {
    pid: u32,
    tid: u32,
    cgroup_id: u64,
}

pub fn http(h: &Http, names: IpNames<'_>) -> HttpOut {
    let x = &h.exchange;
    HttpOut {
        role: role(x.role),
        local: addr(&x.local, None),
        remote: addr(&x.remote, Some(names)),
        cookie: x.cookie,
        method: x.method.clone(),
        path: x.path.clone(),
        path_truncated: x.path_truncated,
        version: x.version.clone(),
        status: x.status,
        latency_us: x.latency_ns.map(us),
        client_process: h.peer.map(|p| PeerOut {
            pid: p.tgid,
            tid: p.pid,
            cgroup_id: p.cgroup_id,
        }),
    }
}

#[derive(Serialize)]
pub struct DropOut {
    reason: String,
    count: u64,
    netns: u32,
    ifindex: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    interface: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    protocol: Option<&'static str>,
}

/// IP protocol names for the protocols a drop is likely to carry.
pub fn ip_protocol(p: u8) -> Option<&'static str> {
    Some(match p {
        1 => "icmp",
        6 => "tcp",
        17 => "udp",
        58 => "icmpv6",
        132 => "sctp",
        _ => return None,
    })
}

pub fn drop(d: &PacketDrop) -> DropOut {
    DropOut {
        reason: d.reason.clone(),
        count: d.count,
        netns: d.netns,
        ifindex: d.ifindex,
        interface: d.interface.clone(),
        protocol: ip_protocol(d.protocol),
    }
}
