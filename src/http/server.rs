//! The server itself: bound at start, served on a small Tokio runtime of its own thread, and
//! stopped gracefully (open event streams closed first).
//!
//! Connections are bounded ([`Limits`]), so that no client can use up the daemon's file
//! descriptors or its attention: at most `http.max_connections` at once, at most
//! `http.max_connections_per_client` from one address (a connection over either is accepted
//! and closed at once, and counted), request headers within `http.header_timeout_ms` (which
//! also ends a keep-alive connection idle that long), and a request body within
//! `http.body_timeout_ms` (408 otherwise). `http.callback_listen` gives nginx's callbacks a
//! listener of their own, with limits of their own, so that even a flood from loopback
//! cannot delay an `on_publish` answer.

use super::{ApiError, HttpState, events, router};
use crate::config::HttpConfig;
use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::response::IntoResponse;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;
use tower::ServiceExt;

/// Why the server did not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("{key}: cannot listen on {addr}: {source}")]
    Bind {
        key: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{0}")]
    LocalAddr(std::io::Error),
    #[error("{key}: {addr}: {source}")]
    Nonblocking {
        key: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("http: cannot start runtime: {0}")]
    Runtime(std::io::Error),
    #[error("{0}")]
    Thread(std::io::Error),
}

/// What one listener accepts (from `[http]`).
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_connections: usize,
    pub max_connections_per_client: usize,
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub max_body_bytes: usize,
}

impl Limits {
    pub fn from_config(cfg: &HttpConfig) -> Limits {
        Limits {
            max_connections: cfg.max_connections,
            max_connections_per_client: cfg.max_connections_per_client,
            header_timeout: Duration::from_millis(cfg.header_timeout_ms),
            body_timeout: Duration::from_millis(cfg.body_timeout_ms),
            max_body_bytes: cfg.max_body_bytes,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits::from_config(&HttpConfig::default())
    }
}

/// Connections refused by a listener's limits since start (all listeners): `/metrics`.
pub static CONNECTIONS_REFUSED: AtomicU64 = AtomicU64::new(0);
/// Requests whose headers or body did not arrive in time, since start (a keep-alive
/// connection idle past `http.header_timeout_ms` counts too: its next request's headers did
/// not come).
pub static REQUESTS_TIMED_OUT: AtomicU64 = AtomicU64::new(0);

/// Open connections, in all and per client address.
#[derive(Default)]
struct Open {
    total: usize,
    by_client: HashMap<IpAddr, usize>,
}

/// One admitted connection; leaving it frees its place.
struct Admitted {
    open: Arc<Mutex<Open>>,
    client: IpAddr,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut o = self.open.lock().unwrap_or_else(|e| e.into_inner());
        o.total -= 1;
        if let Some(n) = o.by_client.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                o.by_client.remove(&self.client);
            }
        }
    }
}

fn admit(open: &Arc<Mutex<Open>>, client: IpAddr, limits: &Limits) -> Option<Admitted> {
    let mut o = open.lock().unwrap_or_else(|e| e.into_inner());
    let mine = o.by_client.get(&client).copied().unwrap_or(0);
    if o.total >= limits.max_connections || mine >= limits.max_connections_per_client {
        return None;
    }
    o.total += 1;
    *o.by_client.entry(client).or_insert(0) += 1;
    Some(Admitted {
        open: open.clone(),
        client,
    })
}

/// A running server; [`HttpServer::stop`] ends it.
pub struct HttpServer {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::watch::Sender<bool>>,
    thread: Option<JoinHandle<()>>,
    /// Closed at stop: open event streams end, so the graceful shutdown can finish.
    events: Arc<events::Events>,
}

impl HttpServer {
    /// Binds `addr` now (so that a taken port is a start-up error naming it) and serves every
    /// route on a thread of its own, with the default [`Limits`].
    pub fn start(addr: SocketAddr, state: HttpState) -> Result<HttpServer, ServerError> {
        Self::start_with(addr, state, Limits::default())
    }

    /// The same with `limits` (`http.listen`).
    pub fn start_with(
        addr: SocketAddr,
        state: HttpState,
        limits: Limits,
    ) -> Result<HttpServer, ServerError> {
        let events = state.events.clone();
        Self::serve("http.listen", addr, router(state), events, limits)
    }

    /// nginx's callbacks (and `/healthz`) alone, on `http.callback_listen`.
    pub fn start_callbacks(
        addr: SocketAddr,
        state: HttpState,
        limits: Limits,
    ) -> Result<HttpServer, ServerError> {
        let events = state.events.clone();
        let app = super::callback_router(state);
        Self::serve("http.callback_listen", addr, app, events, limits)
    }

    fn serve(
        key: &'static str,
        addr: SocketAddr,
        app: Router,
        events: Arc<events::Events>,
        limits: Limits,
    ) -> Result<HttpServer, ServerError> {
        let listener = std::net::TcpListener::bind(addr).map_err(|source| ServerError::Bind {
            key,
            addr,
            source,
        })?;
        let addr = listener.local_addr().map_err(ServerError::LocalAddr)?;
        listener
            .set_nonblocking(true)
            .map_err(|source| ServerError::Nonblocking { key, addr, source })?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(ServerError::Runtime)?;
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let thread = std::thread::Builder::new()
            .name("http".into())
            .spawn(move || {
                runtime.block_on(async move {
                    match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => accept_loop(l, app, limits, stop_rx).await,
                        Err(e) => tracing::error!(%addr, error = %e, "http server cannot start"),
                    }
                });
            })
            .map_err(ServerError::Thread)?;
        tracing::info!(%addr, listen = key, "http server listening");
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
            let _ = stop.send(true);
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// How long a stopping server waits for its connections to finish what they are doing.
const DRAIN: Duration = Duration::from_secs(5);

async fn accept_loop(
    listener: tokio::net::TcpListener,
    app: Router,
    limits: Limits,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let open = Arc::new(Mutex::new(Open::default()));
    let mut conns = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            _ = stop.changed() => break,
            a = listener.accept() => a,
            // Reap finished connection tasks as they end.
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
        };
        let (tcp, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors (EMFILE) or the like: wait instead of spinning.
                tracing::warn!(error = %e, "http: cannot accept a connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let client = peer.ip().to_canonical();
        let Some(admitted) = admit(&open, client, &limits) else {
            // Refused: closed at once, so it holds no descriptor.
            let n = CONNECTIONS_REFUSED.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_power_of_two() {
                tracing::warn!(%client, refused = n, max = limits.max_connections,
                    per_client = limits.max_connections_per_client,
                    "http: connection refused (too many open connections)");
            }
            drop(tcp);
            continue;
        };
        let _ = tcp.set_nodelay(true);
        conns.spawn(serve_connection(
            tcp,
            peer,
            app.clone(),
            limits.clone(),
            stop.clone(),
            admitted,
        ));
    }
    drop(listener);
    let _ = tokio::time::timeout(DRAIN, async { while conns.join_next().await.is_some() {} }).await;
    conns.abort_all();
}

async fn serve_connection(
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    app: Router,
    limits: Limits,
    mut stop: tokio::sync::watch::Receiver<bool>,
    _admitted: Admitted,
) {
    let (body_timeout, max_body) = (limits.body_timeout, limits.max_body_bytes);
    let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let app = app.clone();
        async move {
            let (mut parts, body) = req.into_parts();
            parts.extensions.insert(ConnectInfo(peer));
            // The whole body first, within its deadline: a client that sends headers and
            // then trickles (or stops) cannot hold a handler.
            let read = axum::body::to_bytes(Body::new(body), max_body);
            let body = match tokio::time::timeout(body_timeout, read).await {
                Ok(Ok(bytes)) => bytes,
                Ok(Err(e)) => {
                    // Over the limit (413), or the client broke off (400).
                    let too_large =
                        std::iter::successors(Some(&e as &dyn std::error::Error), |e| e.source())
                            .any(|e| e.to_string().contains("length limit exceeded"));
                    let err = if too_large {
                        ApiError::TooLarge(format!(
                            "request body over http.max_body_bytes ({max_body} bytes)"
                        ))
                    } else {
                        ApiError::BadRequest(format!("request body cut short: {e}"))
                    };
                    return Ok(err.into_response());
                }
                Err(_) => {
                    REQUESTS_TIMED_OUT.fetch_add(1, Ordering::Relaxed);
                    return Ok(ApiError::Timeout(format!(
                        "request body not received within http.body_timeout_ms ({} ms)",
                        body_timeout.as_millis()
                    ))
                    .into_response());
                }
            };
            app.oneshot(axum::http::Request::from_parts(parts, Body::from(body)))
                .await
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    let conn = builder.serve_connection(hyper_util::rt::TokioIo::new(tcp), service);
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        _ = stop.changed() => {
            conn.as_mut().graceful_shutdown();
            conn.as_mut().await
        }
    };
    if let Err(e) = result
        && e.is_timeout()
    {
        REQUESTS_TIMED_OUT.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(%peer, "http: request headers not received in time; connection closed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admission_counts_per_client_and_in_all_and_frees_on_drop() {
        let open = Arc::new(Mutex::new(Open::default()));
        let limits = Limits {
            max_connections: 3,
            max_connections_per_client: 2,
            ..Limits::default()
        };
        let a: IpAddr = "127.0.0.2".parse().unwrap();
        let b: IpAddr = "127.0.0.1".parse().unwrap();
        let a1 = admit(&open, a, &limits).unwrap();
        let a2 = admit(&open, a, &limits).unwrap();
        assert!(admit(&open, a, &limits).is_none(), "per client");
        let b1 = admit(&open, b, &limits).unwrap();
        assert!(admit(&open, b, &limits).is_none(), "in all");
        drop(a1);
        let b2 = admit(&open, b, &limits).unwrap();
        drop((a2, b1, b2));
        let o = open.lock().unwrap();
        assert_eq!((o.total, o.by_client.len()), (0, 0));
    }
}
