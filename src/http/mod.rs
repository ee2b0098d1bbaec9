//! The HTTP server: `GET /healthz` (the process is up) and `GET /readyz` (every bank is
//! loaded; 503 until then). It runs on a small Tokio runtime of its own thread, so nothing on
//! the frame path ever waits on it. Bank contents are never served: only counts and versions.

use crate::analysis::bank::BankSet;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json};
use axum::routing::get;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;

/// What the handlers can see.
#[derive(Clone)]
pub struct HttpState {
    pub banks: Arc<BankSet>,
}

/// A running server; [`HttpServer::stop`] ends it.
pub struct HttpServer {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(state)
}

async fn readyz(State(s): State<HttpState>) -> impl IntoResponse {
    let ready = s.banks.ready();
    let body = serde_json::json!({ "ready": ready, "banks": s.banks.status() });
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body))
}

impl HttpServer {
    /// Binds `addr` now (so that a taken port is a start-up error naming it) and serves on a
    /// thread of its own.
    pub fn start(addr: SocketAddr, state: HttpState) -> Result<HttpServer, String> {
        let listener = std::net::TcpListener::bind(addr)
            .map_err(|e| format!("http.listen: cannot listen on {addr}: {e}"))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        listener
            .set_nonblocking(true)
            .map_err(|e| format!("http.listen: {addr}: {e}"))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("http: cannot start runtime: {e}"))?;
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let app = router(state);
        let thread = std::thread::Builder::new()
            .name("http".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => l,
                        Err(e) => {
                            tracing::error!(%addr, error = %e, "http server cannot start");
                            return;
                        }
                    };
                    let served = axum::serve(listener, app)
                        .with_graceful_shutdown(async {
                            let _ = stop_rx.await;
                        })
                        .await;
                    if let Err(e) = served {
                        tracing::error!(%addr, error = %e, "http server failed");
                    }
                });
            })
            .map_err(|e| e.to_string())?;
        tracing::info!(%addr, "http server listening");
        Ok(HttpServer {
            addr,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    pub fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
