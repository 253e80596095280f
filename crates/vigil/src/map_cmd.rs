//! `vigil map`: the service map of a running agent, fetched from its API.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::Value;

pub fn map(api: SocketAddr, json: bool, dot: bool) -> Result<()> {
    let path = if dot {
        "/api/v1/map?format=dot"
    } else {
        "/api/v1/map"
    };
    let body = get(api, path)?;
    if json || dot {
        print!("{body}");
        return Ok(());
    }
    let map: Value = serde_json::from_str(&body).context("the agent's map is not JSON")?;
    print!("{}", table(&map));
    Ok(())
}

/// One GET on the agent's own loopback API; the agent closes the connection after answering.
fn get(api: SocketAddr, path: &str) -> Result<String> {
    let mut s = TcpStream::connect_timeout(&api, Duration::from_secs(5))
        .with_context(|| format!("connecting to the agent's API at {api}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    // One write, so the request leaves in one segment.
    let request = format!("GET {path} HTTP/1.1\r\nHost: {api}\r\nConnection: close\r\n\r\n");
    s.write_all(request.as_bytes())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)
        .context("reading the API's answer")?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .context("malformed HTTP answer from the API")?;
    let status = head.split(' ').nth(1).unwrap_or("");
    if status != "200" {
        bail!("{path}: HTTP {status}: {}", body.trim());
    }
    Ok(body.to_string())
}

/// Edges as a readable table: who, to whom, how much, how well.
fn table(map: &Value) -> String {
    let label = |id: &Value| {
        map["nodes"]
            .as_array()
            .and_then(|n| n.iter().find(|n| n["id"] == *id))
            .and_then(|n| n["label"].as_str())
            .unwrap_or("?")
            .to_string()
    };
    let mut out = format!(
        "{:<28} {:<28} {:>6} {:>6} {:>6} {:>12} {:>12} {:>10}\n",
        "SOURCE", "TARGET", "PORT", "CONNS", "FAILED", "BYTES_OUT", "BYTES_IN", "P99_RTT_US"
    );
    for e in map["edges"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "{:<28} {:<28} {:>6} {:>6} {:>6} {:>12} {:>12} {:>10}\n",
            label(&e["source"]),
            label(&e["target"]),
            e["port"],
            e["connections"],
            e["failed"],
            e["bytes_sent"],
            e["bytes_received"],
            e["rtt_us"]["p99"]
                .as_u64()
                .map_or("-".into(), |v| v.to_string()),
        ));
    }
    out
}
