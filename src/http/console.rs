//! The moderator console: one static page (HTML, CSS and plain JavaScript, embedded in the
//! binary: no build step, nothing fetched from elsewhere) that uses the same `/api/v1` as
//! any other client, with the token the moderator types in (kept in the tab's
//! `sessionStorage`, sent as `Authorization: Bearer`). The page holds no data itself, so it
//! is served without a token; everything it shows comes from the API, which checks the
//! token and role of every call.
//!
//! - `GET /` redirects to `/console/`; `GET /console/` the page, `/console/console.js` and
//!   `/console/console.css` its script and style. Served with a Content-Security-Policy
//!   that allows this origin only (no inline script, images from this origin or `blob:`)
//!   and refuses framing.
//! - `GET /api/v1/session` (viewer): who the token is (`name`, `role`) and whether the
//!   server has tokens at all (`tokens`), so that the page can offer only what the role may do.

use super::{ApiError, HttpState};
use crate::config::Role;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Json, Redirect, Response};
use axum::routing::get;

const INDEX: &str = include_str!("console/index.html");
const SCRIPT: &str = include_str!("console/console.js");
const STYLE: &str = include_str!("console/console.css");

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; \
    connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'";

pub(super) fn router() -> Router<HttpState> {
    Router::new()
        .route("/", get(root))
        .route("/console", get(root))
        .route("/console/", get(index))
        .route("/console/console.js", get(script))
        .route("/console/console.css", get(style))
        .route("/api/v1/session", get(session))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    r
}

pub async fn root() -> Redirect {
    Redirect::to("/console/")
}

pub async fn index() -> Response {
    asset("text/html; charset=utf-8", INDEX)
}

pub async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

pub async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}

/// Who the caller is: `{"name", "role", "tokens"}` (`name` is null without tokens, when
/// everyone on loopback is an admin).
pub async fn session(
    State(s): State<HttpState>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    let c = s.auth.authorize(&headers, Role::Viewer)?;
    Ok(Json(serde_json::json!({
        "name": c.name,
        "role": c.role.as_str(),
        "tokens": s.auth.enabled(),
    })))
}
