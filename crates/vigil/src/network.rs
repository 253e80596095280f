//! The user-space half of the network sensor: turns captured payloads into DNS and HTTP
//! exchanges, kernel maps into UDP flow and drop events, attributes accepted connections to the
//! process that accepted them, learns names from DNS answers, and feeds the service map.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;

use vigil_abi::{DropKey, FlowKey, FlowValue};
use vigil_enrich::ProcessTable;
use vigil_events::net::{socket_addr, ConnPhase, Peer};
use vigil_events::{Capture, Conn, Dns, Event, Header, Http, Kind, PacketDrop, UdpFlow};
use vigil_net::map::{MapLimits, ServiceMap};
use vigil_net::names::NameCache;
use vigil_net::track::{Limits, Observation, Tracker};
use vigil_net::{ConnRecord, NodeKind, Workload};

/// Sockets remembered at once (accept() callers, capture owners). Past this the oldest half is
/// forgotten: their later records carry the listener's owner instead (counted).
const MAX_SOCKETS: usize = 65536;

/// Who a socket belongs to, as the kernel recorded it in process context.
#[derive(Debug, Clone, Copy)]
struct Owner {
    pid: u32,
    tgid: u32,
    cgroup_id: u64,
}

/// Counters of the user-space network state, for stats.
#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct NetStats {
    /// Sockets forgotten because the table of owners was full.
    pub sockets_forgotten: u64,
    pub dns_names: usize,
    pub dns_name_evictions: u64,
    pub exchanges_pending: usize,
    pub exchanges_evicted: u64,
    pub payload_parse_errors: u64,
    /// HTTP exchanges seen by a client whose server is local too: reported once, by the server.
    pub http_client_merged: u64,
    pub responses_unmatched: u64,
    pub map_nodes: usize,
    pub map_edges: usize,
    pub map_refused_nodes: u64,
    pub map_refused_edges: u64,
    /// UDP flows and drop keys the kernel could not count because its map was full.
    pub udp_flow_map_full: u64,
    pub drop_map_full: u64,
}

#[derive(Debug)]
pub struct Network {
    tracker: Tracker,
    pub names: NameCache,
    pub map: ServiceMap,
    owners: HashMap<u64, Owner>,
    forgotten: u64,
    drop_reasons: HashMap<u32, String>,
    host_netns: u32,
    observations: Vec<Observation>,
    http_merged: u64,
}

impl Network {
    /// `http`: HTTP payloads are captured, so results may arrive after a connection's close.
    pub fn new(http: bool) -> Self {
        let keep_closed_ns = if http {
            MapLimits::default().keep_closed_ns
        } else {
            0
        };
        Self {
            tracker: Tracker::new(Limits::default()),
            names: NameCache::new(16384),
            map: ServiceMap::new(MapLimits {
                keep_closed_ns,
                ..MapLimits::default()
            }),
            owners: HashMap::new(),
            forgotten: 0,
            drop_reasons: vigil_bpf::drop_reason_names(),
            host_netns: netns_inode(Path::new("/proc/self/ns/net")),
            observations: Vec::new(),
            http_merged: 0,
        }
    }

    /// The DNS name learned for `ip`, if still valid.
    pub fn ip_name(&self, ip: &IpAddr, now_ns: u64) -> Option<String> {
        self.names.lookup(ip, now_ns).map(str::to_string)
    }

    fn remember(&mut self, cookie: u64, owner: Owner) {
        if self.owners.len() >= MAX_SOCKETS && !self.owners.contains_key(&cookie) {
            let drop: Vec<u64> = self.owners.keys().take(MAX_SOCKETS / 2).copied().collect();
            for k in drop {
                self.owners.remove(&k);
            }
            self.forgotten += (MAX_SOCKETS / 2) as u64;
        }
        self.owners.insert(cookie, owner);
    }

    /// Attributes a connection record to the process that accepted its socket (the kernel
    /// stamps the listener's owner on records made in softirq), and feeds the service map.
    pub fn conn(&mut self, c: &mut Conn, table: &ProcessTable) {
        match c.phase {
            ConnPhase::Accept => self.remember(
                c.cookie,
                Owner {
                    pid: c.header.pid,
                    tgid: c.header.tgid,
                    cgroup_id: c.header.cgroup_id,
                },
            ),
            ConnPhase::Close => {
                if let Some(o) = self.owners.remove(&c.cookie) {
                    c.header.pid = o.pid;
                    c.header.tgid = o.tgid;
                    c.header.cgroup_id = o.cgroup_id;
                }
                self.tracker.closed(c.cookie, &mut self.observations);
            }
            ConnPhase::Connect | ConnPhase::ConnectFailed => {}
        }
        self.map.record(&ConnRecord {
            time_ns: c.header.time_ns,
            phase: c.phase,
            role: c.role,
            netns: c.netns,
            cookie: c.cookie,
            local: c.local,
            remote: c.remote,
            workload: workload(c.header.tgid, c.header.cgroup_id, &c.comm, table),
            connect_latency_us: c.connect_latency_ns.map(|n| n / 1000),
            bytes_sent: c.bytes_sent,
            bytes_received: c.bytes_received,
            srtt_us: c.srtt_us,
            retransmits: c.retransmits,
        });
    }

    /// Parses a captured payload; completed exchanges come out as `dns`/`http` events.
    pub fn capture(&mut self, cap: &Capture, out: &mut Vec<Event>) {
        if cap.header.tgid != 0 {
            self.remember(
                cap.cookie,
                Owner {
                    pid: cap.header.pid,
                    tgid: cap.header.tgid,
                    cgroup_id: cap.header.cgroup_id,
                },
            );
        }
        self.tracker.segment(&cap.segment(), &mut self.observations);
        self.drain(cap.header.time_ns, out);
    }

    /// Time-outs (unanswered queries and requests) and the map's pending pairings.
    pub fn tick(&mut self, now_ns: u64, out: &mut Vec<Event>) {
        self.tracker.expire(now_ns, &mut self.observations);
        self.drain(now_ns, out);
        self.map.expire(now_ns);
    }

    fn drain(&mut self, now_ns: u64, out: &mut Vec<Event>) {
        for obs in std::mem::take(&mut self.observations) {
            let cookie = match &obs {
                Observation::Dns(d) => d.cookie,
                Observation::Http(h) => h.cookie,
            };
            let o = self.owners.get(&cookie).copied();
            let header = |kind| Header {
                kind,
                time_ns: now_ns,
                pid: o.map_or(0, |o| o.pid),
                tgid: o.map_or(0, |o| o.tgid),
                cgroup_id: o.map_or(0, |o| o.cgroup_id),
            };
            match obs {
                Observation::Dns(exchange) => {
                    if exchange.role == vigil_net::Role::Client {
                        self.names.learn(&exchange);
                    }
                    out.push(Event::Dns(Dns {
                        header: header(Kind::Dns),
                        exchange,
                    }));
                }
                Observation::Http(exchange) => {
                    let latency = exchange.latency_ns.map(|n| n / 1000);
                    self.map
                        .record_http(exchange.cookie, exchange.role, latency, exchange.status);
                    // Both ends local: one line per request, the server's, naming the client.
                    let peer = self.map.local_peer(exchange.cookie);
                    if peer.is_some() && exchange.role == vigil_net::Role::Client {
                        self.http_merged += 1;
                        continue;
                    }
                    let peer = peer.and_then(|c| self.owners.get(&c)).map(|o| Peer {
                        pid: o.pid,
                        tgid: o.tgid,
                        cgroup_id: o.cgroup_id,
                    });
                    out.push(Event::Http(Http {
                        header: header(Kind::Http),
                        exchange,
                        peer,
                    }));
                }
            }
        }
    }

    /// One `udp` event per flow the kernel counted since the last call.
    pub fn flows(&self, flows: Vec<(FlowKey, FlowValue)>, out: &mut Vec<Event>) {
        for (k, v) in flows {
            out.push(Event::Udp(UdpFlow {
                header: Header {
                    kind: Kind::Udp,
                    time_ns: v.last_ns,
                    pid: v.pid,
                    tgid: v.tgid,
                    cgroup_id: k.cgroup_id,
                },
                netns: k.netns,
                cookie: v.cookie,
                local: socket_addr(k.family, &k.local_addr, k.local_port),
                remote: socket_addr(k.family, &k.remote_addr, k.remote_port),
                ipv6: k.family != 2,
                packets_sent: v.packets_sent,
                bytes_sent: v.bytes_sent,
                packets_received: v.packets_received,
                bytes_received: v.bytes_received,
                first_ns: v.first_ns,
                last_ns: v.last_ns,
                comm: v
                    .comm
                    .split(|b| *b == 0)
                    .next()
                    .unwrap_or_default()
                    .to_vec(),
            }));
        }
    }

    /// One `drop` event per (reason, place) the kernel counted since the last call.
    pub fn drops(&self, drops: Vec<(DropKey, u64)>, now_ns: u64, out: &mut Vec<Event>) {
        for (k, count) in drops {
            let reason = self
                .drop_reasons
                .get(&k.reason)
                .cloned()
                .unwrap_or_else(|| format!("REASON_{}", k.reason));
            // Interface names are only meaningful in the agent's own namespace.
            let interface = (k.netns == self.host_netns && k.ifindex != 0)
                .then(|| interface_name(k.ifindex))
                .flatten();
            out.push(Event::Drop(PacketDrop {
                header: Header {
                    kind: Kind::Drop,
                    time_ns: now_ns,
                    pid: 0,
                    tgid: 0,
                    cgroup_id: k.cgroup_id,
                },
                reason,
                count,
                netns: k.netns,
                ifindex: k.ifindex,
                interface,
                protocol: k.protocol,
            }));
        }
    }

    pub fn stats(&self, kernel: [u64; 2]) -> NetStats {
        let t = self.tracker.stats();
        let m = self.map.stats();
        NetStats {
            sockets_forgotten: self.forgotten,
            dns_names: self.names.len(),
            dns_name_evictions: self.names.evictions(),
            exchanges_pending: t.pending,
            exchanges_evicted: t.evicted,
            payload_parse_errors: t.parse_errors,
            http_client_merged: self.http_merged,
            responses_unmatched: t.unmatched_responses,
            map_nodes: m.nodes,
            map_edges: m.edges,
            map_refused_nodes: m.refused_nodes,
            map_refused_edges: m.refused_edges,
            udp_flow_map_full: kernel[0],
            drop_map_full: kernel[1],
        }
    }
}

/// The service-map node of a local process: host processes are keyed by cgroup and executable
/// (container identity will key containers).
fn workload(tgid: u32, cgroup_id: u64, comm: &[u8], table: &ProcessTable) -> Workload {
    let exe = table
        .get(tgid)
        .map(|p| String::from_utf8_lossy(&p.image.exe).into_owned())
        .filter(|e| !e.is_empty())
        .unwrap_or_else(|| String::from_utf8_lossy(comm).into_owned());
    let label = exe.rsplit('/').next().unwrap_or(&exe).to_string();
    Workload {
        key: format!("proc:{cgroup_id}:{exe}"),
        kind: NodeKind::Process,
        label,
        cgroup_id,
        exe,
    }
}

/// The inode of a namespace file, 0 if unreadable.
pub fn netns_inode(path: &Path) -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).map_or(0, |m| m.ino() as u32)
}

fn interface_name(ifindex: u32) -> Option<String> {
    let mut buf = [0u8; libc::IF_NAMESIZE];
    // SAFETY: buf has IF_NAMESIZE bytes, as if_indextoname requires.
    let p = unsafe { libc::if_indextoname(ifindex, buf.as_mut_ptr().cast()) };
    if p.is_null() {
        return None;
    }
    let len = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    Some(String::from_utf8_lossy(&buf[..len]).into_owned())
}

/// CLOCK_BOOTTIME now, the clock of every kernel timestamp.
pub fn boot_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}
