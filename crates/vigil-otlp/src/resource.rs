//! What every request says about its sender, and small builders of OTLP values.

use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};

/// The resource (this agent on this host) and the instrumentation scope, built once.
#[derive(Debug, Clone)]
pub(crate) struct Resource {
    pub resource: opentelemetry_proto::tonic::resource::v1::Resource,
    pub scope: InstrumentationScope,
}

impl Resource {
    pub fn new(host: &str) -> Self {
        Self {
            resource: opentelemetry_proto::tonic::resource::v1::Resource {
                attributes: vec![
                    attr("service.name", "vigil"),
                    attr("service.version", env!("CARGO_PKG_VERSION")),
                    attr("host.name", host),
                ],
                ..Default::default()
            },
            scope: InstrumentationScope {
                name: "vigil".into(),
                version: env!("CARGO_PKG_VERSION").into(),
                ..Default::default()
            },
        }
    }
}

pub(crate) fn string(s: &str) -> AnyValue {
    AnyValue {
        value: Some(any_value::Value::StringValue(s.to_string())),
    }
}

pub(crate) fn attr(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(string(value)),
        ..Default::default()
    }
}
