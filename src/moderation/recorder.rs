//! The moderation recorder: the last stage of the frame path. One thread takes every
//! [`Finding`] (hash matches from the analysis pool, scores over a threshold from the
//! classifier stage), turns it into an alert with [`policy::verdict`], commits it to the
//! alert store, keeps a classifier alert's evidence thumbnail, tells the console (server-sent
//! events) and, for a `halt` verdict, halts the stream through the control plane.
//!
//! A halt never waits on the store: when the store refuses a write (disk full, I/O errors,
//! files made read-only), a halt verdict halts the stream at once and the alert is held, in
//! order, and written (stamped with when it was found) once the store takes writes again.

use crate::control::Control;
use crate::domain::{Action, Subject};
use crate::http::events::{Events, LiveEvent};
use crate::moderation::store::{AlertStore, NewAlert, Recorded};
use crate::policy::{self, Finding};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, unbounded};
use std::collections::VecDeque;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The running recorder thread.
pub struct Recorder {
    thread: JoinHandle<()>,
}

impl Recorder {
    /// Starts the thread; it ends once every sender of the returned channel is gone and
    /// every finding sent before is recorded.
    pub fn start(
        store: AlertStore,
        control: Arc<Control>,
        events: Arc<Events>,
    ) -> std::io::Result<(Recorder, Sender<Finding>)> {
        let (findings_tx, findings_rx) = unbounded::<Finding>();
        let thread = std::thread::Builder::new()
            .name("moderation".into())
            .spawn(move || run(store, &control, &events, findings_rx))?;
        Ok((Recorder { thread }, findings_tx))
    }

    /// Waits for the thread to record what is queued and end (drop the senders first).
    pub fn join(self) {
        let _ = self.thread.join();
    }
}

/// Findings held while the store refuses writes: at most this many, one per stream and
/// item (a later finding of an item already held would only attach to its alert).
const MAX_HELD: usize = 10_000;
/// Waits between attempts to write what is held: doubling from the first to the last.
const RETRY_MIN: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(2);
/// How long a stopping recorder keeps trying to write what is held.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// A finding whose alert the store has not taken yet, and when it was found.
struct Held {
    finding: Finding,
    alert: NewAlert,
    at_ms: i64,
    /// Its halt verdict was carried out when it was found: not again once it is written (a
    /// moderator may have reinstated the stream meanwhile).
    acted: bool,
}

fn run(mut store: AlertStore, control: &Control, events: &Events, findings: Receiver<Finding>) {
    let mut held: VecDeque<Held> = VecDeque::new();
    let mut retry = RETRY_MIN;
    let mut next_retry = Instant::now();
    loop {
        let waiting = !held.is_empty();
        let next = if waiting {
            match findings.recv_timeout(next_retry.saturating_duration_since(Instant::now())) {
                Ok(f) => Some(f),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => break,
            }
        } else {
            match findings.recv() {
                Ok(f) => Some(f),
                Err(_) => break,
            }
        };
        if waiting && Instant::now() >= next_retry {
            if write_held(&mut store, control, events, &mut held) {
                retry = RETRY_MIN;
            } else {
                retry = (retry * 2).min(RETRY_MAX);
            }
            next_retry = Instant::now() + retry;
        }
        if let Some(f) = next {
            take(&mut store, control, events, &mut held, f);
        }
        control.store_health().set_pending_alerts(held.len());
    }
    // Stopping: a last chance for what is held, then every alert not written is logged in
    // full, so that none is lost without a trace.
    let deadline = Instant::now() + SHUTDOWN_GRACE;
    while !held.is_empty() && Instant::now() < deadline {
        if !write_held(&mut store, control, events, &mut held) {
            std::thread::sleep(RETRY_MIN * 2);
        }
    }
    for h in &held {
        tracing::error!(alert = ?h.alert, at_ms = h.at_ms, "alert not recorded: the store refused writes until shutdown");
    }
}

/// A new finding: recorded at once when the store takes it (and nothing is held before it);
/// otherwise acted on now (a halt verdict halts from memory) and held.
fn take(
    store: &mut AlertStore,
    control: &Control,
    events: &Events,
    held: &mut VecDeque<Held>,
    f: Finding,
) {
    let mut alert = policy::verdict(&f);
    alert.detect_ms = f.decoded_at().map(|t| t.elapsed().as_millis() as u64);
    let mut refused = None;
    if held.is_empty() {
        match store.record_match(&alert) {
            Ok(recorded) => {
                return recorded_now(store, control, events, &f, &alert, recorded, Fresh::Now);
            }
            Err(e) => refused = Some(e),
        }
    }
    let acted = alert.action == Action::Halt;
    if acted && halt_for(control, &alert, None) {
        events.send(&LiveEvent::Stream {
            actor: None,
            alert_id: None,
            halted: true,
            stream: alert.stream.clone(),
        });
    }
    let same = |h: &Held| {
        h.alert.stream == alert.stream
            && h.alert.subject.source() == alert.subject.source()
            && h.alert.subject.item() == alert.subject.item()
            && h.alert.action == alert.action
    };
    if held.iter().any(same) {
        return;
    }
    if held.len() >= MAX_HELD {
        tracing::error!(
            ?alert,
            held = held.len(),
            "alert not recorded: the store refuses writes and {MAX_HELD} alerts wait already"
        );
        return;
    }
    tracing::warn!(stream = %alert.stream, bank = %alert.subject.source(), item = %alert.subject.item(),
        action = %alert.action, held = held.len() + 1, "alert held until the store takes writes");
    held.push_back(Held {
        finding: f,
        alert,
        at_ms: crate::telemetry::unix_ms() as i64,
        acted,
    });
    // Counted as waiting before the failure is reported, so that health never reads the
    // store as recovered with this alert unwritten.
    control.store_health().set_pending_alerts(held.len());
    if let Some(e) = refused {
        control.store_health().failed(&e);
    }
}

/// Writes held alerts, oldest first, as far as the store takes them; true if all went.
fn write_held(
    store: &mut AlertStore,
    control: &Control,
    events: &Events,
    held: &mut VecDeque<Held>,
) -> bool {
    while let Some(h) = held.front() {
        match store.record_match_at(&h.alert, h.at_ms) {
            Ok(recorded) => {
                let h = held.pop_front().expect("front exists");
                let fresh = Fresh::Late { acted: h.acted };
                recorded_now(
                    store, control, events, &h.finding, &h.alert, recorded, fresh,
                );
            }
            Err(e) => {
                control.store_health().failed(&e);
                return false;
            }
        }
    }
    true
}

/// When an alert was written: as it was found, or later (held while the store refused
/// writes; `acted`: its halt verdict was carried out then).
#[derive(Clone, Copy, PartialEq)]
enum Fresh {
    Now,
    Late { acted: bool },
}

/// What follows an alert's commit: the log line, its latency (written as found only),
/// evidence, the console, and a halt verdict (unless carried out already).
fn recorded_now(
    store: &mut AlertStore,
    control: &Control,
    events: &Events,
    f: &Finding,
    alert: &NewAlert,
    recorded: Recorded,
    fresh: Fresh,
) {
    log_recorded(alert, recorded);
    let (id, raised) = match recorded {
        Recorded::Raised(id) => (id, true),
        Recorded::Attached(id) => (id, false),
        // Dismissed within the cooldown: counted there, nothing else.
        Recorded::Suppressed(_) => return,
    };
    if raised
        && fresh == Fresh::Now
        && let Some(t) = f.decoded_at()
    {
        crate::telemetry::metrics::DETECT_LATENCY.observe(t.elapsed());
    }
    // Evidence: the first frame's thumbnail (classifier alerts only).
    if let policy::Finding::Score(s) = f
        && let Some(thumb) = &s.thumb
        && let Err(e) = store.put_evidence(id, thumb)
    {
        tracing::error!(alert = id, error = %e, "evidence not stored");
    }
    events.send(&LiveEvent::AlertRecorded {
        action: alert.action,
        bank: alert.subject.source().to_string(),
        frame_pts_ms: alert.frame_pts_ms,
        id,
        item_id: alert.subject.item().to_string(),
        raised,
        reason: alert.subject.reason(),
        score: alert.subject.score(),
        stream: alert.stream.clone(),
    });
    if alert.action == Action::Halt
        && fresh != (Fresh::Late { acted: true })
        && halt_for(control, alert, Some(id))
    {
        events.send(&LiveEvent::Stream {
            actor: None,
            alert_id: Some(id),
            halted: true,
            stream: alert.stream.clone(),
        });
    }
}

/// The log line of what the store did with an alert.
fn log_recorded(alert: &NewAlert, recorded: Recorded) {
    match recorded {
        // What identifies the finding: the bank item and how close it matched, or the
        // model's label and its score.
        Recorded::Raised(id) => match &alert.subject {
            Subject::Classifier(c) => {
                tracing::warn!(alert = id, stream = %alert.stream, reason = %alert.subject.reason(), model = %c.model,
                    label = %c.label, score = %format!("{:.3}", c.score), action = %alert.action,
                    frame_ms = alert.frame_pts_ms, "alert raised");
            }
            Subject::Hash(h) => {
                tracing::warn!(alert = id, stream = %alert.stream, reason = %alert.subject.reason(), bank = %h.bank,
                    item = %h.item_id, distance = h.distance, variant = %h.variant,
                    action = %alert.action, quality = h.quality, frame_ms = alert.frame_pts_ms, "alert raised");
            }
        },
        Recorded::Attached(id) => {
            tracing::debug!(alert = id, stream = %alert.stream, frame_ms = alert.frame_pts_ms, "match attached to open alert");
        }
        Recorded::Suppressed(id) => {
            tracing::info!(alert = id, stream = %alert.stream, bank = %alert.subject.source(), item = %alert.subject.item(),
                frame_ms = alert.frame_pts_ms, "finding suppressed: its alert was dismissed within policy.dismiss_cooldown_s");
        }
    }
}

/// Carries out a halt verdict: halts the stream the alert is about (the control plane
/// retries a failed actuator call). True if it halted the stream now (false: already
/// halted, or the halt failed).
fn halt_for(control: &Control, alert: &NewAlert, alert_id: Option<i64>) -> bool {
    let (reason, actor) = match &alert.subject {
        Subject::Classifier(c) => (
            format!(
                "classifier '{}' label '{}' at score {:.3}",
                c.model, c.label, c.score
            ),
            format!("policy:classifier:{}", c.model),
        ),
        Subject::Hash(h) => (
            format!(
                "bank '{}' item '{}' at distance {} ({})",
                h.bank, h.item_id, h.distance, h.variant
            ),
            format!("policy:bank:{}", h.bank),
        ),
    };
    if control.is_halted(&alert.stream) {
        return false;
    }
    match control.halt(&alert.stream, &actor, &reason, alert_id) {
        Ok(report) => {
            tracing::warn!(stream = %alert.stream, alert = ?alert_id, actuator = %report.actuator, "halt verdict carried out");
            true
        }
        Err(e) => {
            tracing::error!(stream = %alert.stream, error = %e, "halt verdict not carried out");
            false
        }
    }
}
