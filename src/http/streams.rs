//! `/api/v1/streams`: every watched stream with its state and counters (viewer), and a
//! moderator's halt and reinstatement of one. `/api/v1/halts`: the deny list (viewer),
//! streams no longer live included.

use super::request::{Action, action_request, control_for};
use super::{ApiError, HttpState, blocking};
use crate::config::{Role, SamplingMode};
use crate::control::Control;
use crate::http::events::LiveEvent;
use crate::sampler::adaptive::Trigger;
use crate::supervisor::StreamInfo;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Json};
use axum::routing::{get, post};
use std::sync::atomic::Ordering;

pub(super) fn router() -> Router<HttpState> {
    Router::new()
        .route("/api/v1/streams", get(list))
        .route("/api/v1/streams/{id}/halt", post(halt))
        .route("/api/v1/streams/{id}/reinstate", post(reinstate))
        .route("/api/v1/halts", get(halts))
}

/// Every stream on the deny list, newest halt first, with who halted it, why and when, and
/// whether it is watched now: what a moderator reinstates from.
async fn halts(
    State(s): State<HttpState>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    let c = control_for(&s, &headers, Role::Viewer)?;
    let rows = blocking(move || {
        c.store().halts().map(|rows| {
            rows.into_iter()
                .map(|h| {
                    let watched = c.manager().get(&h.stream).is_some();
                    let mut v = serde_json::json!(h);
                    v["watched"] = watched.into();
                    v
                })
                .collect::<Vec<_>>()
        })
    })
    .await?;
    Ok(Json(serde_json::json!({ "halts": rows })))
}

async fn list(
    State(s): State<HttpState>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    let c = control_for(&s, &headers, Role::Viewer)?;
    let list = blocking(move || {
        c.manager()
            .list()
            .iter()
            .map(|i| stream(&c, i))
            .collect::<Vec<_>>()
    })
    .await;
    Ok(Json(serde_json::json!({ "streams": list })))
}

/// One stream as `GET /api/v1/streams` shows it.
fn stream(c: &Control, i: &StreamInfo) -> serde_json::Value {
    let st = i.status();
    let stats = &i.stats;
    serde_json::json!({
        "id": i.spec.id,
        "origin": i.spec.origin,
        "pipeline": i.spec.pipeline,
        "mode": format!("{:?}", i.spec.sampler.mode).to_lowercase(),
        "interval_ms": i.spec.sampler.interval_ms,
        "state": st.state,
        "reason": st.reason,
        "halted": c.is_halted(&i.spec.id),
        "reconnects": st.restarts,
        "stalls": st.stalls,
        "started_at_ms": st.started_at_ms,
        "live": stats.live.load(Ordering::Relaxed),
        "units_received": stats.units_received.load(Ordering::Relaxed),
        "units_dropped": stats.units_dropped.load(Ordering::Relaxed),
        "frames_dropped": stats.frames_dropped.load(Ordering::Relaxed),
        "frames_sampled": stats.frames_selected.load(Ordering::Relaxed),
        "frames_analysed": stats.frames_analysed.load(Ordering::Relaxed),
        "last_analysis_ms": match stats.last_analysis_ms.load(Ordering::Relaxed) {
            0 => None,
            t => Some(t),
        },
        "matches": stats.matches.load(Ordering::Relaxed),
        "adaptive": (i.spec.sampler.mode == SamplingMode::Adaptive).then(|| {
            let triggers: serde_json::Map<String, serde_json::Value> = Trigger::ALL
                .iter()
                .zip(&stats.triggers)
                .map(|(t, n)| (t.name().to_string(), n.load(Ordering::Relaxed).into()))
                .collect();
            serde_json::json!({
                "dense": stats.dense.load(Ordering::Relaxed),
                "current_interval_ms": stats.interval_ms.load(Ordering::Relaxed),
                "missed_gaps": stats.missed_gaps.load(Ordering::Relaxed),
                "triggers": triggers,
            })
        }),
        "metadata": i.spec.metadata,
    })
}

async fn halt(
    State(s): State<HttpState>,
    headers: HeaderMap,
    Path(id): Path<String>,
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
        Some("halted through the API"),
    )?;
    let (stream, who) = (id.clone(), actor.clone());
    let report = blocking(move || c.halt(&id, &actor, &reason, None)).await?;
    s.events.send(&LiveEvent::Stream {
        actor: Some(who),
        alert_id: None,
        halted: true,
        stream,
    });
    Ok(Json(report))
}

async fn reinstate(
    State(s): State<HttpState>,
    headers: HeaderMap,
    Path(id): Path<String>,
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
        Some("reinstated through the API"),
    )?;
    let (id2, who) = (id.clone(), actor.clone());
    let changed = blocking(move || c.reinstate(&id2, &actor, &reason)).await?;
    if changed {
        s.events.send(&LiveEvent::Stream {
            actor: Some(who),
            alert_id: None,
            halted: false,
            stream: id.clone(),
        });
    }
    Ok(Json(
        serde_json::json!({ "stream": id, "reinstated": changed }),
    ))
}
