//! `GET|POST /ingest/nginx/on_publish` and `/ingest/nginx/on_publish_done`: nginx-rtmp's
//! callbacks (query string or form). 200 `ok` accepts; 403 refuses a halted stream key; 404
//! an app that is not watched; 400 a malformed request. Refusals change nothing. nginx
//! cannot send a token, so with tokens configured they are accepted from loopback peers only.

use super::{ApiError, HttpState, blocking};
use crate::control::{Control, ControlError};
use axum::Router;
use axum::extract::{ConnectInfo, Form, State};
use axum::response::IntoResponse;
use axum::routing::get;
use std::collections::BTreeMap;
use std::net::SocketAddr;

pub(super) fn router() -> Router<HttpState> {
    Router::new()
        .route("/ingest/nginx/on_publish", get(on_publish).post(on_publish))
        .route(
            "/ingest/nginx/on_publish_done",
            get(on_publish_done).post(on_publish_done),
        )
}

type CallbackParams = BTreeMap<String, String>;

/// Runs an ingest callback on the control plane: 200 `ok`, or the refusal's 4xx.
async fn callback(
    s: HttpState,
    peer: SocketAddr,
    params: CallbackParams,
    handle: fn(&Control, &CallbackParams) -> Result<(), ControlError>,
) -> Result<impl IntoResponse, ApiError> {
    loopback_peer(&s, peer)?;
    let c = s.control.ok_or(ApiError::NoControl)?;
    blocking(move || handle(&c, &params)).await?;
    Ok("ok\n")
}

/// With tokens configured the server may listen beyond loopback; ingest callbacks (which
/// nginx cannot send a token with) are then accepted from loopback peers only.
fn loopback_peer(s: &HttpState, peer: SocketAddr) -> Result<(), ApiError> {
    // `to_canonical`: a dual-stack socket sees 127.0.0.1 as ::ffff:127.0.0.1.
    if s.auth.enabled() && !peer.ip().to_canonical().is_loopback() {
        return Err(ApiError::Forbidden(format!(
            "ingest callbacks are accepted from loopback only, not {}",
            peer.ip()
        )));
    }
    Ok(())
}

async fn on_publish(
    State(s): State<HttpState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Form(p): Form<CallbackParams>,
) -> Result<impl IntoResponse, ApiError> {
    callback(s, peer, p, Control::on_publish).await
}

async fn on_publish_done(
    State(s): State<HttpState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Form(p): Form<CallbackParams>,
) -> Result<impl IntoResponse, ApiError> {
    callback(s, peer, p, Control::on_publish_done).await
}
