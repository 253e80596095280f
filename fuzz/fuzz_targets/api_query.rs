//! Any bytes as an API request's query string (and choice of endpoint and token), sent over
//! loopback to the real API server: the server must answer every request, never with 500, and
//! never panic (a panic on its thread aborts the fuzzer). (503 is an answer: no service map
//! without the network sensor.)
#![no_main]

use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use socket2::{Domain, Socket, Type};
use vigil_export::api::{spawn, ApiState};
use vigil_export::auth::{Auth, TokenConfig};
use vigil_export::stream::{AlertInfo, Hub, Published};
use vigil_rules::Priority;

const PATHS: [&str; 6] = [
    "/api/v1/events",
    "/api/v1/alerts",
    "/api/v1/map",
    "/api/v1/workloads",
    "/metrics",
    "/api/v1/probe",
];
const ADMIN: &str = "admin-token-0123456789";
const TENANT: &str = "tenant-token-0123456789";

struct Server {
    addr: SocketAddr,
    hub: Arc<Hub>,
}

fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let token = |name: &str, token: &str, ns: Option<&str>| TokenConfig {
            name: name.into(),
            token: Some(token.into()),
            token_file: None,
            namespaces: ns.map(|n| vec![n.into()]),
        };
        let auth = Auth::from_config(&[
            token("admin", ADMIN, None),
            token("tenant", TENANT, Some("team-a")),
        ])
        .expect("valid tokens");
        let hub = Arc::new(Hub::new(64, 16));
        let state = Arc::new(ApiState::new(
            hub.clone(),
            auth,
            Box::new(|| serde_json::json!({})),
        ));
        let addr = spawn(([127, 0, 0, 1], 0).into(), state).expect("API server on loopback");
        Server { addr, hub }
    })
}

/// Keeps the bytes a request target may hold as they are (so `%` escapes, `&` and `=` stay the
/// fuzzer's to play with) and percent-encodes the rest.
fn query(bytes: &[u8]) -> String {
    let mut q = String::with_capacity(bytes.len() * 3);
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"-._~&=,+%!*'()/:;@$".contains(&b) {
            q.push(char::from(b));
        } else {
            q.push_str(&format!("%{b:02X}"));
        }
    }
    q
}

fuzz_target!(|data: &[u8]| {
    let [control, rest @ ..] = data else { return };
    let s = server();
    let path = PATHS[usize::from(control & 7) % PATHS.len()];
    let auth = match (control >> 3) & 3 {
        0 => String::new(),
        1 => format!("Authorization: Bearer {ADMIN}\r\n"),
        2 => format!("Authorization: Bearer {TENANT}\r\n"),
        _ => "Authorization: Bearer wrong-token-0123456789\r\n".into(),
    };
    let request = format!(
        "GET {path}?{} HTTP/1.1\r\nHost: localhost\r\n{auth}Connection: close\r\n\r\n",
        query(rest)
    );

    let mut stream = loop {
        let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
        socket.set_linger(Some(Duration::ZERO)).expect("SO_LINGER");
        match socket.connect(&s.addr.into()) {
            Ok(()) => break std::net::TcpStream::from(socket),
            // libFuzzer's timer signal interrupts blocking calls: start over on a new socket.
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => panic!("connect to the API: {e}"),
        }
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    stream.write_all(request.as_bytes()).expect("send request");
    // Streams never end: read the status line and headers only.
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = match stream.read(&mut buf) {
            // libFuzzer's timer signal interrupts blocking calls.
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            r => r.expect("API answers"),
        };
        assert!(n > 0, "API closed the connection without an answer");
        head.extend_from_slice(&buf[..n]);
    }
    let status: u16 = std::str::from_utf8(&head[9..12])
        .ok()
        .and_then(|s| s.parse().ok())
        .expect("HTTP status line");
    assert_ne!(status, 500, "internal error for {request:?}");
    drop(stream);

    // Something for the open streams to filter, so each notices its client has gone.
    s.hub.publish(Published {
        line: Arc::from("{}"),
        kind: if control & 0x20 != 0 { "alert" } else { "exec" },
        time_ns: 0,
        alert: (control & 0x20 != 0).then(|| AlertInfo {
            rule: "r".into(),
            priority: Priority::Warning,
            event_kind: "exec",
        }),
        container_id: Some("0123456789abcdef".into()),
        namespace: (control & 0x40 != 0).then(|| "team-a".into()),
        pod: None,
    });
});
