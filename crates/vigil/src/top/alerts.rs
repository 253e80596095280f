//! The recent alerts under the table of `vigil top`, from the agent's `/api/v1/alerts` stream.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use serde_json::Value;

use crate::client::Client;

const PATH: &str = "/api/v1/alerts";

/// How long the follower waits before reconnecting to a stream that failed or ended.
const RETRY: Duration = Duration::from_secs(2);

/// The newest alerts as display lines, and why the stream is down when it is.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Recent {
    pub lines: VecDeque<String>,
    pub error: Option<String>,
}

/// Follows the alert stream on a thread of its own, keeping the newest `keep` alerts. The stream
/// opens with a replay of the agent's recent alerts: each (re)connection rebuilds the list from
/// it, so a reconnect neither loses nor repeats alerts.
pub fn follow(client: Client, keep: usize) -> Arc<Mutex<Recent>> {
    let shared = Arc::new(Mutex::new(Recent::default()));
    let state = shared.clone();
    std::thread::spawn(move || loop {
        let mut replay = Vec::new();
        let mut live = false;
        let result = client.sse(PATH, |event, data| {
            match event {
                "alert" if live => {
                    let mut s = state.lock().unwrap();
                    s.lines.push_back(line(data));
                    while s.lines.len() > keep {
                        s.lines.pop_front();
                    }
                }
                "alert" => replay.push(line(data)),
                "live" => {
                    live = true;
                    let start = replay.len().saturating_sub(keep);
                    *state.lock().unwrap() = Recent {
                        lines: replay.drain(start..).collect(),
                        error: None,
                    };
                }
                _ => {}
            }
            true
        });
        let why = match result {
            Ok(()) => "the agent closed the alert stream".to_string(),
            Err(e) => format!("{e:#}"),
        };
        state.lock().unwrap().error = Some(why);
        std::thread::sleep(RETRY);
    });
    shared
}

/// The newest `keep` of the agent's recent alerts (the stream's replay), for `--once`.
pub fn recent(client: &Client, keep: usize) -> Result<Vec<String>> {
    let mut lines = Vec::new();
    client.sse(PATH, |event, data| match event {
        "alert" => {
            lines.push(line(data));
            true
        }
        "live" => false,
        _ => true,
    })?;
    let start = lines.len().saturating_sub(keep);
    Ok(lines.split_off(start))
}

/// `HH:MM:SS Priority [workload] Rule: output` of one alert line.
pub fn line(data: &str) -> String {
    let v: Value = serde_json::from_str(data).unwrap_or(Value::Null);
    let time = v["time"]
        .as_str()
        .and_then(|t| t.split_once('T'))
        .map(|(_, rest)| rest.chars().take(8).collect())
        .unwrap_or_else(|| "--:--:--".to_string());
    let s = |k: &str| v[k].as_str().unwrap_or("?");
    let container = v["output_fields"]["container.id"]
        .as_str()
        .unwrap_or("host");
    format!(
        "{time} {:<9} {container:<12} {}: {}",
        s("priority"),
        s("rule"),
        s("output")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_alert_line_keeps_the_essentials() {
        let data = r#"{"time":"2026-11-26T03:04:05.123456789Z","rule":"Latency anomaly","priority":"Warning","output":"p99 of tcp_rtt 45ms (baseline 2ms)","output_fields":{"container.id":"0123456789ab"}}"#;
        assert_eq!(
            line(data),
            "03:04:05 Warning   0123456789ab Latency anomaly: p99 of tcp_rtt 45ms (baseline 2ms)"
        );
        assert!(line("not json").starts_with("--:--:-- ?"));
    }
}
