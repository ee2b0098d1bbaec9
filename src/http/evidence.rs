//! `GET /api/v1/alerts/{id}/evidence` (viewer): a classifier alert's thumbnail as a blurred
//! greyscale PNG; `?reveal=true` (moderator) unblurred, with an audit entry.

use super::request::{path_id, query};
use super::{ApiError, HttpState, blocking};
use crate::config::Role;
use crate::domain::AuditEvent;
use crate::http::events::LiveEvent;
use crate::moderation::store::Thumbnail;
use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::IntoResponse;
use axum::routing::get;

pub(super) fn router() -> Router<HttpState> {
    Router::new().route("/api/v1/alerts/{id}/evidence", get(evidence))
}

#[derive(serde::Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct EvidenceQuery {
    reveal: bool,
}

/// Blur of served evidence, as a fraction of the thumbnail's width (Gaussian sigma).
const EVIDENCE_BLUR: f32 = 1.0 / 12.0;

async fn evidence(
    State(s): State<HttpState>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    q: Result<Query<EvidenceQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let reveal = query(q)?.reveal;
    let need = if reveal {
        Role::Moderator
    } else {
        Role::Viewer
    };
    let caller = s.auth.authorize(&headers, need)?;
    let c = s.control.clone().ok_or(ApiError::NoControl)?;
    let id = path_id("alert", &raw)?;
    let actor = caller.name.unwrap_or_else(|| "api:anonymous".into());
    let who = actor.clone();
    let (stream, thumb) = blocking(move || -> Result<(String, Thumbnail), String> {
        let mut store = c.store();
        let Some(alert) = store.alert(id).map_err(|e| e.to_string())? else {
            return Err(format!("no alert {id}"));
        };
        let Some(thumb) = store.evidence(id).map_err(|e| e.to_string())? else {
            return Err(format!(
                "alert {id} has no evidence (hash matches keep no pixels; store.evidence may be off)"
            ));
        };
        if reveal {
            store
                .record_event(&alert.stream, AuditEvent::EvidenceRevealed, &actor, "", "", Some(id))
                .map_err(|e| e.to_string())?;
        }
        Ok((alert.stream, thumb))
    })
    .await
    // Store failures too: that is how this answered from the start.
    .map_err(ApiError::NotFound)?;
    if reveal {
        // Other consoles show the new audit entry without waiting for a reload.
        s.events.send(&LiveEvent::Audit {
            actor: who,
            alert_id: Some(id),
            event: AuditEvent::EvidenceRevealed,
            sink: None,
            stream,
        });
    }
    let png = png(thumb, reveal)?;
    Ok((
        [
            (header::CONTENT_TYPE, "image/png"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        png,
    ))
}

/// The thumbnail as a PNG, blurred unless `reveal`.
fn png(thumb: Thumbnail, reveal: bool) -> Result<Vec<u8>, ApiError> {
    let (width, height) = (thumb.width, thumb.height);
    let Some(img) = image::GrayImage::from_raw(width as u32, height as u32, thumb.grey) else {
        return Err(ApiError::Internal(
            "stored evidence has the wrong size".into(),
        ));
    };
    let img = if reveal {
        img
    } else {
        image::imageops::blur(&img, width as f32 * EVIDENCE_BLUR)
    };
    let mut png = std::io::Cursor::new(Vec::new());
    img.write_to(&mut png, image::ImageFormat::Png)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(png.into_inner())
}
