//! The logs of the API: the audit log (what was done, by whom) and the outbox (what the sinks
//! have not acknowledged yet, and why).

use super::{
    Answer, HttpState, action_request, blocking, control_for, json_error, page_limit, path_id,
    query, store_error,
};
use crate::config::Role;
use crate::moderation::store::{AuditFilter, OutboxRow};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
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
    let rows: Vec<_> = rows.iter().map(message).collect();
    Ok(Json(serde_json::json!({ "outbox": rows })).into_response())
}

/// An outbox message as the API shows it (without its body).
fn message(r: &OutboxRow) -> serde_json::Value {
    serde_json::json!({
        "id": r.id, "sink": r.sink, "msg_id": r.msg_id, "event": r.event(),
        "alert_id": r.alert_id, "attempts": r.attempts, "last_error": r.last_error,
        "next_attempt_ms": r.next_attempt_ms, "created_at_ms": r.created_at_ms,
    })
}

/// `POST /api/v1/outbox/{id}/discard` (admin, a reason required): gives up on a message its
/// sink keeps refusing, so that the sink's later messages go out. Audit-logged as
/// `message_discarded`; answers the message as it was (404 when it is no longer queued).
pub(super) async fn discard(
    State(s): State<HttpState>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    body: Bytes,
) -> Answer {
    let events = s.events.clone();
    let (c, actor, reason) = action_request(s, &headers, &body, Role::Admin, None)?;
    let id = path_id("message", &raw)?;
    let who = actor.clone();
    Ok(
        match blocking(move || c.store().outbox_discard(id, &actor, &reason)).await {
            Ok(Some(row)) => {
                tracing::warn!(sink = %row.sink, msg = %row.msg_id, actor = %who, "message discarded from the outbox, unsent");
                // Consoles show the new audit entry without waiting for a reload.
                events.send(
                    "audit",
                    serde_json::json!({ "event": "message_discarded", "alert_id": row.alert_id, "stream": row.stream(), "sink": row.sink, "actor": who }),
                );
                Json(message(&row)).into_response()
            }
            Ok(None) => json_error(
                StatusCode::NOT_FOUND,
                format!("no message {id} in the outbox (delivered, discarded, or never queued)"),
            ),
            Err(e) => store_error(e),
        },
    )
}
