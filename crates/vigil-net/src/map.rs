//! The live service map: which workload talks to which, built from TCP connection records.
//!
//! The server end of an edge is bound when the connection is made: the client's `Connect` and the
//! server's `Accept` are paired by their mirrored 4-tuple within `pending_ttl_ns`, and each socket
//! cookie then remembers its edge. An IP is never looked up later to find "its" workload, so an
//! IP that moves from one workload to another cannot merge the two. A side that finds no peer in
//! time talks to an `external` node keyed by the remote IP.
//!
//! Known limits, by design: DNAT (service IPs) breaks the 4-tuple pairing, so such a connection
//! appears as two edges, local client -> external service IP and external client IP -> local
//! server; a connection accepted more than `pending_ttl_ns` after its connect does the same;
//! connections opened before the agent started are not shown (their `Close` is ignored).
//!
//! Memory is bounded by [`MapLimits`]: nodes and edges beyond the limits are refused and counted;
//! waiting sides and remembered cookies are evicted oldest first (counted) when full.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use crate::hist::{LogHist, Summary};
use crate::{ConnPhase, ConnRecord, NodeKind, Role, Workload};

/// The hasher of maps keyed by what the kernel or the map itself chose (socket cookies, node
/// indices), looked up for every connection record. Maps keyed by addresses or names, which a
/// remote peer or a workload chooses, keep std's keyed SipHash against collision floods.
type Fast = foldhash::fast::RandomState;

const NS_PER_SEC: u64 = 1_000_000_000;
/// Length of the `connections_per_sec` window, in seconds.
const RATE_WINDOW_SECS: usize = 60;

/// Bounds on what the map keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MapLimits {
    pub max_nodes: usize,
    pub max_edges: usize,
    /// Connection sides waiting for their peer (connects without accept and vice versa).
    pub max_pending: usize,
    /// Connections remembered by socket cookie, so `Close` and HTTP results find their edge.
    pub max_tracked: usize,
    /// How far apart a connect and its accept may be.
    pub pending_ttl_ns: u64,
    /// How long a closed connection is remembered for HTTP results that arrive after its
    /// close; 0 forgets it at once (no HTTP capture: nothing can arrive), which keeps the
    /// remembered set to the open connections under a connection storm.
    pub keep_closed_ns: u64,
}

impl Default for MapLimits {
    fn default() -> Self {
        Self {
            max_nodes: 4096,
            max_edges: 16384,
            max_pending: 8192,
            max_tracked: 65536,
            pending_ttl_ns: 5 * NS_PER_SEC,
            keep_closed_ns: 5 * NS_PER_SEC,
        }
    }
}

/// Sizes and loss counters, so that a full map is visible rather than silently incomplete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MapStats {
    pub nodes: usize,
    pub edges: usize,
    /// Sides currently waiting for their peer.
    pub pending: usize,
    /// Connections currently remembered by cookie.
    pub tracked: usize,
    /// Records not counted because they needed a node beyond `max_nodes`.
    pub refused_nodes: u64,
    /// Records not counted because they needed an edge beyond `max_edges` (or a refused node).
    pub refused_edges: u64,
    /// Waiting sides resolved early, or remembered connections forgotten early, for lack of
    /// room. An evicted waiting side is counted as talking to an external peer; an evicted
    /// connection's later `Close` and HTTP results are ignored.
    pub evicted: u64,
}

/// The map. Feed it every [`ConnRecord`] and HTTP result, call [`ServiceMap::expire`] about
/// once a second (sides are only resolved as external there), and render with
/// [`ServiceMap::snapshot`].
#[derive(Debug)]
pub struct ServiceMap {
    limits: MapLimits,
    nodes: Vec<Node>,
    local_ids: HashMap<String, usize>,
    external_ids: HashMap<IpAddr, usize>,
    edges: Vec<Edge>,
    edge_ids: HashMap<(usize, usize, u16), usize, Fast>,
    /// Sides waiting for their peer, by cookie.
    pending: HashMap<u64, Side, Fast>,
    /// The same sides by (role, connection): where the peer looks for them.
    waiting: HashMap<(Role, ConnKey), u64>,
    /// Bound connections by cookie (both cookies of a local-to-local connection).
    tracked: HashMap<u64, Binding, Fast>,
    refused_nodes: u64,
    refused_edges: u64,
    evicted: u64,
}

impl ServiceMap {
    pub fn new(limits: MapLimits) -> Self {
        Self {
            limits,
            nodes: Vec::new(),
            local_ids: HashMap::new(),
            external_ids: HashMap::new(),
            edges: Vec::new(),
            edge_ids: HashMap::default(),
            pending: HashMap::default(),
            waiting: HashMap::new(),
            tracked: HashMap::default(),
            refused_nodes: 0,
            refused_edges: 0,
            evicted: 0,
        }
    }

    /// Takes one connection event. The phase decides the side: `Connect` and `ConnectFailed`
    /// are clients, `Accept` is a server; `Close` finds its connection by cookie.
    pub fn record(&mut self, c: &ConnRecord) {
        match c.phase {
            ConnPhase::Connect => self.open(c, Role::Client),
            ConnPhase::Accept => self.open(c, Role::Server),
            ConnPhase::ConnectFailed => self.failed(c),
            ConnPhase::Close => self.close(c),
        }
    }

    /// The socket at the other end of `cookie`'s connection, once both ends are known to be
    /// local (bound when the server accepted it).
    pub fn local_peer(&self, cookie: u64) -> Option<u64> {
        self.tracked.get(&cookie)?.peer
    }

    /// Takes one HTTP exchange seen on socket `cookie` acting as `role`. When both ends are
    /// local, only the server's observation counts (the client's would count the request
    /// twice); the client's counts when the server is external. `errors` are 5xx statuses and
    /// exchanges without a response.
    pub fn record_http(
        &mut self,
        cookie: u64,
        role: Role,
        latency_us: Option<u64>,
        status: Option<u16>,
    ) {
        if let Some(side) = self.pending.get_mut(&cookie) {
            // Not bound yet: keep it with the side until we know whether it counts.
            if side.role == role {
                side.http.record(latency_us, status);
            }
        } else if let Some(b) = self.tracked.get(&cookie) {
            if b.http && b.role == role {
                self.edges[b.edge].http.record(latency_us, status);
            }
        }
    }

    /// Resolves sides that waited longer than `pending_ttl_ns` for their peer (their peer is
    /// external) and forgets connections closed longer ago than that. `now_ns` is
    /// CLOCK_BOOTTIME, like the records.
    pub fn expire(&mut self, now_ns: u64) {
        let ttl = self.limits.pending_ttl_ns;
        let mut due: Vec<(u64, u64)> = self
            .pending
            .iter()
            .filter(|(_, s)| now_ns.saturating_sub(s.time_ns) > ttl)
            .map(|(&cookie, s)| (s.time_ns, cookie))
            .collect();
        // Oldest first, so which edge a full map refuses does not depend on hash order.
        due.sort_unstable();
        for (_, cookie) in due {
            let side = self.take_pending(cookie);
            self.bind_external(side);
        }
        let keep = self.limits.keep_closed_ns;
        self.tracked
            .retain(|_, b| b.closed_ns.is_none_or(|t| now_ns.saturating_sub(t) <= keep));
    }

    pub fn stats(&self) -> MapStats {
        MapStats {
            nodes: self.nodes.len(),
            edges: self.edges.len(),
            pending: self.pending.len(),
            tracked: self.tracked.len(),
            refused_nodes: self.refused_nodes,
            refused_edges: self.refused_edges,
            evicted: self.evicted,
        }
    }

    /// The map as the API returns it: nodes sorted by id, edges by (source, target, port).
    /// `now_ns` (CLOCK_BOOTTIME, like the records) ends the `connections_per_sec` window;
    /// `names` gives the DNS names known for an external node's IP.
    pub fn snapshot(&self, now_ns: u64, names: &dyn Fn(&IpAddr) -> Vec<String>) -> Snapshot {
        let ids: Vec<String> = self.nodes.iter().map(Node::id).collect();
        let mut nodes: Vec<NodeView> = self
            .nodes
            .iter()
            .zip(&ids)
            .map(|(n, id)| n.view(id.clone(), names))
            .collect();
        nodes.sort_by(|a, b| a.id.cmp(&b.id));
        let mut edges: Vec<EdgeView> = self.edges.iter().map(|e| e.view(&ids, now_ns)).collect();
        edges.sort_by(|a, b| (&a.source, &a.target, a.port).cmp(&(&b.source, &b.target, b.port)));
        Snapshot { nodes, edges }
    }

    fn open(&mut self, c: &ConnRecord, role: Role) {
        if self.pending.contains_key(&c.cookie) || self.tracked.contains_key(&c.cookie) {
            return; // A repeated record: the connection is already counted.
        }
        let side = Side::new(c, role);
        let peer_role = match role {
            Role::Client => Role::Server,
            Role::Server => Role::Client,
        };
        if let Some(&peer) = self.waiting.get(&(peer_role, side.key)) {
            let peer = self.take_pending(peer);
            if peer.time_ns.abs_diff(side.time_ns) <= self.limits.pending_ttl_ns {
                let (client, server) = match role {
                    Role::Client => (side, peer),
                    Role::Server => (peer, side),
                };
                self.bind_local(client, server);
                return;
            }
            // Same 4-tuple but too far apart in time: a different, earlier connection.
            self.bind_external(peer);
        }
        if let Some(&older) = self.waiting.get(&(role, side.key)) {
            // The 4-tuple was reused on this side: the older one will not be matched any more.
            let older = self.take_pending(older);
            self.bind_external(older);
        }
        if self.pending.len() >= self.limits.max_pending {
            let victims = oldest_eighth(
                self.pending
                    .iter()
                    .map(|(&cookie, s)| ((s.time_ns, cookie), cookie))
                    .collect(),
            );
            for cookie in victims {
                self.evicted += 1;
                let victim = self.take_pending(cookie);
                self.bind_external(victim);
            }
        }
        if self.pending.len() >= self.limits.max_pending {
            self.evicted += 1; // `max_pending` is 0: no side can wait.
            self.bind_external(side);
            return;
        }
        self.waiting.insert((role, side.key), side.cookie);
        self.pending.insert(side.cookie, side);
    }

    /// A failed connect has no accept to bind to, so it always counts against the remote IP,
    /// even when a local process listens there.
    fn failed(&mut self, c: &ConnRecord) {
        let remote = canonical(c.remote);
        let server = Endpoint::External(remote.ip());
        if let Some(e) = self.edge_for(Endpoint::Local(&c.workload), server, remote.port()) {
            let edge = &mut self.edges[e];
            edge.failed = edge.failed.saturating_add(1);
        }
    }

    fn close(&mut self, c: &ConnRecord) {
        let totals = Totals::from(c);
        if let Some(side) = self.pending.get_mut(&c.cookie) {
            // Keep waiting: `accept()` may return a connection its client already closed.
            side.close.get_or_insert(totals);
        } else if let Some(b) = self.tracked.get_mut(&c.cookie) {
            if b.closed_ns.is_none() {
                b.closed_ns = Some(c.time_ns);
                if b.tcp {
                    self.edges[b.edge].add_totals(b.role, &totals);
                }
            }
            if self.limits.keep_closed_ns == 0 {
                self.tracked.remove(&c.cookie);
            }
        }
    }

    fn take_pending(&mut self, cookie: u64) -> Side {
        let side = self
            .pending
            .remove(&cookie)
            .expect("waiting index points at a pending side");
        self.waiting.remove(&(side.role, side.key));
        side
    }

    /// Both ends are local: one edge between the two workloads; the client's socket counters
    /// (its bytes_sent is client -> server) and the server's HTTP view, each counted once.
    fn bind_local(&mut self, client: Side, server: Side) {
        let port = client.key.server.port();
        let ends = (
            Endpoint::Local(&client.workload),
            Endpoint::Local(&server.workload),
        );
        let Some(e) = self.edge_for(ends.0, ends.1, port) else {
            return;
        };
        self.edges[e].count_connection(client.time_ns, client.connect_latency_us);
        let (client_cookie, server_cookie) = (client.cookie, server.cookie);
        self.track(e, client, true, false, Some(server_cookie));
        self.track(e, server, false, true, Some(client_cookie));
    }

    /// No peer showed up: the other end is the remote IP.
    fn bind_external(&mut self, side: Side) {
        let (client, server) = match side.role {
            Role::Client => (
                Endpoint::Local(&side.workload),
                Endpoint::External(side.key.server.ip()),
            ),
            Role::Server => (
                Endpoint::External(side.key.client.ip()),
                Endpoint::Local(&side.workload),
            ),
        };
        let Some(e) = self.edge_for(client, server, side.key.server.port()) else {
            return;
        };
        self.edges[e].count_connection(side.time_ns, side.connect_latency_us);
        self.track(e, side, true, true, None);
    }

    /// Applies what the side saw while waiting and remembers its cookie for what comes later.
    fn track(&mut self, edge: usize, side: Side, tcp: bool, http: bool, peer: Option<u64>) {
        let e = &mut self.edges[edge];
        if http {
            e.http.merge(&side.http);
        }
        if let (true, Some(totals)) = (tcp, &side.close) {
            e.add_totals(side.role, totals);
        }
        if self.tracked.len() >= self.limits.max_tracked {
            // Closed connections go first (they only wait for late HTTP results), then the
            // oldest open ones.
            let victims = oldest_eighth(
                self.tracked
                    .iter()
                    .map(|(&cookie, b)| ((b.closed_ns.is_none(), b.opened_ns, cookie), cookie))
                    .collect(),
            );
            self.evicted += victims.len() as u64;
            for cookie in victims {
                self.tracked.remove(&cookie);
            }
        }
        if self.tracked.len() >= self.limits.max_tracked {
            self.evicted += 1; // `max_tracked` is 0.
            return;
        }
        let binding = Binding {
            edge,
            role: side.role,
            tcp,
            http,
            opened_ns: side.time_ns,
            closed_ns: side.close.map(|t| t.time_ns),
            peer,
        };
        self.tracked.insert(side.cookie, binding);
    }

    /// The edge between two endpoints, created with its nodes if the limits allow; `None` (and
    /// counted) otherwise. Nodes are only created together with their edge, so a refusal leaves
    /// no orphan node behind.
    fn edge_for(&mut self, client: Endpoint, server: Endpoint, port: u16) -> Option<usize> {
        let (ci, si) = (self.node_id(client), self.node_id(server));
        if let (Some(a), Some(b)) = (ci, si) {
            if let Some(&e) = self.edge_ids.get(&(a, b, port)) {
                return Some(e);
            }
        }
        let same = match (client, server) {
            (Endpoint::Local(a), Endpoint::Local(b)) => a.key == b.key,
            (Endpoint::External(a), Endpoint::External(b)) => a == b,
            _ => false,
        };
        let new_nodes = usize::from(ci.is_none()) + usize::from(si.is_none() && !same);
        if self.nodes.len() + new_nodes > self.limits.max_nodes {
            self.refused_nodes += 1;
            self.refused_edges += 1;
            return None;
        }
        if self.edges.len() >= self.limits.max_edges {
            self.refused_edges += 1;
            return None;
        }
        let a = ci.unwrap_or_else(|| self.add_node(client));
        let b = match self.node_id(server) {
            Some(b) => b,
            None => self.add_node(server),
        };
        self.edges.push(Edge::new(a, b, port));
        self.edge_ids.insert((a, b, port), self.edges.len() - 1);
        Some(self.edges.len() - 1)
    }

    fn node_id(&self, end: Endpoint) -> Option<usize> {
        match end {
            Endpoint::Local(w) => self.local_ids.get(w.key.as_str()).copied(),
            Endpoint::External(ip) => self.external_ids.get(&ip).copied(),
        }
    }

    fn add_node(&mut self, end: Endpoint) -> usize {
        let id = self.nodes.len();
        match end {
            Endpoint::Local(w) => {
                self.local_ids.insert(w.key.clone(), id);
                self.nodes.push(Node::Local(w.clone()));
            }
            Endpoint::External(ip) => {
                self.external_ids.insert(ip, id);
                self.nodes.push(Node::External(ip));
            }
        }
        id
    }
}

/// The first `ceil(n / 8)` cookies by sort key: evicting in batches keeps eviction cost
/// amortized constant when a table stays full.
fn oldest_eighth<K: Ord>(mut entries: Vec<(K, u64)>) -> Vec<u64> {
    let n = entries.len().div_ceil(8);
    if n == 0 {
        return Vec::new();
    }
    entries.select_nth_unstable_by(n - 1, |a, b| a.0.cmp(&b.0));
    entries.truncate(n);
    entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    entries.into_iter().map(|(_, cookie)| cookie).collect()
}

/// IPv4-mapped IPv6 as IPv4: a dual-stack listener sees `::ffff:a.b.c.d` for a client that
/// connected from `a.b.c.d`.
fn canonical(a: SocketAddr) -> SocketAddr {
    SocketAddr::new(a.ip().to_canonical(), a.port())
}

/// One TCP connection as both of its sockets describe it (client and server address).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct ConnKey {
    client: SocketAddr,
    server: SocketAddr,
    /// The netns for loopback connections (which never leave their namespace, so equal
    /// 4-tuples in two namespaces are different connections), else 0: veth pairs put the two
    /// sides of one connection in different namespaces.
    scope: u32,
}

/// One socket of a connection, waiting for its peer's record.
#[derive(Debug)]
struct Side {
    role: Role,
    key: ConnKey,
    cookie: u64,
    /// When the connection was established (connect) or accepted.
    time_ns: u64,
    workload: Workload,
    connect_latency_us: Option<u64>,
    /// Its `Close`, when that came before the peer was known.
    close: Option<Totals>,
    /// HTTP results seen before the peer was known.
    http: HttpStats,
}

impl Side {
    fn new(c: &ConnRecord, role: Role) -> Self {
        let (local, remote) = (canonical(c.local), canonical(c.remote));
        let (client, server) = match role {
            Role::Client => (local, remote),
            Role::Server => (remote, local),
        };
        let loopback = client.ip().is_loopback() || server.ip().is_loopback();
        Self {
            role,
            key: ConnKey {
                client,
                server,
                scope: if loopback { c.netns } else { 0 },
            },
            cookie: c.cookie,
            time_ns: c.time_ns,
            workload: c.workload.clone(),
            connect_latency_us: match role {
                Role::Client => c.connect_latency_us,
                Role::Server => None,
            },
            close: None,
            http: HttpStats::default(),
        }
    }
}

/// What a bound socket's cookie leads to.
#[derive(Debug, Clone, Copy)]
struct Binding {
    edge: usize,
    role: Role,
    /// This socket's close counters are the edge's (one socket per connection).
    tcp: bool,
    /// This socket's HTTP results are the edge's (one socket per connection).
    http: bool,
    opened_ns: u64,
    closed_ns: Option<u64>,
    /// The socket at the other end, when it is local too.
    peer: Option<u64>,
}

/// A socket's final counters, from its `Close`.
#[derive(Debug, Clone, Copy)]
struct Totals {
    time_ns: u64,
    bytes_sent: u64,
    bytes_received: u64,
    srtt_us: u32,
    retransmits: u32,
}

impl From<&ConnRecord> for Totals {
    fn from(c: &ConnRecord) -> Self {
        Self {
            time_ns: c.time_ns,
            bytes_sent: c.bytes_sent,
            bytes_received: c.bytes_received,
            srtt_us: c.srtt_us,
            retransmits: c.retransmits,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Endpoint<'a> {
    Local(&'a Workload),
    External(IpAddr),
}

#[derive(Debug)]
enum Node {
    Local(Workload),
    External(IpAddr),
}

impl Node {
    /// Local nodes use the workload key as is; it must not start with `ip:`.
    fn id(&self) -> String {
        match self {
            Node::Local(w) => w.key.clone(),
            Node::External(ip) => format!("ip:{ip}"),
        }
    }

    fn view(&self, id: String, names: &dyn Fn(&IpAddr) -> Vec<String>) -> NodeView {
        match self {
            Node::Local(w) => NodeView {
                id,
                kind: w.kind,
                label: w.label.clone(),
                cgroup_id: (w.cgroup_id != 0).then_some(w.cgroup_id),
                exe: (!w.exe.is_empty()).then(|| w.exe.clone()),
                ip: None,
                names: Vec::new(),
                container_id: None,
                namespace: None,
                pod: None,
            },
            Node::External(ip) => {
                let mut names = names(ip);
                names.sort();
                names.dedup();
                NodeView {
                    id,
                    kind: NodeKind::External,
                    label: names.first().cloned().unwrap_or_else(|| ip.to_string()),
                    cgroup_id: None,
                    exe: None,
                    ip: Some(*ip),
                    names,
                    container_id: None,
                    namespace: None,
                    pod: None,
                }
            }
        }
    }
}

#[derive(Debug)]
struct Edge {
    client: usize,
    server: usize,
    port: u16,
    connections: u64,
    recent: PerSecond,
    failed: u64,
    bytes_sent: u64,
    bytes_received: u64,
    retransmits: u64,
    connect_latency: LogHist,
    rtt: LogHist,
    http: HttpStats,
}

impl Edge {
    fn new(client: usize, server: usize, port: u16) -> Self {
        Self {
            client,
            server,
            port,
            connections: 0,
            recent: PerSecond::default(),
            failed: 0,
            bytes_sent: 0,
            bytes_received: 0,
            retransmits: 0,
            connect_latency: LogHist::new(),
            rtt: LogHist::new(),
            http: HttpStats::default(),
        }
    }

    fn count_connection(&mut self, time_ns: u64, connect_latency_us: Option<u64>) {
        self.connections = self.connections.saturating_add(1);
        self.recent.add(time_ns);
        if let Some(us) = connect_latency_us {
            self.connect_latency.record(us);
        }
    }

    /// `role` is the side the totals come from; the edge counts client -> server as "sent".
    fn add_totals(&mut self, role: Role, t: &Totals) {
        let (sent, received) = match role {
            Role::Client => (t.bytes_sent, t.bytes_received),
            Role::Server => (t.bytes_received, t.bytes_sent),
        };
        self.bytes_sent = self.bytes_sent.saturating_add(sent);
        self.bytes_received = self.bytes_received.saturating_add(received);
        self.retransmits = self.retransmits.saturating_add(u64::from(t.retransmits));
        if t.srtt_us > 0 {
            self.rtt.record(u64::from(t.srtt_us));
        }
    }

    fn view(&self, ids: &[String], now_ns: u64) -> EdgeView {
        EdgeView {
            source: ids[self.client].clone(),
            target: ids[self.server].clone(),
            port: self.port,
            protocol: "tcp",
            connections: self.connections,
            connections_per_sec: (self.recent.rate(now_ns) * 1000.0).round() / 1000.0,
            failed: self.failed,
            bytes_sent: self.bytes_sent,
            bytes_received: self.bytes_received,
            retransmits: self.retransmits,
            connect_latency_us: self.connect_latency.summary(),
            rtt_us: self.rtt.summary(),
            http: (self.http.requests > 0).then(|| HttpView {
                requests: self.http.requests,
                errors: self.http.errors,
                latency_us: self.http.latency.summary(),
            }),
        }
    }
}

#[derive(Debug, Clone, Default)]
struct HttpStats {
    requests: u64,
    errors: u64,
    latency: LogHist,
}

impl HttpStats {
    fn record(&mut self, latency_us: Option<u64>, status: Option<u16>) {
        self.requests = self.requests.saturating_add(1);
        if status.is_none_or(|s| s >= 500) {
            self.errors = self.errors.saturating_add(1);
        }
        if let Some(us) = latency_us {
            self.latency.record(us);
        }
    }

    fn merge(&mut self, other: &HttpStats) {
        self.requests = self.requests.saturating_add(other.requests);
        self.errors = self.errors.saturating_add(other.errors);
        self.latency.merge(&other.latency);
    }
}

/// Connections per second over the last minute: one counter per second in a ring, so the
/// cost per edge is fixed whatever the connection rate.
#[derive(Debug, Clone)]
struct PerSecond {
    /// The second (since boot) the newest slot stands for.
    newest: u64,
    slots: [u32; RATE_WINDOW_SECS],
}

impl Default for PerSecond {
    fn default() -> Self {
        Self {
            newest: 0,
            slots: [0; RATE_WINDOW_SECS],
        }
    }
}

impl PerSecond {
    fn add(&mut self, time_ns: u64) {
        let sec = time_ns / NS_PER_SEC;
        let window = RATE_WINDOW_SECS as u64;
        if sec > self.newest {
            for s in self.newest + 1..=sec.min(self.newest + window) {
                self.slots[(s % window) as usize] = 0;
            }
            self.newest = sec;
        } else if sec + window <= self.newest {
            return; // Older than the window.
        }
        let slot = &mut self.slots[(sec % window) as usize];
        *slot = slot.saturating_add(1);
    }

    fn rate(&self, now_ns: u64) -> f64 {
        let now = now_ns / NS_PER_SEC;
        let window = RATE_WINDOW_SECS as u64;
        let total: u64 = (0..window)
            .filter_map(|age| self.newest.checked_sub(age))
            .filter(|s| s + window > now)
            .map(|s| u64::from(self.slots[(s % window) as usize]))
            .sum();
        total as f64 / window as f64
    }
}

/// The service map as `GET /api/v1/map` returns it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Snapshot {
    pub nodes: Vec<NodeView>,
    pub edges: Vec<EdgeView>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NodeView {
    /// The workload key for local nodes, `ip:<address>` for external ones.
    pub id: String,
    pub kind: NodeKind,
    /// The workload's label; for external nodes the first known name, else the address.
    pub label: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cgroup_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exe: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<IpAddr>,
    /// DNS names known for an external node's IP (sorted); empty for local nodes.
    pub names: Vec<String>,
    /// The container, Kubernetes namespace and pod of a local node, filled in by the agent
    /// (the map itself knows only cgroups).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct EdgeView {
    /// The client's node id.
    pub source: String,
    /// The server's node id.
    pub target: String,
    /// The server port.
    pub port: u16,
    pub protocol: &'static str,
    /// Established connections (each counted once, whichever sides were seen).
    pub connections: u64,
    /// Established connections over the last 60 s, divided by 60.
    pub connections_per_sec: f64,
    /// Failed connects (`connect_failed`).
    pub failed: u64,
    /// Payload bytes client -> server, from closed connections.
    pub bytes_sent: u64,
    /// Payload bytes server -> client, from closed connections.
    pub bytes_received: u64,
    pub retransmits: u64,
    pub connect_latency_us: Summary,
    /// Smoothed RTT at close, one sample per closed connection.
    pub rtt_us: Summary,
    /// Omitted when no HTTP exchange was seen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpView>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HttpView {
    pub requests: u64,
    /// 5xx responses and requests without a response.
    pub errors: u64,
    pub latency_us: Summary,
}

/// Graphviz DOT for `vigil map --dot`: external nodes as ellipses, local ones as boxes; edges
/// labelled with protocol/port, connections (and failures) and bytes each way.
pub fn to_dot(snapshot: &Snapshot) -> String {
    let mut out = String::from("digraph vigil {\n  rankdir=LR;\n  node [shape=box];\n");
    for n in &snapshot.nodes {
        let shape = match n.kind {
            NodeKind::External => ", shape=ellipse",
            NodeKind::Process | NodeKind::Container => "",
        };
        let _ = writeln!(
            out,
            "  \"{}\" [label=\"{}\"{shape}];",
            dot_escape(&n.id),
            dot_escape(&n.label)
        );
    }
    for e in &snapshot.edges {
        let mut label = format!("{}/{}\n{} conn", e.protocol, e.port, e.connections);
        if e.failed > 0 {
            let _ = write!(label, ", {} failed", e.failed);
        }
        let _ = write!(
            label,
            "\n{} sent, {} received",
            human_bytes(e.bytes_sent),
            human_bytes(e.bytes_received)
        );
        let _ = writeln!(
            out,
            "  \"{}\" -> \"{}\" [label=\"{}\"];",
            dot_escape(&e.source),
            dot_escape(&e.target),
            dot_escape(&label)
        );
    }
    out.push_str("}\n");
    out
}

/// Escapes for a DOT double-quoted string; line breaks become DOT's `\n`, other control
/// characters spaces (labels come from process names and DNS, which anyone can choose).
fn dot_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;
    /// Records start well after boot so windows never underflow.
    const T0: u64 = 1_000 * NS_PER_SEC;

    fn wl(key: &str) -> Workload {
        Workload {
            key: format!("proc:{key}"),
            kind: NodeKind::Process,
            label: key.to_string(),
            cgroup_id: 100,
            exe: format!("/usr/bin/{key}"),
        }
    }

    fn rec(phase: ConnPhase, cookie: u64, t_ms: u64, local: &str, remote: &str) -> ConnRecord {
        ConnRecord {
            time_ns: T0 + t_ms * MS,
            phase,
            role: match phase {
                ConnPhase::Accept => Role::Server,
                _ => Role::Client,
            },
            netns: 1,
            cookie,
            local: local.parse().unwrap(),
            remote: remote.parse().unwrap(),
            workload: wl("none"),
            connect_latency_us: None,
            bytes_sent: 0,
            bytes_received: 0,
            srtt_us: 0,
            retransmits: 0,
        }
    }

    fn connect(w: &str, cookie: u64, t_ms: u64, local: &str, remote: &str) -> ConnRecord {
        ConnRecord {
            workload: wl(w),
            connect_latency_us: Some(150),
            ..rec(ConnPhase::Connect, cookie, t_ms, local, remote)
        }
    }

    fn accept(w: &str, cookie: u64, t_ms: u64, local: &str, remote: &str) -> ConnRecord {
        ConnRecord {
            workload: wl(w),
            netns: 2,
            ..rec(ConnPhase::Accept, cookie, t_ms, local, remote)
        }
    }

    /// The `Close` of `open`'s socket with its final counters.
    fn close_of(open: &ConnRecord, t_ms: u64, sent: u64, received: u64) -> ConnRecord {
        ConnRecord {
            time_ns: T0 + t_ms * MS,
            phase: ConnPhase::Close,
            connect_latency_us: None,
            bytes_sent: sent,
            bytes_received: received,
            srtt_us: 40,
            retransmits: 1,
            ..open.clone()
        }
    }

    fn no_names(_: &IpAddr) -> Vec<String> {
        Vec::new()
    }

    fn snap(m: &ServiceMap) -> Snapshot {
        m.snapshot(T0 + 10 * NS_PER_SEC, &no_names)
    }

    fn edge<'a>(s: &'a Snapshot, source: &str, target: &str, port: u16) -> &'a EdgeView {
        s.edges
            .iter()
            .find(|e| e.source == source && e.target == target && e.port == port)
            .unwrap_or_else(|| panic!("no edge {source} -> {target}:{port} in {s:#?}"))
    }

    fn far_future() -> u64 {
        T0 + 3600 * NS_PER_SEC
    }

    /// Client `c` (10.0.0.1, netns 1) connects to server `s` (10.0.0.2:80, netns 2).
    fn local_pair() -> (ConnRecord, ConnRecord) {
        (
            connect("c", 1, 0, "10.0.0.1:40000", "10.0.0.2:80"),
            accept("s", 2, 1, "10.0.0.2:80", "10.0.0.1:40000"),
        )
    }

    fn assert_bound_pair(m: &ServiceMap) {
        let s = snap(m);
        let ids: Vec<_> = s.nodes.iter().map(|n| n.id.as_str()).collect();
        assert_eq!(ids, ["proc:c", "proc:s"]);
        assert_eq!(s.edges.len(), 1, "{s:#?}");
        let e = edge(&s, "proc:c", "proc:s", 80);
        assert_eq!(e.connections, 1);
        assert_eq!(e.protocol, "tcp");
        assert_eq!(e.connect_latency_us.count, 1);
        assert_eq!(e.connect_latency_us.p50, Some(150));
        // The client's counters, not the server's (which disagree on purpose).
        assert_eq!((e.bytes_sent, e.bytes_received), (100, 2000));
        assert_eq!(e.retransmits, 1);
        assert_eq!(e.rtt_us.count, 1);
    }

    #[test]
    fn local_pair_across_namespaces_is_one_edge_with_client_bytes() {
        let mut m = ServiceMap::new(MapLimits::default());
        let (c, s) = local_pair();
        m.record(&c);
        m.record(&s);
        assert_eq!(m.stats().pending, 0, "bound at once");
        m.record(&close_of(&c, 50, 100, 2000));
        m.record(&close_of(&s, 51, 1999, 99));
        assert_bound_pair(&m);
        m.expire(far_future());
        assert_bound_pair(&m);
        let st = m.stats();
        assert_eq!((st.nodes, st.edges, st.pending, st.tracked), (2, 1, 0, 0));
    }

    /// Without HTTP capture a closed connection is forgotten at its close, with its counters
    /// already on the edge: only open connections are remembered.
    #[test]
    fn closed_connections_are_forgotten_at_once_without_http() {
        let mut m = ServiceMap::new(MapLimits {
            keep_closed_ns: 0,
            ..MapLimits::default()
        });
        let (c, s) = local_pair();
        m.record(&c);
        m.record(&s);
        assert_eq!(m.stats().tracked, 2);
        m.record(&close_of(&c, 50, 100, 2000));
        m.record(&close_of(&s, 51, 1999, 99));
        assert_eq!(m.stats().tracked, 0, "nothing kept before any expiry");
        assert_bound_pair(&m);
    }

    #[test]
    fn each_end_of_a_local_pair_knows_the_other() {
        let mut m = ServiceMap::new(MapLimits::default());
        let (c, s) = local_pair();
        m.record(&c);
        assert_eq!(m.local_peer(c.cookie), None, "not bound yet");
        m.record(&s);
        assert_eq!(m.local_peer(c.cookie), Some(s.cookie));
        assert_eq!(m.local_peer(s.cookie), Some(c.cookie));
        let lone = connect("c", 9, 0, "10.0.0.1:40001", "192.0.2.1:80");
        m.record(&lone);
        m.expire(far_future());
        assert_eq!(m.local_peer(lone.cookie), None, "external server");
    }

    #[test]
    fn accept_before_connect_binds_the_same() {
        let mut m = ServiceMap::new(MapLimits::default());
        let (c, s) = local_pair();
        m.record(&s);
        m.record(&c);
        m.record(&close_of(&s, 51, 1999, 99));
        m.record(&close_of(&c, 50, 100, 2000));
        m.expire(far_future());
        assert_bound_pair(&m);
    }

    #[test]
    fn closes_before_binding_are_kept_until_the_peer_arrives() {
        // accept() returned a connection its client had already closed.
        let mut m = ServiceMap::new(MapLimits::default());
        let (c, s) = local_pair();
        m.record(&c);
        m.record(&close_of(&c, 50, 100, 2000));
        m.record(&ConnRecord {
            time_ns: T0 + 3000 * MS,
            ..s.clone()
        });
        m.record(&close_of(&s, 3001, 1999, 99));
        m.expire(far_future());
        assert_bound_pair(&m);
    }

    #[test]
    fn ipv4_mapped_addresses_match_plain_ipv4() {
        let mut m = ServiceMap::new(MapLimits::default());
        let (c, _) = local_pair();
        m.record(&c);
        m.record(&accept(
            "s",
            2,
            1,
            "[::ffff:10.0.0.2]:80",
            "[::ffff:10.0.0.1]:40000",
        ));
        m.record(&close_of(&c, 50, 100, 2000));
        m.expire(far_future());
        assert_bound_pair(&m);
    }

    #[test]
    fn connect_without_accept_goes_to_an_external_server() {
        let mut m = ServiceMap::new(MapLimits::default());
        let c = connect("c", 1, 0, "10.0.0.1:40000", "93.184.216.34:443");
        m.record(&c);
        m.record(&close_of(&c, 20, 300, 4000));
        m.expire(T0 + 4 * NS_PER_SEC);
        assert!(snap(&m).edges.is_empty(), "still waiting within the TTL");
        assert_eq!(m.stats().pending, 1);
        m.expire(T0 + 6 * NS_PER_SEC);
        let s = snap(&m);
        let e = edge(&s, "proc:c", "ip:93.184.216.34", 443);
        assert_eq!(e.connections, 1);
        assert_eq!((e.bytes_sent, e.bytes_received), (300, 4000));
        assert_eq!(e.connect_latency_us.count, 1);
        let n = s.nodes.iter().find(|n| n.id == "ip:93.184.216.34").unwrap();
        assert_eq!(n.kind, NodeKind::External);
        assert_eq!(n.ip, Some("93.184.216.34".parse().unwrap()));
        assert_eq!(n.label, "93.184.216.34");
        assert_eq!((n.cgroup_id, n.exe.as_deref()), (None, None));
    }

    #[test]
    fn close_after_external_binding_updates_the_edge_once() {
        let mut m = ServiceMap::new(MapLimits::default());
        let c = connect("c", 1, 0, "10.0.0.1:40000", "93.184.216.34:443");
        m.record(&c);
        m.expire(T0 + 6 * NS_PER_SEC);
        assert_eq!(m.stats().tracked, 1);
        m.record(&close_of(&c, 7000, 300, 4000));
        m.record(&close_of(&c, 7001, 300, 4000)); // a repeated record
        let s = snap(&m);
        let e = edge(&s, "proc:c", "ip:93.184.216.34", 443);
        assert_eq!(
            (e.connections, e.bytes_sent, e.bytes_received),
            (1, 300, 4000)
        );
        m.expire(T0 + 20 * NS_PER_SEC);
        assert_eq!(m.stats().tracked, 0, "closed connections are forgotten");
    }

    #[test]
    fn accept_without_connect_comes_from_an_external_client() {
        let mut m = ServiceMap::new(MapLimits::default());
        let s = accept("s", 2, 0, "10.0.0.2:80", "198.51.100.7:51000");
        m.record(&s);
        m.record(&close_of(&s, 30, 5000, 700));
        m.expire(far_future());
        let snap = snap(&m);
        assert_eq!(snap.edges.len(), 1);
        let e = edge(&snap, "ip:198.51.100.7", "proc:s", 80);
        assert_eq!(e.connections, 1);
        // Seen from the server: what it received is what the client sent.
        assert_eq!((e.bytes_sent, e.bytes_received), (700, 5000));
        assert_eq!(e.connect_latency_us.count, 0);
    }

    #[test]
    fn a_reused_server_ip_never_joins_two_workloads() {
        let mut m = ServiceMap::new(MapLimits::default());
        // Workload A serves 10.0.0.2:80 for client C.
        m.record(&connect("c", 1, 0, "10.0.0.1:40000", "10.0.0.2:80"));
        m.record(&accept("a", 2, 1, "10.0.0.2:80", "10.0.0.1:40000"));
        // A is gone; B now owns 10.0.0.2 and serves C on the same port.
        m.record(&connect("c", 3, 60_000, "10.0.0.1:40001", "10.0.0.2:80"));
        m.record(&accept("b", 4, 60_001, "10.0.0.2:80", "10.0.0.1:40001"));
        // Even the very same 4-tuple, reused much later, binds to whoever accepts it then.
        m.record(&connect("c", 5, 120_000, "10.0.0.1:40000", "10.0.0.2:80"));
        m.record(&accept("b", 6, 120_001, "10.0.0.2:80", "10.0.0.1:40000"));
        m.expire(far_future());
        let s = snap(&m);
        assert_eq!(s.edges.len(), 2, "{s:#?}");
        assert_eq!(edge(&s, "proc:c", "proc:a", 80).connections, 1);
        assert_eq!(edge(&s, "proc:c", "proc:b", 80).connections, 2);
        assert!(s.nodes.iter().all(|n| n.kind != NodeKind::External));
    }

    #[test]
    fn sides_too_far_apart_in_time_are_not_paired() {
        let mut m = ServiceMap::new(MapLimits::default());
        m.record(&connect("c", 1, 0, "10.0.0.1:40000", "10.0.0.2:80"));
        // No expire() ran in between: the pairing itself checks the time.
        m.record(&accept("b", 2, 9_000, "10.0.0.2:80", "10.0.0.1:40000"));
        m.expire(far_future());
        let s = snap(&m);
        assert_eq!(s.edges.len(), 2, "{s:#?}");
        assert_eq!(edge(&s, "proc:c", "ip:10.0.0.2", 80).connections, 1);
        assert_eq!(edge(&s, "ip:10.0.0.1", "proc:b", 80).connections, 1);
    }

    #[test]
    fn a_reused_tuple_on_one_side_resolves_the_older_side() {
        let mut m = ServiceMap::new(MapLimits::default());
        m.record(&connect("c", 1, 0, "10.0.0.1:40000", "10.0.0.9:80"));
        m.record(&connect("c", 2, 100, "10.0.0.1:40000", "10.0.0.9:80"));
        let st = m.stats();
        assert_eq!((st.pending, st.edges), (1, 1));
        assert_eq!(edge(&snap(&m), "proc:c", "ip:10.0.0.9", 80).connections, 1);
    }

    #[test]
    fn loopback_pairs_only_within_one_namespace() {
        let mut m = ServiceMap::new(MapLimits::default());
        // Same netns: one edge.
        m.record(&connect("c", 1, 0, "127.0.0.1:5000", "127.0.0.1:80"));
        m.record(&ConnRecord {
            netns: 1,
            ..accept("s", 2, 1, "127.0.0.1:80", "127.0.0.1:5000")
        });
        // Two namespaces each with their own 127.0.0.1: not the same connection.
        m.record(&ConnRecord {
            netns: 7,
            ..connect("d", 3, 0, "127.0.0.1:6000", "127.0.0.1:80")
        });
        m.record(&ConnRecord {
            netns: 8,
            ..accept("t", 4, 1, "127.0.0.1:80", "127.0.0.1:6000")
        });
        m.expire(far_future());
        let s = snap(&m);
        assert_eq!(edge(&s, "proc:c", "proc:s", 80).connections, 1);
        assert_eq!(edge(&s, "proc:d", "ip:127.0.0.1", 80).connections, 1);
        assert_eq!(edge(&s, "ip:127.0.0.1", "proc:t", 80).connections, 1);
        assert_eq!(s.edges.len(), 3);
    }

    #[test]
    fn repeated_open_records_count_once() {
        let mut m = ServiceMap::new(MapLimits::default());
        let (c, s) = local_pair();
        for r in [&c, &s, &c, &s] {
            m.record(r);
        }
        m.expire(far_future());
        let snap = snap(&m);
        assert_eq!(snap.edges.len(), 1);
        assert_eq!(snap.edges[0].connections, 1);
    }

    #[test]
    fn failed_connects_count_against_the_remote_ip() {
        let mut m = ServiceMap::new(MapLimits::default());
        let f = ConnRecord {
            workload: wl("c"),
            connect_latency_us: Some(1_000_000),
            ..rec(
                ConnPhase::ConnectFailed,
                1,
                0,
                "10.0.0.1:40000",
                "10.0.0.2:81",
            )
        };
        m.record(&f);
        m.record(&ConnRecord { cookie: 2, ..f });
        assert_eq!(m.stats().pending, 0, "nothing waits for an accept");
        let s = snap(&m);
        let e = edge(&s, "proc:c", "ip:10.0.0.2", 81);
        assert_eq!((e.failed, e.connections), (2, 0));
        assert_eq!(e.connect_latency_us.count, 0, "failures skew no latency");
    }

    #[test]
    fn node_limit_refuses_and_counts() {
        let limits = MapLimits {
            max_nodes: 2,
            ..MapLimits::default()
        };
        let mut m = ServiceMap::new(limits);
        m.record(&connect("c", 1, 0, "10.0.0.1:40000", "10.0.0.2:80"));
        m.record(&accept("s", 2, 1, "10.0.0.2:80", "10.0.0.1:40000"));
        // A third node is needed for each of these.
        m.record(&connect("c", 3, 2, "10.0.0.1:40001", "10.0.0.3:80"));
        m.record(&ConnRecord {
            workload: wl("d"),
            ..rec(
                ConnPhase::ConnectFailed,
                4,
                3,
                "10.0.0.4:40000",
                "10.0.0.2:80",
            )
        });
        m.expire(far_future());
        let st = m.stats();
        assert_eq!((st.nodes, st.edges), (2, 1));
        assert_eq!((st.refused_nodes, st.refused_edges), (2, 2));
        assert_eq!(
            snap(&m).nodes.len(),
            2,
            "no orphan node from a refused edge"
        );
    }

    #[test]
    fn edge_limit_refuses_and_counts() {
        let limits = MapLimits {
            max_edges: 1,
            ..MapLimits::default()
        };
        let mut m = ServiceMap::new(limits);
        let (c, s) = local_pair();
        m.record(&c);
        m.record(&s);
        // Same nodes, another port: a new edge.
        m.record(&connect("c", 3, 2, "10.0.0.1:40001", "10.0.0.2:8080"));
        m.record(&accept("s", 4, 3, "10.0.0.2:8080", "10.0.0.1:40001"));
        // The existing edge still counts.
        m.record(&connect("c", 5, 4, "10.0.0.1:40002", "10.0.0.2:80"));
        m.record(&accept("s", 6, 5, "10.0.0.2:80", "10.0.0.1:40002"));
        let st = m.stats();
        assert_eq!(
            (st.nodes, st.edges, st.refused_nodes, st.refused_edges),
            (2, 1, 0, 1)
        );
        assert_eq!(edge(&snap(&m), "proc:c", "proc:s", 80).connections, 2);
        // A refused connection's cookies are not tracked: its close changes nothing.
        m.record(&close_of(
            &connect("c", 3, 2, "10.0.0.1:40001", "10.0.0.2:8080"),
            9,
            5,
            5,
        ));
        assert_eq!(edge(&snap(&m), "proc:c", "proc:s", 80).bytes_sent, 0);
    }

    #[test]
    fn full_pending_table_evicts_the_oldest_as_external() {
        let limits = MapLimits {
            max_pending: 2,
            ..MapLimits::default()
        };
        let mut m = ServiceMap::new(limits);
        for (cookie, port) in [(1, 81), (2, 82), (3, 83)] {
            let local = format!("10.0.0.1:{}", 40000 + port);
            m.record(&connect(
                "c",
                cookie,
                cookie,
                &local,
                &format!("10.0.0.2:{port}"),
            ));
        }
        let st = m.stats();
        assert_eq!((st.pending, st.evicted, st.edges), (2, 1, 1));
        assert_eq!(edge(&snap(&m), "proc:c", "ip:10.0.0.2", 81).connections, 1);
        // The survivors still pair.
        m.record(&accept("s", 9, 4, "10.0.0.2:83", "10.0.0.1:40083"));
        assert_eq!(edge(&snap(&m), "proc:c", "proc:s", 83).connections, 1);
        let zero = MapLimits {
            max_pending: 0,
            ..MapLimits::default()
        };
        let mut m = ServiceMap::new(zero);
        m.record(&connect("c", 1, 0, "10.0.0.1:40000", "10.0.0.2:80"));
        let st = m.stats();
        assert_eq!((st.pending, st.edges, st.evicted), (0, 1, 1));
    }

    #[test]
    fn full_tracking_table_forgets_closed_then_oldest() {
        let limits = MapLimits {
            max_tracked: 2,
            ..MapLimits::default()
        };
        let mut m = ServiceMap::new(limits);
        let a = connect("c", 1, 0, "10.0.0.1:40000", "10.0.0.9:80");
        let b = connect("c", 2, 1, "10.0.0.1:40001", "10.0.0.9:80");
        let c = connect("c", 3, 2, "10.0.0.1:40002", "10.0.0.9:80");
        m.record(&a);
        m.record(&b);
        m.record(&close_of(&b, 5000, 1, 1));
        m.expire(T0 + 6 * NS_PER_SEC); // a and b bound; b closed but kept for late HTTP
        m.record(&c);
        m.expire(T0 + 6 * NS_PER_SEC + 2 * MS); // c bound: b (closed) goes, a stays
        let st = m.stats();
        assert_eq!((st.tracked, st.evicted), (2, 1));
        m.record(&close_of(&a, 7000, 10, 10));
        assert_eq!(edge(&snap(&m), "proc:c", "ip:10.0.0.9", 80).bytes_sent, 11);
        let zero = MapLimits {
            max_tracked: 0,
            ..MapLimits::default()
        };
        let mut m = ServiceMap::new(zero);
        m.record(&connect("c", 1, 0, "10.0.0.1:40000", "10.0.0.2:80"));
        m.record(&accept("s", 2, 1, "10.0.0.2:80", "10.0.0.1:40000"));
        let st = m.stats();
        assert_eq!((st.tracked, st.evicted, st.edges), (0, 2, 1));
    }

    #[test]
    fn http_between_local_ends_counts_the_server_view_once() {
        let mut m = ServiceMap::new(MapLimits::default());
        let (c, s) = local_pair();
        m.record(&c);
        // Seen by the client before the accept arrived, then by both.
        m.record_http(1, Role::Client, Some(900), Some(200));
        m.record(&s);
        m.record_http(2, Role::Server, Some(700), Some(200));
        m.record_http(1, Role::Client, Some(1900), Some(503));
        m.record_http(2, Role::Server, Some(1700), Some(503));
        // A result the server socket reports as client is not the server's view.
        m.record_http(2, Role::Client, Some(5), Some(200));
        let s = snap(&m);
        let h = s.edges[0].http.as_ref().unwrap();
        assert_eq!((h.requests, h.errors), (2, 1));
        assert_eq!(h.latency_us.max, Some(1700), "the server's latencies");
    }

    #[test]
    fn http_to_an_external_server_counts_the_client_view() {
        let mut m = ServiceMap::new(MapLimits::default());
        let c = connect("c", 1, 0, "10.0.0.1:40000", "93.184.216.34:80");
        m.record(&c);
        m.record_http(1, Role::Client, Some(40_000), Some(200)); // while pending
        m.expire(T0 + 6 * NS_PER_SEC);
        m.record_http(1, Role::Client, None, None); // no response: an error
        m.record(&close_of(&c, 7000, 1, 1));
        m.record_http(1, Role::Client, Some(10), Some(404)); // late, after the close
        m.expire(T0 + 20 * NS_PER_SEC);
        m.record_http(1, Role::Client, Some(10), Some(200)); // forgotten by now
        m.record_http(77, Role::Client, Some(10), Some(200)); // unknown cookie
        let s = snap(&m);
        let h = s.edges[0].http.as_ref().unwrap();
        assert_eq!((h.requests, h.errors, h.latency_us.count), (3, 1, 2));
    }

    #[test]
    fn http_from_an_external_client_counts_the_server_view() {
        let mut m = ServiceMap::new(MapLimits::default());
        m.record(&accept("s", 2, 0, "10.0.0.2:80", "198.51.100.7:51000"));
        m.record_http(2, Role::Server, Some(100), Some(500));
        m.expire(far_future());
        let s = snap(&m);
        let h = s.edges[0].http.as_ref().unwrap();
        assert_eq!((h.requests, h.errors), (1, 1));
    }

    #[test]
    fn connection_rate_covers_the_last_minute() {
        let mut m = ServiceMap::new(MapLimits::default());
        for i in 0..30u64 {
            let local = format!("10.0.0.1:{}", 40000 + i);
            m.record(&connect("c", i + 1, i * 1000, &local, "10.0.0.9:80"));
        }
        m.expire(T0 + 40 * NS_PER_SEC);
        let rate = |now_s: u64| {
            m.snapshot(T0 + now_s * NS_PER_SEC, &no_names).edges[0].connections_per_sec
        };
        assert_eq!(rate(40), 0.5);
        // Seconds 0..=14 fell out of the window ending at second 74.
        assert_eq!(rate(74), 0.25);
        assert_eq!(rate(200), 0.0);
        assert_eq!(m.snapshot(T0, &no_names).edges[0].connections, 30);
    }

    #[test]
    fn per_second_ring_wraps_and_ignores_stale_times() {
        let mut r = PerSecond::default();
        r.add(T0);
        r.add(T0 + 61 * NS_PER_SEC); // clears the slot T0 used
        r.add(T0); // older than the window: ignored
        assert_eq!(r.rate(T0 + 61 * NS_PER_SEC) * 60.0, 1.0);
        r.add(T0 + 1000 * NS_PER_SEC); // a long gap clears everything
        assert_eq!(r.rate(T0 + 1000 * NS_PER_SEC) * 60.0, 1.0);
    }

    #[test]
    fn snapshot_is_sorted_and_uses_names() {
        let mut m = ServiceMap::new(MapLimits::default());
        m.record(&connect("z", 1, 0, "10.0.0.1:40000", "10.0.0.9:443"));
        m.record(&connect("a", 2, 0, "10.0.0.3:40000", "10.0.0.9:80"));
        m.record(&connect("a", 3, 0, "10.0.0.3:40001", "10.0.0.8:80"));
        m.expire(far_future());
        let names = |ip: &IpAddr| match ip.to_string().as_str() {
            "10.0.0.9" => vec!["web.test".to_string(), "api.test".into(), "api.test".into()],
            _ => Vec::new(),
        };
        let s = m.snapshot(far_future(), &names);
        let ids: Vec<_> = s.nodes.iter().map(|n| n.id.as_str()).collect();
        assert_eq!(ids, ["ip:10.0.0.8", "ip:10.0.0.9", "proc:a", "proc:z"]);
        let edges: Vec<_> = s
            .edges
            .iter()
            .map(|e| (e.source.as_str(), e.target.as_str(), e.port))
            .collect();
        assert_eq!(
            edges,
            [
                ("proc:a", "ip:10.0.0.8", 80),
                ("proc:a", "ip:10.0.0.9", 80),
                ("proc:z", "ip:10.0.0.9", 443)
            ]
        );
        assert_eq!(s.nodes[1].names, ["api.test", "web.test"]);
        assert_eq!(s.nodes[1].label, "api.test");
    }

    #[test]
    fn snapshot_json_shape() {
        let mut m = ServiceMap::new(MapLimits::default());
        let c = connect("c", 1, 0, "10.0.0.1:40000", "10.0.0.9:80");
        m.record(&c);
        m.record(&close_of(&c, 10, 5, 6));
        m.expire(far_future());
        let v = serde_json::to_value(m.snapshot(T0, &no_names)).unwrap();
        assert_eq!(
            v["nodes"][0],
            serde_json::json!({"id": "ip:10.0.0.9", "kind": "external", "label": "10.0.0.9",
                "ip": "10.0.0.9", "names": []})
        );
        assert_eq!(
            v["nodes"][1],
            serde_json::json!({"id": "proc:c", "kind": "process", "label": "c",
                "cgroup_id": 100, "exe": "/usr/bin/c", "names": []})
        );
        assert_eq!(
            v["edges"][0],
            serde_json::json!({"source": "proc:c", "target": "ip:10.0.0.9", "port": 80,
                "protocol": "tcp", "connections": 1, "connections_per_sec": 0.017, "failed": 0,
                "bytes_sent": 5, "bytes_received": 6, "retransmits": 1,
                "connect_latency_us": {"count": 1, "p50": 150, "p99": 150, "max": 150},
                "rtt_us": {"count": 1, "p50": 40, "p99": 40, "max": 40}})
        );
        m.record(&connect("c", 2, 20, "10.0.0.1:40001", "10.0.0.9:80"));
        m.record_http(2, Role::Client, Some(9), Some(200));
        let v = serde_json::to_value(m.snapshot(T0, &no_names)).unwrap();
        assert!(
            v["edges"][0].get("http").is_none(),
            "still pending: not on the edge yet"
        );
        m.expire(far_future());
        let v = serde_json::to_value(m.snapshot(T0, &no_names)).unwrap();
        assert_eq!(
            v["edges"][0]["http"],
            serde_json::json!({"requests": 1, "errors": 0,
                "latency_us": {"count": 1, "p50": 9, "p99": 9, "max": 9}})
        );
    }

    #[test]
    fn dot_escapes_and_labels() {
        let mut m = ServiceMap::new(MapLimits::default());
        let w = Workload {
            key: "proc:\"evil\"\\x".into(),
            label: "say \"hi\"\nnow".into(),
            ..wl("x")
        };
        let c = ConnRecord {
            workload: w,
            ..connect("x", 1, 0, "10.0.0.1:40000", "10.0.0.9:80")
        };
        m.record(&c);
        m.record(&close_of(&c, 5, 1536, 10));
        m.record(&ConnRecord {
            cookie: 2,
            phase: ConnPhase::ConnectFailed,
            ..c.clone()
        });
        m.expire(far_future());
        let dot = to_dot(&snap(&m));
        assert!(dot.starts_with("digraph vigil {\n"), "{dot}");
        assert!(dot.ends_with("}\n"), "{dot}");
        assert!(
            dot.contains(r#"  "proc:\"evil\"\\x" [label="say \"hi\"\nnow"];"#),
            "{dot}"
        );
        assert!(
            dot.contains(r#"  "ip:10.0.0.9" [label="10.0.0.9", shape=ellipse];"#),
            "{dot}"
        );
        assert!(
            dot.contains(
                r#"  "proc:\"evil\"\\x" -> "ip:10.0.0.9" [label="tcp/80\n1 conn, 1 failed\n1.5 KiB sent, 10 B received"];"#
            ),
            "{dot}"
        );
        // Every quote inside a line is escaped: unescaped quotes come in pairs per id/label.
        for line in dot.lines() {
            let unescaped = line
                .replace("\\\\", "")
                .replace("\\\"", "")
                .matches('"')
                .count();
            assert_eq!(unescaped % 2, 0, "{line}");
        }
        assert_eq!(dot_escape("a\tb\r"), "a b ");
    }

    #[test]
    fn human_bytes_units() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1024), "1.0 KiB");
        assert_eq!(human_bytes(5 * 1024 * 1024), "5.0 MiB");
        assert_eq!(human_bytes(u64::MAX), "16384.0 PiB");
    }
}
