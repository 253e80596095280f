//! IP -> DNS name, learned from the answers local processes receive, so that a connection's
//! remote address can carry the name the process asked for (`"name":"api.test"`).
//!
//! The cache holds at most `capacity` addresses; when full it drops the entry that expires
//! first, so memory stays bounded whatever a resolver answers.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use crate::dns::AnswerData;
use crate::track::DnsExchange;

const SEC: u64 = 1_000_000_000;
/// Shortest time a name is kept: connections often start after a record's tiny TTL (0-5 s
/// answers are common behind load balancers) and should still be named.
const MIN_KEEP_NS: u64 = 60 * SEC;
/// Longest time a name is kept, whatever the TTL: addresses get reassigned.
const MAX_KEEP_NS: u64 = 3600 * SEC;

/// (expiry, insertion sequence): orders entries by expiry, ties broken by age.
type Expiry = (u64, u64);

#[derive(Debug)]
struct Entry {
    name: Box<str>,
    expiry: Expiry,
}

#[derive(Debug)]
pub struct NameCache {
    capacity: usize,
    next_seq: u64,
    entries: HashMap<IpAddr, Entry>,
    by_expiry: BTreeMap<Expiry, IpAddr>,
    evictions: u64,
}

impl NameCache {
    /// A cache of at most `capacity` addresses (at least 1).
    pub fn new(capacity: usize) -> Self {
        NameCache {
            capacity: capacity.max(1),
            next_seq: 0,
            entries: HashMap::new(),
            by_expiry: BTreeMap::new(),
            evictions: 0,
        }
    }

    /// Records that `ip` answered for `name`, replacing any earlier name: the latest answer is
    /// the one a new connection most likely used. The entry lives `ttl_secs` from `now_ns`
    /// (CLOCK_BOOTTIME), but no less than 60 s and no more than 1 h. IPv4-mapped IPv6 addresses
    /// are stored as IPv4, as events show them.
    pub fn insert(&mut self, ip: IpAddr, name: &str, ttl_secs: u32, now_ns: u64) {
        let ip = ip.to_canonical();
        let keep = (u64::from(ttl_secs) * SEC).clamp(MIN_KEEP_NS, MAX_KEEP_NS);
        self.next_seq += 1;
        let expiry = (now_ns.saturating_add(keep), self.next_seq);
        if let Some(old) = self.entries.remove(&ip) {
            self.by_expiry.remove(&old.expiry);
        } else if self.entries.len() >= self.capacity {
            self.make_room(now_ns);
        }
        self.by_expiry.insert(expiry, ip);
        let entry = Entry {
            name: name.into(),
            expiry,
        };
        self.entries.insert(ip, entry);
    }

    /// The latest name learned for `ip`, unless it has expired by `now_ns`.
    pub fn lookup(&self, ip: &IpAddr, now_ns: u64) -> Option<&str> {
        let entry = self.entries.get(&ip.to_canonical())?;
        (now_ns < entry.expiry.0).then_some(&*entry.name)
    }

    /// Learns the addresses in an answered query. Each `A`/`AAAA` answer maps to the question's
    /// name, not to the record's owner: behind a CNAME chain the owner is a CDN's name, while
    /// the question is the name the process asked for and will recognise.
    pub fn learn(&mut self, ex: &DnsExchange) {
        let answered_ns = ex.time_ns.saturating_add(ex.latency_ns.unwrap_or(0));
        for answer in &ex.answers {
            if let Some(AnswerData::Ip(ip)) = answer.data {
                self.insert(ip, &ex.query, answer.ttl, answered_ns);
            }
        }
    }

    /// Entries held, expired ones included until they are pushed out.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Live entries dropped to make room since the cache was made.
    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    /// Frees one slot: expired entries go first, uncounted (they are useless already); if none
    /// has expired, the one closest to expiring goes, counted.
    fn make_room(&mut self, now_ns: u64) {
        let Some((expiry, ip)) = self.by_expiry.pop_first() else {
            return;
        };
        self.entries.remove(&ip);
        if expiry.0 > now_ns {
            self.evictions += 1;
            return;
        }
        // Drop the other expired entries too while at it: each is removed once, so this costs
        // no more over time than removing them one by one.
        while let Some(entry) = self.by_expiry.first_entry() {
            if entry.key().0 > now_ns {
                break;
            }
            let ip = entry.remove();
            self.entries.remove(&ip);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::Answer;
    use crate::{Role, Transport};

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn insert_and_lookup() {
        let mut c = NameCache::new(8);
        assert!(c.is_empty());
        c.insert(ip("10.1.2.3"), "api.test", 300, 0);
        assert_eq!(c.lookup(&ip("10.1.2.3"), 0), Some("api.test"));
        assert_eq!(c.lookup(&ip("10.1.2.3"), 300 * SEC - 1), Some("api.test"));
        assert_eq!(c.lookup(&ip("10.1.2.3"), 300 * SEC), None);
        assert_eq!(c.lookup(&ip("10.1.2.4"), 0), None);
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn short_ttls_are_kept_a_minute_and_long_ones_an_hour() {
        let mut c = NameCache::new(8);
        c.insert(ip("10.0.0.1"), "zero.test", 0, SEC);
        c.insert(ip("10.0.0.2"), "week.test", 604_800, SEC);
        c.insert(ip("10.0.0.3"), "max.test", u32::MAX, SEC);
        assert_eq!(c.lookup(&ip("10.0.0.1"), 60 * SEC), Some("zero.test"));
        assert_eq!(c.lookup(&ip("10.0.0.1"), 61 * SEC), None);
        assert_eq!(c.lookup(&ip("10.0.0.2"), 3600 * SEC), Some("week.test"));
        assert_eq!(c.lookup(&ip("10.0.0.2"), 3601 * SEC), None);
        assert_eq!(c.lookup(&ip("10.0.0.3"), 3601 * SEC), None);
    }

    #[test]
    fn latest_name_wins_and_refreshes() {
        let mut c = NameCache::new(8);
        c.insert(ip("10.0.0.1"), "old.test", 60, 0);
        c.insert(ip("10.0.0.1"), "new.test", 120, 30 * SEC);
        assert_eq!(c.len(), 1);
        assert_eq!(c.lookup(&ip("10.0.0.1"), 100 * SEC), Some("new.test"));
        assert_eq!(c.lookup(&ip("10.0.0.1"), 150 * SEC), None);
        // A shorter later answer shortens the life too: it is the latest word.
        c.insert(ip("10.0.0.1"), "new.test", 60, 200 * SEC);
        c.insert(ip("10.0.0.1"), "new.test", 0, 200 * SEC);
        assert_eq!(c.len(), 1);
        assert_eq!(c.by_expiry.len(), 1);
    }

    #[test]
    fn full_cache_evicts_the_first_to_expire() {
        let mut c = NameCache::new(3);
        c.insert(ip("10.0.0.1"), "a.test", 600, 0);
        c.insert(ip("10.0.0.2"), "b.test", 60, 0);
        c.insert(ip("10.0.0.3"), "c.test", 900, 0);
        c.insert(ip("10.0.0.4"), "d.test", 300, 0);
        assert_eq!(c.len(), 3);
        assert_eq!(c.evictions(), 1);
        assert_eq!(c.lookup(&ip("10.0.0.2"), 0), None);
        for a in ["10.0.0.1", "10.0.0.3", "10.0.0.4"] {
            assert!(c.lookup(&ip(a), 0).is_some(), "{a}");
        }
        // Replacing a held address needs no room.
        c.insert(ip("10.0.0.1"), "a2.test", 600, 0);
        assert_eq!(c.evictions(), 1);
    }

    #[test]
    fn expired_entries_make_room_uncounted() {
        let mut c = NameCache::new(3);
        c.insert(ip("10.0.0.1"), "a.test", 60, 0);
        c.insert(ip("10.0.0.2"), "b.test", 60, 0);
        c.insert(ip("10.0.0.3"), "c.test", 600, 0);
        c.insert(ip("10.0.0.4"), "d.test", 60, 100 * SEC);
        assert_eq!(c.evictions(), 0);
        // Both expired entries went at once.
        assert_eq!(c.len(), 2);
        assert_eq!(c.lookup(&ip("10.0.0.4"), 100 * SEC), Some("d.test"));
        assert_eq!(c.lookup(&ip("10.0.0.3"), 100 * SEC), Some("c.test"));
    }

    #[test]
    fn capacity_zero_holds_one() {
        let mut c = NameCache::new(0);
        c.insert(ip("10.0.0.1"), "a.test", 60, 0);
        c.insert(ip("10.0.0.2"), "b.test", 60, 0);
        assert_eq!(c.len(), 1);
        assert_eq!(c.evictions(), 1);
        assert_eq!(c.lookup(&ip("10.0.0.2"), 0), Some("b.test"));
    }

    #[test]
    fn mapped_ipv6_is_ipv4() {
        let mut c = NameCache::new(4);
        c.insert(ip("::ffff:10.0.0.9"), "m.test", 60, 0);
        assert_eq!(c.lookup(&ip("10.0.0.9"), 0), Some("m.test"));
        c.insert(ip("10.0.0.8"), "v4.test", 60, 0);
        assert_eq!(c.lookup(&ip("::ffff:10.0.0.8"), 0), Some("v4.test"));
        assert_eq!(c.lookup(&ip("::10.0.0.8"), 0), None);
    }

    fn answer(name: &str, rtype: u16, ttl: u32, data: Option<AnswerData>) -> Answer {
        Answer {
            name: name.into(),
            rtype,
            ttl,
            data,
        }
    }

    fn exchange(query: &str, answers: Vec<Answer>) -> DnsExchange {
        DnsExchange {
            time_ns: 10 * SEC,
            cookie: 1,
            role: Role::Client,
            transport: Transport::Udp,
            client: "10.0.0.5:4000".parse().unwrap(),
            server: "10.0.0.53:53".parse().unwrap(),
            id: 1,
            query: query.into(),
            qtype: 1,
            rcode: Some(0),
            answers,
            latency_ns: Some(SEC),
        }
    }

    #[test]
    fn learn_maps_addresses_to_the_question() {
        let mut c = NameCache::new(8);
        let ex = exchange(
            "www.example.test",
            vec![
                answer(
                    "www.example.test",
                    5,
                    300,
                    Some(AnswerData::Name("cdn.test".into())),
                ),
                answer("cdn.test", 1, 120, Some(AnswerData::Ip(ip("10.1.2.3")))),
                answer("cdn.test", 28, 120, Some(AnswerData::Ip(ip("2001:db8::7")))),
                answer("cdn.test", 16, 120, None),
            ],
        );
        c.learn(&ex);
        assert_eq!(c.len(), 2);
        assert_eq!(
            c.lookup(&ip("10.1.2.3"), 11 * SEC),
            Some("www.example.test")
        );
        assert_eq!(
            c.lookup(&ip("2001:db8::7"), 11 * SEC),
            Some("www.example.test")
        );
        // The TTL counts from when the answer was seen (query time + latency).
        assert!(c.lookup(&ip("10.1.2.3"), 130 * SEC).is_some());
        assert!(c.lookup(&ip("10.1.2.3"), 131 * SEC).is_none());
    }

    #[test]
    fn learn_without_addresses_learns_nothing() {
        let mut c = NameCache::new(8);
        let mut ex = exchange("gone.test", Vec::new());
        ex.rcode = Some(3);
        c.learn(&ex);
        ex.rcode = None;
        ex.latency_ns = None;
        c.learn(&ex);
        assert!(c.is_empty());
    }

    #[test]
    fn stays_bounded_under_churn() {
        let mut c = NameCache::new(100);
        let mut rng = crate::dns::tests::Rng::new(3);
        for i in 0..10_000u64 {
            let a = IpAddr::from((rng.next() as u32 % 500).to_be_bytes());
            c.insert(a, "x.test", (rng.next() % 7200) as u32, i * SEC / 10);
            assert!(c.len() <= 100);
            assert_eq!(c.entries.len(), c.by_expiry.len());
        }
        assert!(c.evictions() > 0);
    }
}
