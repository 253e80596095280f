//! Alerts as JSON lines, in Falco's alert shape so existing consumers (falcosidekick, SIEM
//! parsers) work unchanged, plus Vigil's own fields.

use serde::Serialize;
use vigil_events::Event;
use vigil_rules::{Alert, Priority};

use crate::json::Context;

#[derive(Serialize)]
struct AlertLine<'a> {
    // Falco's fields.
    time: String,
    rule: &'a str,
    priority: Priority,
    output: &'a str,
    output_fields: &'a std::collections::BTreeMap<String, serde_json::Value>,
    tags: &'a [String],
    hostname: &'a str,
    source: &'static str,
    // Vigil's.
    kind: &'static str,
    event_id: u64,
    pid: u32,
    cgroup_id: u64,
    event_kind: &'static str,
    action: &'static str,
}

/// Appends the JSON line of `alert`, raised by `event` (whose line had id `ctx.id`). `action`
/// is what was done about it: `none` for detection rules, else what the kernel did.
pub fn render_alert(
    alert: &Alert,
    event: &Event,
    action: &'static str,
    ctx: &Context<'_>,
    out: &mut Vec<u8>,
) {
    let line = AlertLine {
        time: ctx.clock.rfc3339(event.header().time_ns),
        rule: &alert.rule,
        priority: alert.priority,
        output: &alert.output,
        output_fields: &alert.output_fields,
        tags: &alert.tags,
        hostname: ctx.host,
        source: "syscall",
        kind: "alert",
        event_id: ctx.id,
        pid: event.header().tgid,
        cgroup_id: event.header().cgroup_id,
        event_kind: event.header().kind.name(),
        action,
    };
    serde_json::to_writer(&mut *out, &line)
        .expect("serializing plain structs into a Vec cannot fail");
    out.push(b'\n');
}

#[derive(Serialize)]
struct StandaloneAlertLine<'a> {
    time: String,
    rule: &'a str,
    priority: Priority,
    output: &'a str,
    output_fields: &'a std::collections::BTreeMap<String, serde_json::Value>,
    tags: &'a [String],
    hostname: &'a str,
    source: &'static str,
    kind: &'static str,
    event_kind: &'static str,
    action: &'static str,
}

/// Appends the JSON line of an alert that no single event raised (a latency anomaly judged
/// over a window): Falco's fields, `kind: alert`, and `event_kind` naming what raised it.
pub fn render_window_alert(
    alert: &Alert,
    time_ns: u64,
    event_kind: &'static str,
    ctx: &Context<'_>,
    out: &mut Vec<u8>,
) {
    let line = StandaloneAlertLine {
        time: ctx.clock.rfc3339(time_ns),
        rule: &alert.rule,
        priority: alert.priority,
        output: &alert.output,
        output_fields: &alert.output_fields,
        tags: &alert.tags,
        hostname: ctx.host,
        source: alert.source,
        kind: "alert",
        event_kind,
        action: "none",
    };
    serde_json::to_writer(&mut *out, &line)
        .expect("serializing plain structs into a Vec cannot fail");
    out.push(b'\n');
}
