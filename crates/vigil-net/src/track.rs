//! Pairs captured requests with their responses, per observing socket, into the exchanges the
//! `dns` and `http` events report, with the latency seen at that socket.
//!
//! Everything a peer can make this hold is bounded: at most `max_pending` outstanding queries and
//! requests in all (the oldest is dropped and counted when a new one needs room) and at most
//! [`MAX_PIPELINE`] outstanding requests per connection. Work per segment is O(log pending).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;

use crate::{dns, http, Direction, Role, Segment, Transport};

const DNS_PORT: u16 = 53;

/// Outstanding HTTP requests kept per connection: pipelining rarely goes past a few, and a peer
/// that sends requests without reading answers must not fill the whole budget.
pub const MAX_PIPELINE: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Outstanding DNS queries and HTTP requests held at once, all sockets together.
    pub max_pending: usize,
    /// A query unanswered for this long is reported as timed out.
    pub dns_timeout_ns: u64,
    /// A request unanswered for this long is reported without a status.
    pub http_timeout_ns: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_pending: 8192,
            dns_timeout_ns: 5_000_000_000,
            http_timeout_ns: 30_000_000_000,
        }
    }
}

/// A DNS query and its response (or its time-out), as one socket saw them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsExchange {
    /// When the query was seen (CLOCK_BOOTTIME ns).
    pub time_ns: u64,
    pub cookie: u64,
    pub role: Role,
    pub transport: Transport,
    pub client: SocketAddr,
    pub server: SocketAddr,
    pub id: u16,
    /// The question's name as [`dns::Question::name`] gives it.
    pub query: String,
    pub qtype: u16,
    /// `None`: no response within the time-out.
    pub rcode: Option<u8>,
    pub answers: Vec<dns::Answer>,
    /// Query seen -> response seen; `None` when timed out.
    pub latency_ns: Option<u64>,
}

/// An HTTP request and its response (or the lack of one), as one socket saw them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpExchange {
    /// When the request was seen (CLOCK_BOOTTIME ns).
    pub time_ns: u64,
    pub cookie: u64,
    pub role: Role,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub method: String,
    pub path: String,
    pub path_truncated: bool,
    pub version: String,
    /// `None`: no response within the time-out, or the connection closed first.
    pub status: Option<u16>,
    /// Request seen -> response seen; `None` without a response.
    pub latency_ns: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observation {
    Dns(DnsExchange),
    Http(HttpExchange),
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrackerStats {
    /// Queries and requests waiting for an answer now.
    pub pending: usize,
    /// Queries and requests dropped, never reported, to stay within the limits.
    pub evicted: u64,
    /// DNS segments that did not decode, and segments that passed the kernel's HTTP prefix test
    /// without being a request or status line.
    pub parse_errors: u64,
    /// Responses with no outstanding query or request to pair with (not reported).
    pub unmatched_responses: u64,
}

/// Pending items in arrival order: (time seen, sequence number to break ties).
type Order = (u64, u64);

/// What a DNS response must repeat to answer a query: the same socket, peer, id and question.
/// The peer matters to a server socket, which takes queries from many clients that may pick the
/// same id for the same name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct DnsKey {
    cookie: u64,
    role: Role,
    peer: SocketAddr,
    id: u16,
    name: String,
}

#[derive(Debug)]
struct PendingDns {
    order: Order,
    transport: Transport,
    local: SocketAddr,
    qtype: u16,
}

#[derive(Debug)]
struct PendingHttp {
    order: Order,
    role: Role,
    local: SocketAddr,
    remote: SocketAddr,
    request: http::Request,
}

/// The correlation state. Feed it every captured segment with [`Tracker::segment`], call
/// [`Tracker::expire`] periodically and [`Tracker::closed`] when a TCP socket closes.
#[derive(Debug)]
pub struct Tracker {
    limits: Limits,
    next_seq: u64,
    dns: HashMap<DnsKey, PendingDns>,
    dns_order: BTreeMap<Order, DnsKey>,
    /// Per connection (cookie), outstanding requests oldest first.
    http: HashMap<u64, VecDeque<PendingHttp>>,
    /// Every outstanding request, oldest first, naming its connection.
    http_order: BTreeMap<Order, u64>,
    evicted: u64,
    parse_errors: u64,
    unmatched_responses: u64,
}

impl Tracker {
    /// A `max_pending` of 0 is taken as 1.
    pub fn new(limits: Limits) -> Self {
        Tracker {
            limits: Limits {
                max_pending: limits.max_pending.max(1),
                ..limits
            },
            next_seq: 0,
            dns: HashMap::new(),
            dns_order: BTreeMap::new(),
            http: HashMap::new(),
            http_order: BTreeMap::new(),
            evicted: 0,
            parse_errors: 0,
            unmatched_responses: 0,
        }
    }

    /// Takes in one captured segment; a response that completes an exchange appends it to `out`.
    ///
    /// Segments to or from port 53 are DNS (over UDP or TCP); other TCP segments are HTTP when
    /// they pass [`http::looks_like_http`]; anything else is ignored.
    pub fn segment(&mut self, seg: &Segment, out: &mut Vec<Observation>) {
        if seg.local.port() == DNS_PORT || seg.remote.port() == DNS_PORT {
            self.dns_segment(seg, out);
        } else if seg.transport == Transport::Tcp {
            self.http_segment(seg, out);
        }
    }

    /// Reports the queries and requests that have waited past their time-out, unanswered.
    pub fn expire(&mut self, now_ns: u64, out: &mut Vec<Observation>) {
        while let Some(entry) = self.dns_order.first_entry() {
            if now_ns.saturating_sub(entry.key().0) < self.limits.dns_timeout_ns {
                break;
            }
            let key = entry.remove();
            if let Some(pending) = self.dns.remove(&key) {
                out.push(Observation::Dns(dns_exchange(key, pending, None)));
            }
        }
        while let Some(entry) = self.http_order.first_entry() {
            if now_ns.saturating_sub(entry.key().0) < self.limits.http_timeout_ns {
                break;
            }
            let order = *entry.key();
            let cookie = entry.remove();
            if let Some(pending) = self.take_http(cookie, order) {
                out.push(Observation::Http(http_exchange(cookie, pending, None)));
            }
        }
    }

    /// A TCP socket closed: its outstanding HTTP requests will get no response and are reported
    /// now. (DNS queries over it are left to time out, which is what they did.)
    pub fn closed(&mut self, cookie: u64, out: &mut Vec<Observation>) {
        for pending in self.http.remove(&cookie).unwrap_or_default() {
            self.http_order.remove(&pending.order);
            out.push(Observation::Http(http_exchange(cookie, pending, None)));
        }
    }

    pub fn stats(&self) -> TrackerStats {
        TrackerStats {
            pending: self.pending(),
            evicted: self.evicted,
            parse_errors: self.parse_errors,
            unmatched_responses: self.unmatched_responses,
        }
    }

    fn pending(&self) -> usize {
        self.dns.len() + self.http_order.len()
    }

    fn dns_segment(&mut self, seg: &Segment, out: &mut Vec<Observation>) {
        let payload = seg.payload;
        // A bare TCP segment (ACK, FIN) carries no message.
        if seg.transport == Transport::Tcp && payload.is_empty() {
            return;
        }
        let parsed = match seg.transport {
            Transport::Tcp => dns::parse_tcp(payload),
            Transport::Udp if payload.len() < seg.payload_len as usize => {
                dns::parse_prefix(payload)
            }
            Transport::Udp => dns::parse(payload),
        };
        let Ok(msg) = parsed else {
            self.parse_errors += 1;
            return;
        };
        let Some(question) = msg.question else {
            // Nothing to match on. A query without one asks for nothing we report.
            if msg.response {
                self.unmatched_responses += 1;
            }
            return;
        };
        let role = match (msg.response, seg.direction) {
            (false, Direction::Egress) | (true, Direction::Ingress) => Role::Client,
            (false, Direction::Ingress) if seg.local.port() == DNS_PORT => Role::Server,
            // A query arriving at a socket that is not a server: not an exchange we report.
            (false, Direction::Ingress) => return,
            (true, Direction::Egress) => Role::Server,
        };
        let key = DnsKey {
            cookie: seg.cookie,
            role,
            peer: seg.remote,
            id: msg.id,
            name: question.name,
        };
        if !msg.response {
            // A retransmission keeps the first query's time: the wait counts from there.
            if self.dns.contains_key(&key) {
                return;
            }
            self.make_room();
            let order = self.next_order(seg.time_ns);
            self.dns_order.insert(order, key.clone());
            let pending = PendingDns {
                order,
                transport: seg.transport,
                local: seg.local,
                qtype: question.qtype,
            };
            self.dns.insert(key, pending);
            return;
        }
        let Some(pending) = self.dns.remove(&key) else {
            self.unmatched_responses += 1;
            return;
        };
        self.dns_order.remove(&pending.order);
        let response = (seg.time_ns, msg.rcode, msg.answers);
        out.push(Observation::Dns(dns_exchange(key, pending, Some(response))));
    }

    fn http_segment(&mut self, seg: &Segment, out: &mut Vec<Observation>) {
        let payload = seg.payload;
        if !http::looks_like_http(payload) {
            return;
        }
        if payload.starts_with(b"HTTP") {
            match http::parse_response(payload) {
                Some(response) => self.http_response(seg, response.status, out),
                None => self.parse_errors += 1,
            }
            return;
        }
        let Some(request) = http::parse_request(payload) else {
            self.parse_errors += 1;
            return;
        };
        let role = match seg.direction {
            Direction::Egress => Role::Client,
            Direction::Ingress => Role::Server,
        };
        if let Some(queue) = self.http.get_mut(&seg.cookie) {
            if queue.len() >= MAX_PIPELINE {
                if let Some(oldest) = queue.pop_front() {
                    self.http_order.remove(&oldest.order);
                    self.evicted += 1;
                }
            }
        }
        self.make_room();
        let order = self.next_order(seg.time_ns);
        self.http_order.insert(order, seg.cookie);
        self.http
            .entry(seg.cookie)
            .or_default()
            .push_back(PendingHttp {
                order,
                role,
                local: seg.local,
                remote: seg.remote,
                request,
            });
    }

    /// Completes the connection's oldest outstanding request, if it went the other way.
    fn http_response(&mut self, seg: &Segment, status: u16, out: &mut Vec<Observation>) {
        // 1xx other than 101 is an interim response: the final one is still to come.
        if (100..200).contains(&status) && status != 101 {
            return;
        }
        let role = match seg.direction {
            Direction::Ingress => Role::Client,
            Direction::Egress => Role::Server,
        };
        let Some(queue) = self.http.get_mut(&seg.cookie) else {
            self.unmatched_responses += 1;
            return;
        };
        if queue.front().map(|p| p.role) != Some(role) {
            self.unmatched_responses += 1;
            return;
        }
        let Some(pending) = queue.pop_front() else {
            return;
        };
        if queue.is_empty() {
            self.http.remove(&seg.cookie);
        }
        self.http_order.remove(&pending.order);
        let response = (seg.time_ns, status);
        out.push(Observation::Http(http_exchange(
            seg.cookie,
            pending,
            Some(response),
        )));
    }

    /// Removes one outstanding request of a connection, dropping the connection's queue once
    /// empty so that closed connections leave nothing behind.
    fn take_http(&mut self, cookie: u64, order: Order) -> Option<PendingHttp> {
        let queue = self.http.get_mut(&cookie)?;
        let i = queue.iter().position(|p| p.order == order)?;
        let pending = queue.remove(i);
        if queue.is_empty() {
            self.http.remove(&cookie);
        }
        pending
    }

    /// Drops the oldest outstanding items, DNS or HTTP, until one more fits.
    fn make_room(&mut self) {
        while self.pending() >= self.limits.max_pending {
            let oldest_dns = self.dns_order.first_key_value().map(|(o, _)| *o);
            let oldest_http = self.http_order.first_key_value().map(|(o, _)| *o);
            match (oldest_dns, oldest_http) {
                (Some(d), Some(h)) if h < d => self.evict_http(h),
                (None, Some(h)) => self.evict_http(h),
                (Some(_), _) => {
                    if let Some((_, key)) = self.dns_order.pop_first() {
                        self.dns.remove(&key);
                    }
                }
                (None, None) => return,
            }
            self.evicted += 1;
        }
    }

    fn evict_http(&mut self, order: Order) {
        if let Some(cookie) = self.http_order.remove(&order) {
            self.take_http(cookie, order);
        }
    }

    fn next_order(&mut self, time_ns: u64) -> Order {
        self.next_seq += 1;
        (time_ns, self.next_seq)
    }
}

/// `response`: (time seen, rcode, answers).
fn dns_exchange(
    key: DnsKey,
    pending: PendingDns,
    response: Option<(u64, u8, Vec<dns::Answer>)>,
) -> DnsExchange {
    let (client, server) = match key.role {
        Role::Client => (pending.local, key.peer),
        Role::Server => (key.peer, pending.local),
    };
    let time_ns = pending.order.0;
    let (rcode, answers, latency_ns) = match response {
        Some((at, rcode, answers)) => (Some(rcode), answers, Some(at.saturating_sub(time_ns))),
        None => (None, Vec::new(), None),
    };
    DnsExchange {
        time_ns,
        cookie: key.cookie,
        role: key.role,
        transport: pending.transport,
        client,
        server,
        id: key.id,
        query: key.name,
        qtype: pending.qtype,
        rcode,
        answers,
        latency_ns,
    }
}

/// `response`: (time seen, status).
fn http_exchange(cookie: u64, pending: PendingHttp, response: Option<(u64, u16)>) -> HttpExchange {
    let time_ns = pending.order.0;
    let request = pending.request;
    HttpExchange {
        time_ns,
        cookie,
        role: pending.role,
        local: pending.local,
        remote: pending.remote,
        method: request.method,
        path: request.path,
        path_truncated: request.path_truncated,
        version: request.version,
        status: response.map(|(_, status)| status),
        latency_ns: response.map(|(at, _)| at.saturating_sub(time_ns)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::tests::{a_response, cname_chain_response, query, Rng};

    const SEC: u64 = 1_000_000_000;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    struct Seg {
        time_ns: u64,
        cookie: u64,
        transport: Transport,
        direction: Direction,
        local: SocketAddr,
        remote: SocketAddr,
        payload: Vec<u8>,
        payload_len: u32,
    }

    impl Seg {
        fn new(time_ns: u64, cookie: u64, direction: Direction, payload: &[u8]) -> Self {
            Seg {
                time_ns,
                cookie,
                transport: Transport::Udp,
                direction,
                local: addr("10.0.0.5:40000"),
                remote: addr("10.0.0.53:53"),
                payload: payload.to_vec(),
                payload_len: payload.len() as u32,
            }
        }
        fn tcp(mut self) -> Self {
            self.transport = Transport::Tcp;
            self
        }
        fn ends(mut self, local: &str, remote: &str) -> Self {
            self.local = addr(local);
            self.remote = addr(remote);
            self
        }
        fn feed(&self, t: &mut Tracker) -> Vec<Observation> {
            let mut out = Vec::new();
            t.segment(
                &Segment {
                    time_ns: self.time_ns,
                    cookie: self.cookie,
                    transport: self.transport,
                    direction: self.direction,
                    local: self.local,
                    remote: self.remote,
                    payload: &self.payload,
                    payload_len: self.payload_len,
                },
                &mut out,
            );
            out
        }
    }

    use Direction::{Egress, Ingress};

    fn only_dns(out: Vec<Observation>) -> DnsExchange {
        match <[Observation; 1]>::try_from(out) {
            Ok([Observation::Dns(d)]) => d,
            other => panic!("expected one DNS exchange, got {other:?}"),
        }
    }

    fn only_http(out: Vec<Observation>) -> HttpExchange {
        match <[Observation; 1]>::try_from(out) {
            Ok([Observation::Http(h)]) => h,
            other => panic!("expected one HTTP exchange, got {other:?}"),
        }
    }

    fn tracker() -> Tracker {
        Tracker::new(Limits::default())
    }

    #[test]
    fn dns_client_over_udp() {
        let mut t = tracker();
        assert!(Seg::new(SEC, 1, Egress, &query(0x77, "api.test", 1))
            .feed(&mut t)
            .is_empty());
        assert_eq!(t.stats().pending, 1);
        let resp = a_response(0x77, "api.test", [10, 1, 2, 3], 60);
        let d = only_dns(Seg::new(SEC + 1_500_000, 1, Ingress, &resp).feed(&mut t));
        assert_eq!(
            d,
            DnsExchange {
                time_ns: SEC,
                cookie: 1,
                role: Role::Client,
                transport: Transport::Udp,
                client: addr("10.0.0.5:40000"),
                server: addr("10.0.0.53:53"),
                id: 0x77,
                query: "api.test".into(),
                qtype: 1,
                rcode: Some(0),
                answers: dns::parse(&resp).unwrap().answers,
                latency_ns: Some(1_500_000),
            }
        );
        assert_eq!(t.stats(), TrackerStats::default());
    }

    #[test]
    fn dns_both_ends_on_one_host() {
        let mut t = tracker();
        let q = query(9, "svc.test", 28);
        let mut r = q.clone();
        r[2] |= 0x80;
        let (client, server) = ("127.0.0.1:41000", "127.0.0.53:53");
        Seg::new(100, 1, Egress, &q)
            .ends(client, server)
            .feed(&mut t);
        Seg::new(110, 2, Ingress, &q)
            .ends(server, client)
            .feed(&mut t);
        let s = only_dns(
            Seg::new(150, 2, Egress, &r)
                .ends(server, client)
                .feed(&mut t),
        );
        let c = only_dns(
            Seg::new(160, 1, Ingress, &r)
                .ends(client, server)
                .feed(&mut t),
        );
        assert_eq!((s.role, c.role), (Role::Server, Role::Client));
        for d in [&s, &c] {
            assert_eq!(d.client, addr(client));
            assert_eq!(d.server, addr(server));
            assert_eq!(d.qtype, 28);
        }
        assert_eq!((s.latency_ns, c.latency_ns), (Some(40), Some(60)));
    }

    #[test]
    fn dns_server_tells_clients_apart() {
        let mut t = tracker();
        let q = query(5, "same.test", 1);
        let server = "10.0.0.53:53";
        Seg::new(0, 9, Ingress, &q)
            .ends(server, "10.0.0.1:5000")
            .feed(&mut t);
        Seg::new(10, 9, Ingress, &q)
            .ends(server, "10.0.0.2:5000")
            .feed(&mut t);
        assert_eq!(t.stats().pending, 2);
        let r = a_response(5, "same.test", [1, 1, 1, 1], 1);
        let d = only_dns(
            Seg::new(50, 9, Egress, &r)
                .ends(server, "10.0.0.2:5000")
                .feed(&mut t),
        );
        assert_eq!(d.client, addr("10.0.0.2:5000"));
        assert_eq!(d.latency_ns, Some(40));
        assert_eq!(t.stats().pending, 1);
    }

    #[test]
    fn dns_response_must_repeat_socket_id_and_name() {
        let mut t = tracker();
        Seg::new(0, 1, Egress, &query(1, "a.test", 1)).feed(&mut t);
        let wrong = [
            Seg::new(1, 1, Ingress, &a_response(2, "a.test", [1, 2, 3, 4], 1)),
            Seg::new(1, 1, Ingress, &a_response(1, "b.test", [1, 2, 3, 4], 1)),
            Seg::new(1, 2, Ingress, &a_response(1, "a.test", [1, 2, 3, 4], 1)),
            // A response leaving the client socket is not an answer to it.
            Seg::new(1, 1, Egress, &a_response(1, "a.test", [1, 2, 3, 4], 1)),
        ];
        for s in &wrong {
            assert!(s.feed(&mut t).is_empty());
        }
        assert_eq!(t.stats().unmatched_responses, 4);
        // The name matches whatever its case on the wire.
        let d = only_dns(
            Seg::new(2, 1, Ingress, &a_response(1, "A.TEST", [1, 2, 3, 4], 1)).feed(&mut t),
        );
        assert_eq!(d.query, "a.test");
    }

    #[test]
    fn dns_timeout() {
        let mut t = tracker();
        Seg::new(SEC, 1, Egress, &query(3, "slow.test", 1)).feed(&mut t);
        let mut out = Vec::new();
        t.expire(SEC + 5 * SEC - 1, &mut out);
        assert!(out.is_empty());
        t.expire(SEC + 5 * SEC, &mut out);
        let d = only_dns(out);
        assert_eq!((d.rcode, d.latency_ns, d.time_ns), (None, None, SEC));
        assert!(d.answers.is_empty());
        assert_eq!(t.stats().pending, 0);
        // The late answer has nothing left to pair with.
        let late = a_response(3, "slow.test", [1, 2, 3, 4], 1);
        assert!(Seg::new(7 * SEC, 1, Ingress, &late).feed(&mut t).is_empty());
        assert_eq!(t.stats().unmatched_responses, 1);
    }

    #[test]
    fn dns_retransmission_keeps_the_first_time() {
        let mut t = tracker();
        let q = query(4, "retry.test", 1);
        Seg::new(0, 1, Egress, &q).feed(&mut t);
        Seg::new(SEC, 1, Egress, &q).feed(&mut t);
        assert_eq!(t.stats().pending, 1);
        let r = a_response(4, "retry.test", [1, 2, 3, 4], 1);
        let d = only_dns(Seg::new(SEC + 10, 1, Ingress, &r).feed(&mut t));
        assert_eq!(d.latency_ns, Some(SEC + 10));
    }

    #[test]
    fn dns_over_tcp() {
        let mut t = tracker();
        let framed = |m: Vec<u8>| {
            let mut b = (m.len() as u16).to_be_bytes().to_vec();
            b.extend(m);
            b
        };
        let q = framed(query(6, "big.test", 16));
        Seg::new(0, 4, Egress, &q).tcp().feed(&mut t);
        // A bare ACK on the connection is not a parse error.
        Seg::new(1, 4, Ingress, &[]).tcp().feed(&mut t);
        let mut r = framed(query(6, "big.test", 16));
        r[4] |= 0x80;
        r[5] |= 0x02; // SERVFAIL
        let d = only_dns(Seg::new(20, 4, Ingress, &r).tcp().feed(&mut t));
        assert_eq!(d.transport, Transport::Tcp);
        assert_eq!(d.rcode, Some(2));
        assert_eq!(t.stats().parse_errors, 0);
    }

    #[test]
    fn dns_cut_udp_capture_still_pairs() {
        let mut t = tracker();
        Seg::new(0, 1, Egress, &query(0xbeef, "www.example.test", 1)).feed(&mut t);
        let full = cname_chain_response();
        let mut seg = Seg::new(5, 1, Ingress, &full[..full.len() - 3]);
        seg.payload_len = full.len() as u32;
        let d = only_dns(seg.feed(&mut t));
        assert_eq!(d.rcode, Some(0));
        assert_eq!(d.answers.len(), 3);
        // The same bytes claiming to be the whole datagram are malformed.
        let mut t = tracker();
        Seg::new(5, 1, Ingress, &full[..full.len() - 3]).feed(&mut t);
        assert_eq!(t.stats().parse_errors, 1);
    }

    #[test]
    fn dns_ignored_and_bad_segments() {
        let mut t = tracker();
        // A query arriving at a client port is not a server's.
        Seg::new(0, 1, Ingress, &query(1, "x.test", 1)).feed(&mut t);
        // No question: nothing to pair on.
        let mut nq = dns::tests::header(1, 0, 0, 0);
        Seg::new(0, 1, Egress, &nq).feed(&mut t);
        assert_eq!(t.stats(), TrackerStats::default());
        nq[2] = 0x81;
        Seg::new(0, 1, Ingress, &nq).feed(&mut t);
        Seg::new(0, 1, Ingress, b"\x00\x01garbage").feed(&mut t);
        Seg::new(0, 1, Ingress, &[]).feed(&mut t);
        let s = t.stats();
        assert_eq!(
            (s.unmatched_responses, s.parse_errors, s.pending),
            (1, 2, 0)
        );
    }

    fn http_seg(time_ns: u64, cookie: u64, direction: Direction, payload: &[u8]) -> Seg {
        Seg::new(time_ns, cookie, direction, payload)
            .tcp()
            .ends("10.0.0.5:41000", "10.0.0.80:8080")
    }

    #[test]
    fn http_client_exchange() {
        let mut t = tracker();
        http_seg(SEC, 7, Egress, b"GET /health HTTP/1.1\r\nHost: a\r\n\r\n").feed(&mut t);
        let h = only_http(http_seg(SEC + 2000, 7, Ingress, b"HTTP/1.1 503 Busy\r\n").feed(&mut t));
        assert_eq!(
            h,
            HttpExchange {
                time_ns: SEC,
                cookie: 7,
                role: Role::Client,
                local: addr("10.0.0.5:41000"),
                remote: addr("10.0.0.80:8080"),
                method: "GET".into(),
                path: "/health".into(),
                path_truncated: false,
                version: "HTTP/1.1".into(),
                status: Some(503),
                latency_ns: Some(2000),
            }
        );
        assert_eq!(t.stats(), TrackerStats::default());
    }

    #[test]
    fn http_server_exchange() {
        let mut t = tracker();
        http_seg(0, 8, Ingress, b"POST /upload HTTP/1.0\r\n").feed(&mut t);
        let h = only_http(http_seg(30, 8, Egress, b"HTTP/1.0 201 Created\r\n").feed(&mut t));
        assert_eq!(h.role, Role::Server);
        assert_eq!((h.status, h.latency_ns), (Some(201), Some(30)));
    }

    #[test]
    fn http_pipelining_pairs_in_order() {
        let mut t = tracker();
        for (i, p) in ["/a", "/b", "/c"].iter().enumerate() {
            let line = format!("GET {p} HTTP/1.1\r\n\r\n");
            http_seg(i as u64, 1, Egress, line.as_bytes()).feed(&mut t);
        }
        let mut paths = Vec::new();
        for (i, status) in [200, 404, 500].iter().enumerate() {
            let line = format!("HTTP/1.1 {status} X\r\n");
            let h = only_http(http_seg(10 + i as u64, 1, Ingress, line.as_bytes()).feed(&mut t));
            paths.push((h.path, h.status));
        }
        assert_eq!(
            paths,
            [
                ("/a".to_string(), Some(200)),
                ("/b".to_string(), Some(404)),
                ("/c".to_string(), Some(500))
            ]
        );
    }

    #[test]
    fn http_interim_responses_do_not_complete() {
        let mut t = tracker();
        http_seg(0, 1, Egress, b"PUT /f HTTP/1.1\r\nExpect: 100-continue\r\n").feed(&mut t);
        assert!(http_seg(1, 1, Ingress, b"HTTP/1.1 100 Continue\r\n")
            .feed(&mut t)
            .is_empty());
        let h = only_http(http_seg(2, 1, Ingress, b"HTTP/1.1 204 No Content\r\n").feed(&mut t));
        assert_eq!(h.status, Some(204));
        // 101 is final: the connection leaves HTTP.
        http_seg(3, 1, Egress, b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n").feed(&mut t);
        let h = only_http(http_seg(4, 1, Ingress, b"HTTP/1.1 101 Switching\r\n").feed(&mut t));
        assert_eq!(h.status, Some(101));
        assert_eq!(t.stats().unmatched_responses, 0);
    }

    #[test]
    fn http_unmatched_responses() {
        let mut t = tracker();
        assert!(http_seg(0, 1, Ingress, b"HTTP/1.1 200 OK\r\n")
            .feed(&mut t)
            .is_empty());
        // A response in the request's own direction does not answer it.
        http_seg(1, 2, Egress, b"GET / HTTP/1.1\r\n").feed(&mut t);
        assert!(http_seg(2, 2, Egress, b"HTTP/1.1 200 OK\r\n")
            .feed(&mut t)
            .is_empty());
        let s = t.stats();
        assert_eq!((s.unmatched_responses, s.pending), (2, 1));
    }

    #[test]
    fn http_closed_connection_reports_unanswered() {
        let mut t = tracker();
        http_seg(0, 1, Egress, b"GET /a HTTP/1.1\r\n").feed(&mut t);
        http_seg(1, 1, Egress, b"GET /b HTTP/1.1\r\n").feed(&mut t);
        http_seg(2, 2, Egress, b"GET /other HTTP/1.1\r\n").feed(&mut t);
        let mut out = Vec::new();
        t.closed(1, &mut out);
        let got: Vec<_> = out
            .into_iter()
            .map(|o| match o {
                Observation::Http(h) => (h.path, h.status, h.latency_ns),
                Observation::Dns(d) => panic!("{d:?}"),
            })
            .collect();
        assert_eq!(
            got,
            [
                ("/a".to_string(), None, None),
                ("/b".to_string(), None, None)
            ]
        );
        assert_eq!(t.stats().pending, 1);
        let mut out = Vec::new();
        t.closed(1, &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn http_timeout() {
        let mut t = tracker();
        http_seg(0, 1, Egress, b"GET /slow HTTP/1.1\r\n").feed(&mut t);
        // A DNS query made later expires first, though the HTTP request is older.
        Seg::new(SEC, 2, Egress, &query(1, "q.test", 1)).feed(&mut t);
        let mut out = Vec::new();
        t.expire(29 * SEC, &mut out);
        assert_eq!(only_dns(std::mem::take(&mut out)).query, "q.test");
        t.expire(30 * SEC, &mut out);
        let h = only_http(out);
        assert_eq!((h.path.as_str(), h.status), ("/slow", None));
        assert_eq!(t.stats().pending, 0);
        assert!(t.http.is_empty());
    }

    #[test]
    fn http_truncated_request_line() {
        let mut t = tracker();
        let mut seg = http_seg(0, 1, Egress, b"GET /very/long/path/cut-by-the-cap");
        seg.payload_len = 4000;
        seg.feed(&mut t);
        let h = only_http(http_seg(1, 1, Ingress, b"HTTP/1.1 200 OK\r\n").feed(&mut t));
        assert!(h.path_truncated);
        assert_eq!(h.version, "");
    }

    #[test]
    fn http_non_http_and_bad_lines() {
        let mut t = tracker();
        http_seg(0, 1, Egress, b"\x16\x03\x01\x00\xa5").feed(&mut t);
        http_seg(0, 1, Egress, b"").feed(&mut t);
        assert_eq!(t.stats(), TrackerStats::default());
        http_seg(0, 1, Egress, b"HEADER: not a request").feed(&mut t);
        http_seg(0, 1, Ingress, b"HTTP/2.0 200").feed(&mut t);
        assert_eq!(t.stats().parse_errors, 2);
        // HTTP over UDP is not tracked.
        let mut udp = http_seg(0, 1, Egress, b"GET / HTTP/1.1\r\n");
        udp.transport = Transport::Udp;
        udp.feed(&mut t);
        assert_eq!(t.stats().pending, 0);
    }

    #[test]
    fn evicts_the_oldest_when_full() {
        let mut t = Tracker::new(Limits {
            max_pending: 3,
            ..Limits::default()
        });
        Seg::new(0, 1, Egress, &query(1, "one.test", 1)).feed(&mut t);
        http_seg(1, 2, Egress, b"GET /two HTTP/1.1\r\n").feed(&mut t);
        Seg::new(2, 1, Egress, &query(3, "three.test", 1)).feed(&mut t);
        http_seg(3, 2, Egress, b"GET /four HTTP/1.1\r\n").feed(&mut t);
        assert_eq!(t.stats().pending, 3);
        assert_eq!(t.stats().evicted, 1);
        // "one" is gone; then "/two" goes for the next.
        Seg::new(4, 1, Ingress, &a_response(1, "one.test", [1, 1, 1, 1], 1)).feed(&mut t);
        assert_eq!(t.stats().unmatched_responses, 1);
        Seg::new(5, 1, Egress, &query(5, "five.test", 1)).feed(&mut t);
        assert_eq!(t.stats().evicted, 2);
        let h = only_http(http_seg(6, 2, Ingress, b"HTTP/1.1 200 OK\r\n").feed(&mut t));
        assert_eq!(h.path, "/four");
        let d = only_dns(
            Seg::new(7, 1, Ingress, &a_response(3, "three.test", [1, 1, 1, 1], 1)).feed(&mut t),
        );
        assert_eq!(d.query, "three.test");
    }

    #[test]
    fn zero_max_pending_still_holds_one() {
        let mut t = Tracker::new(Limits {
            max_pending: 0,
            ..Limits::default()
        });
        Seg::new(0, 1, Egress, &query(1, "a.test", 1)).feed(&mut t);
        Seg::new(1, 1, Egress, &query(2, "b.test", 1)).feed(&mut t);
        assert_eq!(t.stats().pending, 1);
        assert_eq!(t.stats().evicted, 1);
    }

    #[test]
    fn pipeline_is_bounded_per_connection() {
        let mut t = tracker();
        for i in 0..MAX_PIPELINE + 6 {
            let line = format!("GET /{i} HTTP/1.1\r\n");
            http_seg(i as u64, 1, Egress, line.as_bytes()).feed(&mut t);
        }
        let s = t.stats();
        assert_eq!((s.pending, s.evicted), (MAX_PIPELINE, 6));
        let h = only_http(http_seg(1000, 1, Ingress, b"HTTP/1.1 200 OK\r\n").feed(&mut t));
        assert_eq!(h.path, "/6");
    }

    #[test]
    fn random_segments_keep_the_bounds() {
        let limits = Limits {
            max_pending: 50,
            dns_timeout_ns: 100,
            http_timeout_ns: 300,
        };
        let mut t = Tracker::new(limits);
        let mut rng = Rng::new(99);
        let mut out = Vec::new();
        let payloads: Vec<Vec<u8>> = vec![
            query(1, "a.test", 1),
            a_response(1, "a.test", [1, 2, 3, 4], 5),
            query(2, "b.test", 28),
            cname_chain_response(),
            b"GET / HTTP/1.1\r\n".to_vec(),
            b"POST /x".to_vec(),
            b"HTTP/1.1 200 OK\r\n".to_vec(),
            b"HTTP/1.1 100 Continue\r\n".to_vec(),
            b"HTTP/1.1 20".to_vec(),
        ];
        for time in 0..20_000u64 {
            let mut payload = payloads[rng.below(payloads.len())].clone();
            if rng.below(4) == 0 {
                let i = rng.below(payload.len());
                payload[i] = rng.next() as u8;
                payload.truncate(rng.below(payload.len() + 1));
            }
            let direction = if rng.below(2) == 0 { Egress } else { Ingress };
            let mut seg = Seg::new(time, rng.below(5) as u64, direction, &payload);
            if rng.below(2) == 0 {
                seg = seg.tcp();
            }
            if rng.below(3) == 0 {
                seg = seg.ends("10.0.0.1:53", "10.0.0.2:3333");
            } else if rng.below(3) == 0 {
                seg = seg.ends("10.0.0.1:80", "10.0.0.2:3333");
            }
            out.extend(seg.feed(&mut t));
            match rng.below(50) {
                0 => t.expire(time, &mut out),
                1 => t.closed(rng.below(5) as u64, &mut out),
                _ => {}
            }
            assert!(t.stats().pending <= limits.max_pending);
            assert_eq!(t.dns.len(), t.dns_order.len());
            let queued: usize = t.http.values().map(VecDeque::len).sum();
            assert_eq!(queued, t.http_order.len());
            assert!(t
                .http
                .values()
                .all(|q| !q.is_empty() && q.len() <= MAX_PIPELINE));
        }
        t.expire(u64::MAX, &mut out);
        assert_eq!(t.stats().pending, 0);
        assert!(t.http.is_empty());
        assert!(!out.is_empty());
    }
}
