//! Any bytes as an HTTP start line, then as a run of captured segments fed to the tracker:
//! parsing and correlation must never panic, and the tracker must stay within its limits.
#![no_main]

use std::net::SocketAddr;

use libfuzzer_sys::fuzz_target;
use vigil_net::track::{Limits, Tracker};
use vigil_net::{http, Direction, Segment, Transport};

const MAX_PENDING: usize = 8;

fuzz_target!(|data: &[u8]| {
    let _ = http::looks_like_http(data);
    let _ = http::parse_request(data);
    let _ = http::parse_response(data);

    // Each segment: a control byte (direction, transport, ports, cookie, and whether to expire
    // or close after it), a length byte, then that many payload bytes (fewer at the end).
    let mut tracker = Tracker::new(Limits {
        max_pending: MAX_PENDING,
        dns_timeout_ns: 50,
        http_timeout_ns: 200,
    });
    let mut out = Vec::new();
    let mut rest = data;
    let mut time_ns = 0u64;
    while let [control, len, tail @ ..] = rest {
        let (payload, next) = tail.split_at(usize::from(*len).min(tail.len()));
        rest = next;
        time_ns += 10;
        let port = if control & 0x04 != 0 { 53 } else { 8080 };
        let local: SocketAddr = ([10, 0, 0, 1], port).into();
        let remote: SocketAddr = ([10, 0, 0, 2], 40000).into();
        let seg = Segment {
            time_ns,
            cookie: u64::from((control >> 3) & 0x03),
            transport: if control & 0x02 != 0 {
                Transport::Udp
            } else {
                Transport::Tcp
            },
            direction: if control & 0x01 != 0 {
                Direction::Ingress
            } else {
                Direction::Egress
            },
            local,
            remote,
            payload,
            payload_len: u32::from(*len).max(payload.len() as u32),
        };
        tracker.segment(&seg, &mut out);
        match control >> 5 {
            6 => tracker.expire(time_ns, &mut out),
            7 => tracker.closed(seg.cookie, &mut out),
            _ => {}
        }
        assert!(tracker.stats().pending <= MAX_PENDING);
    }
    tracker.expire(u64::MAX, &mut out);
    assert_eq!(tracker.stats().pending, 0);
});
