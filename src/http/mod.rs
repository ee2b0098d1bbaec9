//! The HTTP server, on a small Tokio runtime of its own thread so that nothing on the frame
//! path ever waits on it. With `[[http.tokens]]`, `/api/v1` needs a bearer token of the right
//! role ([`auth`]) and ingest callbacks are accepted from loopback peers only; without, the
//! API is open and `http.listen` is loopback-only. Bodies over `http.max_body_bytes` get 413,
//! and connections, headers and bodies are bounded in number and time ([`server`]).
//! Bank contents are never served: only counts and versions. Each resource has its file and
//! its router, merged here; a refusal is an [`ApiError`].
//!
//! - `GET /healthz`: the process is up. `GET /readyz`: every bank is loaded (503 until then).
//! - `GET|POST /ingest/nginx/on_publish`, `/ingest/nginx/on_publish_done`: nginx-rtmp's
//!   callbacks (query string or form). 200 accepts; 403 refuses a halted stream key; 404 an
//!   app that is not watched; 400 a malformed request. Refusals change nothing.
//! - `GET /api/v1/streams` (viewer): every watched stream with its state and counters.
//! - `POST /api/v1/streams/{id}/halt` and `/reinstate` (moderator; optional JSON body
//!   `{"reason": "...", "actor": "..."}`, the actor being the token's name when tokens are
//!   configured); a discovered stream's id is `app/name`, sent URL-encoded (`live%2Fkey`).
//! - `GET /api/v1/alerts?state=&stream=&reason=&before=&limit=` (viewer): newest first.
//!   `GET /api/v1/alerts/{id}` (viewer). `POST /api/v1/alerts/{id}/claim|confirm|dismiss`
//!   (moderator; optional `{"reason": ...}`): 404 for an unknown alert, 409 for a transition
//!   its state does not allow; each action is audited.
//! - `GET /api/v1/alerts/{id}/evidence` (viewer): a classifier alert's thumbnail as a
//!   blurred greyscale PNG; `?reveal=true` (moderator) unblurred, with an audit entry.
//! - `GET /api/v1/audit?stream=&alert=&before=&limit=` (viewer): the audit log, newest first.
//! - `GET /api/v1/outbox?sink=&limit=` (viewer): messages not yet acknowledged by their sink.
//!   `POST /api/v1/outbox/{id}/discard` (admin; `{"reason": ...}` required): gives one up,
//!   unsent, with an audit entry.
//! - `GET /api/v1/events` (viewer): server-sent events ([`events`]).
//! - `GET /` and `/console/`: the moderator console ([`console`]); `GET /api/v1/session`
//!   (viewer): the caller's token name and role.
//! - `GET /api/v1/openapi.json` (no token): the OpenAPI 3.0 document of all of the above
//!   (`src/http/openapi.json`; tests/api_alerts.rs calls every path it lists).

mod alerts;
mod audit;
pub mod auth;
pub mod console;
mod error;
pub mod events;
mod evidence;
mod ingest;
mod metrics;
mod outbox;
mod request;
mod server;
mod streams;

pub use error::ApiError;
pub use server::{CONNECTIONS_REFUSED, HttpServer, Limits, REQUESTS_TIMED_OUT, ServerError};

use crate::analysis::bank::BankSet;
use crate::control::Control;
use auth::Auth;
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Json};
use axum::routing::get;
use std::sync::Arc;

/// What the handlers can see.
#[derive(Clone)]
pub struct HttpState {
    pub banks: Arc<BankSet>,
    /// The control plane; `None` serves health and readiness only.
    pub control: Option<Arc<Control>>,
    /// Tokens and roles (default: none, the API is open) and the body limit.
    pub auth: Arc<Auth>,
    /// Live updates for `/api/v1/events`.
    pub events: Arc<events::Events>,
}

/// Every route, with bodies over `http.max_body_bytes` refused (413).
pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/api/v1/openapi.json", get(openapi))
        .merge(console::router())
        .merge(ingest::router())
        .merge(streams::router())
        .merge(alerts::router())
        .merge(evidence::router())
        .merge(audit::router())
        .merge(outbox::router())
        .merge(metrics::router())
        .merge(events::router())
        .fallback(no_route)
        .method_not_allowed_fallback(wrong_method)
        .layer(DefaultBodyLimit::max(state.auth.max_body_bytes))
        .with_state(state)
}

/// 404 with a JSON body, like every other refusal.
async fn no_route(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::NotFound(format!(
        "no route {method} {} (GET /api/v1/openapi.json lists them)",
        uri.path()
    ))
}

/// 405 with a JSON body.
async fn wrong_method(method: axum::http::Method, uri: axum::http::Uri) -> impl IntoResponse {
    let body = serde_json::json!({ "error": format!("{} does not take {method}", uri.path()) });
    (StatusCode::METHOD_NOT_ALLOWED, Json(body))
}

/// What `http.callback_listen` serves: nginx's callbacks and `/healthz`, nothing else.
pub fn callback_router(state: HttpState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .merge(ingest::router())
        .fallback(no_route)
        .method_not_allowed_fallback(wrong_method)
        .layer(DefaultBodyLimit::max(state.auth.max_body_bytes))
        .with_state(state)
}

/// Runs blocking control-plane work (SQLite, HTTP to the ingest server, joining threads) off
/// the async runtime.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f)
        .await
        .expect("control-plane task panicked")
}

/// Ready: every bank loaded, and the store takes writes (while it does not, halts still
/// happen, from memory, and `store` says what waits to be written).
async fn readyz(State(s): State<HttpState>) -> impl IntoResponse {
    let store = s.control.as_ref().map(|c| c.store_health().snapshot());
    let ready = s.banks.ready() && store.as_ref().is_none_or(|h| h.ok);
    let mut body = serde_json::json!({ "ready": ready, "banks": s.banks.status() });
    if let Some(h) = store {
        body["store"] = serde_json::json!(h);
    }
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body))
}

/// The API's OpenAPI document (public: it describes, it holds no data).
pub const OPENAPI: &str = include_str!("openapi.json");

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}

#[cfg(test)]
mod tests {
    /// Every operation has an `operationId`, and no two share one (client generators
    /// name their methods by them).
    #[test]
    fn every_operation_has_its_own_operation_id() {
        let doc: serde_json::Value = serde_json::from_str(super::OPENAPI).unwrap();
        let mut ids = std::collections::BTreeSet::new();
        let mut n = 0;
        for (path, ops) in doc["paths"].as_object().unwrap() {
            for (method, op) in ops.as_object().unwrap() {
                if !["get", "post", "put", "delete", "patch"].contains(&method.as_str()) {
                    continue;
                }
                n += 1;
                let id = op["operationId"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{method} {path} has no operationId"));
                assert!(ids.insert(id.to_string()), "operationId {id} used twice");
            }
        }
        assert!(n >= 14, "{n} operations");
    }
}
