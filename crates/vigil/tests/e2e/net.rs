//! Network events (spec: network-events.md): TCP connections with exact 4-tuples, byte counts,
//! cookies and close reasons; refused and reset connections; retransmits and packet drops; DNS;
//! HTTP; UDP flows; the service map. Each test builds its own lab (two network namespaces, see
//! netlab.rs) and puts its processes in cgroups of its own, and selects events by those.

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::harness::*;
use crate::netlab::*;

/// UDP and drop reports every second (and at shutdown).
const NET_CONFIG: &str =
    "network:\n  enabled: true\n  capture_bytes: 512\n  http: true\n  flow_interval_secs: 1\n";

fn sock(v: &Value) -> SocketAddr {
    v.as_str()
        .unwrap_or_else(|| panic!("not an address: {v}"))
        .parse()
        .unwrap()
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a u64: {v}"))
}

/// `connection` events of cgroup `cg` in `phase`.
fn conns<'a>(events: &'a [Value], cg: &TestCgroup, phase: &str) -> Vec<&'a Value> {
    in_cgroup(events, "connection", cg.id)
        .into_iter()
        .filter(|e| e["connection"]["phase"] == phase)
        .collect()
}

/// The one event of `phase` in `cg`.
fn one<'a>(events: &'a [Value], cg: &TestCgroup, phase: &str) -> &'a Value {
    let v = conns(events, cg, phase);
    assert_eq!(
        v.len(),
        1,
        "exactly one {phase} in cgroup {}: {v:#?}\nall connection events of the cgroup: {:#?}",
        cg.id,
        in_cgroup(events, "connection", cg.id)
    );
    v[0]
}

/// Checks the fields every `connection` line of one socket shares.
#[allow(clippy::too_many_arguments)]
fn check_socket(
    e: &Value,
    role: &str,
    v6: bool,
    local: SocketAddr,
    remote: SocketAddr,
    cookie: u64,
    netns: u64,
    pid: u32,
    cg: &TestCgroup,
) {
    let c = &e["connection"];
    assert_eq!(c["role"], role, "{e:#}");
    assert_eq!(c["protocol"], "tcp", "{e:#}");
    assert_eq!(c["family"], if v6 { "ipv6" } else { "ipv4" }, "{e:#}");
    assert!(addr_is(&c["local"], local), "local {local}: {e:#}");
    assert!(addr_is(&c["remote"], remote), "remote {remote}: {e:#}");
    assert_eq!(c["cookie"], cookie, "cookie (SO_COOKIE): {e:#}");
    assert_eq!(c["netns"], netns, "netns: {e:#}");
    assert_eq!(e["process"]["pid"], pid, "owner: {e:#}");
    assert_eq!(e["cgroup_id"], cg.id, "{e:#}");
}

/// Client and server in two namespaces exchange exactly N and M bytes, then one side closes.
fn tcp_exchange(v6: bool, server_closes_first: bool) {
    const N: usize = 1000;
    const M: usize = 3000;
    let lab = NetLab::new();
    let cg_cli = TestCgroup::new();
    let cg_srv = TestCgroup::new();
    let agent = Agent::start_with_config(Some(NET_CONFIG), &[]);

    let to = lab.srv.addr(v6, 7001);
    let (srv_close, cli_close) = if server_closes_first {
        ("close=first", "close=after-eof")
    } else {
        ("close=after-eof", "close=first")
    };
    let mut server = lab.srv.helper(
        Some(&cg_srv),
        &[
            "tcp-server",
            &format!("listen={to}"),
            &format!("read={N}"),
            &format!("write={M}"),
            srv_close,
        ],
    );
    server.msg("listening");
    let mut client = lab.cli.helper(
        Some(&cg_cli),
        &[
            "tcp-client",
            &format!("connect={to}"),
            &format!("send={N}"),
            &format!("read={M}"),
            cli_close,
        ],
    );
    let c = client.msg("connected");
    let s = server.msg("accepted");
    client.msg("done");
    server.msg("closed");
    client.finish();
    server.finish();
    let done = agent.stop();

    let cli_addr = sock(&c["local"]);
    assert_eq!(cli_addr.ip(), lab.cli.ip(v6));
    assert_eq!(sock(&s["remote"]), cli_addr);
    let (cli_cookie, srv_cookie) = (u(&c["cookie"]), u(&s["cookie"]));
    let (cpid, spid) = (client.pid(), server.pid());

    let connect = one(&done.events, &cg_cli, "connect");
    check_socket(
        connect,
        "client",
        v6,
        cli_addr,
        to,
        cli_cookie,
        lab.cli.inode,
        cpid,
        &cg_cli,
    );
    assert!(u(&connect["connection"]["connect_latency_us"]) > 0);

    let accept = one(&done.events, &cg_srv, "accept");
    check_socket(
        accept,
        "server",
        v6,
        to,
        cli_addr,
        srv_cookie,
        lab.srv.inode,
        spid,
        &cg_srv,
    );

    let (cli_reason, srv_reason) = if server_closes_first {
        ("peer_close", "local_close")
    } else {
        ("local_close", "peer_close")
    };
    let cc = one(&done.events, &cg_cli, "close");
    check_socket(
        cc,
        "client",
        v6,
        cli_addr,
        to,
        cli_cookie,
        lab.cli.inode,
        cpid,
        &cg_cli,
    );
    let sc = one(&done.events, &cg_srv, "close");
    check_socket(
        sc,
        "server",
        v6,
        to,
        cli_addr,
        srv_cookie,
        lab.srv.inode,
        spid,
        &cg_srv,
    );
    for (e, sent, received, reason) in [(cc, N, M, cli_reason), (sc, M, N, srv_reason)] {
        let x = &e["connection"];
        assert_eq!(
            (u(&x["bytes_sent"]), u(&x["bytes_received"])),
            (sent as u64, received as u64),
            "payload bytes: {e:#}"
        );
        assert_eq!(x["close_reason"], reason, "{e:#}");
        assert!(u(&x["duration_us"]) > 0, "{e:#}");
        assert!(u(&x["segs_out"]) > 0 && u(&x["segs_in"]) > 0, "{e:#}");
        assert!(u(&x["srtt_us"]) > 0, "{e:#}");
        assert_eq!(
            (u(&x["resets_sent"]), u(&x["resets_received"])),
            (0, 0),
            "{e:#}"
        );
        assert!(x["retransmits"].is_u64(), "{e:#}");
    }
    assert!(u(&cc["connection"]["connect_latency_us"]) > 0, "{cc:#}");
    // The sockets of the two namespaces are different sockets.
    assert_ne!(cli_cookie, srv_cookie);
    assert_eq!(
        in_cgroup(&done.events, "connection", cg_cli.id).len(),
        2,
        "client: connect and close only"
    );
    assert_eq!(
        in_cgroup(&done.events, "connection", cg_srv.id).len(),
        2,
        "server: accept and close only"
    );
}

#[test]
fn tcp_ipv4_connect_accept_close_with_exact_tuple_bytes_and_cookies() {
    if !require_root() {
        return;
    }
    // The client sends the first FIN.
    tcp_exchange(false, false);
}

#[test]
fn tcp_ipv6_connect_accept_close_with_exact_tuple_bytes_and_cookies() {
    if !require_root() {
        return;
    }
    // The server sends the first FIN.
    tcp_exchange(true, true);
}

#[test]
fn tcp_connect_to_a_closed_port_is_connect_failed_refused() {
    if !require_root() {
        return;
    }
    let lab = NetLab::new();
    let cg = TestCgroup::new();
    let agent = Agent::start_with_config(Some(NET_CONFIG), &[]);
    let to = lab.srv.addr4(7003); // nothing listens there
    let mut client = lab.cli.helper(
        Some(&cg),
        &[
            "tcp-client",
            &format!("connect={to}"),
            "send=0",
            "read=0",
            "close=expect-refused",
        ],
    );
    let err = client.msg("connect_error");
    assert_eq!(err["kind"], "ConnectionRefused");
    client.finish();
    let done = agent.stop();

    let f = one(&done.events, &cg, "connect_failed");
    let c = &f["connection"];
    assert_eq!(c["role"], "client", "{f:#}");
    assert_eq!(c["protocol"], "tcp");
    assert_eq!(c["family"], "ipv4");
    assert_eq!(c["local"]["ip"], lab.cli.ip4.to_string(), "{f:#}");
    assert!(addr_is(&c["remote"], to), "{f:#}");
    assert_eq!(c["error"], "refused", "{f:#}");
    assert_eq!(c["errno"], libc::ECONNREFUSED, "{f:#}");
    assert_eq!(c["netns"], lab.cli.inode);
    assert_eq!(f["process"]["pid"], client.pid());
    assert!(c["cookie"].is_u64());
    if let Some(l) = c.get("connect_latency_us") {
        assert!(u(l) > 0, "{f:#}");
    }
    assert!(conns(&done.events, &cg, "connect").is_empty());
    assert!(conns(&done.events, &cg, "close").is_empty());
}

#[test]
fn tcp_reset_by_a_linger_zero_close_is_seen_on_both_sides() {
    if !require_root() {
        return;
    }
    let lab = NetLab::new();
    let cg_cli = TestCgroup::new();
    let cg_srv = TestCgroup::new();
    let agent = Agent::start_with_config(Some(NET_CONFIG), &[]);
    let to = lab.srv.addr4(7003);
    let mut server = lab.srv.helper(
        Some(&cg_srv),
        &[
            "tcp-server",
            &format!("listen={to}"),
            "read=100",
            "write=0",
            "close=reset",
        ],
    );
    server.msg("listening");
    let mut client = lab.cli.helper(
        Some(&cg_cli),
        &[
            "tcp-client",
            &format!("connect={to}"),
            "send=100",
            "read=0",
            "close=expect-reset",
        ],
    );
    let c = client.msg("connected");
    let s = server.msg("accepted");
    assert_eq!(client.msg("done")["error"], "ConnectionReset");
    client.finish();
    server.finish();
    let done = agent.stop();

    let cli_addr = sock(&c["local"]);
    let cc = one(&done.events, &cg_cli, "close");
    check_socket(
        cc,
        "client",
        false,
        cli_addr,
        to,
        u(&c["cookie"]),
        lab.cli.inode,
        client.pid(),
        &cg_cli,
    );
    let x = &cc["connection"];
    assert!(u(&x["resets_received"]) >= 1, "{cc:#}");
    assert_eq!(x["close_reason"], "reset_received", "{cc:#}");
    assert_eq!(u(&x["bytes_sent"]), 100, "{cc:#}");

    let sc = one(&done.events, &cg_srv, "close");
    check_socket(
        sc,
        "server",
        false,
        to,
        cli_addr,
        u(&s["cookie"]),
        lab.srv.inode,
        server.pid(),
        &cg_srv,
    );
    let x = &sc["connection"];
    assert!(u(&x["resets_sent"]) >= 1, "{sc:#}");
    assert_eq!(x["close_reason"], "reset_sent", "{sc:#}");
    assert_eq!(u(&x["bytes_received"]), 100, "{sc:#}");
}

#[test]
fn packets_dropped_by_nftables_show_as_retransmits_and_netfilter_drops() {
    if !require_root() {
        return;
    }
    const N: usize = 20000;
    let lab = NetLab::new();
    let cg_cli = TestCgroup::new();
    let cg_srv = TestCgroup::new();
    let agent = Agent::start_with_config(Some(NET_CONFIG), &[]);
    let port = 7004;
    let to = lab.srv.addr4(port);
    let mut server = lab.srv.helper(
        Some(&cg_srv),
        &[
            "tcp-server",
            &format!("listen={to}"),
            &format!("read={N}"),
            "write=100",
            "close=after-eof",
        ],
    );
    server.msg("listening");
    let mut client = lab.cli.helper(
        Some(&cg_cli),
        &[
            "tcp-client",
            &format!("connect={to}"),
            &format!("send={N}"),
            "read=100",
            "close=first",
            "wait=go",
        ],
    );
    let c = client.msg("connected");
    server.msg("accepted");
    // From now on the server's input drops everything the client sends to the port, until the
    // rule has dropped the first flight and at least one retransmission of it.
    lab.srv.nft(&drop_rule(&lab, port));
    client.send_line("go");
    wait_until(Duration::from_secs(15), "two packets dropped", || {
        nft_drop_count(&lab.srv) >= 2
    });
    let dropped = nft_drop_count(&lab.srv);
    lab.srv.nft(&format!("delete table inet {NFT_TABLE}"));
    client.msg("done");
    server.msg("closed");
    client.finish();
    server.finish();
    let done = agent.stop();

    let cc = one(&done.events, &cg_cli, "close");
    assert_eq!(cc["connection"]["cookie"], c["cookie"]);
    let x = &cc["connection"];
    assert!(u(&x["retransmits"]) >= 1, "{cc:#}");
    assert_eq!(
        (u(&x["bytes_sent"]), u(&x["bytes_received"])),
        (N as u64, 100),
        "retransmitted bytes are not counted twice: {cc:#}"
    );
    assert_eq!(x["close_reason"], "local_close");

    let drops: Vec<&Value> = done
        .events
        .iter()
        .filter(|e| {
            e["kind"] == "drop"
                && e["drop"]["netns"] == lab.srv.inode
                && e["drop"]["reason"] == "NETFILTER_DROP"
        })
        .collect();
    assert!(
        !drops.is_empty(),
        "no NETFILTER_DROP in the server namespace; drop lines: {:#?}",
        done.events
            .iter()
            .filter(|e| e["kind"] == "drop")
            .collect::<Vec<_>>()
    );
    let total: u64 = drops.iter().map(|e| u(&e["drop"]["count"])).sum();
    // Every packet the rule counted was freed with NETFILTER_DROP (maybe a few more arrived
    // between reading the counter and deleting the rule).
    assert!(
        total >= dropped,
        "{total} drops reported, nftables counted {dropped}: {drops:#?}"
    );
    let ifindex = lab.srv.ifindex();
    for d in &drops {
        let x = &d["drop"];
        assert!(u(&x["count"]) >= 1, "{d:#}");
        assert_eq!(x["ifindex"], ifindex, "the server's veth: {d:#}");
        if let Some(name) = x.get("interface") {
            assert_eq!(name, lab.srv.dev.as_str(), "{d:#}");
        }
        if let Some(p) = x.get("protocol") {
            assert_eq!(p, "tcp", "{d:#}");
        }
    }
    assert!(
        !done.events.iter().any(|e| e["kind"] == "drop"
            && e["drop"]["netns"] == lab.cli.inode
            && e["drop"]["reason"] == "NETFILTER_DROP"),
        "nothing is filtered in the client namespace"
    );
}

/// `dns` lines of cgroup `cg` for message id `id`.
fn dns_lines<'a>(events: &'a [Value], cg: &TestCgroup, id: u16) -> Vec<&'a Value> {
    in_cgroup(events, "dns", cg.id)
        .into_iter()
        .filter(|e| e["dns"]["id"] == id)
        .collect()
}

#[test]
fn dns_queries_answers_nxdomain_and_names_on_later_connections() {
    if !require_root() {
        return;
    }
    let lab = NetLab::new();
    let cg_cli = TestCgroup::new();
    let cg_srv = TestCgroup::new();
    let agent = Agent::start_with_config(Some(NET_CONFIG), &[]);
    let dns = start_dnsmasq(&lab, Some(&cg_srv));
    let server53 = lab.srv.addr4(53);
    let mut q = lab.cli.helper(
        Some(&cg_cli),
        &[
            "dns",
            &format!("bind={}:0", lab.cli.ip4),
            &format!("server={server53}"),
            "q=api.test:A:4660",
            "q=nope.test:A:4661",
            "q=api.test:AAAA:4662",
        ],
    );
    let client53 = sock(&q.msg("bound")["local"]);
    for want_rcode in [0, 3, 0] {
        assert_eq!(q.msg("answer")["rcode"], want_rcode);
    }
    q.finish();

    // Then a connection to the address the name resolved to.
    let to = lab.srv.addr4(7005);
    let mut server = lab.srv.helper(
        Some(&cg_srv),
        &[
            "tcp-server",
            &format!("listen={to}"),
            "read=10",
            "write=10",
            "close=after-eof",
        ],
    );
    server.msg("listening");
    let mut client = lab.cli.helper(
        Some(&cg_cli),
        &[
            "tcp-client",
            &format!("connect={to}"),
            "send=10",
            "read=10",
            "close=first",
        ],
    );
    client.msg("done");
    client.finish();
    server.finish();
    let done = agent.stop();

    let check = |e: &Value, role: &str, query: &str, qtype: &str, rcode: &str| {
        let d = &e["dns"];
        assert_eq!(d["role"], role, "{e:#}");
        assert_eq!(d["transport"], "udp", "{e:#}");
        assert!(addr_is(&d["client"], client53), "client {client53}: {e:#}");
        assert!(addr_is(&d["server"], server53), "server {server53}: {e:#}");
        assert_eq!(d["query"], query, "{e:#}");
        assert_eq!(d["type"], qtype, "{e:#}");
        assert_eq!(d["rcode"], rcode, "{e:#}");
        assert!(u(&d["latency_us"]) > 0, "{e:#}");
        assert_eq!(d["timed_out"], false, "{e:#}");
    };
    let answer_data = |e: &Value, t: &str| -> Vec<String> {
        e["dns"]["answers"]
            .as_array()
            .unwrap_or_else(|| panic!("answers: {e:#}"))
            .iter()
            .filter(|a| a["type"] == t)
            .map(|a| {
                assert_eq!(a["name"], "api.test", "{a}");
                assert_eq!(a["ttl"], 60, "{a}");
                a["data"].as_str().unwrap().to_string()
            })
            .collect()
    };

    let a = dns_lines(&done.events, &cg_cli, 4660);
    assert_eq!(a.len(), 1, "one client line per query: {a:#?}");
    check(a[0], "client", "api.test", "A", "NOERROR");
    assert_eq!(answer_data(a[0], "A"), vec![lab.srv.ip4.to_string()]);
    assert_eq!(a[0]["process"]["pid"], q.pid());

    let nx = dns_lines(&done.events, &cg_cli, 4661);
    assert_eq!(nx.len(), 1, "{nx:#?}");
    check(nx[0], "client", "nope.test", "A", "NXDOMAIN");
    assert_eq!(nx[0]["dns"]["answers"], serde_json::json!([]));

    let aaaa = dns_lines(&done.events, &cg_cli, 4662);
    assert_eq!(aaaa.len(), 1, "{aaaa:#?}");
    check(aaaa[0], "client", "api.test", "AAAA", "NOERROR");
    assert_eq!(answer_data(aaaa[0], "AAAA"), vec![lab.srv.ip6.to_string()]);

    // dnsmasq's socket saw the same exchanges as the server.
    let s = dns_lines(&done.events, &cg_srv, 4660);
    assert_eq!(s.len(), 1, "{s:#?}");
    check(s[0], "server", "api.test", "A", "NOERROR");
    assert_eq!(s[0]["process"]["pid"], dns.pid());
    let s = dns_lines(&done.events, &cg_srv, 4661);
    assert_eq!(s.len(), 1, "{s:#?}");
    check(s[0], "server", "nope.test", "A", "NXDOMAIN");

    // The DNS cache names the address on the next connection.
    let connect = one(&done.events, &cg_cli, "connect");
    let remote = &connect["connection"]["remote"];
    assert!(addr_is(remote, to), "{connect:#}");
    assert_eq!(remote["name"], "api.test", "{connect:#}");
}

/// `busybox wget` of `url` from the client namespace in `cg`; returns (pid, success, output).
fn wget(lab: &NetLab, cg: &TestCgroup, url: &str) -> (u32, bool, String) {
    let mut p = lab
        .cli
        .spawn("busybox", &["wget", "-q", "-O", "-", url], Some(cg));
    let (ok, out) = p.output(Duration::from_secs(30));
    (p.pid(), ok, out)
}

const HELLO: &str = "hello from the vigil lab";

fn web_root() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hello.txt"), format!("{HELLO}\n")).unwrap();
    dir
}

#[test]
fn http_requests_and_statuses_are_reported_once_with_both_processes() {
    if !require_root() {
        return;
    }
    let lab = NetLab::new();
    let cg_cli = TestCgroup::new();
    let cg_srv = TestCgroup::new();
    let root = web_root();
    let agent = Agent::start_with_config(Some(NET_CONFIG), &["--api", "127.0.0.1:0"]);
    let api = agent
        .stderr()
        .lines()
        .find_map(|l| l.split("api listening on http://").nth(1))
        .expect("api address logged")
        .trim()
        .to_string();
    let port = 8080;
    let to = lab.srv.addr4(port);
    let httpd = start_httpd(&lab, port, root.path(), Some(&cg_srv));
    let (pid_ok, ok, out) = wget(&lab, &cg_cli, &format!("http://{to}/hello.txt"));
    assert!(ok && out.contains(HELLO), "wget: {out}");
    let (pid_missing, ok, out) = wget(&lab, &cg_cli, &format!("http://{to}/missing"));
    assert!(!ok && out.contains("404"), "wget of a missing file: {out}");
    drop(httpd);
    // A server no local socket reports (the agent's own API): the client's line is written.
    let mut map = Command::new(env!("CARGO_BIN_EXE_vigil"));
    map.args(["map", "--json", "--api", &api]);
    cg_cli.enter(&mut map);
    let out = map.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let done = agent.stop();

    let by_path = |cg: &TestCgroup, path: &str| -> Vec<&Value> {
        in_cgroup(&done.events, "http", cg.id)
            .into_iter()
            .filter(|e| e["http"]["path"] == path)
            .collect()
    };
    let check = |e: &Value, role: &str, path: &str, status: u64| {
        let h = &e["http"];
        assert_eq!(h["role"], role, "{e:#}");
        assert_eq!(h["method"], "GET", "{e:#}");
        assert_eq!(h["path"], path, "{e:#}");
        assert_eq!(h["version"], "HTTP/1.1", "{e:#}");
        assert_eq!(h["status"], status, "{e:#}");
        assert!(u(&h["latency_us"]) > 0, "{e:#}");
        assert!(h.get("path_truncated").is_none_or(|t| t == false), "{e:#}");
        assert!(h["cookie"].is_u64(), "{e:#}");
    };

    // Both ends local: one line per request, the server's, naming the client's process.
    for (path, status, client_pid) in [("/hello.txt", 200, pid_ok), ("/missing", 404, pid_missing)]
    {
        let s = by_path(&cg_srv, path);
        assert_eq!(s.len(), 1, "{s:#?}");
        check(s[0], "server", path, status);
        let h = &s[0]["http"];
        assert!(addr_is(&h["local"], to), "{h:#}");
        assert_eq!(h["remote"]["ip"], lab.cli.ip4.to_string(), "{h:#}");
        assert_eq!(h["client_process"]["pid"], client_pid, "{h:#}");
        assert_eq!(h["client_process"]["cgroup_id"], cg_cli.id, "{h:#}");
        assert!(
            by_path(&cg_cli, path).is_empty(),
            "client line merged into the server's"
        );
    }
    assert!(
        done.final_stats["network"]["http_client_merged"]
            .as_u64()
            .unwrap()
            >= 2
    );

    // Over loopback only the server's socket reports HTTP, and the agent never reports its own
    // sockets: a request to the agent's API is not an `http` line (its connection still is).
    assert!(by_path(&cg_cli, "/api/v1/map").is_empty());
    assert!(in_cgroup(&done.events, "connection", cg_cli.id)
        .iter()
        .any(|e| e["connection"]["remote"]["port"]
            == api.rsplit(':').next().unwrap().parse::<u64>().unwrap()));
}

/// HTTP is opt-in: by default an exchange makes its `connection` lines and no `http` line, and
/// its packets are not captured at all.
#[test]
fn http_is_not_captured_by_default_but_its_connections_are_reported() {
    if !require_root() {
        return;
    }
    let lab = NetLab::new();
    let cg_cli = TestCgroup::new();
    let cg_srv = TestCgroup::new();
    let root = web_root();
    let agent = Agent::start_with_config(
        Some("network:\n  enabled: true\n  flow_interval_secs: 1\n"),
        &[],
    );
    let port = 8080;
    let to = lab.srv.addr4(port);
    let httpd = start_httpd(&lab, port, root.path(), Some(&cg_srv));
    let (_, ok, out) = wget(&lab, &cg_cli, &format!("http://{to}/hello.txt"));
    assert!(ok && out.contains(HELLO), "wget: {out}");
    drop(httpd);
    let done = agent.stop();

    let phases = |cg: &TestCgroup| -> Vec<String> {
        in_cgroup(&done.events, "connection", cg.id)
            .iter()
            .filter(|e| {
                e["connection"]["remote"]["port"] == port
                    || e["connection"]["local"]["port"] == port
            })
            .map(|e| e["connection"]["phase"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(
        phases(&cg_cli).contains(&"connect".to_string()),
        "{:?}",
        phases(&cg_cli)
    );
    assert!(
        phases(&cg_srv).contains(&"accept".to_string()),
        "{:?}",
        phases(&cg_srv)
    );
    assert!(
        done.events.iter().all(|e| e["kind"] != "http"),
        "no http line by default"
    );
    let capture = done.final_stats["kinds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kind"] == "capture")
        .expect("capture in the final stats");
    assert_eq!(capture["generated"], 0, "no packet captured: {capture}");
}

#[test]
fn udp_flows_count_exact_packets_and_payload_bytes_both_ways() {
    if !require_root() {
        return;
    }
    const K: u64 = 5;
    const L: u64 = 100;
    const R: u64 = 40;
    let lab = NetLab::new();
    let cg_cli = TestCgroup::new();
    let cg_srv = TestCgroup::new();
    let agent = Agent::start_with_config(Some(NET_CONFIG), &[]);
    let to = lab.srv.addr4(9000);
    let mut server = lab.srv.helper(
        Some(&cg_srv),
        &[
            "udp-server",
            &format!("bind={to}"),
            &format!("count={K}"),
            &format!("reply={R}"),
        ],
    );
    server.msg("bound");
    let mut client = lab.cli.helper(
        Some(&cg_cli),
        &[
            "udp-client",
            &format!("bind={}:0", lab.cli.ip4),
            &format!("connect={to}"),
            &format!("count={K}"),
            &format!("size={L}"),
            &format!("reply={R}"),
        ],
    );
    let from = sock(&client.msg("bound")["local"]);
    client.msg("done");
    server.msg("done");
    client.finish();
    server.finish();
    let done = agent.stop();

    // A flow may be reported over several intervals: sum its lines.
    let sum = |cg: &TestCgroup, local: SocketAddr, remote: SocketAddr, netns: u64, pid: u32| {
        let lines: Vec<&Value> = in_cgroup(&done.events, "udp", cg.id)
            .into_iter()
            .filter(|e| addr_is(&e["udp"]["local"], local) && addr_is(&e["udp"]["remote"], remote))
            .collect();
        assert!(
            !lines.is_empty(),
            "no udp line {local} -> {remote}; udp lines of the cgroup: {:#?}",
            in_cgroup(&done.events, "udp", cg.id)
        );
        let mut t = [0u64; 4];
        for e in &lines {
            let f = &e["udp"];
            assert_eq!(f["family"], "ipv4", "{e:#}");
            assert_eq!(f["netns"], netns, "{e:#}");
            assert!(f["cookie"].is_u64(), "{e:#}");
            assert!(
                f["first_seen"].as_str().is_some_and(|s| !s.is_empty()),
                "{e:#}"
            );
            assert!(
                f["last_seen"].as_str().is_some_and(|s| !s.is_empty()),
                "{e:#}"
            );
            assert_eq!(e["process"]["pid"], pid, "{e:#}");
            for (i, k) in [
                "packets_sent",
                "bytes_sent",
                "packets_received",
                "bytes_received",
            ]
            .iter()
            .enumerate()
            {
                t[i] += u(&f[*k]);
            }
        }
        t
    };
    assert_eq!(
        sum(&cg_cli, from, to, lab.cli.inode, client.pid()),
        [K, K * L, K, K * R],
        "client flow: [packets_sent, bytes_sent, packets_received, bytes_received]"
    );
    assert_eq!(
        sum(&cg_srv, to, from, lab.srv.inode, server.pid()),
        [K, K * R, K, K * L],
        "server flow: [packets_sent, bytes_sent, packets_received, bytes_received]"
    );
}

/// Runs `vigil map ARGS --api ADDR`: its output, or its status and stderr if it failed.
fn try_vigil_map(api: &str, args: &[&str]) -> Result<String, String> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vigil"));
    cmd.arg("map").args(args).args(["--api", api]);
    let out = run_bounded(cmd, Duration::from_secs(20));
    if out.status.success() {
        Ok(String::from_utf8(out.stdout).unwrap())
    } else {
        Err(format!(
            "vigil map {args:?}: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// `vigil map ARGS --api ADDR`; it must succeed.
fn vigil_map(api: &str, args: &[&str]) -> String {
    try_vigil_map(api, args).unwrap_or_else(|e| panic!("{e}"))
}

fn parse_map(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("map JSON: {e}\n{text}"))
}

/// Ids of the map's nodes in cgroup `cg`.
fn node_ids(map: &Value, cg: &TestCgroup) -> Vec<Value> {
    map["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["cgroup_id"] == cg.id)
        .map(|n| n["id"].clone())
        .collect()
}

/// Edges from any node of `from` to any node of `to` (any port if `port` is None).
fn edges(map: &Value, from: &TestCgroup, to: &TestCgroup, port: Option<u16>) -> Vec<Value> {
    let (src, dst) = (node_ids(map, from), node_ids(map, to));
    map["edges"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            src.contains(&e["source"])
                && dst.contains(&e["target"])
                && port.is_none_or(|p| e["port"] == p)
        })
        .cloned()
        .collect()
}

/// Polls the map until the edge `from` -> `to` on `port` has at least `n` connections. The
/// agent publishes the map about once a second (503 before the first), so failures are retried.
fn wait_edge(api: &str, from: &TestCgroup, to: &TestCgroup, port: u16, n: u64) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let last = match try_vigil_map(api, &["--json"]) {
            Ok(text) => {
                let map = parse_map(&text);
                if edges(&map, from, to, Some(port))
                    .iter()
                    .any(|e| e["connections"].as_u64().is_some_and(|c| c >= n))
                {
                    return map;
                }
                format!("{map:#}")
            }
            Err(e) => e,
        };
        assert!(
            std::time::Instant::now() < deadline,
            "no edge {} -> {} port {port} with {n} connections; last map:\n{last}",
            from.id,
            to.id
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn service_map_has_one_edge_per_workload_pair_and_a_reused_ip_does_not_join_them() {
    if !require_root() {
        return;
    }
    let lab = NetLab::new();
    let cg_a = TestCgroup::new();
    let cg_b = TestCgroup::new();
    let cg_c = TestCgroup::new();
    let root = web_root();
    let agent = Agent::start_with_config(Some(NET_CONFIG), &["--api", "127.0.0.1:0"]);
    let log = agent.stderr();
    let api = log
        .lines()
        .find_map(|l| l.split("api listening on http://").nth(1))
        .unwrap_or_else(|| panic!("no api address in {log}"))
        .trim()
        .to_string();
    let port = 8080;
    let to = lab.srv.addr4(port);
    let url = format!("http://{to}/hello.txt");

    // Server B answers three requests from A.
    let (n_b, n_c) = (3u64, 2u64);
    let mut httpd_b = start_httpd(&lab, port, root.path(), Some(&cg_b));
    for _ in 0..n_b {
        let (_, ok, out) = wget(&lab, &cg_a, &url);
        assert!(ok, "{out}");
    }
    let map = wait_edge(&api, &cg_a, &cg_b, port, n_b);
    let ab = edges(&map, &cg_a, &cg_b, Some(port));
    assert_eq!(ab.len(), 1, "one edge A -> B: {map:#}");
    assert_eq!(ab[0]["protocol"], "tcp", "{:#}", ab[0]);
    let conn_b = u(&ab[0]["connections"]);
    assert!(conn_b >= n_b);
    assert_eq!(u(&ab[0]["failed"]), 0, "{:#}", ab[0]);
    if let Some(h) = ab[0].get("http") {
        assert!(u(&h["requests"]) >= n_b, "{:#}", ab[0]);
        assert_eq!(u(&h["errors"]), 0, "{:#}", ab[0]);
    }
    for n in map["nodes"].as_array().unwrap() {
        if n["cgroup_id"] == cg_a.id || n["cgroup_id"] == cg_b.id {
            assert_eq!(n["kind"], "process", "a local workload: {n:#}");
        }
    }
    assert!(edges(&map, &cg_b, &cg_a, None).is_empty(), "{map:#}");
    let dot = vigil_map(&api, &["--dot"]);
    assert!(dot.contains("digraph"), "{dot}");
    assert!(!vigil_map(&api, &[]).trim().is_empty());

    // B goes away; C, another workload, takes over the same address and port.
    httpd_b.kill();
    let _httpd_c = start_httpd(&lab, port, root.path(), Some(&cg_c));
    for _ in 0..n_c {
        let (_, ok, out) = wget(&lab, &cg_a, &url);
        assert!(ok, "{out}");
    }
    let map = wait_edge(&api, &cg_a, &cg_c, port, n_c);
    let ac = edges(&map, &cg_a, &cg_c, Some(port));
    assert_eq!(ac.len(), 1, "one edge A -> C: {map:#}");
    assert_eq!(
        u(&ac[0]["connections"]),
        n_c,
        "C's edge has exactly C's connections, none of B's: {map:#}"
    );
    let ab = edges(&map, &cg_a, &cg_b, Some(port));
    assert_eq!(ab.len(), 1, "B's edge is still there: {map:#}");
    assert_eq!(
        u(&ab[0]["connections"]),
        conn_b,
        "B's edge got none of C's connections: {map:#}"
    );
    assert_ne!(ab[0]["target"], ac[0]["target"], "B and C are two nodes");
    for (x, y) in [(&cg_b, &cg_c), (&cg_c, &cg_b)] {
        assert!(edges(&map, x, y, None).is_empty(), "no B-C edge: {map:#}");
    }
    agent.stop();
}
