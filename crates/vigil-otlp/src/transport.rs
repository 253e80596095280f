//! Sending export requests over OTLP/gRPC (tonic) or OTLP/HTTP (hyper, protobuf bodies), and
//! retrying the failures the OTLP spec calls retryable with exponential backoff.

use std::future::Future;
use std::hash::{BuildHasher, RandomState};
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderMap, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use prost::Message;
use tokio::sync::watch;
use tonic::metadata::MetadataMap;
use tonic::transport::{Channel, Endpoint};
use tonic::Code;

use crate::config::{Protocol, Retry, Transport};
use crate::stats::{OtlpStats, Signal};

/// Why one attempt failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SendError {
    #[error("gRPC {}: {}", .0.code(), .0.message())]
    Grpc(#[from] tonic::Status),
    #[error("HTTP {status}")]
    Http {
        status: StatusCode,
        retry_after: Option<Duration>,
    },
    #[error("HTTP request: {0}")]
    Request(#[from] hyper_util::client::legacy::Error),
    #[error("reading the HTTP response: {0}")]
    Body(Box<dyn std::error::Error + Send + Sync>),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

impl SendError {
    /// The failures the OTLP spec says may succeed later; anything else drops the batch.
    fn retryable(&self) -> bool {
        match self {
            SendError::Grpc(s) => matches!(
                s.code(),
                Code::Cancelled
                    | Code::DeadlineExceeded
                    | Code::Aborted
                    | Code::OutOfRange
                    | Code::Unavailable
                    | Code::DataLoss
            ),
            SendError::Http { status, .. } => matches!(status.as_u16(), 429 | 502 | 503 | 504),
            SendError::Request(_) | SendError::Body(_) | SendError::Timeout(_) => true,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            SendError::Http { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

type HttpClient = hyper_util::client::legacy::Client<HttpConnector, Full<Bytes>>;

#[derive(Debug, Clone)]
enum Wire {
    Grpc {
        logs: LogsServiceClient<Channel>,
        metrics: MetricsServiceClient<Channel>,
        metadata: MetadataMap,
    },
    Http {
        client: HttpClient,
        logs: Uri,
        metrics: Uri,
        headers: HeaderMap,
    },
}

/// A connection to the collector, cheap to clone. Connects lazily and reconnects by itself, so
/// a collector that is down at start is just a retryable failure.
#[derive(Debug, Clone)]
pub(crate) struct Client {
    wire: Wire,
    timeout: Duration,
}

/// Responses are small (a partial-success note at most); anything larger is not OTLP.
const MAX_RESPONSE: usize = 64 * 1024;

impl Client {
    /// Must run inside the exporter's runtime (the gRPC channel spawns its connection task).
    pub fn new(t: &Transport) -> Self {
        let headers: HeaderMap = t.headers.iter().cloned().collect();
        let wire = match t.protocol {
            Protocol::Grpc => {
                let channel = Endpoint::from(t.logs_uri.clone())
                    .connect_timeout(t.timeout)
                    .timeout(t.timeout)
                    .connect_lazy();
                Wire::Grpc {
                    logs: LogsServiceClient::new(channel.clone()),
                    metrics: MetricsServiceClient::new(channel),
                    metadata: MetadataMap::from_headers(headers),
                }
            }
            Protocol::Http => {
                let mut connector = HttpConnector::new();
                connector.set_connect_timeout(Some(t.timeout));
                Wire::Http {
                    client: hyper_util::client::legacy::Client::builder(TokioExecutor::new())
                        .build(connector),
                    logs: t.logs_uri.clone(),
                    metrics: t.metrics_uri.clone(),
                    headers,
                }
            }
        };
        Self {
            wire,
            timeout: t.timeout,
        }
    }

    /// Sends one request; `Ok` holds how many records the collector rejected anyway.
    pub async fn logs(&self, req: &ExportLogsServiceRequest) -> Result<u64, SendError> {
        let resp: ExportLogsServiceResponse = match &self.wire {
            Wire::Grpc { logs, metadata, .. } => {
                let r =
                    tonic::Request::from_parts(metadata.clone(), Default::default(), req.clone());
                self.bounded(async { Ok(logs.clone().export(r).await?.into_inner()) })
                    .await?
            }
            Wire::Http {
                client,
                logs,
                headers,
                ..
            } => self.bounded(post(client, logs, headers, req)).await?,
        };
        Ok(resp
            .partial_success
            .map_or(0, |p| p.rejected_log_records.max(0) as u64))
    }

    pub async fn metrics(&self, req: &ExportMetricsServiceRequest) -> Result<u64, SendError> {
        let resp: ExportMetricsServiceResponse = match &self.wire {
            Wire::Grpc {
                metrics, metadata, ..
            } => {
                let r =
                    tonic::Request::from_parts(metadata.clone(), Default::default(), req.clone());
                self.bounded(async { Ok(metrics.clone().export(r).await?.into_inner()) })
                    .await?
            }
            Wire::Http {
                client,
                metrics,
                headers,
                ..
            } => self.bounded(post(client, metrics, headers, req)).await?,
        };
        Ok(resp
            .partial_success
            .map_or(0, |p| p.rejected_data_points.max(0) as u64))
    }

    /// One deadline over connecting, sending and reading the answer.
    async fn bounded<T>(
        &self,
        f: impl Future<Output = Result<T, SendError>>,
    ) -> Result<T, SendError> {
        tokio::time::timeout(self.timeout, f)
            .await
            .map_err(|_| SendError::Timeout(self.timeout))?
    }
}

/// OTLP/HTTP: a protobuf body, and a protobuf response on success.
async fn post<Req: Message, Resp: Message + Default>(
    client: &HttpClient,
    uri: &Uri,
    headers: &HeaderMap,
    req: &Req,
) -> Result<Resp, SendError> {
    let mut request = http::Request::new(Full::new(Bytes::from(req.encode_to_vec())));
    *request.method_mut() = http::Method::POST;
    *request.uri_mut() = uri.clone();
    *request.headers_mut() = headers.clone();
    request.headers_mut().insert(
        CONTENT_TYPE,
        http::HeaderValue::from_static("application/x-protobuf"),
    );
    let resp = client.request(request).await?;
    let status = resp.status();
    if !status.is_success() {
        let retry_after = resp
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok())
            .map(Duration::from_secs);
        return Err(SendError::Http {
            status,
            retry_after,
        });
    }
    let body = Limited::new(resp.into_body(), MAX_RESPONSE)
        .collect()
        .await
        .map_err(SendError::Body)?
        .to_bytes();
    // A 2xx means the data was accepted; a body we cannot read only loses the partial-success
    // detail, so it counts as full success.
    Ok(Resp::decode(body).unwrap_or_default())
}

/// Resolves once the exporter is asked to stop (or its owner is gone).
pub(crate) async fn stopping(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Runs `attempt` until it succeeds, fails for good, `budget` runs out, or the exporter stops;
/// waits `initial * 2^n` (capped, with jitter so agents do not retry in step) between attempts,
/// or what the collector asked for in `Retry-After`.
pub(crate) async fn with_retry<T, F, Fut>(
    retry: &Retry,
    budget: Duration,
    stats: &OtlpStats,
    signal: Signal,
    stop: &mut watch::Receiver<bool>,
    mut attempt: F,
) -> Result<T, SendError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, SendError>>,
{
    // Tokio's clock, so the tests' paused time drives it too.
    let start = tokio::time::Instant::now();
    let mut backoff = retry.initial;
    loop {
        let err = match attempt().await {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        let wait = err.retry_after().unwrap_or_else(|| jitter(backoff));
        if !err.retryable() || *stop.borrow() || start.elapsed() + wait > budget {
            return Err(err);
        }
        tracing::debug!(signal = signal.name(), error = %err, ?wait, "OTLP export failed; retrying");
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stopping(stop) => return Err(err),
        }
        stats.add_retry(signal);
        backoff = (backoff * 2).min(retry.max);
    }
}

/// Between half and all of `d`, from the standard library's per-process random hash keys.
fn jitter(d: Duration) -> Duration {
    let r = RandomState::new().hash_one(std::time::Instant::now()) % 1000;
    d.mul_f64(0.5 + r as f64 / 2000.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    fn retry() -> Retry {
        Retry {
            initial: Duration::from_millis(1),
            max: Duration::from_millis(4),
            max_elapsed: Duration::from_secs(5),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn retryable_failures_are_retried_until_success() {
        let stats = OtlpStats::default();
        let (_tx, mut stop) = watch::channel(false);
        let n = Cell::new(0);
        let r = with_retry(
            &retry(),
            Duration::from_secs(5),
            &stats,
            Signal::Logs,
            &mut stop,
            || {
                n.set(n.get() + 1);
                async {
                    if n.get() < 4 {
                        Err(SendError::Grpc(tonic::Status::unavailable("down")))
                    } else {
                        Ok(7)
                    }
                }
            },
        )
        .await;
        assert_eq!(r.unwrap(), 7);
        assert_eq!(stats.retries(Signal::Logs), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn permanent_failures_and_exhausted_budgets_give_up() {
        let stats = OtlpStats::default();
        let (_tx, mut stop) = watch::channel(false);
        let bad = with_retry(
            &retry(),
            Duration::from_secs(5),
            &stats,
            Signal::Logs,
            &mut stop,
            || async {
                Err::<(), _>(SendError::Http {
                    status: StatusCode::BAD_REQUEST,
                    retry_after: None,
                })
            },
        )
        .await;
        assert!(matches!(bad, Err(SendError::Http { .. })));
        assert_eq!(stats.retries(Signal::Logs), 0);
        let down = with_retry(
            &retry(),
            Duration::from_millis(50),
            &stats,
            Signal::Metrics,
            &mut stop,
            || async {
                Err::<(), _>(SendError::Http {
                    status: StatusCode::SERVICE_UNAVAILABLE,
                    retry_after: None,
                })
            },
        )
        .await;
        assert!(down.is_err());
        let tries = stats.retries(Signal::Metrics);
        assert!((10..=50).contains(&tries), "{tries}");
    }

    #[test]
    fn jitter_stays_within_half_and_whole() {
        for _ in 0..100 {
            let j = jitter(Duration::from_secs(2));
            assert!(
                j >= Duration::from_secs(1) && j <= Duration::from_secs(2),
                "{j:?}"
            );
        }
    }
}
