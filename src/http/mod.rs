//! The HTTP server, on a small Tokio runtime of its own thread so that nothing on the frame
//! path ever waits on it. With `[[http.tokens]]`, `/api/v1` needs a bearer token of the right
//! role ([`auth`]) and ingest callbacks are accepted from loopback peers only; without, the
//! API is open and `http.listen` is loopback-only. Bodies over `http.max_body_bytes` get 413.
//! Bank contents are never served: only counts and versions.
//!
//! - `GET /healthz`: the process is up. `GET /readyz`: every bank is loaded (503 until then).
//! - `GET|POST /ingest/nginx/on_publish`, `/ingest/nginx/on_publish_done`: nginx-rtmp's
//!   callbacks (query string or form). 200 accepts; 403 refuses a halted stream key; 404 an
//!   app that is not watched; 400 a malformed request. Refusals change nothing.
//! - `GET /api/v1/streams` (viewer): every watched stream with its state and counters.
//! - `POST /api/v1/streams/{id}/halt` and `/reinstate` (moderator; optional JSON body
//!   `{"reason": "...", "actor": "..."}`, the actor being the token's name when tokens are
//!   configured); a discovered stream's id is `app/name`, sent URL-encoded (`live%2Fkey`).
//! - `GET /api/v1/alerts?state=&stream=&reason=&before=&limit=` (viewer): newest first.
//!   `GET /api/v1/alerts/{id}` (viewer). `POST /api/v1/alerts/{id}/claim|confirm|dismiss`
//!   (moderator; optional `{"reason": ...}`): 404 for an unknown alert, 409 for a transition
//!   its state does not allow; each action is audited.
//! - `GET /api/v1/alerts/{id}/evidence` (viewer): a classifier alert's thumbnail as a
//!   blurred greyscale PNG; `?reveal=true` (moderator) unblurred, with an audit entry.
//! - `GET /api/v1/audit?stream=&alert=&before=&limit=` (viewer): the audit log, newest first.
//! - `GET /api/v1/outbox?sink=&limit=` (viewer): messages not yet acknowledged by their sink.
//!   `POST /api/v1/outbox/{id}/discard` (admin; `{"reason": ...}` required): gives one up,
//!   unsent, with an audit entry.
//! - `GET /api/v1/events` (viewer): server-sent events ([`events`]).
//! - `GET /` and `/console/`: the moderator console ([`console`]); `GET /api/v1/session`
//!   (viewer): the caller's token name and role.
//! - `GET /api/v1/openapi.json` (no token): the OpenAPI 3.0 document of all of the above
//!   (`src/http/openapi.json`; tests/api_alerts.rs calls every path it lists).

pub mod auth;
pub mod console;
pub mod events;
mod logs;

use crate::analysis::bank::BankSet;
use crate::config::Role;
use crate::control::{Control, ControlError};
use crate::discovery::CallbackError;
use crate::moderation::store::{AlertAction, AlertFilter, TransitionError};
use auth::{Auth, Caller};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;

/// What the handlers can see.
#[derive(Clone)]
pub struct HttpState {
    pub banks: Arc<BankSet>,
    /// The control plane; `None` serves health and readiness only.
    pub control: Option<Arc<Control>>,
    /// Tokens and roles (default: none, the API is open) and the body limit.
    pub auth: Arc<Auth>,
    /// Live updates for `/api/v1/events`.
    pub events: Arc<events::Events>,
}

/// Why the server did not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("http.listen: cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{0}")]
    LocalAddr(std::io::Error),
    #[error("http.listen: {addr}: {source}")]
    Nonblocking {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("http: cannot start runtime: {0}")]
    Runtime(std::io::Error),
    #[error("{0}")]
    Thread(std::io::Error),
}

/// A running server; [`HttpServer::stop`] ends it.
pub struct HttpServer {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    /// Closed at stop: open event streams end, so the graceful shutdown can finish.
    events: Arc<events::Events>,
}

pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/", get(console::root))
        .route("/console", get(console::root))
        .route("/console/", get(console::index))
        .route("/console/console.js", get(console::script))
        .route("/console/console.css", get(console::style))
        .route("/api/v1/session", get(console::session))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/ingest/nginx/on_publish", get(on_publish).post(on_publish))
        .route(
            "/ingest/nginx/on_publish_done",
            get(on_publish_done).post(on_publish_done),
        )
        .route("/api/v1/streams", get(streams))
        .route("/api/v1/streams/{id}/halt", post(halt))
        .route("/api/v1/streams/{id}/reinstate", post(reinstate))
        .route("/api/v1/alerts", get(list_alerts))
        .route("/api/v1/alerts/{id}", get(get_alert))
        .route("/api/v1/alerts/{id}/evidence", get(evidence))
        .route("/api/v1/alerts/{id}/{action}", post(act_on_alert))
        .route("/api/v1/audit", get(logs::audit))
        .route("/api/v1/outbox", get(logs::outbox))
        .route("/api/v1/outbox/{id}/discard", post(logs::discard))
        .route("/api/v1/openapi.json", get(openapi))
        .route("/metrics", get(metrics))
        .route("/api/v1/events", get(live_events))
        .layer(DefaultBodyLimit::max(state.auth.max_body_bytes))
        .with_state(state)
}

fn error_response(e: &ControlError) -> Response {
    let code = match e {
        ControlError::Callback(CallbackError::Malformed(_)) => StatusCode::BAD_REQUEST,
        ControlError::Callback(CallbackError::UnknownApp(..)) => StatusCode::NOT_FOUND,
        ControlError::Halted(_) => StatusCode::FORBIDDEN,
        ControlError::UnknownStream(_) | ControlError::DiscoveryOff => StatusCode::NOT_FOUND,
        ControlError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    (code, Json(serde_json::json!({ "error": e.to_string() }))).into_response()
}

/// What a handler answers: `Err` is a refusal made by one of the checks below (401/403,
/// 404 without a control plane, 400 for a bad query, body or limit), so that handlers can
/// run them with `?`.
type Answer = Result<Response, Refusal>;

/// A refusal, as a response (boxed: `Response` is too large for a cheap `Err`).
struct Refusal(Box<Response>);

impl From<Box<Response>> for Refusal {
    fn from(r: Box<Response>) -> Refusal {
        Refusal(r)
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        *self.0
    }
}

/// The control plane for a caller allowed `need`, or the response refusing the request
/// (401/403 from [`Auth::authorize`], 404 without a control plane).
fn control_for(
    s: &HttpState,
    headers: &HeaderMap,
    need: Role,
) -> Result<Arc<Control>, Box<Response>> {
    s.auth.authorize(headers, need)?;
    s.control.clone().ok_or_else(|| Box::new(no_control()))
}

/// A `limit` query parameter: `default` when absent, else 1 to 1000.
fn page_limit(limit: Option<usize>, default: usize) -> Result<usize, Box<Response>> {
    match limit.unwrap_or(default) {
        l @ 1..=1000 => Ok(l),
        _ => Err(Box::new(json_error(
            StatusCode::BAD_REQUEST,
            "limit: 1 to 1000".into(),
        ))),
    }
}

/// A query string parsed into `T`, or 400 with the parser's message.
fn query<T>(
    q: Result<Query<T>, axum::extract::rejection::QueryRejection>,
) -> Result<T, Box<Response>> {
    q.map(|Query(q)| q)
        .map_err(|e| Box::new(json_error(StatusCode::BAD_REQUEST, e.body_text())))
}

fn no_control() -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(serde_json::json!({ "error": "no control plane in this server" })),
    )
        .into_response()
}

/// Runs blocking control-plane work (SQLite, HTTP to the ingest server, joining threads) off
/// the async runtime.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f)
        .await
        .expect("control-plane task panicked")
}

type CallbackParams = BTreeMap<String, String>;

/// Runs an ingest callback on the control plane: 200 `ok`, or the refusal's 4xx.
async fn callback(
    s: HttpState,
    params: CallbackParams,
    handle: fn(&Control, &CallbackParams) -> Result<(), ControlError>,
) -> Response {
    let Some(c) = s.control else {
        return no_control();
    };
    match blocking(move || handle(&c, &params)).await {
        Ok(()) => (StatusCode::OK, "ok\n").into_response(),
        Err(e) => error_response(&e),
    }
}

/// With tokens configured the server may listen beyond loopback; ingest callbacks (which
/// nginx cannot send a token with) are then accepted from loopback peers only.
fn callback_peer_refused(s: &HttpState, peer: SocketAddr) -> Option<Response> {
    // `to_canonical`: a dual-stack socket sees 127.0.0.1 as ::ffff:127.0.0.1.
    (s.auth.enabled() && !peer.ip().to_canonical().is_loopback()).then(|| {
        (
            StatusCode::FORBIDDEN,
            Json(serde_json::json!({ "error": format!("ingest callbacks are accepted from loopback only, not {}", peer.ip()) })),
        )
            .into_response()
    })
}

async fn on_publish(
    State(s): State<HttpState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Form(p): Form<CallbackParams>,
) -> Response {
    if let Some(r) = callback_peer_refused(&s, peer) {
        return r;
    }
    callback(s, p, Control::on_publish).await
}

async fn on_publish_done(
    State(s): State<HttpState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Form(p): Form<CallbackParams>,
) -> Response {
    if let Some(r) = callback_peer_refused(&s, peer) {
        return r;
    }
    callback(s, p, Control::on_publish_done).await
}

async fn streams(State(s): State<HttpState>, headers: HeaderMap) -> Answer {
    let c = control_for(&s, &headers, Role::Viewer)?;
    let list = blocking(move || {
        c.manager()
            .list()
            .iter()
            .map(|i| {
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
                    "units_received": stats.units_received.load(Ordering::Relaxed),
                    "frames_sampled": stats.frames_selected.load(Ordering::Relaxed),
                    "frames_analysed": stats.frames_analysed.load(Ordering::Relaxed),
                    "last_analysis_ms": match stats.last_analysis_ms.load(Ordering::Relaxed) {
                        0 => None,
                        t => Some(t),
                    },
                    "matches": stats.matches.load(Ordering::Relaxed),
                    "adaptive": (i.spec.sampler.mode == crate::config::SamplingMode::Adaptive).then(|| {
                        let triggers: serde_json::Map<String, serde_json::Value> =
                            crate::sampler::adaptive::Trigger::ALL
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
            })
            .collect::<Vec<_>>()
    })
    .await;
    Ok(Json(serde_json::json!({ "streams": list })).into_response())
}

#[derive(serde::Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct ActionBody {
    reason: Option<String>,
    actor: Option<String>,
}

fn action_body(body: &Bytes) -> Result<ActionBody, Box<Response>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(ActionBody::default());
    }
    serde_json::from_slice(body).map_err(|e| {
        Box::new(
            (
                StatusCode::BAD_REQUEST,
                Json(serde_json::json!({ "error": format!("body: {e} (expected {{\"reason\": ..., \"actor\": ...}})") })),
            )
                .into_response(),
        )
    })
}

/// The control plane, actor and reason of an action that needs `need` (a moderator's, an
/// admin's), or the response that refuses it (no or wrong token, no control plane, bad
/// body). With tokens the actor is the token's name; without, `api:<actor from the body>`.
/// `default_reason` when the body gives none (`None`: a reason that is not blank is
/// required, 400 without).
fn action_request(
    s: HttpState,
    headers: &HeaderMap,
    body: &Bytes,
    need: Role,
    default_reason: Option<&str>,
) -> Result<(Arc<Control>, String, String), Box<Response>> {
    let caller: Caller = s.auth.authorize(headers, need)?;
    let Some(c) = s.control else {
        return Err(Box::new(no_control()));
    };
    let b = action_body(body)?;
    let actor = caller
        .name
        .unwrap_or_else(|| format!("api:{}", b.actor.unwrap_or_else(|| "anonymous".into())));
    let reason = match (b.reason, default_reason) {
        (Some(r), Some(_)) => r,
        (None, Some(d)) => d.to_string(),
        (Some(r), None) if !r.trim().is_empty() => r,
        (_, None) => {
            return Err(Box::new(json_error(
                StatusCode::BAD_REQUEST,
                "reason: required for this action (body {\"reason\": ...})".into(),
            )));
        }
    };
    Ok((c, actor, reason))
}

fn json_error(code: StatusCode, message: String) -> Response {
    (code, Json(serde_json::json!({ "error": message }))).into_response()
}

fn store_error(e: impl std::fmt::Display) -> Response {
    json_error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
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

const ALERT_STATES: [&str; 4] = ["open", "claimed", "confirmed", "dismissed"];

async fn list_alerts(
    State(s): State<HttpState>,
    headers: HeaderMap,
    q: Result<Query<AlertQuery>, axum::extract::rejection::QueryRejection>,
) -> Answer {
    let c = control_for(&s, &headers, Role::Viewer)?;
    let q = query(q)?;
    if let Some(st) = &q.state
        && !ALERT_STATES.contains(&st.as_str())
    {
        return Ok(json_error(
            StatusCode::BAD_REQUEST,
            format!("state '{st}': expected one of {}", ALERT_STATES.join(", ")),
        ));
    }
    let limit = page_limit(q.limit, 100)?;
    let filter = AlertFilter {
        state: q.state,
        stream: q.stream,
        reason: q.reason,
        before: q.before,
        limit,
    };
    let answer = match blocking(move || c.store().list_alerts(&filter)).await {
        Ok(rows) => Json(serde_json::json!({ "alerts": rows })).into_response(),
        Err(e) => store_error(e),
    };
    Ok(answer)
}

/// A numeric id from the path (`what`: alert, message), or 400 naming it.
fn path_id(what: &str, raw: &str) -> Result<i64, Box<Response>> {
    raw.parse().map_err(|_| {
        Box::new(json_error(
            StatusCode::BAD_REQUEST,
            format!("{what} id '{raw}' is not a number"),
        ))
    })
}

async fn get_alert(
    State(s): State<HttpState>,
    headers: HeaderMap,
    Path(raw): Path<String>,
) -> Answer {
    let c = control_for(&s, &headers, Role::Viewer)?;
    let id = path_id("alert", &raw)?;
    Ok(match blocking(move || c.store().alert(id)).await {
        Ok(Some(a)) => Json(a).into_response(),
        Ok(None) => json_error(StatusCode::NOT_FOUND, format!("no alert {id}")),
        Err(e) => store_error(e),
    })
}

async fn act_on_alert(
    State(s): State<HttpState>,
    headers: HeaderMap,
    Path((raw, action)): Path<(String, String)>,
    body: Bytes,
) -> Answer {
    let s_events = s.events.clone();
    let (c, actor, reason) =
        action_request(s, &headers, &body, Role::Moderator, Some("through the API"))?;
    let Some(act) = AlertAction::parse(&action) else {
        return Ok(json_error(
            StatusCode::NOT_FOUND,
            format!("no alert action '{action}' (claim, confirm, dismiss)"),
        ));
    };
    let id = path_id("alert", &raw)?;
    let (events, who) = (s_events, actor.clone());
    let answer = match blocking(move || c.store().act_on_alert(id, act, &actor, &reason)).await {
        Ok(a) => {
            events.send(
                "alert",
                serde_json::json!({
                    "id": a.id, "stream": a.stream, "state": a.state, "action": action, "actor": who,
                }),
            );
            Json(a).into_response()
        }
        Err(e @ TransitionError::UnknownAlert(_)) => {
            json_error(StatusCode::NOT_FOUND, e.to_string())
        }
        Err(e @ TransitionError::WrongState { .. }) => {
            json_error(StatusCode::CONFLICT, e.to_string())
        }
        Err(e) => store_error(e),
    };
    Ok(answer)
}

/// `/metrics` in the Prometheus text format (viewer when tokens are configured).
async fn metrics(State(s): State<HttpState>, headers: HeaderMap) -> Answer {
    use crate::telemetry::prometheus::{self, Inputs};
    let c = control_for(&s, &headers, Role::Viewer)?;
    let text = blocking(move || {
        let streams = c.manager().list();
        let counts = c
            .store()
            .counts()
            .inspect_err(|e| tracing::warn!(error = %e, "metrics: store counts unavailable"))
            .ok();
        prometheus::render(&Inputs {
            streams: streams
                .iter()
                .map(|i| (i.status().state.to_string(), &*i.stats))
                .collect(),
            analysis_queue: c.manager().analysis_queue(),
            store: counts.as_ref(),
        })
    })
    .await;
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        text,
    )
        .into_response())
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
    q: Result<Query<EvidenceQuery>, axum::extract::rejection::QueryRejection>,
) -> Answer {
    let q = query(q)?;
    let need = if q.reveal {
        Role::Moderator
    } else {
        Role::Viewer
    };
    let caller = s.auth.authorize(&headers, need)?;
    let Some(c) = s.control else {
        return Ok(no_control());
    };
    let id = path_id("alert", &raw)?;
    let actor = caller.name.unwrap_or_else(|| "api:anonymous".into());
    let who = actor.clone();
    let found = blocking(move || -> Result<Option<(String, crate::moderation::store::Thumbnail)>, String> {
        let mut store = c.store();
        let Some(alert) = store.alert(id).map_err(|e| e.to_string())? else {
            return Ok(None);
        };
        let Some(thumb) = store.evidence(id).map_err(|e| e.to_string())? else {
            return Err(format!(
                "alert {id} has no evidence (hash matches keep no pixels; store.evidence may be off)"
            ));
        };
        if q.reveal {
            store
                .record_event(&alert.stream, "evidence_revealed", &actor, "", "", Some(id))
                .map_err(|e| e.to_string())?;
        }
        Ok(Some((alert.stream, thumb)))
    })
    .await;
    let thumb = match found {
        Ok(Some((stream, t))) => {
            if q.reveal {
                // Other consoles show the new audit entry without waiting for a reload.
                s.events.send(
                    "audit",
                    serde_json::json!({ "event": "evidence_revealed", "alert_id": id, "stream": stream, "actor": who }),
                );
            }
            t
        }
        Ok(None) => return Ok(json_error(StatusCode::NOT_FOUND, format!("no alert {id}"))),
        Err(e) => return Ok(json_error(StatusCode::NOT_FOUND, e)),
    };
    let Some(img) = image::GrayImage::from_raw(thumb.width as u32, thumb.height as u32, thumb.grey)
    else {
        return Ok(store_error("stored evidence has the wrong size"));
    };
    let img = if q.reveal {
        img
    } else {
        image::imageops::blur(&img, thumb.width as f32 * EVIDENCE_BLUR)
    };
    let mut png = std::io::Cursor::new(Vec::new());
    if let Err(e) = img.write_to(&mut png, image::ImageFormat::Png) {
        return Ok(store_error(e));
    }
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, "image/png"),
            (axum::http::header::CACHE_CONTROL, "no-store"),
        ],
        png.into_inner(),
    )
        .into_response())
}

async fn live_events(State(s): State<HttpState>, headers: HeaderMap) -> Answer {
    use axum::response::sse::{Event, KeepAlive, Sse};
    use tokio::sync::broadcast::error::RecvError;
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
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response())
}

/// The API's OpenAPI document (public: it describes, it holds no data).
pub const OPENAPI: &str = include_str!("openapi.json");

async fn openapi() -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        OPENAPI,
    )
        .into_response()
}

async fn halt(
    State(s): State<HttpState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Answer {
    let events = s.events.clone();
    let (c, actor, reason) = action_request(
        s,
        &headers,
        &body,
        Role::Moderator,
        Some("halted through the API"),
    )?;
    let (stream, who) = (id.clone(), actor.clone());
    let answer = match blocking(move || c.halt(&id, &actor, &reason, None)).await {
        Ok(report) => {
            events.send(
                "stream",
                serde_json::json!({ "stream": stream, "halted": true, "actor": who }),
            );
            Json(report).into_response()
        }
        Err(e) => error_response(&e),
    };
    Ok(answer)
}

async fn reinstate(
    State(s): State<HttpState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Answer {
    let events = s.events.clone();
    let (c, actor, reason) = action_request(
        s,
        &headers,
        &body,
        Role::Moderator,
        Some("reinstated through the API"),
    )?;
    let (id2, who) = (id.clone(), actor.clone());
    let answer = match blocking(move || c.reinstate(&id2, &actor, &reason)).await {
        Ok(changed) => {
            if changed {
                events.send(
                    "stream",
                    serde_json::json!({ "stream": id, "halted": false, "actor": who }),
                );
            }
            Json(serde_json::json!({ "stream": id, "reinstated": changed })).into_response()
        }
        Err(e) => error_response(&e),
    };
    Ok(answer)
}

async fn readyz(State(s): State<HttpState>) -> impl IntoResponse {
    let ready = s.banks.ready();
    let body = serde_json::json!({ "ready": ready, "banks": s.banks.status() });
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body))
}

impl HttpServer {
    /// Binds `addr` now (so that a taken port is a start-up error naming it) and serves on a
    /// thread of its own.
    pub fn start(addr: SocketAddr, state: HttpState) -> Result<HttpServer, ServerError> {
        let listener = std::net::TcpListener::bind(addr)
            .map_err(|source| ServerError::Bind { addr, source })?;
        let addr = listener.local_addr().map_err(ServerError::LocalAddr)?;
        listener
            .set_nonblocking(true)
            .map_err(|source| ServerError::Nonblocking { addr, source })?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(ServerError::Runtime)?;
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let events = state.events.clone();
        let app = router(state);
        let thread = std::thread::Builder::new()
            .name("http".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => l,
                        Err(e) => {
                            tracing::error!(%addr, error = %e, "http server cannot start");
                            return;
                        }
                    };
                    let served = axum::serve(
                        listener,
                        app.into_make_service_with_connect_info::<SocketAddr>(),
                    )
                    .with_graceful_shutdown(async {
                        let _ = stop_rx.await;
                    })
                    .await;
                    if let Err(e) = served {
                        tracing::error!(%addr, error = %e, "http server failed");
                    }
                });
            })
            .map_err(ServerError::Thread)?;
        tracing::info!(%addr, "http server listening");
        Ok(HttpServer {
            addr,
            stop: Some(stop_tx),
            thread: Some(thread),
            events,
        })
    }

    pub fn stop(mut self) {
        self.events.close();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
