//! Per-stream supervisors. Each watched stream has one thread that builds its pipeline from
//! its template, runs a [`session::Session`], watches it, and on an error or a stall (no
//! access unit for `supervisor.stall_ms`) starts another after an exponential backoff, at most
//! `max_restarts` times per `restart_window_s`. One stream's trouble never touches another's:
//! each has its own pipelines, thread and counters.

pub mod session;

use crate::config::{SamplerConfig, SupervisorConfig};
use crate::decode::Frame;
use crate::domain::StreamState;
use crate::ingest::{self, template::Templates};
use crate::telemetry::{StreamStats, unix_ms};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, bounded};
use serde::Serialize;
use session::{Exit, SessionError};
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Where a stream came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// `[[streams]]` in config: ends for good when its source ends.
    Static,
    /// Found at the ingest server: restarted when its source ends, until the server says the
    /// publisher is gone.
    Discovered,
}

/// What to run for a stream.
#[derive(Debug, Clone)]
pub struct StreamSpec {
    pub id: String,
    pub pipeline: String,
    pub params: BTreeMap<String, String>,
    pub sampler: SamplerConfig,
    pub origin: Origin,
    /// Publish URL arguments and the like.
    pub metadata: BTreeMap<String, String>,
}

/// A stream's state as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct StreamStatus {
    pub state: StreamState,
    /// Why the stream is restarting, failed or stopped.
    pub reason: Option<String>,
    pub restarts: u64,
    pub stalls: u64,
    pub started_at_ms: u64,
}

/// A watched stream: its spec, counters and state.
pub struct StreamInfo {
    pub spec: StreamSpec,
    pub stats: Arc<StreamStats>,
    status: Mutex<StreamStatus>,
    halted: AtomicBool,
}

impl StreamInfo {
    pub fn status(&self) -> StreamStatus {
        self.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn set(&self, state: StreamState, reason: Option<String>) {
        let mut s = self.status.lock().unwrap_or_else(|e| e.into_inner());
        s.state = state;
        s.reason = reason;
    }

    fn bump(&self, stall: bool) {
        let mut s = self.status.lock().unwrap_or_else(|e| e.into_inner());
        s.restarts += 1;
        if stall {
            s.stalls += 1;
        }
    }

    pub fn is_halted(&self) -> bool {
        self.halted.load(Ordering::Acquire)
    }

    /// Marks the stream halted: its supervisor will not restart it.
    pub fn set_halted(&self, halted: bool) {
        self.halted.store(halted, Ordering::Release);
    }

    /// Whether its supervisor has given up or finished (ended, failed, stopped, halted).
    pub fn is_done(&self) -> bool {
        self.status().state.is_done()
    }
}

/// What every supervisor needs.
pub struct StreamContext {
    pub templates: Templates,
    pub queue: usize,
    /// Where decoded frames go; taken (`None`) at shutdown so that the channel can close.
    pub frames: Mutex<Option<Sender<Frame>>>,
    pub supervisor: SupervisorConfig,
    /// Classifiers score every analysed frame.
    pub classified: bool,
}

struct Managed {
    info: Arc<StreamInfo>,
    stop: Sender<()>,
    thread: JoinHandle<()>,
}

/// Every watched stream, each with its supervisor.
pub struct StreamManager {
    ctx: Arc<StreamContext>,
    streams: Mutex<BTreeMap<String, Managed>>,
}

impl StreamManager {
    /// Decoded frames waiting for an analysis thread.
    pub fn analysis_queue(&self) -> usize {
        self.ctx
            .frames
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map_or(0, |tx| tx.len())
    }

    pub fn new(ctx: StreamContext) -> Arc<StreamManager> {
        Arc::new(StreamManager {
            ctx: Arc::new(ctx),
            streams: Mutex::new(BTreeMap::new()),
        })
    }

    /// Starts watching a stream. A stream already watched and not done is left as it is
    /// (callbacks and reconciliation may both report it); a done one is replaced.
    pub fn start(&self, spec: StreamSpec) -> Arc<StreamInfo> {
        let mut streams = self.streams.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(m) = streams.get(&spec.id)
            && !m.info.is_done()
        {
            return m.info.clone();
        }
        if let Some(old) = streams.remove(&spec.id) {
            let _ = old.stop.send(());
            let _ = old.thread.join();
        }
        let info = Arc::new(StreamInfo {
            spec,
            stats: Arc::new(StreamStats::default()),
            status: Mutex::new(StreamStatus {
                state: StreamState::Starting,
                reason: None,
                restarts: 0,
                stalls: 0,
                started_at_ms: unix_ms(),
            }),
            halted: AtomicBool::new(false),
        });
        let (stop_tx, stop_rx) = bounded::<()>(1);
        let (ctx, i) = (self.ctx.clone(), info.clone());
        let thread = std::thread::Builder::new()
            .name(format!("supervise-{}", info.spec.id))
            .spawn(move || {
                supervise(&ctx, &i, &stop_rx);
                // Its pipelines, queues and buffers are freed: give the memory back.
                crate::telemetry::release_memory();
            })
            .expect("spawn supervisor thread");
        tracing::info!(stream = %info.spec.id, origin = ?info.spec.origin, pipeline = %info.spec.pipeline,
            metadata = ?info.spec.metadata, "watching stream");
        streams.insert(
            info.spec.id.clone(),
            Managed {
                info: info.clone(),
                stop: stop_tx,
                thread,
            },
        );
        info
    }

    /// Stops watching a stream and forgets it. Returns whether it was watched.
    pub fn stop(&self, id: &str, why: &str) -> bool {
        let removed = self
            .streams
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
        match removed {
            Some(m) => {
                let _ = m.stop.send(());
                let _ = m.thread.join();
                let t = m.info.stats.snapshot();
                tracing::info!(
                    stream = id,
                    why,
                    units_received = t.units_received,
                    units_decoded = t.units_decoded,
                    units_dropped = t.units_dropped,
                    frames_analysed = t.frames_analysed,
                    frames_dropped = t.frames_dropped,
                    frames_low_quality = t.frames_low_quality,
                    matches = t.matches,
                    allowed = t.allowed,
                    frames_classified = t.frames_classified,
                    classifier_findings = t.classifier_findings,
                    "stopped watching stream"
                );
                true
            }
            None => false,
        }
    }

    pub fn get(&self, id: &str) -> Option<Arc<StreamInfo>> {
        self.streams
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .map(|m| m.info.clone())
    }

    pub fn list(&self) -> Vec<Arc<StreamInfo>> {
        self.streams
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .map(|m| m.info.clone())
            .collect()
    }

    /// Stops every supervisor (each stops its session; queued frames still get analysed) and
    /// lets go of the frame channel; no stream can be started afterwards.
    pub fn shutdown(&self) {
        self.ctx
            .frames
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let all: Vec<Managed> = {
            let mut streams = self.streams.lock().unwrap_or_else(|e| e.into_inner());
            std::mem::take(&mut *streams).into_values().collect()
        };
        for m in &all {
            let _ = m.stop.send(());
        }
        for m in all {
            let _ = m.thread.join();
            let t = m.info.stats.snapshot();
            tracing::info!(stream = %m.info.spec.id, units_received = t.units_received, units_decoded = t.units_decoded,
                units_dropped = t.units_dropped, frames_analysed = t.frames_analysed, frames_dropped = t.frames_dropped,
                frames_low_quality = t.frames_low_quality, matches = t.matches, allowed = t.allowed,
                frames_classified = t.frames_classified, classifier_findings = t.classifier_findings,
                "stream stopped");
        }
    }
}

/// Renders and builds the stream's ingest pipeline and starts a session on it.
fn start_session(ctx: &StreamContext, info: &StreamInfo) -> Result<session::Session, SessionError> {
    let spec = &info.spec;
    let description = ctx
        .templates
        .get(&spec.pipeline)
        .and_then(|t| t.render(&spec.params))
        .map_err(|error| SessionError::Template {
            stream: spec.id.clone(),
            error,
        })?;
    let frames = ctx
        .frames
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
        .ok_or(SessionError::ShuttingDown)?;
    let pipeline = ingest::build(&spec.id, &description)?;
    session::start(
        &spec.id,
        pipeline,
        spec.sampler.clone(),
        frames,
        info.stats.clone(),
        session::SessionOptions {
            queue: ctx.queue,
            high_risk: spec.sampler.adaptive.is_high_risk(&spec.metadata),
            lockstep: false,
            classified: ctx.classified,
        },
    )
}

/// Why a session came to an end, as the supervisor sees it.
enum Outcome {
    Exit(Exit),
    Stalled,
    StopRequested,
}

/// Runs one session and waits for it to end, stall, or be stopped.
fn watch(
    ctx: &StreamContext,
    info: &StreamInfo,
    session: session::Session,
    stop: &Receiver<()>,
) -> Outcome {
    let stall = Duration::from_millis(ctx.supervisor.stall_ms);
    let mut last_units = info.stats.units_received.load(Ordering::Relaxed);
    let mut last_progress = Instant::now();
    info.set(StreamState::Running, None);
    loop {
        match stop.recv_timeout(Duration::from_millis(100)) {
            Ok(()) | Err(RecvTimeoutError::Disconnected) => {
                session.finish();
                return Outcome::StopRequested;
            }
            Err(RecvTimeoutError::Timeout) => {}
        }
        if session.is_finished() {
            return Outcome::Exit(session.finish());
        }
        let units = info.stats.units_received.load(Ordering::Relaxed);
        if units != last_units {
            last_units = units;
            last_progress = Instant::now();
        } else if last_progress.elapsed() >= stall {
            session.finish();
            return Outcome::Stalled;
        }
    }
}

fn supervise(ctx: &StreamContext, info: &StreamInfo, stop: &Receiver<()>) {
    let cfg = &ctx.supervisor;
    let id = info.spec.id.as_str();
    let mut backoff = Duration::from_millis(cfg.backoff_initial_ms);
    let mut recent: VecDeque<Instant> = VecDeque::new();
    loop {
        if info.is_halted() {
            info.set(StreamState::Halted, Some("halted".into()));
            return;
        }
        info.set(StreamState::Starting, None);
        let started = Instant::now();
        let (reason, stalled) = match start_session(ctx, info) {
            Err(e) => (format!("cannot start: {e}"), false),
            Ok(session) => match watch(ctx, info, session, stop) {
                Outcome::StopRequested => {
                    info.set(StreamState::Stopped, Some("stopped".into()));
                    return;
                }
                Outcome::Stalled => (format!("stalled: no data for {} ms", cfg.stall_ms), true),
                Outcome::Exit(Exit::Stopped) => {
                    info.set(StreamState::Stopped, Some("stopped".into()));
                    return;
                }
                Outcome::Exit(Exit::Ended) if info.spec.origin == Origin::Static => {
                    info.set(StreamState::Ended, Some("source ended".into()));
                    tracing::info!(stream = id, "stream ended");
                    return;
                }
                Outcome::Exit(Exit::Ended) => ("source ended (publisher gone?)".into(), false),
                Outcome::Exit(Exit::Failed(e)) => (e, false),
            },
        };
        if info.is_halted() {
            info.set(StreamState::Halted, Some(reason));
            tracing::info!(stream = id, "stream halted; not restarting");
            return;
        }
        // A session that ran well for longer than the longest backoff resets the backoff.
        if started.elapsed() > Duration::from_millis(cfg.backoff_max_ms) {
            backoff = Duration::from_millis(cfg.backoff_initial_ms);
        }
        let window = Duration::from_secs(cfg.restart_window_s);
        while recent.front().is_some_and(|t| t.elapsed() > window) {
            recent.pop_front();
        }
        if recent.len() >= cfg.max_restarts as usize {
            let why = format!(
                "{reason}; gave up after {} restarts in {} s",
                recent.len(),
                cfg.restart_window_s
            );
            tracing::error!(stream = id, reason = %why, "stream failed");
            info.set(StreamState::Failed, Some(why));
            return;
        }
        recent.push_back(Instant::now());
        info.bump(stalled);
        tracing::warn!(stream = id, reason = %reason, backoff_ms = backoff.as_millis() as u64, "restarting stream");
        info.set(StreamState::Restarting, Some(reason));
        match stop.recv_timeout(backoff) {
            Ok(()) | Err(RecvTimeoutError::Disconnected) => {
                info.set(StreamState::Stopped, Some("stopped".into()));
                return;
            }
            Err(RecvTimeoutError::Timeout) => {}
        }
        backoff = (backoff * 2).min(Duration::from_millis(cfg.backoff_max_ms));
    }
}

#[cfg(test)]
mod tests;
