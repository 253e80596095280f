//! The HTTP API answers liveness and readiness once the sensors are attached.

use std::io::{Read, Write};
use std::net::TcpStream;

use crate::harness::*;

fn get(addr: &str, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn healthz_and_readyz() {
    if !require_root() {
        return;
    }
    let agent = Agent::start(&["--api", "127.0.0.1:0"]);
    let log = agent.stderr();
    let addr = log
        .lines()
        .find_map(|l| l.split("api listening on http://").nth(1))
        .unwrap_or_else(|| panic!("no api address in {log}"))
        .trim()
        .to_string();
    assert!(get(&addr, "/healthz").starts_with("HTTP/1.1 200"));
    let ready = get(&addr, "/readyz");
    assert!(
        ready.starts_with("HTTP/1.1 200") && ready.contains("ready"),
        "{ready}"
    );
    assert!(get(&addr, "/nope").starts_with("HTTP/1.1 404"));
    agent.stop();
}
