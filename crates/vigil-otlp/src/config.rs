//! The `otlp:` section of the agent's configuration: raw (as written in YAML, with defaults) and
//! validated (parsed URLs, headers and durations), so a bad value fails at start with its key.

use std::collections::BTreeMap;
use std::time::Duration;

use http::uri::{PathAndQuery, Scheme};
use http::{HeaderName, HeaderValue, Uri};
use serde::Deserialize;
use vigil_events::Kind;

/// The wire protocol: OTLP/gRPC (port 4317) or OTLP/HTTP with protobuf bodies (port 4318).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    #[default]
    Grpc,
    Http,
}

/// Which events go out as logs besides alerts: none (`false`, the default), all (`true`), or
/// the kinds listed (`[exec, connection]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged, expecting = "true, false or a list of event kinds")]
pub enum EventSelection {
    All(bool),
    Kinds(Vec<String>),
}

impl Default for EventSelection {
    fn default() -> Self {
        EventSelection::All(false)
    }
}

/// Exponential backoff between attempts at one export.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    /// Wait before the first retry (default 1000 ms); doubled after each failure.
    pub initial_backoff_ms: u64,
    /// Longest wait between two attempts (default 30000 ms).
    pub max_backoff_ms: u64,
    /// A batch is given up (and its records counted as dropped) once this long has passed
    /// since its first attempt (default 60 s).
    pub max_elapsed_secs: u64,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            initial_backoff_ms: 1000,
            max_backoff_ms: 30_000,
            max_elapsed_secs: 60,
        }
    }
}

/// `otlp:` as written. Defaults follow the OpenTelemetry SDKs' batch processor.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OtlpConfig {
    /// Collector URL, `http://host:port`. Default `http://localhost:4317` for gRPC,
    /// `http://localhost:4318` for HTTP; for HTTP, `/v1/logs` and `/v1/metrics` are appended to
    /// its path as the OTLP spec says for a base endpoint.
    pub endpoint: Option<String>,
    /// `grpc` (default) or `http`.
    pub protocol: Protocol,
    /// Extra request headers (gRPC metadata), e.g. `authorization: "Bearer ..."`.
    pub headers: BTreeMap<String, String>,
    /// Send alerts as logs (default true).
    pub alerts: bool,
    /// Send events as logs: `false` (default), `true`, or a list of kinds.
    pub events: EventSelection,
    /// Send the agent's metrics (default true).
    pub metrics: bool,
    /// Seconds between two metric exports (default 10).
    pub metrics_interval_secs: u64,
    /// Log records held while waiting for the collector (default 2048); newer ones are
    /// dropped and counted when it is full.
    pub queue_size: usize,
    /// Most log records in one export request (default 512).
    pub max_batch_size: usize,
    /// Longest a record waits for its batch to fill before it is sent (default 1000 ms).
    pub max_batch_delay_ms: u64,
    /// Timeout of one export request, connection included (default 10 s).
    pub timeout_secs: u64,
    pub retry: RetryConfig,
}

impl Default for OtlpConfig {
    fn default() -> Self {
        Self {
            endpoint: None,
            protocol: Protocol::Grpc,
            headers: BTreeMap::new(),
            alerts: true,
            events: EventSelection::default(),
            metrics: true,
            metrics_interval_secs: 10,
            queue_size: 2048,
            max_batch_size: 512,
            max_batch_delay_ms: 1000,
            timeout_secs: 10,
            retry: RetryConfig::default(),
        }
    }
}

/// A configuration value that cannot work, named by its key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("otlp.endpoint {0:?}: not a URL: {1}")]
    Endpoint(String, http::uri::InvalidUri),
    #[error("otlp.endpoint {0:?}: only http:// endpoints are supported (run a node-local collector for TLS)")]
    Scheme(String),
    #[error("otlp.endpoint {0:?}: no host")]
    Host(String),
    #[error("otlp.headers: {0:?} is not a valid header name")]
    HeaderName(String),
    #[error("otlp.headers.{0}: not a valid header value")]
    HeaderValue(String),
    #[error("otlp.events: unknown event kind {0:?}")]
    Kind(String),
    #[error("otlp.{0} must be greater than 0")]
    Zero(&'static str),
    #[error("otlp.max_batch_size ({0}) is larger than otlp.queue_size ({1})")]
    BatchLargerThanQueue(usize, usize),
    #[error("otlp.retry: max_backoff_ms ({0}) is smaller than initial_backoff_ms ({1})")]
    Backoff(u64, u64),
}

/// Which log records to send, decided on the attributes of a published message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogFilter {
    pub alerts: bool,
    /// `None`: no events; `Some(empty)`: every kind.
    pub events: Option<Vec<&'static str>>,
}

impl LogFilter {
    pub fn wants(&self, kind: &str, is_alert: bool) -> bool {
        if is_alert {
            return self.alerts;
        }
        match &self.events {
            None => false,
            Some(kinds) => kinds.is_empty() || kinds.contains(&kind),
        }
    }

    pub fn any(&self) -> bool {
        self.alerts || self.events.is_some()
    }
}

/// Endpoint and request settings, validated.
#[derive(Debug, Clone)]
pub(crate) struct Transport {
    pub protocol: Protocol,
    /// gRPC: the server URL; HTTP: the `/v1/logs` URL.
    pub logs_uri: Uri,
    /// HTTP: the `/v1/metrics` URL (gRPC: same as `logs_uri`).
    pub metrics_uri: Uri,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub timeout: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Retry {
    pub initial: Duration,
    pub max: Duration,
    pub max_elapsed: Duration,
}

#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub transport: Transport,
    pub logs: LogFilter,
    pub metrics_interval: Option<Duration>,
    pub queue_size: usize,
    pub max_batch_size: usize,
    pub max_batch_delay: Duration,
    pub retry: Retry,
}

impl OtlpConfig {
    /// Checks every value; the exporter runs only on a configuration that can work.
    pub(crate) fn validate(&self) -> Result<Settings, ConfigError> {
        for (key, v) in [
            ("metrics_interval_secs", self.metrics_interval_secs),
            ("queue_size", self.queue_size as u64),
            ("max_batch_size", self.max_batch_size as u64),
            ("max_batch_delay_ms", self.max_batch_delay_ms),
            ("timeout_secs", self.timeout_secs),
            ("retry.initial_backoff_ms", self.retry.initial_backoff_ms),
            ("retry.max_elapsed_secs", self.retry.max_elapsed_secs),
        ] {
            if v == 0 {
                return Err(ConfigError::Zero(key));
            }
        }
        if self.max_batch_size > self.queue_size {
            return Err(ConfigError::BatchLargerThanQueue(
                self.max_batch_size,
                self.queue_size,
            ));
        }
        if self.retry.max_backoff_ms < self.retry.initial_backoff_ms {
            return Err(ConfigError::Backoff(
                self.retry.max_backoff_ms,
                self.retry.initial_backoff_ms,
            ));
        }
        let events = match &self.events {
            EventSelection::All(false) => None,
            EventSelection::All(true) => Some(Vec::new()),
            EventSelection::Kinds(names) => Some(
                names
                    .iter()
                    .map(|n| {
                        Kind::from_name(n)
                            .filter(|k| k.writable())
                            .map(Kind::name)
                            .ok_or_else(|| ConfigError::Kind(n.clone()))
                    })
                    .collect::<Result<_, _>>()?,
            ),
        };
        let headers = self
            .headers
            .iter()
            .map(|(k, v)| {
                // gRPC metadata keys must be lowercase; HTTP header names are case-insensitive.
                let name = HeaderName::from_bytes(k.to_ascii_lowercase().as_bytes())
                    .map_err(|_| ConfigError::HeaderName(k.clone()))?;
                let value =
                    HeaderValue::from_str(v).map_err(|_| ConfigError::HeaderValue(k.clone()))?;
                Ok((name, value))
            })
            .collect::<Result<_, ConfigError>>()?;
        let (logs_uri, metrics_uri) = self.uris()?;
        Ok(Settings {
            transport: Transport {
                protocol: self.protocol,
                logs_uri,
                metrics_uri,
                headers,
                timeout: Duration::from_secs(self.timeout_secs),
            },
            logs: LogFilter {
                alerts: self.alerts,
                events,
            },
            metrics_interval: self
                .metrics
                .then(|| Duration::from_secs(self.metrics_interval_secs)),
            queue_size: self.queue_size,
            max_batch_size: self.max_batch_size,
            max_batch_delay: Duration::from_millis(self.max_batch_delay_ms),
            retry: Retry {
                initial: Duration::from_millis(self.retry.initial_backoff_ms),
                max: Duration::from_millis(self.retry.max_backoff_ms),
                max_elapsed: Duration::from_secs(self.retry.max_elapsed_secs),
            },
        })
    }

    fn uris(&self) -> Result<(Uri, Uri), ConfigError> {
        let raw = self.endpoint.clone().unwrap_or_else(|| {
            match self.protocol {
                Protocol::Grpc => "http://localhost:4317",
                Protocol::Http => "http://localhost:4318",
            }
            .to_string()
        });
        let uri: Uri = raw
            .parse()
            .map_err(|e| ConfigError::Endpoint(raw.clone(), e))?;
        if uri.scheme() != Some(&Scheme::HTTP) {
            return Err(ConfigError::Scheme(raw));
        }
        if uri.host().is_none_or(str::is_empty) {
            return Err(ConfigError::Host(raw));
        }
        match self.protocol {
            Protocol::Grpc => Ok((uri.clone(), uri)),
            Protocol::Http => {
                let with = |signal: &str| {
                    let base = uri.path().trim_end_matches('/');
                    let mut parts = uri.clone().into_parts();
                    parts.path_and_query = Some(
                        PathAndQuery::try_from(format!("{base}/v1/{signal}"))
                            .map_err(|e| ConfigError::Endpoint(raw.clone(), e))?,
                    );
                    Uri::from_parts(parts).map_err(|_| ConfigError::Host(raw.clone()))
                };
                Ok((with("logs")?, with("metrics")?))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> OtlpConfig {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn defaults_send_alerts_and_metrics_over_grpc() {
        let s = parse("{}").validate().unwrap();
        assert_eq!(s.transport.protocol, Protocol::Grpc);
        assert_eq!(s.transport.logs_uri.to_string(), "http://localhost:4317/");
        assert!(s.logs.wants("alert", true));
        assert!(!s.logs.wants("exec", false));
        assert_eq!(s.metrics_interval, Some(Duration::from_secs(10)));
        assert_eq!((s.queue_size, s.max_batch_size), (2048, 512));
    }

    #[test]
    fn http_appends_signal_paths_to_the_base_endpoint() {
        let s = parse("{protocol: http, endpoint: 'http://collector:4318/otlp/'}")
            .validate()
            .unwrap();
        assert_eq!(
            s.transport.logs_uri.to_string(),
            "http://collector:4318/otlp/v1/logs"
        );
        assert_eq!(
            s.transport.metrics_uri.to_string(),
            "http://collector:4318/otlp/v1/metrics"
        );
    }

    #[test]
    fn events_are_all_none_or_listed_kinds() {
        let all = parse("events: true").validate().unwrap().logs;
        assert!(all.wants("dns", false));
        let some = parse("{events: [exec, connection], alerts: false}")
            .validate()
            .unwrap()
            .logs;
        assert!(some.wants("exec", false) && !some.wants("file", false));
        assert!(!some.wants("alert", true));
        let err = parse("events: [exce]").validate().unwrap_err();
        assert_eq!(err.to_string(), "otlp.events: unknown event kind \"exce\"");
    }

    #[test]
    fn bad_values_are_refused_with_their_key() {
        let err = |y: &str| parse(y).validate().unwrap_err().to_string();
        assert!(err("endpoint: 'https://x:4317'").contains("only http://"));
        assert!(err("endpoint: 'http://'").contains("otlp.endpoint"));
        assert!(err("headers: {'bad name': x}").contains("not a valid header name"));
        assert_eq!(
            err("queue_size: 0"),
            "otlp.queue_size must be greater than 0"
        );
        assert!(err("{queue_size: 10, max_batch_size: 20}").contains("larger than"));
        assert!(serde_yaml::from_str::<OtlpConfig>("endpont: x").is_err());
        assert!(serde_yaml::from_str::<OtlpConfig>("protocol: udp").is_err());
        assert!(serde_yaml::from_str::<OtlpConfig>("retry: {max_elapsed: 1}").is_err());
    }

    #[test]
    fn header_names_are_lowercased_for_grpc_metadata() {
        let s = parse("headers: {Authorization: 'Bearer t'}")
            .validate()
            .unwrap();
        assert_eq!(s.transport.headers[0].0.as_str(), "authorization");
    }
}
