//! The HTTP API: liveness and readiness probes, and the live service map.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::Query;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use vigil_net::map::{to_dot, Snapshot};

/// Shared state the API reports on.
#[derive(Debug, Default)]
pub struct Health {
    /// Set once every sensor is attached.
    pub ready: AtomicBool,
    /// The service map as last published by the pipeline (about once a second); `None` while
    /// the network sensor is not running.
    pub map: Mutex<Option<Arc<Snapshot>>>,
}

fn map_response(health: &Health, params: &HashMap<String, String>) -> Response {
    let snapshot = health.map.lock().map(|m| m.clone()).unwrap_or_default();
    let Some(snapshot) = snapshot else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "no service map: the network sensor is not running\n",
        )
            .into_response();
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
        Some(other) => (
            StatusCode::BAD_REQUEST,
            format!("format `{other}` is not one of: json, dot\n"),
        )
            .into_response(),
    }
}

fn router(health: Arc<Health>) -> Router {
    let for_map = health.clone();
    Router::new()
        .route(
            "/api/v1/map",
            get(move |Query(params): Query<HashMap<String, String>>| {
                let r = map_response(&for_map, &params);
                async move { r }
            }),
        )
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(move || {
                let ready = health.ready.load(Ordering::Relaxed);
                async move {
                    if ready {
                        (StatusCode::OK, "ready\n")
                    } else {
                        (
                            StatusCode::SERVICE_UNAVAILABLE,
                            "not ready: sensors attaching\n",
                        )
                    }
                }
            }),
        )
}

/// Binds `addr` now (so a bad address fails startup) and serves on a dedicated thread.
pub fn spawn(addr: SocketAddr, health: Arc<Health>) -> std::io::Result<SocketAddr> {
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
                if let Err(e) = axum::serve(listener, router(health)).await {
                    eprintln!("vigil: api server stopped: {e}");
                }
            });
        })?;
    Ok(local)
}
