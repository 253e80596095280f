//! The HTTP API: probes, Prometheus metrics, the live service map, live event and alert streams
//! (server-sent events), the kernel coverage report and the web UI, with optional bearer-token
//! authentication that scopes each tenant to its Kubernetes namespaces.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures_util::stream::Stream;
use tokio::sync::broadcast::error::RecvError;
use vigil_net::map::{to_dot, Snapshot as MapSnapshot};
use vigil_rules::Priority;

use crate::auth::{Auth, Scope};
use crate::metrics::{self, Family, MetricKind, Series};
use crate::stream::{EventInterest, Hub, Published};

/// Shared state the API reports on. The pipeline publishes whole snapshots; handlers never
/// touch the pipeline itself.
pub struct ApiState {
    /// Set once every sensor is attached.
    pub ready: AtomicBool,
    /// The service map as last published by the pipeline (about once a second); `None` while
    /// the network sensor is not running.
    pub map: Mutex<Option<Arc<MapSnapshot>>>,
    /// The agent's metrics as last published by the pipeline.
    pub metrics: Mutex<Option<metrics::Snapshot>>,
    /// `/api/v1/workloads` as last published (`{"window_secs", "workloads": [...]}`).
    pub workloads: Mutex<Option<Arc<serde_json::Value>>>,
    pub hub: Arc<Hub>,
    pub auth: Auth,
    /// Computes the coverage report (`vigil probe --json`) the first time it is asked for.
    probe: Box<dyn Fn() -> serde_json::Value + Send + Sync>,
    probe_cache: OnceLock<serde_json::Value>,
    pub stats: ApiStats,
}

impl std::fmt::Debug for ApiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiState")
            .field("ready", &self.ready)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// Requests the API turned away, exported as metrics.
#[derive(Debug, Default)]
pub struct ApiStats {
    pub unauthorized: AtomicU64,
    pub forbidden: AtomicU64,
    pub bad_requests: AtomicU64,
}

impl ApiState {
    pub fn new(
        hub: Arc<Hub>,
        auth: Auth,
        probe: Box<dyn Fn() -> serde_json::Value + Send + Sync>,
    ) -> Self {
        Self {
            ready: AtomicBool::new(false),
            map: Mutex::new(None),
            metrics: Mutex::new(None),
            workloads: Mutex::new(None),
            hub,
            auth,
            probe,
            probe_cache: OnceLock::new(),
            stats: ApiStats::default(),
        }
    }

    /// The API's own counters, to append to the agent's metrics.
    pub fn families(&self) -> Vec<Family> {
        let h = &self.hub.stats;
        let mut refused = Family::new(
            "vigil_api_requests_refused",
            "API requests refused, by reason.",
            None,
            MetricKind::Counter,
        );
        for (reason, n) in [
            ("unauthorized", &self.stats.unauthorized),
            ("forbidden", &self.stats.forbidden),
            ("bad_request", &self.stats.bad_requests),
        ] {
            refused.series.push(Series::number(
                vec![("reason", reason.into())],
                n.load(Ordering::Relaxed) as f64,
            ));
        }
        vec![
            refused,
            Family::single(
                "vigil_stream_published",
                "Events and alerts published to live subscribers (API streams, OTLP).",
                None,
                MetricKind::Counter,
                h.published.load(Ordering::Relaxed) as f64,
            ),
            Family::single(
                "vigil_stream_skipped",
                "Messages that slow stream subscribers skipped (each reported to them as a gap).",
                None,
                MetricKind::Counter,
                h.skipped.load(Ordering::Relaxed) as f64,
            ),
            Family::single(
                "vigil_stream_subscriptions",
                "Stream subscriptions opened.",
                None,
                MetricKind::Counter,
                h.subscriptions.load(Ordering::Relaxed) as f64,
            ),
        ]
    }
}

type Params = Query<HashMap<String, String>>;
type Shared = State<Arc<ApiState>>;

fn refuse(state: &ApiState, status: StatusCode, msg: String) -> Response {
    let counter = match status {
        StatusCode::UNAUTHORIZED => &state.stats.unauthorized,
        StatusCode::FORBIDDEN => &state.stats.forbidden,
        _ => &state.stats.bad_requests,
    };
    counter.fetch_add(1, Ordering::Relaxed);
    let mut r = (status, msg).into_response();
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer realm=\"vigil\""),
        );
    }
    r
}

/// The caller's scope, or the response refusing it.
fn scope(
    state: &ApiState,
    headers: &HeaderMap,
    params: &HashMap<String, String>,
) -> Result<Scope, Box<Response>> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    // EventSource in browsers cannot set headers: the token may come as a query parameter.
    let token = bearer.or(params.get("access_token").map(String::as_str));
    state.auth.scope(token).map_err(|e| {
        Box::new(refuse(
            state,
            StatusCode::UNAUTHORIZED,
            format!("{e}: send `Authorization: Bearer <token>`\n"),
        ))
    })
}

async fn metrics_handler(
    State(state): Shared,
    headers: HeaderMap,
    Query(params): Params,
) -> Response {
    match scope(&state, &headers, &params) {
        Ok(Scope::All) => {}
        Ok(Scope::Namespaces(_)) => {
            return refuse(
                &state,
                StatusCode::FORBIDDEN,
                "metrics cover every tenant: they need a token without a namespace scope\n".into(),
            )
        }
        Err(r) => return *r,
    }
    let families: Vec<Family> = state
        .metrics
        .lock()
        .ok()
        .and_then(|m| m.clone())
        .map(|s| s.as_ref().clone())
        .unwrap_or_default();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        metrics::to_prometheus(&families),
    )
        .into_response()
}

async fn map_handler(State(state): Shared, headers: HeaderMap, Query(params): Params) -> Response {
    let scope = match scope(&state, &headers, &params) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let snapshot = state.map.lock().map(|m| m.clone()).unwrap_or_default();
    let Some(snapshot) = snapshot else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "no service map: the network sensor is not running\n",
        )
            .into_response();
    };
    let snapshot = match &scope {
        Scope::All => snapshot,
        Scope::Namespaces(ns) => Arc::new(scoped_map(&snapshot, ns)),
    };
    match params.get("format").map(String::as_str) {
        None | Some("json") => (
            [(header::CONTENT_TYPE, "application/json")],
            serde_json::to_string(&*snapshot).unwrap_or_default(),
        )
            .into_response(),
        Some("dot") => (
            [(header::CONTENT_TYPE, "text/vnd.graphviz")],
            to_dot(&snapshot),
        )
            .into_response(),
        Some(other) => refuse(
            &state,
            StatusCode::BAD_REQUEST,
            format!("format `{other}` is not one of: json, dot\n"),
        ),
    }
}

/// A tenant's part of the map: its own workloads and the edges that touch them (with the peers
/// at their other end, so a tenant sees whom it talks to but nothing between others).
fn scoped_map(map: &MapSnapshot, namespaces: &[String]) -> MapSnapshot {
    let own = |id: &str| {
        map.nodes.iter().any(|n| {
            n.id == id
                && n.namespace
                    .as_ref()
                    .is_some_and(|ns| namespaces.contains(ns))
        })
    };
    let edges: Vec<_> = map
        .edges
        .iter()
        .filter(|e| own(&e.source) || own(&e.target))
        .cloned()
        .collect();
    let nodes = map
        .nodes
        .iter()
        .filter(|n| own(&n.id) || edges.iter().any(|e| e.source == n.id || e.target == n.id))
        .cloned()
        .collect();
    MapSnapshot { nodes, edges }
}

async fn workloads_handler(
    State(state): Shared,
    headers: HeaderMap,
    Query(params): Params,
) -> Response {
    let scope = match scope(&state, &headers, &params) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let snapshot = state.workloads.lock().ok().and_then(|w| w.clone());
    let Some(snapshot) = snapshot else {
        return (StatusCode::SERVICE_UNAVAILABLE, "no workload data yet\n").into_response();
    };
    let body = match &scope {
        Scope::All => serde_json::to_string(&*snapshot),
        Scope::Namespaces(ns) => {
            // A tenant sees the workloads of its namespaces only.
            let mut v = (*snapshot).clone();
            if let Some(list) = v.get_mut("workloads").and_then(|w| w.as_array_mut()) {
                list.retain(|w| {
                    w["namespace"]
                        .as_str()
                        .is_some_and(|n| ns.iter().any(|s| s == n))
                });
            }
            serde_json::to_string(&v)
        }
    };
    (
        [(header::CONTENT_TYPE, "application/json")],
        body.unwrap_or_default(),
    )
        .into_response()
}

async fn probe_handler(
    State(state): Shared,
    headers: HeaderMap,
    Query(params): Params,
) -> Response {
    if let Err(r) = scope(&state, &headers, &params) {
        return *r;
    }
    // Loading the probe programs takes a moment: once, off the async workers.
    let st = state.clone();
    let report =
        tokio::task::spawn_blocking(move || st.probe_cache.get_or_init(|| (st.probe)()).clone())
            .await
            .unwrap_or_default();
    (
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::to_string(&report).unwrap_or_default(),
    )
        .into_response()
}

/// What a stream subscriber asked to see (query parameters), within its tenant scope.
#[derive(Debug, Default)]
struct Filter {
    alerts: bool,
    kinds: Vec<String>,
    rules: Vec<String>,
    /// The least severe priority shown.
    min_priority: Option<Priority>,
    containers: Vec<String>,
    namespaces: Vec<String>,
    pods: Vec<String>,
    scope: Option<Vec<String>>,
}

fn list(params: &HashMap<String, String>, key: &str) -> Vec<String> {
    params
        .get(key)
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

const EVENT_PARAMS: &[&str] = &["kind", "container", "namespace", "pod", "access_token"];
const ALERT_PARAMS: &[&str] = &[
    "rule",
    "priority",
    "container",
    "namespace",
    "pod",
    "access_token",
];

impl Filter {
    fn parse(
        alerts: bool,
        params: &HashMap<String, String>,
        scope: Scope,
    ) -> Result<Filter, String> {
        let known = if alerts { ALERT_PARAMS } else { EVENT_PARAMS };
        if let Some(k) = params.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(format!(
                "unknown parameter `{k}`; this stream accepts: {}",
                known.join(", ")
            ));
        }
        let min_priority = match params.get("priority") {
            Some(p) => Some(Priority::parse(p).ok_or_else(|| {
                format!("priority `{p}` is not one of: emergency, alert, critical, error, warning, notice, informational, debug")
            })?),
            None => None,
        };
        Ok(Filter {
            alerts,
            kinds: list(params, "kind"),
            rules: list(params, "rule"),
            min_priority,
            containers: list(params, "container"),
            namespaces: list(params, "namespace"),
            pods: list(params, "pod"),
            scope: match scope {
                Scope::All => None,
                Scope::Namespaces(ns) => Some(ns),
            },
        })
    }

    fn matches(&self, p: &Published) -> bool {
        let ns = p.namespace.as_deref();
        if let Some(scope) = &self.scope {
            // A tenant sees its namespaces only: never host events or another tenant's.
            if !ns.is_some_and(|ns| scope.iter().any(|s| s == ns)) {
                return false;
            }
        }
        if !self.namespaces.is_empty()
            && !ns.is_some_and(|ns| self.namespaces.iter().any(|s| s == ns))
        {
            return false;
        }
        if !self.pods.is_empty()
            && !p
                .pod
                .as_deref()
                .is_some_and(|pod| self.pods.iter().any(|s| s == pod))
        {
            return false;
        }
        if !self.containers.is_empty()
            && !p.container_id.as_deref().is_some_and(|id| {
                // Short (12-character) ids as shown by runtimes match by prefix.
                self.containers.iter().any(|c| id.starts_with(c.as_str()))
            })
        {
            return false;
        }
        match (&p.alert, self.alerts) {
            (Some(a), true) => {
                (self.rules.is_empty() || self.rules.contains(&a.rule))
                    && self.min_priority.is_none_or(|min| a.priority <= min)
            }
            (None, false) => self.kinds.is_empty() || self.kinds.iter().any(|k| k == p.kind),
            _ => false,
        }
    }
}

async fn events_handler(
    State(state): Shared,
    headers: HeaderMap,
    Query(params): Params,
) -> Response {
    stream_handler(state, headers, params, false)
}

async fn alerts_handler(
    State(state): Shared,
    headers: HeaderMap,
    Query(params): Params,
) -> Response {
    stream_handler(state, headers, params, true)
}

fn stream_handler(
    state: Arc<ApiState>,
    headers: HeaderMap,
    params: HashMap<String, String>,
    alerts: bool,
) -> Response {
    let scope = match scope(&state, &headers, &params) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let filter = match Filter::parse(alerts, &params, scope) {
        Ok(f) => f,
        Err(e) => return refuse(&state, StatusCode::BAD_REQUEST, format!("{e}\n")),
    };
    let (recent, rx) = state.hub.subscribe();
    let (replay, interest) = if alerts {
        (recent, None)
    } else {
        (Vec::new(), Some(state.hub.event_interest()))
    };
    Sse::new(sse_stream(state.hub.clone(), replay, rx, filter, interest))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

type Rx = tokio::sync::broadcast::Receiver<Arc<Published>>;

fn sse_stream(
    hub: Arc<Hub>,
    replay: Vec<Arc<Published>>,
    rx: Rx,
    filter: Filter,
    interest: Option<EventInterest>,
) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    let name = if filter.alerts { "alert" } else { "event" };
    let replay = replay.into_iter();
    // After the replay, one `live` message tells clients that what follows is new. The interest
    // lives in the stream: a client that goes away stops the rendering of events for it.
    let filter = (filter, interest);
    futures_util::stream::unfold(
        (replay, false, rx, filter, hub),
        move |(mut replay, mut live_sent, mut rx, filter, hub)| async move {
            loop {
                let msg = match replay.next() {
                    Some(p) => p,
                    None if !live_sent => {
                        live_sent = true;
                        let live = SseEvent::default().event("live").data("{}");
                        return Some((Ok(live), (replay, live_sent, rx, filter, hub)));
                    }
                    None => match rx.recv().await {
                        Ok(p) => p,
                        Err(RecvError::Lagged(n)) => {
                            hub.skipped(n);
                            let gap = SseEvent::default()
                                .event("gap")
                                .data(format!("{{\"skipped\":{n}}}"));
                            return Some((Ok(gap), (replay, live_sent, rx, filter, hub)));
                        }
                        Err(RecvError::Closed) => return None,
                    },
                };
                if filter.0.matches(&msg) {
                    let ev = SseEvent::default().event(name).data(&*msg.line);
                    return Some((Ok(ev), (replay, live_sent, rx, filter, hub)));
                }
            }
        },
    )
}

fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/api/v1/map", get(map_handler))
        .route("/api/v1/events", get(events_handler))
        .route("/api/v1/alerts", get(alerts_handler))
        .route("/api/v1/probe", get(probe_handler))
        .route("/api/v1/workloads", get(workloads_handler))
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(|State(state): Shared| async move {
                if state.ready.load(Ordering::Relaxed) {
                    (StatusCode::OK, "ready\n")
                } else {
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        "not ready: sensors attaching\n",
                    )
                }
            }),
        )
        .with_state(state)
        // Static assets only: the data they show comes from the endpoints above, with the
        // caller's token.
        .merge(crate::ui::router())
}

/// Binds `addr` now (so a bad address fails startup) and serves on a dedicated thread.
pub fn spawn(addr: SocketAddr, state: Arc<ApiState>) -> std::io::Result<SocketAddr> {
    let std_listener = std::net::TcpListener::bind(addr)?;
    std_listener.set_nonblocking(true)?;
    let local = std_listener.local_addr()?;
    std::thread::Builder::new()
        .name("vigil-api".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(std_listener).expect("listener");
                if let Err(e) = axum::serve(listener, router(state)).await {
                    eprintln!("vigil: api server stopped: {e}");
                }
            });
        })?;
    Ok(local)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::AlertInfo;

    fn published(
        kind: &'static str,
        ns: Option<&str>,
        alert: Option<(&str, Priority)>,
    ) -> Published {
        Published {
            line: Arc::from("{}"),
            kind: if alert.is_some() { "alert" } else { kind },
            time_ns: 0,
            alert: alert.map(|(rule, priority)| AlertInfo {
                rule: rule.into(),
                priority,
                event_kind: kind,
            }),
            container_id: Some("0123456789abcdef".into()),
            namespace: ns.map(String::from),
            pod: None,
        }
    }

    fn params(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn event_filters_by_kind_container_and_namespace() {
        let f = Filter::parse(
            false,
            &params(&[("kind", "exec,file"), ("container", "0123456789ab")]),
            Scope::All,
        )
        .unwrap();
        assert!(f.matches(&published("exec", None, None)));
        assert!(!f.matches(&published("connection", None, None)));
        assert!(!f.matches(&published("exec", None, Some(("r", Priority::Warning)))));
        let f = Filter::parse(false, &params(&[("namespace", "a")]), Scope::All).unwrap();
        assert!(f.matches(&published("exec", Some("a"), None)));
        assert!(!f.matches(&published("exec", Some("b"), None)));
        assert!(!f.matches(&published("exec", None, None)));
    }

    #[test]
    fn alert_filters_by_rule_and_minimum_priority() {
        let f = Filter::parse(true, &params(&[("priority", "warning")]), Scope::All).unwrap();
        assert!(f.matches(&published("exec", None, Some(("r", Priority::Critical)))));
        assert!(f.matches(&published("exec", None, Some(("r", Priority::Warning)))));
        assert!(!f.matches(&published("exec", None, Some(("r", Priority::Notice)))));
        assert!(!f.matches(&published("exec", None, None)));
        let f = Filter::parse(true, &params(&[("rule", "x,y")]), Scope::All).unwrap();
        assert!(f.matches(&published("exec", None, Some(("y", Priority::Debug)))));
        assert!(!f.matches(&published("exec", None, Some(("z", Priority::Debug)))));
    }

    #[test]
    fn a_tenant_sees_only_its_namespaces_whatever_it_asks_for() {
        let scope = Scope::Namespaces(vec!["team-a".into()]);
        let f = Filter::parse(false, &params(&[("namespace", "team-b")]), scope.clone()).unwrap();
        assert!(!f.matches(&published("exec", Some("team-b"), None)));
        let f = Filter::parse(false, &params(&[]), scope).unwrap();
        assert!(f.matches(&published("exec", Some("team-a"), None)));
        assert!(!f.matches(&published("exec", Some("team-b"), None)));
        assert!(
            !f.matches(&published("exec", None, None)),
            "host events are not a tenant's"
        );
    }

    #[test]
    fn bad_parameters_are_named() {
        let e = Filter::parse(true, &params(&[("priority", "loud")]), Scope::All).unwrap_err();
        assert!(e.contains("priority `loud`"), "{e}");
        let e = Filter::parse(false, &params(&[("rule", "x")]), Scope::All).unwrap_err();
        assert!(e.contains("unknown parameter `rule`"), "{e}");
    }
}
