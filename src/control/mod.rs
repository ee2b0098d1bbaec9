//! The control plane: publish callbacks, reconciliation against the ingest server, halts and
//! reinstatements. A halt goes on the deny list first (the one `on_publish` consults, so the
//! key stays off the air), is carried out by the actuator, and is confirmed when
//! reconciliation no longer sees the stream. Every step is in the store's audit log, with who
//! asked and why.
//!
//! The deny list lives in memory, loaded from the store at start, so that no halt and no
//! publish callback ever waits on the store: when the store refuses writes (disk full, I/O
//! errors), a halt still acts at once, and its record waits in [`pending`] to be written, in
//! order, once the store takes writes again ([`Control::flush_pending`]). A reinstatement is
//! the exception: it is only done once it is durable (failing safe, the key stays halted).

mod pending;
mod reconcile;
pub use pending::PendingWrite;

use crate::config::{Config, IngestServer};
use crate::discovery::{self, CallbackError, Publish};
use crate::domain::AuditEvent;
use crate::moderation::actuator::{Actuator, ActuatorError, HaltOutcome, StreamKey};
use crate::moderation::store::{AlertStore, StoreError, StoreHealth};
use crate::supervisor::{Origin, StreamManager, StreamSpec};
use crate::telemetry::unix_ms;
use crossbeam_channel::{Receiver, Sender};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Most writes held for the store; past it, audit entries (never deny-list rows) are logged
/// and given up.
const MAX_PENDING: usize = 100_000;

/// Why a request to the control plane was refused.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error(transparent)]
    Callback(#[from] CallbackError),
    #[error("stream '{0}' is halted; a moderator must reinstate it")]
    Halted(String),
    #[error("no stream '{0}' is known")]
    UnknownStream(String),
    #[error("stream discovery is off (ingest.server = \"none\")")]
    DiscoveryOff,
    #[error("{0}")]
    Store(#[from] StoreError),
    /// The store refuses writes: a reinstatement must be durable before it is done.
    #[error("the alert store refuses writes ({0}); the stream stays halted until it takes them")]
    StoreDown(String),
}

/// What a halt did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HaltReport {
    pub stream: String,
    /// False when the stream was already halted (nothing new recorded).
    pub newly_halted: bool,
    /// `dropped`, `not_publishing`, `recorded` or `failed: <why>`.
    pub actuator: String,
}

pub struct Control {
    cfg: Config,
    manager: Arc<StreamManager>,
    store: Mutex<AlertStore>,
    actuator: Box<dyn Actuator>,
    /// The deny list as this process knows it: the store's at start, then every halt and
    /// reinstatement. Callbacks and halts read it here.
    denied: Mutex<BTreeSet<String>>,
    /// Writes the store did not take yet, oldest first.
    pending: Mutex<VecDeque<PendingWrite>>,
    /// Held by whoever writes `pending` to the store: one at a time, in order.
    flushing: Mutex<()>,
    /// Wakes the flusher thread when a write is queued.
    wake: (Sender<()>, Receiver<()>),
    health: Arc<StoreHealth>,
    /// Halted streams not yet seen gone by reconciliation, with the alert that halted them.
    unconfirmed: Mutex<BTreeMap<String, Option<i64>>>,
    /// Serialises "check the deny list, then start" against "add to the deny list", so that a
    /// halt can never land between a publish's check and its start.
    gate: Mutex<()>,
    /// When each stream's last publish/publish-done callback arrived (ms since the epoch), so
    /// that reconciliation does not act on a stream list older than the callback.
    callbacks: Mutex<BTreeMap<String, u64>>,
}

impl Control {
    pub fn new(
        cfg: &Config,
        manager: Arc<StreamManager>,
        store: AlertStore,
        actuator: Box<dyn Actuator>,
    ) -> Result<Arc<Control>, StoreError> {
        let denied = store.halted_streams()?.into_iter().collect();
        Ok(Arc::new(Control {
            cfg: cfg.clone(),
            manager,
            store: Mutex::new(store),
            actuator,
            denied: Mutex::new(denied),
            pending: Mutex::new(VecDeque::new()),
            flushing: Mutex::new(()),
            wake: crossbeam_channel::bounded(1),
            health: Arc::new(StoreHealth::default()),
            unconfirmed: Mutex::new(BTreeMap::new()),
            gate: Mutex::new(()),
            callbacks: Mutex::new(BTreeMap::new()),
        }))
    }

    /// Whether the store takes writes, and what waits for it.
    pub fn store_health(&self) -> &Arc<StoreHealth> {
        &self.health
    }

    /// Queues `w` to be made durable, after every write queued before it. No I/O: callers
    /// may hold the gate. [`Control::flush_pending`] (the caller once it let go of the gate,
    /// or the flusher thread) writes it.
    fn enqueue(&self, w: PendingWrite) {
        let mut q = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if q.len() >= MAX_PENDING && !matches!(w, PendingWrite::Halt { .. }) {
            // A deny-list row is never given up; an audit entry is, past the bound.
            tracing::error!(write = ?w, "audit entry not recorded: {MAX_PENDING} writes wait for the store already");
            return;
        }
        q.push_back(w);
        self.health.set_pending_writes(q.len());
        drop(q);
        let _ = self.wake.0.try_send(());
    }

    /// Writes what waits, in order, as far as the store takes it. The queue is not locked
    /// while the store is written (a halt can queue meanwhile); `flushing` keeps one writer
    /// at a time, so the order holds.
    pub fn flush_pending(&self) {
        let _one = self.flushing.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let front = self
                .pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .front()
                .cloned();
            let Some(w) = front else { break };
            if let Err(e) = w.apply(&mut self.store()) {
                self.health.failed(&e);
                break;
            }
            self.pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .pop_front();
        }
        let left = self.pending.lock().unwrap_or_else(|e| e.into_inner()).len();
        self.health.set_pending_writes(left);
    }

    /// Writes still waiting for the store.
    pub fn pending_writes(&self) -> usize {
        self.pending.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// At shutdown: one last try, then every write the store never took is logged in full.
    pub fn log_unwritten(&self) {
        self.flush_pending();
        for w in self
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            tracing::error!(write = ?w, "not recorded: the store refused writes until shutdown");
        }
    }

    /// Retries what waits for the store (100 ms doubling to 2 s) until `stop` fires or is
    /// dropped; woken at once when something is queued.
    pub fn spawn_flusher(self: &Arc<Self>, stop: Receiver<()>) -> std::thread::JoinHandle<()> {
        let this = self.clone();
        std::thread::Builder::new()
            .name("store-retry".into())
            .spawn(move || {
                let mut wait = Duration::from_millis(100);
                loop {
                    crossbeam_channel::select! {
                        recv(stop) -> _ => return,
                        recv(this.wake.1) -> _ => {},
                        default(wait) => {},
                    }
                    if this.pending_writes() == 0 {
                        wait = Duration::from_secs(2);
                        continue;
                    }
                    this.flush_pending();
                    wait = if this.pending_writes() == 0 {
                        Duration::from_millis(100)
                    } else {
                        (wait * 2).clamp(Duration::from_millis(100), Duration::from_secs(2))
                    };
                }
            })
            .expect("spawn store-retry")
    }

    fn denied(&self) -> std::sync::MutexGuard<'_, BTreeSet<String>> {
        self.denied.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn manager(&self) -> &Arc<StreamManager> {
        &self.manager
    }

    pub fn store(&self) -> std::sync::MutexGuard<'_, AlertStore> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn spec_for(&self, p: &Publish) -> StreamSpec {
        let ing = &self.cfg.ingest;
        let params = ing
            .params
            .iter()
            .map(|(k, v)| {
                let v = v
                    .replace("{app}", &p.key.app)
                    .replace("{name}", &p.key.name);
                (k.clone(), v)
            })
            .collect();
        StreamSpec {
            id: p.key.id(),
            pipeline: ing.pipeline.clone(),
            params,
            sampler: self.cfg.sampler.clone(),
            origin: Origin::Discovered,
            metadata: p.args.clone(),
        }
    }

    /// `on_publish`: refuses a halted key, else starts watching the stream.
    pub fn on_publish(&self, params: &BTreeMap<String, String>) -> Result<(), ControlError> {
        if self.cfg.ingest.server == IngestServer::None {
            return Err(ControlError::DiscoveryOff);
        }
        let p = discovery::parse_callback(params, &self.cfg.ingest.apps)?;
        let id = p.key.id();
        let refused = {
            let _gate = self.gate.lock().unwrap_or_else(|e| e.into_inner());
            self.note_callback(&id);
            let refused = self.is_halted(&id);
            if refused {
                let detail = p.addr.clone().unwrap_or_default();
                self.enqueue(PendingWrite::event(
                    &id,
                    AuditEvent::PublishRefused,
                    "ingest",
                    "stream is halted",
                    &detail,
                    None,
                ));
                tracing::warn!(stream = %id, addr = %detail, "publish refused: stream is halted");
            } else {
                self.manager.start(self.spec_for(&p));
            }
            refused
        };
        if refused {
            // The refusal's audit entry is written by the flusher thread: the answer to
            // nginx does not wait on the store.
            return Err(ControlError::Halted(id));
        }
        Ok(())
    }

    /// Queues `w` and writes what waits (for callers that do not hold the gate).
    fn write(&self, w: PendingWrite) {
        self.enqueue(w);
        self.flush_pending();
    }

    fn note_callback(&self, id: &str) {
        self.callbacks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.to_string(), unix_ms());
    }

    /// `on_publish_done`: stops watching the stream.
    pub fn on_publish_done(&self, params: &BTreeMap<String, String>) -> Result<(), ControlError> {
        if self.cfg.ingest.server == IngestServer::None {
            return Err(ControlError::DiscoveryOff);
        }
        let p = discovery::parse_callback(params, &self.cfg.ingest.apps)?;
        self.note_callback(&p.key.id());
        self.manager.stop(&p.key.id(), "publish done");
        Ok(())
    }

    /// Halts a stream: deny list first, then the actuator. Idempotent.
    pub fn halt(
        &self,
        id: &str,
        actor: &str,
        reason: &str,
        alert_id: Option<i64>,
    ) -> Result<HaltReport, ControlError> {
        // A stream not watched now can still be halted ahead of its publish, by its key: a
        // key the ingest callbacks would accept, never an arbitrary string sent to the server.
        if self.manager.get(id).is_none() && !self.is_halted(id) {
            let Some((app, name)) = id.split_once('/') else {
                return Err(ControlError::UnknownStream(id.to_string()));
            };
            discovery::check_key(app, name, &self.cfg.ingest.apps)?;
        }
        let newly_halted = {
            let _gate = self.gate.lock().unwrap_or_else(|e| e.into_inner());
            let newly = self.denied().insert(id.to_string());
            if let Some(info) = self.manager.get(id) {
                info.set_halted(true);
            }
            // The deny-list row is queued under the gate, so that a reinstatement (which
            // flushes under the gate) cannot come between the two; it is written after the
            // actuator was asked: the halt does not wait for the store.
            if newly {
                self.enqueue(PendingWrite::Halt {
                    stream: id.to_string(),
                    actor: actor.to_string(),
                    reason: reason.to_string(),
                    alert_id,
                    at_ms: unix_ms() as i64,
                });
            }
            newly
        };
        let key = StreamKey::from_id(id);
        // A failed request is retried a few times here (about 1.4 s of waits), then by
        // reconciliation while the server still lists the stream. A static stream (no
        // app/name) the actuator cannot address fails at once, is not retried, and no other
        // stream is ever sent to the server in its place.
        let mut outcome = self.actuator.halt(&key);
        for wait_ms in [200, 400, 800] {
            // Done, or failed in a way no retry can change.
            if outcome
                .as_ref()
                .err()
                .is_none_or(ActuatorError::is_permanent)
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(wait_ms));
            outcome = self.actuator.halt(&key);
        }
        let actuator = outcome_text(&outcome);
        match &outcome {
            Ok(_) => {
                tracing::warn!(stream = id, actor, reason, actuator = %actuator, "stream halted");
                self.write(PendingWrite::event(
                    id,
                    AuditEvent::HaltSent,
                    self.actuator.name(),
                    reason,
                    &actuator,
                    alert_id,
                ));
                if self.cfg.ingest.server != IngestServer::None && id.contains('/') {
                    self.unconfirmed
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(id.to_string(), alert_id);
                }
            }
            Err(e) => {
                if e.is_permanent() {
                    tracing::error!(stream = id, error = %e, "halt request not sent");
                } else {
                    tracing::error!(stream = id, error = %e, "halt request failed; reconciliation retries it");
                }
                self.write(PendingWrite::event(
                    id,
                    AuditEvent::HaltFailed,
                    self.actuator.name(),
                    reason,
                    &e.to_string(),
                    alert_id,
                ));
            }
        }
        Ok(HaltReport {
            stream: id.to_string(),
            newly_halted,
            actuator,
        })
    }

    /// Lifts a halt: the key may publish again. Idempotent.
    pub fn reinstate(&self, id: &str, actor: &str, reason: &str) -> Result<bool, ControlError> {
        // Durable first, after every earlier write (the halt it lifts may still wait), all
        // under the gate, so that no halt or publish check lands between the durable change
        // and the deny list's. (A reinstatement is a moderator's rare action: callbacks wait
        // for its write, at most the store's busy timeout.)
        let _gate = self.gate.lock().unwrap_or_else(|e| e.into_inner());
        self.flush_pending();
        if self.pending_writes() > 0 {
            let why = self.health.snapshot().last_error.unwrap_or_default();
            return Err(ControlError::StoreDown(why));
        }
        let changed = self
            .store()
            .reinstate(id, actor, reason)
            .map_err(|e| ControlError::StoreDown(e.to_string()))?;
        self.denied().remove(id);
        if let Some(info) = self.manager.get(id) {
            info.set_halted(false);
        }
        drop(_gate);
        self.unconfirmed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
        if changed {
            tracing::info!(stream = id, actor, reason, "stream reinstated");
        }
        Ok(changed)
    }

    /// Whether `id` is on the deny list (in memory: never waits on the store).
    pub fn is_halted(&self, id: &str) -> bool {
        self.denied().contains(id)
    }
}

/// An actuator's answer as the audit log and the API show it.
fn outcome_text(outcome: &Result<HaltOutcome, ActuatorError>) -> String {
    match outcome {
        Ok(HaltOutcome::Dropped) => "dropped".to_string(),
        Ok(HaltOutcome::NotPublishing) => "not_publishing".to_string(),
        Ok(HaltOutcome::Recorded) => "recorded".to_string(),
        Err(e) => format!("failed: {e}"),
    }
}

#[cfg(test)]
mod tests;
