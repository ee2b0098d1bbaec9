//! The moderation recorder: the last stage of the frame path. One thread takes every
//! [`Finding`] (hash matches from the analysis pool, scores over a threshold from the
//! classifier stage), turns it into an alert with [`policy::verdict`], commits it to the
//! alert store (retrying until the store takes it: an alert is never dropped), keeps a
//! classifier alert's evidence thumbnail, tells the console (server-sent events) and, for a
//! `halt` verdict, halts the stream through the control plane.

use crate::control::Control;
use crate::domain::{Action, Subject};
use crate::http::events::{Events, LiveEvent};
use crate::moderation::store::{AlertStore, NewAlert, Recorded};
use crate::policy::{self, Finding};
use crossbeam_channel::{Receiver, Sender, unbounded};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

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

fn run(mut store: AlertStore, control: &Control, events: &Events, findings: Receiver<Finding>) {
    for f in findings {
        let (alert, recorded) = record(&mut store, &f);
        let (id, raised) = match recorded {
            Recorded::Raised(id) => (id, true),
            Recorded::Attached(id) => (id, false),
            // Dismissed within the cooldown: counted there, nothing else.
            Recorded::Suppressed(_) => continue,
        };
        if raised && let Some(t) = f.decoded_at() {
            crate::telemetry::metrics::DETECT_LATENCY.observe(t.elapsed());
        }
        // Evidence: the first frame's thumbnail (classifier alerts only).
        if let policy::Finding::Score(s) = &f
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
        if alert.action == Action::Halt && halt_for(control, &alert, id) {
            events.send(&LiveEvent::Stream {
                actor: None,
                alert_id: Some(id),
                halted: true,
                stream: alert.stream.clone(),
            });
        }
    }
}

/// Records a finding's alert (retrying until the store takes it) and returns it with what
/// the store did.
fn record(store: &mut AlertStore, f: &Finding) -> (NewAlert, Recorded) {
    let mut alert = policy::verdict(f);
    alert.detect_ms = f.decoded_at().map(|t| t.elapsed().as_millis() as u64);
    // An alert is never dropped: retry until the store takes it.
    let mut delay = Duration::from_millis(100);
    loop {
        match store.record_match(&alert) {
            Ok(recorded) => {
                log_recorded(&alert, recorded);
                return (alert, recorded);
            }
            Err(e) => {
                tracing::error!(error = %e, ?alert, "alert not stored yet; retrying");
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
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
fn halt_for(control: &Control, alert: &NewAlert, alert_id: i64) -> bool {
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
    match control.halt(&alert.stream, &actor, &reason, Some(alert_id)) {
        Ok(report) => {
            tracing::warn!(stream = %alert.stream, alert = alert_id, actuator = %report.actuator, "halt verdict carried out");
            true
        }
        Err(e) => {
            tracing::error!(stream = %alert.stream, error = %e, "halt verdict not carried out");
            false
        }
    }
}
