//! The checks handlers run on a request, each an [`ApiError`] on refusal: the caller's role
//! and the control plane, a query string, a page limit, a numeric path id, and the body of
//! an action (who does it, and why).

use super::{ApiError, HttpState};
use crate::config::Role;
use crate::control::Control;
use axum::body::Bytes;
use axum::extract::Query;
use axum::extract::rejection::QueryRejection;
use axum::http::HeaderMap;
use std::sync::Arc;

/// The control plane for a caller allowed `need`: 401/403 from
/// [`Auth::authorize`](super::auth::Auth::authorize), 404 without a control plane.
pub(super) fn control_for(
    s: &HttpState,
    headers: &HeaderMap,
    need: Role,
) -> Result<Arc<Control>, ApiError> {
    s.auth.authorize(headers, need)?;
    s.control.clone().ok_or(ApiError::NoControl)
}

/// A `limit` query parameter: `default` when absent, else 1 to 1000.
pub(super) fn page_limit(limit: Option<usize>, default: usize) -> Result<usize, ApiError> {
    match limit.unwrap_or(default) {
        l @ 1..=1000 => Ok(l),
        _ => Err(ApiError::BadRequest("limit: 1 to 1000".into())),
    }
}

/// A query string parsed into `T`, or 400 with the parser's message.
pub(super) fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(q)| q)
        .map_err(|e| ApiError::BadRequest(e.body_text()))
}

/// A numeric id from the path (`what`: alert, message), or 400 naming it.
pub(super) fn path_id(what: &str, raw: &str) -> Result<i64, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::BadRequest(format!("{what} id '{raw}' is not a number")))
}

#[derive(serde::Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct ActionBody {
    reason: Option<String>,
    actor: Option<String>,
}

fn action_body(body: &Bytes) -> Result<ActionBody, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(ActionBody::default());
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::BadRequest(format!(
            "body: {e} (expected {{\"reason\": ..., \"actor\": ...}})"
        ))
    })
}

/// What an action is done with: the control plane, who does it and why.
pub(super) struct Action {
    pub control: Arc<Control>,
    pub actor: String,
    pub reason: String,
}

/// The control plane, actor and reason of an action that needs `need` (a moderator's, an
/// admin's), or the refusal (no or wrong token, no control plane, bad body). With tokens
/// the actor is the token's name; without, `api:<actor from the body>`. `default_reason`
/// when the body gives none (`None`: a reason that is not blank is required, 400 without).
pub(super) fn action_request(
    s: &HttpState,
    headers: &HeaderMap,
    body: &Bytes,
    need: Role,
    default_reason: Option<&str>,
) -> Result<Action, ApiError> {
    let caller = s.auth.authorize(headers, need)?;
    let control = s.control.clone().ok_or(ApiError::NoControl)?;
    let b = action_body(body)?;
    let actor = caller
        .name
        .unwrap_or_else(|| format!("api:{}", b.actor.unwrap_or_else(|| "anonymous".into())));
    let reason = match (b.reason, default_reason) {
        (Some(r), Some(_)) => r,
        (None, Some(d)) => d.to_string(),
        (Some(r), None) if !r.trim().is_empty() => r,
        (_, None) => {
            return Err(ApiError::BadRequest(
                "reason: required for this action (body {\"reason\": ...})".into(),
            ));
        }
    };
    Ok(Action {
        control,
        actor,
        reason,
    })
}
