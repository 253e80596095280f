//! A client for a running agent's API (`vigil run --api ADDR`), for the commands that show
//! what the agent sees.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{bail, Context, Result};

/// The agent's address and the bearer token, if its API wants one.
#[derive(Debug, Clone)]
pub struct Client {
    api: SocketAddr,
    token: Option<String>,
    agent: ureq::Agent,
}

impl Client {
    pub fn new(api: SocketAddr, token: Option<String>) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(5)))
            .build()
            .into();
        Self { api, token, agent }
    }

    fn call(&self, path: &str) -> Result<ureq::http::Response<ureq::Body>> {
        let mut req = self.agent.get(format!("http://{}{path}", self.api));
        if let Some(t) = &self.token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        let mut resp = req
            .call()
            .with_context(|| format!("connecting to the agent's API at {}", self.api))?;
        let status = resp.status();
        if status != 200 {
            let body = resp.body_mut().read_to_string().unwrap_or_default();
            bail!("{path}: HTTP {}: {}", status.as_u16(), body.trim());
        }
        Ok(resp)
    }

    /// The whole body of a GET.
    pub fn get(&self, path: &str) -> Result<String> {
        self.call(path)?
            .body_mut()
            .read_to_string()
            .context("reading the API's answer")
    }

    /// Reads a server-sent event stream, calling `f(event, data)` for each message until it
    /// returns false or the stream ends.
    pub fn sse(&self, path: &str, mut f: impl FnMut(&str, &str) -> bool) -> Result<()> {
        let resp = self.call(path)?;
        let reader = BufReader::new(resp.into_body().into_reader());
        read_sse(reader, &mut f)
    }
}

/// The SSE wire format: `event:` and `data:` lines, a blank line ends a message, `:` lines are
/// comments (keep-alives).
fn read_sse(reader: impl BufRead, f: &mut impl FnMut(&str, &str) -> bool) -> Result<()> {
    let (mut event, mut data) = (String::new(), String::new());
    for line in reader.lines() {
        let line = line.context("reading the event stream")?;
        if line.is_empty() {
            if !data.is_empty() || !event.is_empty() {
                let name = if event.is_empty() { "message" } else { &event };
                if !f(name, &data) {
                    return Ok(());
                }
            }
            event.clear();
            data.clear();
        } else if let Some(v) = line.strip_prefix("event:") {
            event = v.trim_start().to_string();
        } else if let Some(v) = line.strip_prefix("data:") {
            if !data.is_empty() {
                data.push('\n');
            }
            data.push_str(v.strip_prefix(' ').unwrap_or(v));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_messages_comments_and_multiline_data() {
        let wire =
            ": keep-alive\n\nevent: alert\ndata: {\"a\":1}\n\nevent: gap\ndata: x\ndata: y\n\n";
        let mut got = Vec::new();
        read_sse(wire.as_bytes(), &mut |e, d| {
            got.push((e.to_string(), d.to_string()));
            true
        })
        .unwrap();
        assert_eq!(
            got,
            [
                ("alert".to_string(), "{\"a\":1}".to_string()),
                ("gap".to_string(), "x\ny".to_string())
            ]
        );
    }
}
