//! Live updates for the console: server-sent events at `GET /api/v1/events` (viewer).
//!
//! Event kinds: `alert` (an alert raised, a finding attached to it, or a moderator's action
//! on it), `stream` (a halt or reinstatement) and `audit` (evidence revealed, an outbox
//! message discarded), each with a JSON body, one [`LiveEvent`]; `lagged` (with the number
//! of events this client missed because it read too slowly: reload the lists). Nothing is
//! replayed: a client that connects gets what happens from then on.

use super::{ApiError, HttpState};
use crate::config::Role;
use crate::domain::{Action, AlertAction, AlertState, AuditEvent, Reason};
use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use std::sync::Arc;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, watch};

pub(super) fn router() -> Router<HttpState> {
    Router::new().route("/api/v1/events", get(live_events))
}

/// One live update. Each body's fields are declared in alphabetical order: the order they
/// are sent in.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(untagged)]
pub enum LiveEvent {
    /// `alert`: the recorder raised an alert or attached a finding to one.
    AlertRecorded {
        action: Action,
        /// The bank or model.
        bank: String,
        frame_pts_ms: u64,
        id: i64,
        /// The bank item or label.
        item_id: String,
        /// A new alert (false: a finding attached to an open one).
        raised: bool,
        reason: Reason,
        score: Option<f64>,
        stream: String,
    },
    /// `alert`: a moderator claimed, confirmed or dismissed an alert.
    AlertActed {
        action: AlertAction,
        actor: String,
        id: i64,
        state: AlertState,
        stream: String,
    },
    /// `stream`: a stream halted (by the policy, for `alert_id`, or by `actor`) or
    /// reinstated.
    Stream {
        #[serde(skip_serializing_if = "Option::is_none")]
        actor: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        alert_id: Option<i64>,
        halted: bool,
        stream: String,
    },
    /// `audit`: an audit entry other consoles show without waiting for a reload.
    Audit {
        actor: String,
        alert_id: Option<i64>,
        event: AuditEvent,
        /// The sink of a discarded message.
        #[serde(skip_serializing_if = "Option::is_none")]
        sink: Option<String>,
        stream: String,
    },
}

impl LiveEvent {
    /// The SSE event name.
    pub fn kind(&self) -> &'static str {
        match self {
            LiveEvent::AlertRecorded { .. } | LiveEvent::AlertActed { .. } => "alert",
            LiveEvent::Stream { .. } => "stream",
            LiveEvent::Audit { .. } => "audit",
        }
    }
}

/// The hub every producer sends to and every open `/api/v1/events` reads from.
#[derive(Debug)]
pub struct Events {
    tx: broadcast::Sender<(&'static str, String)>,
    stop: watch::Sender<bool>,
}

impl Default for Events {
    fn default() -> Self {
        let (tx, _) = broadcast::channel(256);
        let (stop, _) = watch::channel(false);
        Events { tx, stop }
    }
}

impl Events {
    pub fn new() -> Arc<Events> {
        Arc::new(Events::default())
    }

    /// Sends an event to every connected client (none connected: dropped).
    pub fn send(&self, event: &LiveEvent) {
        match serde_json::to_string(event) {
            Ok(data) => {
                let _ = self.tx.send((event.kind(), data));
            }
            Err(e) => tracing::error!(error = %e, ?event, "live event not serialised"),
        }
    }

    pub fn subscribe(
        &self,
    ) -> (
        broadcast::Receiver<(&'static str, String)>,
        watch::Receiver<bool>,
    ) {
        (self.tx.subscribe(), self.stop.subscribe())
    }

    /// Ends every open event stream (so that the server can shut down).
    pub fn close(&self) {
        let _ = self.stop.send(true);
    }
}

/// `GET /api/v1/events`: the stream of events, until the client goes or the server stops.
async fn live_events(
    State(s): State<HttpState>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    s.auth.authorize(&headers, Role::Viewer)?;
    let (rx, stop) = s.events.subscribe();
    let stream = futures_util::stream::unfold((rx, stop), |(mut rx, mut stop)| async move {
        let next = tokio::select! {
            r = rx.recv() => r,
            _ = stop.wait_for(|stopped| *stopped) => return None,
        };
        let event = match next {
            Ok((kind, data)) => Event::default().event(kind).data(data),
            Err(RecvError::Lagged(n)) => Event::default().event("lagged").data(n.to_string()),
            Err(RecvError::Closed) => return None,
        };
        Some((Ok::<_, std::convert::Infallible>(event), (rx, stop)))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
