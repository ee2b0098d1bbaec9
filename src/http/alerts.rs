//! `/api/v1/alerts`: the moderation queue, newest first (viewer), one alert (viewer), and a
//! moderator's claim, confirmation or dismissal of one (audited).

use super::request::{Action, action_request, control_for, page_limit, path_id, query};
use super::{ApiError, HttpState, blocking};
use crate::config::Role;
use crate::domain::{AlertState, Reason};
use crate::http::events::LiveEvent;
use crate::moderation::store::{AlertAction, AlertFilter};
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Json};
use axum::routing::{get, post};

pub(super) fn router() -> Router<HttpState> {
    Router::new()
        .route("/api/v1/alerts", get(list))
        .route("/api/v1/alerts/{id}", get(one))
        .route("/api/v1/alerts/{id}/{action}", post(act))
}

#[derive(serde::Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct AlertQuery {
    state: Option<String>,
    stream: Option<String>,
    reason: Option<String>,
    before: Option<i64>,
    limit: Option<usize>,
}

async fn list(
    State(s): State<HttpState>,
    headers: HeaderMap,
    q: Result<Query<AlertQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let c = control_for(&s, &headers, Role::Viewer)?;
    let q = query(q)?;
    let state = match q.state.as_deref().map(|st| (st, AlertState::parse(st))) {
        None => None,
        Some((_, Some(state))) => Some(state),
        Some((st, None)) => {
            return Err(ApiError::BadRequest(format!(
                "state '{st}': expected one of {}",
                AlertState::names()
            )));
        }
    };
    let limit = page_limit(q.limit, 100)?;
    // An unknown reason is no error: no alert has it.
    let reason = match q.reason.as_deref().map(Reason::parse) {
        Some(None) => return Ok(Json(serde_json::json!({ "alerts": [] }))),
        r => r.flatten(),
    };
    let filter = AlertFilter {
        state,
        stream: q.stream,
        reason,
        before: q.before,
        limit,
    };
    let rows = blocking(move || c.store().list_alerts(&filter)).await?;
    Ok(Json(serde_json::json!({ "alerts": rows })))
}

async fn one(
    State(s): State<HttpState>,
    headers: HeaderMap,
    Path(raw): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let c = control_for(&s, &headers, Role::Viewer)?;
    let id = path_id("alert", &raw)?;
    match blocking(move || c.store().alert(id)).await? {
        Some(a) => Ok(Json(a)),
        None => Err(ApiError::NotFound(format!("no alert {id}"))),
    }
}

async fn act(
    State(s): State<HttpState>,
    headers: HeaderMap,
    Path((raw, action)): Path<(String, String)>,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let Action {
        control: c,
        actor,
        reason,
    } = action_request(
        &s,
        &headers,
        &body,
        Role::Moderator,
        Some("through the API"),
    )?;
    let Some(act) = AlertAction::parse(&action) else {
        return Err(ApiError::NotFound(format!(
            "no alert action '{action}' (claim, confirm, dismiss)"
        )));
    };
    let id = path_id("alert", &raw)?;
    let who = actor.clone();
    let a = blocking(move || c.store().act_on_alert(id, act, &actor, &reason)).await?;
    s.events.send(&LiveEvent::AlertActed {
        action: act,
        actor: who,
        id: a.id,
        state: a.state,
        stream: a.stream.clone(),
    });
    Ok(Json(a))
}
