//! Network events: `evt.type` mapping, the socket fields on client and server roles, IPv4 and
//! IPv6, CIDR matching, names learned from DNS, Vigil's `net.*`/`dns.*`/`http.*`/`drop.*`
//! fields, and the default ruleset's network rules.

use std::collections::HashSet;
use std::net::IpAddr;

use vigil_events::net::{ConnPhase, Role, Transport};
use vigil_events::Event;
use vigil_rules::{all_event_types, load, EvalContext, LoadOptions, NameLookup, RuleFile};

use crate::common::*;

/// The text the output template renders for `field` (`<NA>` when missing).
fn value(field: &str, event: &Event) -> String {
    let yaml = format!(
        "- rule: R\n  desc: d\n  condition: proc.pid exists or not proc.pid exists\n  output: \"%{field}\"\n  priority: INFO\n"
    );
    let rs = load_ok(&yaml);
    assert!(
        rs.rules()[0].warnings.is_empty(),
        "{:?}",
        rs.rules()[0].warnings
    );
    let a = alerts(&rs, event);
    assert_eq!(a.len(), 1);
    a[0].output.clone()
}

#[track_caller]
fn check(event: &Event, expected: &[(&str, &str)]) {
    for (field, want) in expected {
        assert_eq!(value(field, event), *want, "{field}");
    }
}

#[track_caller]
fn all_match(event: &Event, conditions: &[&str]) {
    for c in conditions {
        assert!(matches(c, event), "should match: {c}");
    }
}

#[track_caller]
fn none_match(event: &Event, conditions: &[&str]) {
    for c in conditions {
        assert!(!matches(c, event), "should not match: {c}");
    }
}

/// The network evt.types, as the agent adds them when the network sensor is loaded.
const NET_TYPES: [&str; 7] = [
    "connect",
    "accept",
    "close",
    "udp_flow",
    "dns",
    "http",
    "packet_drop",
];

#[test]
fn event_types() {
    for t in NET_TYPES {
        assert!(all_event_types().contains(&t), "{t}");
    }
    assert!(!all_event_types().contains(&"accept4"), "an alias");
    let v4 = ("10.0.0.5:40000", "93.184.216.34:443");
    let cases = [
        (connect(v4.0, v4.1), "connect"),
        (connect_failed(v4.0, v4.1, 111), "connect"),
        (accept(v4.1, v4.0), "accept"),
        (
            Event::Conn(conn(ConnPhase::Close, Role::Client, v4.0, v4.1)),
            "close",
        ),
        (udp("10.0.0.5:40001", "8.8.8.8:53"), "udp_flow"),
        (
            dns(
                Role::Client,
                Transport::Udp,
                "10.0.0.5:40001",
                "8.8.8.8:53",
                "example.com",
                1,
                Some(0),
            ),
            "dns",
        ),
        (
            http(Role::Client, v4.0, "93.184.216.34:80", "GET", "/"),
            "http",
        ),
        (packet_drop("NETFILTER_DROP", 3), "packet_drop"),
    ];
    for (e, t) in &cases {
        check(e, &[("evt.type", t), ("evt.dir", "<")]);
        assert!(matches(&format!("evt.type = {t}"), e), "{t}");
        assert!(matches(&format!("evt.type in (execve, {t})"), e), "{t}");
        assert!(!matches("evt.type = execve", e), "{t}");
    }
    // `accept4` is `accept`: Falco rules name both.
    let a = accept(v4.1, v4.0);
    all_match(
        &a,
        &[
            "evt.type = accept4",
            "evt.type in (accept, accept4)",
            "evt.type in (accept4)",
        ],
    );
    none_match(&a, &["evt.type = connect", "evt.type != accept4"]);
    // A rule on accept and accept4 runs once per event.
    let rs = load_ok(&rule("evt.type in (accept, accept4) or evt.type = accept4"));
    assert_eq!(fired(&rs, &a), ["R"]);
    assert_eq!(rs.event_types(), ["accept"]);
    // Falco's send/receive calls are not produced: UDP traffic is `udp_flow`.
    let rs = load_ok(&rule("evt.type in (sendto, recvfrom)"));
    assert_eq!(
        rs.rules()[0].disabled_reason.as_deref(),
        Some("evt.types recvfrom, sendto are not observed by this node's sensors")
    );
}

#[test]
fn client_connection_ipv4() {
    let e = connect("10.0.0.5:40000", "93.184.216.34:443");
    check(
        &e,
        &[
            ("evt.res", "SUCCESS"),
            ("evt.rawres", "0"),
            ("evt.failed", "false"),
            ("evt.source", "syscall"),
            ("evt.arg.res", "0"),
            ("evt.arg.tuple", "10.0.0.5:40000->93.184.216.34:443"),
            ("evt.args", "res=0 tuple=10.0.0.5:40000->93.184.216.34:443"),
            ("fd.name", "10.0.0.5:40000->93.184.216.34:443"),
            ("fd.type", "ipv4"),
            ("fd.typechar", "4"),
            ("fd.l4proto", "tcp"),
            ("fd.sockfamily", "ip"),
            ("fd.connected", "true"),
            ("fd.name_changed", "true"),
            ("fd.sip", "93.184.216.34"),
            ("fd.sport", "443"),
            ("fd.cip", "10.0.0.5"),
            ("fd.cport", "40000"),
            ("fd.lip", "10.0.0.5"),
            ("fd.lport", "40000"),
            ("fd.rip", "93.184.216.34"),
            ("fd.rport", "443"),
            ("fd.snet", "93.184.216.34"),
            ("fd.cnet", "10.0.0.5"),
            ("fd.lnet", "10.0.0.5"),
            ("fd.rnet", "93.184.216.34"),
            ("fd.ip", "93.184.216.34"),
            ("fd.port", "443"),
            ("fd.sip.name", "example.com"),
            ("fd.rip.name", "example.com"),
            ("fd.cip.name", "<NA>"),
            ("fd.lip.name", "<NA>"),
            ("fd.num", "<NA>"),
            ("fd.directory", "<NA>"),
            ("fd.filename", "<NA>"),
            ("net.role", "client"),
            ("net.connect_latency_us", "1500"),
            ("net.bytes_sent", "<NA>"),
            ("net.retransmits", "<NA>"),
            ("dns.query", "<NA>"),
            // The owner's table entry.
            ("proc.pid", "100"),
            ("proc.tid", "101"),
            ("proc.name", "bash"),
            ("proc.exepath", "/usr/bin/bash"),
            ("proc.pname", "sshd"),
            ("proc.aname[2]", "systemd"),
            ("user.uid", "0"),
            ("user.name", "root"),
            ("user.loginname", "alice"),
            ("group.name", "root"),
        ],
    );
    all_match(
        &e,
        &[
            "evt.type = connect and evt.dir = < and fd.sport = 443",
            "fd.sip = 93.184.216.34",
            "fd.sip = \"93.184.216.34\"",
            "fd.sip = ::ffff:93.184.216.34",
            "fd.sip in (1.1.1.1, 93.184.216.34)",
            "fd.sip != 1.1.1.1",
            "fd.sport in (80, 443)",
            "fd.sport > 400 and fd.sport < 1024 and fd.sport >= 443 and fd.sport <= 443",
            "fd.cport >= 32768",
            "fd.rport = 443 and fd.lport = 40000",
            "fd.snet = 93.184.216.0/24",
            "fd.snet in (\"93.184.0.0/16\", \"10.0.0.0/8\")",
            "not fd.snet in (\"10.0.0.0/8\", \"172.16.0.0/12\", \"192.168.0.0/16\")",
            "fd.cnet = \"10.0.0.0/8\"",
            "fd.lnet = 10.0.0.0/8 and fd.rnet != 10.0.0.0/8",
            "fd.sip = 93.184.216.0/24",
            "fd.ip = 10.0.0.5",
            "fd.ip = 93.184.216.34",
            "fd.ip in (10.0.0.5)",
            "fd.ip != 1.1.1.1",
            "fd.ip != \"0.0.0.0\"",
            "fd.net = 10.0.0.0/8",
            "fd.net != \"127.0.0.0/8\"",
            "fd.port = 443",
            "fd.port = 40000",
            "fd.port in (22, 40000)",
            "fd.port != 22",
            "fd.port > 30000",
            "fd.sip.name = example.com",
            "fd.sip.name endswith .com",
            "fd.sip.name in (example.com, example.org)",
            "fd.typechar = 4 and fd.type = ipv4",
            "(fd.typechar = 4 or fd.typechar = 6)",
            "fd.l4proto = tcp and fd.connected = true and fd.sockfamily = ip",
            "fd.name contains \"->93.184.216.34:443\"",
            "fd.name startswith 10.0.0.5:",
            "fd.sip startswith 93.184.",
            "fd.sip = val(fd.rip) and fd.cip = val(fd.lip)",
            "evt.rawres >= 0 or evt.res = EINPROGRESS",
            "proc.name = bash and user.name = root",
            "net.connect_latency_us > 1000",
        ],
    );
    none_match(
        &e,
        &[
            "fd.sip = 10.0.0.5",
            "fd.sip = 93.184.216.35",
            "fd.sport = 80",
            "fd.sport in (80, 8080)",
            "fd.cport < 1024",
            "fd.snet = 10.0.0.0/8",
            "fd.snet in (\"10.0.0.0/8\", \"172.16.0.0/12\", \"192.168.0.0/16\")",
            "fd.ip != 10.0.0.5",
            "fd.ip != 93.184.216.34",
            "fd.net != 10.0.0.0/8",
            "fd.port != 443",
            "fd.ip = 1.1.1.1",
            "fd.sip.name = kubernetes.default.svc",
            "fd.cip.name exists",
            "fd.typechar = 6",
            "fd.l4proto = udp",
            "evt.failed = true",
            "evt.type in (accept, accept4)",
            "net.bytes_sent exists",
        ],
    );
}

#[test]
fn server_connection_ipv6() {
    let e = accept("[2001:db8::1]:8080", "[2001:db8::99]:51000");
    check(
        &e,
        &[
            ("evt.type", "accept"),
            ("evt.res", "SUCCESS"),
            ("fd.type", "ipv6"),
            ("fd.typechar", "6"),
            ("fd.l4proto", "tcp"),
            ("fd.name", "2001:db8::99:51000->2001:db8::1:8080"),
            ("fd.sip", "2001:db8::1"),
            ("fd.sport", "8080"),
            ("fd.cip", "2001:db8::99"),
            ("fd.cport", "51000"),
            ("fd.lip", "2001:db8::1"),
            ("fd.lport", "8080"),
            ("fd.rip", "2001:db8::99"),
            ("fd.rport", "51000"),
            ("fd.ip", "2001:db8::1"),
            ("fd.port", "8080"),
            ("fd.cip.name", "client.example"),
            ("fd.rip.name", "client.example"),
            ("fd.sip.name", "<NA>"),
            ("fd.connected", "true"),
            ("net.role", "server"),
            ("net.connect_latency_us", "<NA>"),
        ],
    );
    all_match(
        &e,
        &[
            "evt.type in (accept, accept4) and fd.sport = 8080",
            "fd.sip = 2001:db8::1",
            "fd.sip = \"2001:0db8:0000:0000:0000:0000:0000:0001\"",
            "fd.sip = \"[2001:db8::1]\"",
            "fd.lip = 2001:db8::1 and fd.rip = 2001:db8::99",
            "fd.cip in (\"2001:db8::99\", \"10.0.0.1\")",
            "fd.snet = \"2001:db8::/32\"",
            "fd.cnet in (\"fd00::/8\", \"2001:db8::/64\")",
            "fd.net = \"2001:db8::/32\"",
            "fd.ip = 2001:db8::99",
            "fd.port = 51000",
            "fd.lport = 8080 and fd.rport > 50000",
            "fd.cip.name = client.example",
            "fd.typechar = 6",
        ],
    );
    none_match(
        &e,
        &[
            "fd.sip = 2001:db8::99",
            "fd.snet = 10.0.0.0/8",
            "fd.snet = \"0.0.0.0/0\"",
            "fd.snet = \"2001:db9::/32\"",
            "fd.sip = 10.0.0.1",
            "fd.sport = 51000",
            "fd.typechar = 4",
            "evt.type = connect",
        ],
    );
    // A client on IPv6, and an IPv4 server.
    let c6 = connect("[fd00::5]:41000", "[2001:db8::1]:22");
    check(
        &c6,
        &[
            ("fd.name", "fd00::5:41000->2001:db8::1:22"),
            ("fd.sip", "2001:db8::1"),
            ("fd.cip", "fd00::5"),
            ("fd.type", "ipv6"),
        ],
    );
    assert!(matches("fd.cnet = \"fd00::/8\" and fd.sport = 22", &c6));
    let s4 = accept("10.0.0.5:22", "192.168.1.7:50022");
    check(
        &s4,
        &[
            ("fd.name", "192.168.1.7:50022->10.0.0.5:22"),
            ("fd.sip", "10.0.0.5"),
            ("fd.sport", "22"),
            ("fd.cip", "192.168.1.7"),
            ("fd.cport", "50022"),
            ("fd.lip", "10.0.0.5"),
            ("fd.rip", "192.168.1.7"),
            ("fd.type", "ipv4"),
        ],
    );
    all_match(
        &s4,
        &[
            "fd.cnet = 192.168.0.0/16 and fd.snet = 10.0.0.0/8",
            "fd.lport = 22",
        ],
    );
}

#[test]
fn ipv4_mapped_addresses_are_ipv4() {
    // A dual-stack socket (family AF_INET6) talking IPv4: decoded as IPv4 addresses.
    let mut c = conn(
        ConnPhase::Connect,
        Role::Client,
        "10.0.0.5:40000",
        "10.96.0.1:443",
    );
    c.ipv6 = true;
    let e = Event::Conn(c);
    check(
        &e,
        &[
            ("fd.type", "ipv4"),
            ("fd.typechar", "4"),
            ("fd.sip", "10.96.0.1"),
            ("fd.sip.name", "kubernetes.default.svc"),
        ],
    );
    // Addresses that reach the rules still IPv4-mapped are shown and compared as IPv4.
    let d = dns(
        Role::Client,
        Transport::Udp,
        "[::ffff:10.0.0.5]:40001",
        "[::ffff:10.0.0.53]:53",
        "example.com",
        1,
        Some(0),
    );
    check(
        &d,
        &[
            ("fd.sip", "10.0.0.53"),
            ("fd.cip", "10.0.0.5"),
            ("fd.type", "ipv4"),
            ("fd.name", "10.0.0.5:40001->10.0.0.53:53"),
        ],
    );
    all_match(
        &d,
        &[
            "fd.sip = 10.0.0.53",
            "fd.sip = \"::ffff:10.0.0.53\"",
            "fd.snet = 10.0.0.0/8",
            "fd.snet = \"::ffff:10.0.0.0/104\"",
        ],
    );
}

#[test]
fn failed_connects() {
    let local = "10.0.0.5:40000";
    let cases = [
        (111, "ECONNREFUSED", "-111"),
        (110, "ETIMEDOUT", "-110"),
        (113, "EHOSTUNREACH", "-113"),
        (101, "ENETUNREACH", "-101"),
        (0, "ECONNABORTED", "-103"),
    ];
    for (sk_err, res, rawres) in cases {
        let e = connect_failed(local, "10.0.0.9:5432", sk_err);
        check(
            &e,
            &[
                ("evt.type", "connect"),
                ("evt.res", res),
                ("evt.rawres", rawres),
                ("evt.failed", "true"),
                ("evt.arg.res", rawres),
                ("fd.connected", "false"),
                ("fd.sip", "10.0.0.9"),
                ("fd.sport", "5432"),
                ("fd.name", "10.0.0.5:40000->10.0.0.9:5432"),
            ],
        );
        all_match(
            &e,
            &[
                &format!("evt.type = connect and evt.res = {res}"),
                "evt.failed = true and evt.rawres < 0",
                "fd.connected = false",
            ],
        );
        none_match(
            &e,
            &[
                "evt.type = connect and evt.failed = false",
                "evt.rawres >= 0 or evt.res = EINPROGRESS",
            ],
        );
    }
}

#[test]
fn closed_connection_counters() {
    let mut c = conn(
        ConnPhase::Close,
        Role::Client,
        "10.0.0.5:40000",
        "93.184.216.34:443",
    );
    c.bytes_sent = 517;
    c.bytes_received = 123_456;
    c.retransmits = 3;
    c.duration_ns = 2_000_000_000;
    let e = Event::Conn(c);
    check(
        &e,
        &[
            ("evt.type", "close"),
            ("evt.res", "SUCCESS"),
            ("fd.name", "10.0.0.5:40000->93.184.216.34:443"),
            ("fd.sip", "93.184.216.34"),
            ("fd.connected", "true"),
            ("fd.name_changed", "false"),
            ("net.bytes_sent", "517"),
            ("net.bytes_received", "123456"),
            ("net.retransmits", "3"),
            ("net.connect_latency_us", "1500"),
            ("net.role", "client"),
        ],
    );
    all_match(
        &e,
        &[
            "evt.type = close and net.bytes_received > 100000 and fd.sport = 443",
            "net.retransmits >= 3",
        ],
    );
    // A server side close: the server is local.
    let s = Event::Conn(conn(
        ConnPhase::Close,
        Role::Server,
        "10.0.0.5:8080",
        "10.0.0.7:51000",
    ));
    check(
        &s,
        &[
            ("fd.sip", "10.0.0.5"),
            ("fd.sport", "8080"),
            ("fd.cip", "10.0.0.7"),
            ("net.bytes_sent", "0"),
        ],
    );
}

#[test]
fn udp_flows() {
    let client = udp("10.0.0.5:40001", "8.8.8.8:53");
    check(
        &client,
        &[
            ("evt.type", "udp_flow"),
            ("evt.res", "SUCCESS"),
            ("fd.l4proto", "udp"),
            ("fd.type", "ipv4"),
            ("fd.sockfamily", "ip"),
            ("fd.connected", "<NA>"),
            ("fd.name_changed", "false"),
            ("fd.name", "10.0.0.5:40001->8.8.8.8:53"),
            ("fd.sip", "8.8.8.8"),
            ("fd.sport", "53"),
            ("fd.cip", "10.0.0.5"),
            ("fd.cport", "40001"),
            ("fd.lip", "10.0.0.5"),
            ("fd.rport", "53"),
            ("net.bytes_sent", "64"),
            ("net.bytes_received", "256"),
            ("net.role", "<NA>"),
            ("evt.args", ""),
        ],
    );
    all_match(
        &client,
        &[
            "evt.type = udp_flow and fd.l4proto = udp and fd.sport = 53",
            "fd.snet = 8.8.8.0/24",
        ],
    );
    // The lower port is the server: here the local end.
    let server = udp("[2001:db8::53]:53", "[2001:db8::7]:40000");
    check(
        &server,
        &[
            ("fd.sip", "2001:db8::53"),
            ("fd.sport", "53"),
            ("fd.cip", "2001:db8::7"),
            ("fd.type", "ipv6"),
            ("fd.name", "2001:db8::7:40000->2001:db8::53:53"),
        ],
    );
}

#[test]
fn dns_exchanges() {
    let client = dns(
        Role::Client,
        Transport::Udp,
        "10.0.0.5:40001",
        "10.0.0.53:53",
        "evil.example",
        28,
        Some(3),
    );
    check(
        &client,
        &[
            ("evt.type", "dns"),
            ("dns.query", "evil.example"),
            ("dns.type", "AAAA"),
            ("dns.rcode", "NXDOMAIN"),
            ("net.role", "client"),
            ("fd.l4proto", "udp"),
            ("fd.connected", "<NA>"),
            ("fd.sip", "10.0.0.53"),
            ("fd.sport", "53"),
            ("fd.cip", "10.0.0.5"),
            ("fd.lip", "10.0.0.5"),
            ("fd.rip", "10.0.0.53"),
            ("http.method", "<NA>"),
        ],
    );
    all_match(
        &client,
        &[
            "evt.type = dns and dns.query endswith .example",
            "dns.type = AAAA and dns.type = 28",
            "dns.rcode = NXDOMAIN and dns.rcode = 3",
            "dns.rcode in (NXDOMAIN, SERVFAIL)",
            "dns.query in (evil.example, bad.example)",
            "dns.query glob '*.example'",
        ],
    );
    none_match(&client, &["dns.rcode = NOERROR", "dns.type = A"]);
    // The server's socket saw the same query: the server is local. Over TCP.
    let server = dns(
        Role::Server,
        Transport::Tcp,
        "10.0.0.7:40001",
        "10.0.0.53:53",
        "example.com",
        1,
        None,
    );
    check(
        &server,
        &[
            ("net.role", "server"),
            ("fd.l4proto", "tcp"),
            ("fd.connected", "true"),
            ("fd.sip", "10.0.0.53"),
            ("fd.lip", "10.0.0.53"),
            ("fd.cip", "10.0.0.7"),
            ("fd.rip", "10.0.0.7"),
            ("dns.type", "A"),
            // Timed out: no response code.
            ("dns.rcode", "<NA>"),
        ],
    );
    assert!(!matches("dns.rcode != NOERROR", &server));
    let odd = dns(
        Role::Client,
        Transport::Udp,
        "10.0.0.5:40001",
        "10.0.0.53:53",
        "x.example",
        99,
        Some(9),
    );
    check(&odd, &[("dns.type", "TYPE99"), ("dns.rcode", "RCODE9")]);
}

#[test]
fn http_exchanges() {
    let client = http(
        Role::Client,
        "10.0.0.5:40000",
        "93.184.216.34:80",
        "POST",
        "/upload?x=1",
    );
    check(
        &client,
        &[
            ("evt.type", "http"),
            ("http.method", "POST"),
            ("http.path", "/upload?x=1"),
            ("http.status", "404"),
            ("net.role", "client"),
            ("fd.l4proto", "tcp"),
            ("fd.sip", "93.184.216.34"),
            ("fd.sport", "80"),
            ("fd.sip.name", "example.com"),
            ("fd.name", "10.0.0.5:40000->93.184.216.34:80"),
        ],
    );
    all_match(
        &client,
        &[
            "evt.type = http and http.method = POST and http.path startswith /upload",
            "http.status >= 400 and http.status < 500",
            "http.status in (404, 410)",
        ],
    );
    let mut server = http(
        Role::Server,
        "10.0.0.5:8080",
        "10.0.0.7:51000",
        "GET",
        "/admin",
    );
    if let Event::Http(h) = &mut server {
        h.exchange.status = None;
    }
    check(
        &server,
        &[
            ("fd.sip", "10.0.0.5"),
            ("fd.sport", "8080"),
            ("fd.cip", "10.0.0.7"),
            ("net.role", "server"),
            ("http.status", "<NA>"),
        ],
    );
}

#[test]
fn packet_drops_and_captures() {
    let d = packet_drop("NETFILTER_DROP", 12);
    check(
        &d,
        &[
            ("evt.type", "packet_drop"),
            ("drop.reason", "NETFILTER_DROP"),
            ("drop.count", "12"),
            ("fd.sip", "<NA>"),
            ("fd.l4proto", "<NA>"),
            ("fd.name", "<NA>"),
            ("fd.type", "<NA>"),
            ("net.role", "<NA>"),
            ("proc.pid", "0"),
        ],
    );
    all_match(&d, &["drop.reason = NETFILTER_DROP and drop.count > 10"]);
    none_match(
        &d,
        &["fd.ip != 1.1.1.1", "fd.port != 22", "fd.sip != 1.1.1.1"],
    );
    // Raw payload records are internal: no rule sees them, not even type-agnostic ones.
    let rs = load_ok(&rule("proc.pid exists or not proc.pid exists"));
    assert!(fired(&rs, &capture()).is_empty());
    assert_eq!(fired(&rs, &d), ["R"]);
}

#[test]
fn network_fields_are_missing_on_other_events() {
    let e = open("/etc/passwd", 0);
    check(
        &e,
        &[
            ("fd.sip", "<NA>"),
            ("fd.sport", "<NA>"),
            ("fd.ip", "<NA>"),
            ("fd.l4proto", "<NA>"),
            ("fd.connected", "<NA>"),
            ("fd.name_changed", "<NA>"),
            ("fd.sip.name", "<NA>"),
            ("net.bytes_sent", "<NA>"),
            ("dns.query", "<NA>"),
            ("http.status", "<NA>"),
            ("drop.reason", "<NA>"),
        ],
    );
    none_match(
        &e,
        &[
            "fd.sip != 1.1.1.1",
            "fd.ip != 1.1.1.1",
            "fd.snet != 10.0.0.0/8",
            "fd.port != 22",
        ],
    );
    assert!(matches("not fd.snet in (\"10.0.0.0/8\")", &e));
    // dup2 of a socket knows its peer only.
    let dup = syscall(
        vigil_abi::VIGIL_SYS_DUP2,
        [3, 1, 0, 2, 4444, 0],
        ["\u{a}\u{0}\u{0}\u{1}", "", ""],
        1,
    );
    check(
        &dup,
        &[
            ("fd.rip", "10.0.0.1"),
            ("fd.rport", "4444"),
            ("fd.ip", "10.0.0.1"),
            ("fd.port", "4444"),
            ("fd.sip", "<NA>"),
            ("fd.lip", "<NA>"),
            ("fd.name", "10.0.0.1:4444"),
            ("fd.l4proto", "<NA>"),
        ],
    );
    all_match(
        &dup,
        &[
            "fd.rnet = 10.0.0.0/8",
            "fd.net = 10.0.0.0/8",
            "fd.port = 4444",
        ],
    );
}

#[test]
fn process_fields_without_a_table_entry() {
    // The owner is not in the table: the event's comm names it, the rest is missing.
    let e = connect("10.0.0.5:40000", "93.184.216.34:2222");
    let rs = load_ok(
        "- rule: R\n  desc: d\n  condition: evt.type = connect and proc.name = curl\n  output: \"%proc.name %proc.pid %proc.exepath %user.name %fd.sip.name\"\n  priority: INFO\n",
    );
    let ctx = EvalContext {
        event: &e,
        proc: None,
        ancestry: &[],
        names: &vigil_rules::NoNames,
        container: None,
        pod: None,
    };
    let mut out = Vec::new();
    rs.evaluate(&ctx, &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].output, "curl 100 <NA> <NA> <NA>");
}

/// A lookup that implements only users and groups: `ip_name` has a default.
struct UsersOnly;

impl NameLookup for UsersOnly {
    fn user(&self, _uid: u32) -> Option<&str> {
        Some("u")
    }

    fn group(&self, _gid: u32) -> Option<&str> {
        None
    }
}

/// Records the lookups it is asked for.
struct Recording(std::cell::RefCell<Vec<(IpAddr, u64)>>);

impl NameLookup for Recording {
    fn user(&self, _uid: u32) -> Option<&str> {
        None
    }

    fn group(&self, _gid: u32) -> Option<&str> {
        None
    }

    fn ip_name(&self, ip: &IpAddr, time_ns: u64) -> Option<&str> {
        self.0.borrow_mut().push((*ip, time_ns));
        Some("learned.example")
    }
}

#[test]
fn ip_names_come_from_the_lookup_at_the_event_time() {
    let rs = load_ok(
        "- rule: R\n  desc: d\n  condition: fd.sip.name = learned.example\n  output: \"%fd.sip.name %fd.cip.name %user.name\"\n  priority: INFO\n",
    );
    let mut c = conn(
        ConnPhase::Connect,
        Role::Client,
        "[::ffff:10.0.0.5]:40000",
        "[2001:db8::1]:443",
    );
    c.header.time_ns = 7_000_000_000;
    let e = Event::Conn(c);
    let rec = Recording(Default::default());
    let ctx = EvalContext {
        event: &e,
        proc: None,
        ancestry: &[],
        names: &rec,
        container: None,
        pod: None,
    };
    let mut out = Vec::new();
    rs.evaluate(&ctx, &mut out);
    assert_eq!(out[0].output, "learned.example learned.example <NA>");
    let asked = rec.0.borrow();
    assert!(asked.contains(&("2001:db8::1".parse().unwrap(), 7_000_000_000)));
    // The mapped local address is asked as IPv4.
    assert!(asked.contains(&("10.0.0.5".parse().unwrap(), 7_000_000_000)));
    // The default implementation knows no names.
    let ctx = EvalContext {
        event: &e,
        proc: None,
        ancestry: &[],
        names: &UsersOnly,
        container: None,
        pod: None,
    };
    let rs = load_ok(
        "- rule: R\n  desc: d\n  condition: evt.type = connect\n  output: \"%fd.sip.name\"\n  priority: INFO\n",
    );
    let mut out = Vec::new();
    rs.evaluate(&ctx, &mut out);
    assert_eq!(out[0].output, "<NA>");
    // The common test lookup forgets names after 10 s: the time is the event's.
    let mut late = conn(
        ConnPhase::Connect,
        Role::Client,
        "10.0.0.5:40000",
        "93.184.216.34:443",
    );
    late.header.time_ns = 11_000_000_000;
    assert_eq!(value("fd.sip.name", &Event::Conn(late)), "<NA>");
}

#[test]
fn falco_network_macros_load_and_run() {
    // Falco's upstream `outbound` and `inbound` macros (sendto/recvfrom parts never match).
    let yaml = r#"
- list: rfc_1918_addresses
  items: ['"10.0.0.0/8"', '"172.16.0.0/12"', '"192.168.0.0/16"']
- macro: outbound
  condition: >
    (((evt.type = connect and evt.dir=<) or
      (evt.type in (sendto,sendmsg) and evt.dir=< and
       fd.l4proto != tcp and fd.connected=false and fd.name_changed=true)) and
     (fd.typechar = 4 or fd.typechar = 6) and
     (fd.ip != "0.0.0.0" and fd.net != "127.0.0.0/8" and not fd.snet in (rfc_1918_addresses)) and
     (evt.rawres >= 0 or evt.res = EINPROGRESS))
- macro: inbound
  condition: >
    (((evt.type in (accept,accept4,listen) and evt.dir=<) or
      (evt.type in (recvfrom,recvmsg) and evt.dir=< and
       fd.l4proto != tcp and fd.connected=false and fd.name_changed=true)) and
     (fd.typechar = 4 or fd.typechar = 6) and
     (fd.ip != "0.0.0.0" and fd.net != "127.0.0.0/8") and
     (evt.rawres >= 0 or evt.res = EINPROGRESS))
- rule: Outbound
  desc: d
  condition: outbound
  output: "out %fd.name %fd.sip.name %fd.l4proto %fd.lport"
  priority: NOTICE
- rule: Inbound
  desc: d
  condition: inbound
  output: "in %fd.name"
  priority: NOTICE
"#;
    let rs = load_ok(yaml);
    for r in rs.rules() {
        assert!(r.enabled, "{}: {:?}", r.name, r.disabled_reason);
    }
    let out = connect("10.0.0.5:40000", "93.184.216.34:443");
    let a = alerts(&rs, &out);
    assert_eq!(a.len(), 1);
    assert_eq!(
        a[0].output,
        "out 10.0.0.5:40000->93.184.216.34:443 example.com tcp 40000"
    );
    // Private destinations, loopback and failures are not outbound.
    assert!(fired(&rs, &connect("10.0.0.5:40000", "10.0.0.9:443")).is_empty());
    assert!(fired(&rs, &connect("127.0.0.1:40000", "127.0.0.1:443")).is_empty());
    assert!(fired(
        &rs,
        &connect_failed("10.0.0.5:40000", "93.184.216.34:443", 111)
    )
    .is_empty());
    assert_eq!(
        fired(&rs, &accept("10.0.0.5:22", "93.184.216.34:50000")),
        ["Inbound"]
    );
    assert!(fired(&rs, &accept("127.0.0.1:22", "127.0.0.1:50000")).is_empty());
}

const DEFAULT_RULES: &str = include_str!("../../../../rules/vigil-default.yaml");

const NETWORK_RULES: [&str; 4] = [
    "Contact Kubernetes API server from container",
    "Contact cloud metadata service from container",
    "Connection to crypto-mining pool port",
    "SSH to a non-standard port",
];

fn load_default(observable: HashSet<String>) -> vigil_rules::RuleSet {
    load(
        &[RuleFile {
            name: "vigil-default.yaml".into(),
            text: DEFAULT_RULES.into(),
        }],
        &LoadOptions { observable },
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn default_network_rules() {
    // Every type observable (the network sensor loaded): the network rules are enabled.
    let rs = load_default(all_types().observable);
    for name in NETWORK_RULES {
        let r = rs.rules().iter().find(|r| r.name == name).unwrap();
        assert!(r.enabled, "{name}: {:?}", r.disabled_reason);
        assert_eq!(r.disabled_reason, None, "{name}");
        assert!(r.warnings.is_empty(), "{name}: {:?}", r.warnings);
    }
    // Without the network sensor they load disabled, with the reason.
    let no_net: HashSet<String> = all_event_types()
        .iter()
        .filter(|t| !NET_TYPES.contains(t))
        .map(|t| t.to_string())
        .collect();
    let rs_no_net = load_default(no_net);
    for name in NETWORK_RULES {
        let r = rs_no_net.rules().iter().find(|r| r.name == name).unwrap();
        assert_eq!(
            r.disabled_reason.as_deref(),
            Some("evt.type connect is not observed by this node's sensors"),
            "{name}"
        );
    }
    assert_eq!(rs.enabled_count(), rs_no_net.enabled_count() + 4);

    let fire = |e: &Event, comm: &str| -> Vec<String> {
        let mut e = e.clone();
        if let Event::Conn(c) = &mut e {
            c.comm = comm.as_bytes().to_vec();
        }
        let ctx = EvalContext {
            event: &e,
            proc: None,
            ancestry: &[],
            names: &Names,
            container: None,
            pod: None,
        };
        let mut out = Vec::new();
        rs.evaluate(&ctx, &mut out);
        out.into_iter().map(|a| a.rule).collect()
    };
    let local = "10.0.0.5:40000";
    assert_eq!(
        fire(&connect(local, "203.0.113.9:3333"), "xmrig"),
        ["Connection to crypto-mining pool port"]
    );
    // Failed attempts count too, as Falco sees the connect call.
    assert_eq!(
        fire(&connect_failed(local, "203.0.113.9:14444", 111), "xmrig"),
        ["Connection to crypto-mining pool port"]
    );
    assert!(fire(&accept("10.0.0.5:3333", "203.0.113.9:50000"), "x").is_empty());
    assert_eq!(
        fire(&connect(local, "203.0.113.9:2222"), "ssh"),
        ["SSH to a non-standard port"]
    );
    assert!(fire(&connect(local, "203.0.113.9:22"), "ssh").is_empty());
    assert!(fire(&connect(local, "203.0.113.9:2222"), "curl").is_empty());
    // The container rules cannot fire until container identity lands.
    assert!(fire(&connect(local, "169.254.169.254:80"), "curl").is_empty());
    assert!(fire(&connect(local, "10.96.0.1:443"), "kubectl").is_empty());
    // With a stand-in for container identity, they do.
    let with_containers = load(
        &[
            RuleFile {
                name: "vigil-default.yaml".into(),
                text: DEFAULT_RULES.into(),
            },
            RuleFile {
                name: "containers.yaml".into(),
                text: "- macro: container\n  condition: (proc.pid exists)\n".into(),
            },
        ],
        &all_types(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let fired_all = |e: &Event| fired(&with_containers, e);
    let k8s = ["Contact Kubernetes API server from container"];
    assert_eq!(fired_all(&connect(local, "10.96.0.1:443")), k8s);
    assert_eq!(fired_all(&connect(local, "10.96.0.2:6443")), k8s);
    assert!(fired_all(&connect(local, "10.96.0.1:80")).is_empty());
    assert!(fired_all(&connect(local, "93.184.216.34:443")).is_empty());
    let imds = ["Contact cloud metadata service from container"];
    assert_eq!(fired_all(&connect(local, "169.254.169.254:80")), imds);
    assert_eq!(
        fired_all(&connect("[fd00::5]:40000", "[fd00:ec2::254]:80")),
        imds
    );
    assert!(fired_all(&accept("169.254.169.254:80", "10.0.0.9:5000")).is_empty());
}
