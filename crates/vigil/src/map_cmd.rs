//! `vigil map`: the service map of a running agent, fetched from its API.

use anyhow::{Context, Result};
use serde_json::Value;

use crate::client::Client;

pub fn map(client: &Client, json: bool, dot: bool) -> Result<()> {
    let path = if dot {
        "/api/v1/map?format=dot"
    } else {
        "/api/v1/map"
    };
    let body = client.get(path)?;
    if json || dot {
        print!("{body}");
        return Ok(());
    }
    let map: Value = serde_json::from_str(&body).context("the agent's map is not JSON")?;
    print!("{}", table(&map));
    Ok(())
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
