//! Alerts and events as OTLP log records.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs, SeverityNumber};
use vigil_export::stream::Published;
use vigil_rules::Priority;

use crate::resource::{attr, Resource};

/// Falco priorities are syslog severities, mapped as the OpenTelemetry log data model's syslog
/// appendix maps them.
fn severity(p: Priority) -> SeverityNumber {
    match p {
        Priority::Emergency => SeverityNumber::Fatal,
        Priority::Alert => SeverityNumber::Error3,
        Priority::Critical => SeverityNumber::Error2,
        Priority::Error => SeverityNumber::Error,
        Priority::Warning => SeverityNumber::Warn,
        Priority::Notice => SeverityNumber::Info2,
        Priority::Informational => SeverityNumber::Info,
        Priority::Debug => SeverityNumber::Debug,
    }
}

/// One record per message. The body is the JSON line as the agent's other outputs write it (a
/// string: collectors parse it on demand, and the agent spends nothing on re-encoding it); the
/// attributes carry what backends filter on.
pub(crate) fn record(p: &Published, observed_ns: u64) -> LogRecord {
    let mut attributes = vec![attr("vigil.kind", p.kind)];
    let (number, text) = match &p.alert {
        Some(a) => {
            attributes.push(attr("vigil.rule", &a.rule));
            attributes.push(attr("vigil.priority", a.priority.as_str()));
            attributes.push(attr("vigil.event_kind", a.event_kind));
            (severity(a.priority), a.priority.as_str())
        }
        None => (SeverityNumber::Info, "Informational"),
    };
    for (key, value) in [
        ("container.id", &p.container_id),
        ("k8s.namespace.name", &p.namespace),
        ("k8s.pod.name", &p.pod),
    ] {
        if let Some(v) = value {
            attributes.push(attr(key, v));
        }
    }
    LogRecord {
        time_unix_nano: p.time_ns,
        observed_time_unix_nano: observed_ns,
        severity_number: number as i32,
        severity_text: text.to_string(),
        body: Some(crate::resource::string(&p.line)),
        attributes,
        ..Default::default()
    }
}

pub(crate) fn request(resource: &Resource, records: Vec<LogRecord>) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(resource.resource.clone()),
            scope_logs: vec![ScopeLogs {
                scope: Some(resource.scope.clone()),
                log_records: records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    use std::sync::Arc;
    use vigil_export::stream::AlertInfo;

    fn attrs(r: &LogRecord) -> Vec<(String, String)> {
        r.attributes
            .iter()
            .map(
                |kv| match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                    Some(Value::StringValue(s)) => (kv.key.clone(), s.clone()),
                    other => panic!("{other:?}"),
                },
            )
            .collect()
    }

    #[test]
    fn an_alert_carries_rule_priority_and_workload() {
        let p = Published {
            line: Arc::from(r#"{"rule":"Shell in container"}"#),
            kind: "alert",
            time_ns: 7,
            alert: Some(AlertInfo {
                rule: "Shell in container".into(),
                priority: Priority::Critical,
                event_kind: "exec",
            }),
            container_id: Some("c0ffee".into()),
            namespace: Some("prod".into()),
            pod: None,
        };
        let r = record(&p, 9);
        assert_eq!((r.time_unix_nano, r.observed_time_unix_nano), (7, 9));
        assert_eq!(r.severity_number, SeverityNumber::Error2 as i32);
        assert_eq!(r.severity_text, "Critical");
        assert_eq!(
            r.body.clone().unwrap().value,
            Some(Value::StringValue(
                r#"{"rule":"Shell in container"}"#.into()
            ))
        );
        let kv = |k: &str, v: &str| (k.to_string(), v.to_string());
        assert_eq!(
            attrs(&r),
            [
                kv("vigil.kind", "alert"),
                kv("vigil.rule", "Shell in container"),
                kv("vigil.priority", "Critical"),
                kv("vigil.event_kind", "exec"),
                kv("container.id", "c0ffee"),
                kv("k8s.namespace.name", "prod"),
            ]
        );
    }

    #[test]
    fn an_event_is_info() {
        let p = Published {
            line: Arc::from("{}"),
            kind: "exec",
            time_ns: 1,
            alert: None,
            container_id: None,
            namespace: None,
            pod: None,
        };
        let r = record(&p, 1);
        assert_eq!(r.severity_number, SeverityNumber::Info as i32);
        assert_eq!(attrs(&r), [("vigil.kind".into(), "exec".into())]);
    }

    #[test]
    fn priorities_map_in_order_from_fatal_to_debug() {
        let order = [
            Priority::Emergency,
            Priority::Alert,
            Priority::Critical,
            Priority::Error,
            Priority::Warning,
            Priority::Notice,
            Priority::Informational,
            Priority::Debug,
        ]
        .map(|p| severity(p) as i32);
        assert!(order.windows(2).all(|w| w[0] > w[1]), "{order:?}");
    }
}
