//! What a handler refuses with: an [`ApiError`] answers its status and `{"error": message}`
//! (401 adds `WWW-Authenticate`), so that handlers can run their checks with `?`.

use crate::control::ControlError;
use crate::discovery::CallbackError;
use crate::moderation::store::{StoreError, TransitionError};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Json, Response};

/// A refused request; its Display is the `error` of the JSON body.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: a malformed query, path, body or limit.
    #[error("{0}")]
    BadRequest(String),
    /// 401: no valid bearer token.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: a token of a lower role, a request the open API refuses, a peer not on loopback.
    #[error("{0}")]
    Forbidden(String),
    /// 404: no such alert, message or action.
    #[error("{0}")]
    NotFound(String),
    /// 408: the request body did not arrive within `http.body_timeout_ms`.
    #[error("{0}")]
    Timeout(String),
    /// 413: the request body is over `http.max_body_bytes`.
    #[error("{0}")]
    TooLarge(String),
    /// 404: this server serves health and readiness only.
    #[error("no control plane in this server")]
    NoControl,
    /// 500: the store or the evidence failed.
    #[error("{0}")]
    Internal(String),
    /// 400, 403, 404 or 500, by what the control plane refused.
    #[error(transparent)]
    Control(#[from] ControlError),
    /// 500.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// 404 for an unknown alert, 409 for a transition its state does not allow.
    #[error(transparent)]
    Transition(#[from] TransitionError),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::NotFound(_) | ApiError::NoControl => StatusCode::NOT_FOUND,
            ApiError::Internal(_) | ApiError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Control(e) => match e {
                ControlError::Callback(CallbackError::Malformed(_)) => StatusCode::BAD_REQUEST,
                ControlError::Callback(CallbackError::UnknownApp(..)) => StatusCode::NOT_FOUND,
                ControlError::Halted(_) => StatusCode::FORBIDDEN,
                ControlError::UnknownStream(_) | ControlError::DiscoveryOff => {
                    StatusCode::NOT_FOUND
                }
                ControlError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
                ControlError::StoreDown(_) => StatusCode::SERVICE_UNAVAILABLE,
            },
            ApiError::Transition(e) => match e {
                TransitionError::UnknownAlert(_) => StatusCode::NOT_FOUND,
                TransitionError::WrongState { .. } => StatusCode::CONFLICT,
                TransitionError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = self.status();
        let mut r = (code, Json(serde_json::json!({ "error": self.to_string() }))).into_response();
        if code == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer realm=\"streamguard\""),
            );
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_bodies_and_the_bearer_challenge() {
        let r = ApiError::Unauthorized("unknown token".into()).into_response();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            r.headers()[header::WWW_AUTHENTICATE],
            "Bearer realm=\"streamguard\""
        );
        assert_eq!(r.headers()[header::CONTENT_TYPE], "application/json");
        let r = ApiError::Forbidden("no".into()).into_response();
        assert!(r.headers().get(header::WWW_AUTHENTICATE).is_none());
        assert_eq!(ApiError::NoControl.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            ApiError::NoControl.to_string(),
            "no control plane in this server"
        );
        let e = ApiError::from(TransitionError::WrongState {
            id: 1,
            state: crate::domain::AlertState::Dismissed,
            wanted: crate::domain::AlertState::Claimed,
        });
        assert_eq!(e.status(), StatusCode::CONFLICT);
        assert_eq!(e.to_string(), "alert 1 is dismissed; it cannot be claimed");
        assert_eq!(
            ApiError::from(ControlError::Halted("live/k".into())).status(),
            StatusCode::FORBIDDEN
        );
    }
}
