//! `GET /api/v1/audit?stream=&alert=&before=&limit=` (viewer): the audit log (what was done,
//! by whom), newest first.

use super::request::{control_for, page_limit, query};
use super::{ApiError, HttpState, blocking};
use crate::config::Role;
use crate::moderation::store::AuditFilter;
use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Json};
use axum::routing::get;

pub(super) fn router() -> Router<HttpState> {
    Router::new().route("/api/v1/audit", get(audit))
}

#[derive(serde::Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct AuditQuery {
    stream: Option<String>,
    alert: Option<i64>,
    before: Option<i64>,
    limit: Option<usize>,
}

async fn audit(
    State(s): State<HttpState>,
    headers: HeaderMap,
    q: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let c = control_for(&s, &headers, Role::Viewer)?;
    let q = query(q)?;
    let limit = page_limit(q.limit, 200)?;
    let f = AuditFilter {
        stream: q.stream,
        alert: q.alert,
        before: q.before,
        limit,
    };
    let rows = blocking(move || c.store().audit(&f)).await?;
    Ok(Json(serde_json::json!({ "audit": rows })))
}
