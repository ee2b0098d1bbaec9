//! The logs of the API: the audit log (what was done, by whom) and the outbox (what the sinks
//! have not acknowledged yet, and why).

use super::{Answer, HttpState, blocking, control_for, page_limit, query, store_error};
use crate::config::Role;
use crate::moderation::store::AuditFilter;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Json};

#[derive(serde::Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub(super) struct AuditQuery {
    stream: Option<String>,
    alert: Option<i64>,
    before: Option<i64>,
    limit: Option<usize>,
}

pub(super) async fn audit(
    State(s): State<HttpState>,
    headers: HeaderMap,
    q: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Answer {
    let c = control_for(&s, &headers, Role::Viewer)?;
    let q = query(q)?;
    let limit = page_limit(q.limit, 200)?;
    let f = AuditFilter {
        stream: q.stream,
        alert: q.alert,
        before: q.before,
        limit,
    };
    Ok(match blocking(move || c.store().audit(&f)).await {
        Ok(rows) => Json(serde_json::json!({ "audit": rows })).into_response(),
        Err(e) => store_error(e),
    })
}

#[derive(serde::Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub(super) struct OutboxQuery {
    sink: Option<String>,
    limit: Option<usize>,
}

/// Messages waiting for their sink, oldest first (each sink sends in that order, so its
/// first row is the one the others wait for), with attempts and the last error: what an
/// operator looks at when `streamguard_outbox_pending` keeps growing.
pub(super) async fn outbox(
    State(s): State<HttpState>,
    headers: HeaderMap,
    q: Result<Query<OutboxQuery>, axum::extract::rejection::QueryRejection>,
) -> Answer {
    let c = control_for(&s, &headers, Role::Viewer)?;
    let q = query(q)?;
    let limit = page_limit(q.limit, 200)?;
    let rows = match blocking(move || c.store().outbox_page(q.sink.as_deref(), limit)).await {
        Ok(rows) => rows,
        Err(e) => return Ok(store_error(e)),
    };
    let rows: Vec<_> = rows
        .into_iter()
        .map(|r| {
            let event = serde_json::from_str::<serde_json::Value>(&r.payload)
                .ok()
                .and_then(|v| v["event"].as_str().map(str::to_string));
            serde_json::json!({
                "id": r.id, "sink": r.sink, "msg_id": r.msg_id, "event": event,
                "alert_id": r.alert_id, "attempts": r.attempts, "last_error": r.last_error,
                "next_attempt_ms": r.next_attempt_ms, "created_at_ms": r.created_at_ms,
            })
        })
        .collect();
    Ok(Json(serde_json::json!({ "outbox": rows })).into_response())
}
