//! The server itself: bound at start, served on a small Tokio runtime of its own thread, and
//! stopped gracefully (open event streams closed first).

use super::{HttpState, events, router};
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;

/// Why the server did not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("http.listen: cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{0}")]
    LocalAddr(std::io::Error),
    #[error("http.listen: {addr}: {source}")]
    Nonblocking {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("http: cannot start runtime: {0}")]
    Runtime(std::io::Error),
    #[error("{0}")]
    Thread(std::io::Error),
}

/// A running server; [`HttpServer::stop`] ends it.
pub struct HttpServer {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    /// Closed at stop: open event streams end, so the graceful shutdown can finish.
    events: Arc<events::Events>,
}

impl HttpServer {
    /// Binds `addr` now (so that a taken port is a start-up error naming it) and serves on a
    /// thread of its own.
    pub fn start(addr: SocketAddr, state: HttpState) -> Result<HttpServer, ServerError> {
        let listener = std::net::TcpListener::bind(addr)
            .map_err(|source| ServerError::Bind { addr, source })?;
        let addr = listener.local_addr().map_err(ServerError::LocalAddr)?;
        listener
            .set_nonblocking(true)
            .map_err(|source| ServerError::Nonblocking { addr, source })?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(ServerError::Runtime)?;
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let events = state.events.clone();
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
                    let served = axum::serve(
                        listener,
                        app.into_make_service_with_connect_info::<SocketAddr>(),
                    )
                    .with_graceful_shutdown(async {
                        let _ = stop_rx.await;
                    })
                    .await;
                    if let Err(e) = served {
                        tracing::error!(%addr, error = %e, "http server failed");
                    }
                });
            })
            .map_err(ServerError::Thread)?;
        tracing::info!(%addr, "http server listening");
        Ok(HttpServer {
            addr,
            stop: Some(stop_tx),
            thread: Some(thread),
            events,
        })
    }

    pub fn stop(mut self) {
        self.events.close();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
