//! `GET /metrics` in the Prometheus text format (viewer when tokens are configured): the
//! handler gathers what [`prometheus::render`] shows.

use super::request::control_for;
use super::{ApiError, HttpState, blocking};
use crate::config::Role;
use crate::telemetry::prometheus::{self, Inputs};
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::IntoResponse;
use axum::routing::get;

pub(super) fn router() -> Router<HttpState> {
    Router::new().route("/metrics", get(metrics))
}

async fn metrics(
    State(s): State<HttpState>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    let c = control_for(&s, &headers, Role::Viewer)?;
    let text = blocking(move || {
        let streams = c.manager().list();
        let counts = c
            .store()
            .counts()
            .inspect_err(|e| tracing::warn!(error = %e, "metrics: store counts unavailable"))
            .ok();
        prometheus::render(&Inputs {
            streams: streams
                .iter()
                .map(|i| (i.status().state.to_string(), &*i.stats))
                .collect(),
            totals: &crate::telemetry::TOTALS,
            analysis_queue: c.manager().analysis_queue(),
            store: counts.as_ref(),
            store_health: Some(c.store_health().snapshot()),
        })
    })
    .await;
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text))
}
