//! `vigil events`: the live event or alert stream of a running agent, as a table or JSON lines.

use anyhow::Result;
use serde_json::Value;

use crate::cli::EventsArgs;
use crate::client::Client;

pub fn events(args: EventsArgs) -> Result<()> {
    let client = Client::new(args.api, args.token.clone());
    let path = path(&args);
    // Without --follow: the recent alerts, or the next `limit` events.
    let limit = match (args.limit, args.follow || args.alerts) {
        (Some(n), _) => Some(n),
        (None, true) => None,
        (None, false) => Some(20),
    };
    let mut shown = 0usize;
    if !args.json {
        println!("{}", header(args.alerts));
    }
    client.sse(&path, |event, data| match event {
        "live" => args.follow || !args.alerts,
        "gap" => {
            eprintln!("vigil: this client fell behind; the agent skipped messages: {data}");
            true
        }
        "event" | "alert" => {
            if args.json {
                println!("{data}");
            } else {
                let v: Value = serde_json::from_str(data).unwrap_or(Value::Null);
                println!("{}", row(&v, args.alerts));
            }
            shown += 1;
            limit.is_none_or(|n| shown < n)
        }
        _ => true,
    })
}

fn path(a: &EventsArgs) -> String {
    let mut q: Vec<(&str, String)> = Vec::new();
    let mut push = |k, v: &[String]| {
        if !v.is_empty() {
            q.push((k, v.join(",")));
        }
    };
    if a.alerts {
        push("rule", &a.rule);
    } else {
        push("kind", &a.kind);
    }
    push("container", &a.container);
    push("namespace", &a.namespace);
    push("pod", &a.pod);
    if let Some(p) = &a.priority {
        q.push(("priority", p.clone()));
    }
    let base = if a.alerts {
        "/api/v1/alerts"
    } else {
        "/api/v1/events"
    };
    if q.is_empty() {
        return base.to_string();
    }
    let query: Vec<String> = q
        .into_iter()
        .map(|(k, v)| format!("{k}={}", encode(&v)))
        .collect();
    format!("{base}?{}", query.join("&"))
}

/// Percent-encodes a query value (rule names have spaces).
fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~,".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn header(alerts: bool) -> String {
    if alerts {
        format!("{:<12} {:<13} {:<40} OUTPUT", "TIME", "PRIORITY", "RULE")
    } else {
        format!(
            "{:<12} {:<10} {:>7} {:<15} {:<14} DETAIL",
            "TIME", "KIND", "PID", "COMM", "CONTAINER"
        )
    }
}

/// `HH:MM:SS.mmm` of an RFC 3339 time.
fn clock(v: &Value) -> String {
    let t = v.as_str().unwrap_or("");
    t.split_once('T')
        .map(|(_, rest)| rest.trim_end_matches('Z').chars().take(12).collect())
        .unwrap_or_default()
}

fn row(v: &Value, alert: bool) -> String {
    if alert {
        return format!(
            "{:<12} {:<13} {:<40} {}",
            clock(&v["time"]),
            v["priority"].as_str().unwrap_or(""),
            v["rule"].as_str().unwrap_or(""),
            v["output"].as_str().unwrap_or("")
        );
    }
    let kind = v["kind"].as_str().unwrap_or("");
    let p = &v["process"];
    let container = v["container"]["id"]
        .as_str()
        .map(|id| id.chars().take(12).collect())
        .unwrap_or_else(|| "host".to_string());
    let detail = match kind {
        "exec" => p["args"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|x| x.as_str().unwrap_or(""))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default(),
        _ => {
            let d = &v[kind];
            let s = if d.is_null() {
                String::new()
            } else {
                d.to_string()
            };
            s.chars().take(120).collect()
        }
    };
    format!(
        "{:<12} {:<10} {:>7} {:<15} {:<14} {}",
        clock(&v["time"]),
        kind,
        p["pid"].as_u64().map_or("-".into(), |x| x.to_string()),
        p["comm"].as_str().unwrap_or("-"),
        container,
        detail
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_names_are_encoded_in_the_query() {
        assert_eq!(encode("Read sensitive file"), "Read%20sensitive%20file");
        assert_eq!(encode("a,b"), "a,b");
    }

    #[test]
    fn rows_show_the_essentials() {
        let v: Value = serde_json::from_str(
            r#"{"kind":"exec","time":"2026-11-26T03:04:05.123456Z","process":{"pid":7,"comm":"cat","args":["cat","/etc/shadow"]}}"#,
        )
        .unwrap();
        let r = row(&v, false);
        assert!(r.starts_with("03:04:05.123 exec"), "{r}");
        assert!(r.contains("cat /etc/shadow") && r.contains("host"), "{r}");
    }
}
