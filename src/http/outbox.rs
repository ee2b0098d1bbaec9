//! `/api/v1/outbox`: what the sinks have not acknowledged yet, and why (viewer), and an
//! admin's discarding of a message its sink keeps refusing.

use super::request::{Action, action_request, control_for, page_limit, path_id, query};
use super::{ApiError, HttpState, blocking};
use crate::config::Role;
use crate::domain::AuditEvent;
use crate::http::events::LiveEvent;
use crate::moderation::store::OutboxRow;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Json};
use axum::routing::{get, post};

pub(super) fn router() -> Router<HttpState> {
    Router::new()
        .route("/api/v1/outbox", get(list))
        .route("/api/v1/outbox/{id}/discard", post(discard))
}

#[derive(serde::Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct OutboxQuery {
    sink: Option<String>,
    limit: Option<usize>,
}

/// Messages waiting for their sink, oldest first (each sink sends in that order, so its
/// first row is the one the others wait for), with attempts and the last error: what an
/// operator looks at when `streamguard_outbox_pending` keeps growing.
async fn list(
    State(s): State<HttpState>,
    headers: HeaderMap,
    q: Result<Query<OutboxQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let c = control_for(&s, &headers, Role::Viewer)?;
    let q = query(q)?;
    let limit = page_limit(q.limit, 200)?;
    let rows = blocking(move || c.store().outbox_page(q.sink.as_deref(), limit)).await?;
    let rows: Vec<_> = rows.iter().map(message).collect();
    Ok(Json(serde_json::json!({ "outbox": rows })))
}

/// An outbox message as the API shows it (without its body).
fn message(r: &OutboxRow) -> serde_json::Value {
    serde_json::json!({
        "id": r.id, "sink": r.sink, "msg_id": r.msg_id, "event": r.event(),
        "alert_id": r.alert_id, "attempts": r.attempts, "last_error": r.last_error,
        "next_attempt_ms": r.next_attempt_ms, "created_at_ms": r.created_at_ms,
        "dead_at_ms": r.dead_at_ms,
    })
}

/// `POST /api/v1/outbox/{id}/discard` (admin, a reason required): gives up on a message its
/// sink keeps refusing, so that the sink's later messages go out. Audit-logged as
/// `message_discarded`; answers the message as it was (404 when it is no longer queued).
async fn discard(
    State(s): State<HttpState>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let Action {
        control: c,
        actor,
        reason,
    } = action_request(&s, &headers, &body, Role::Admin, None)?;
    let id = path_id("message", &raw)?;
    let who = actor.clone();
    let Some(row) = blocking(move || c.store().outbox_discard(id, &actor, &reason)).await? else {
        return Err(ApiError::NotFound(format!(
            "no message {id} in the outbox (delivered, discarded, or never queued)"
        )));
    };
    tracing::warn!(sink = %row.sink, msg = %row.msg_id, actor = %who, "message discarded from the outbox, unsent");
    // Consoles show the new audit entry without waiting for a reload.
    s.events.send(&LiveEvent::Audit {
        actor: who,
        alert_id: row.alert_id,
        event: AuditEvent::MessageDiscarded,
        sink: Some(row.sink.clone()),
        stream: row.stream(),
    });
    Ok(Json(message(&row)))
}
