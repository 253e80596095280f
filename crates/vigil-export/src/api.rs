//! The HTTP API. For now: liveness and readiness probes for Kubernetes and scripts.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;

/// Shared state the API reports on.
#[derive(Debug, Default)]
pub struct Health {
    /// Set once every sensor is attached.
    pub ready: AtomicBool,
}

fn router(health: Arc<Health>) -> Router {
    Router::new()
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
