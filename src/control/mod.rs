//! The control plane: publish callbacks, reconciliation against the ingest server, halts and
//! reinstatements. A halt is recorded first (the deny list `on_publish` consults, so the key
//! stays off the air), then carried out by the actuator, then confirmed when reconciliation no
//! longer sees the stream. Every step is in the store's audit log, with who asked and why.

use crate::config::{Config, IngestServer};
use crate::discovery::{self, CallbackError, Publish};
use crate::domain::AuditEvent;
use crate::moderation::actuator::{Actuator, ActuatorError, HaltOutcome, StreamKey};
use crate::moderation::store::{AlertStore, StoreError};
use crate::supervisor::{Origin, StreamManager, StreamSpec};
use crate::telemetry::unix_ms;
use crossbeam_channel::{Receiver, RecvTimeoutError};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

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
    ) -> Arc<Control> {
        Arc::new(Control {
            cfg: cfg.clone(),
            manager,
            store: Mutex::new(store),
            actuator,
            unconfirmed: Mutex::new(BTreeMap::new()),
            gate: Mutex::new(()),
            callbacks: Mutex::new(BTreeMap::new()),
        })
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
        let _gate = self.gate.lock().unwrap_or_else(|e| e.into_inner());
        self.note_callback(&id);
        if self.store().is_halted(&id)? {
            let detail = p.addr.clone().unwrap_or_default();
            self.store().record_event(
                &id,
                AuditEvent::PublishRefused,
                "ingest",
                "stream is halted",
                &detail,
                None,
            )?;
            tracing::warn!(stream = %id, addr = %detail, "publish refused: stream is halted");
            return Err(ControlError::Halted(id));
        }
        self.manager.start(self.spec_for(&p));
        Ok(())
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
        if self.manager.get(id).is_none() && !self.store().is_halted(id)? {
            let Some((app, name)) = id.split_once('/') else {
                return Err(ControlError::UnknownStream(id.to_string()));
            };
            discovery::check_key(app, name, &self.cfg.ingest.apps)?;
        }
        let newly_halted = {
            let _gate = self.gate.lock().unwrap_or_else(|e| e.into_inner());
            let newly = self.store().halt(id, actor, reason, alert_id)?;
            if let Some(info) = self.manager.get(id) {
                info.set_halted(true);
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
        let actuator = match &outcome {
            Ok(HaltOutcome::Dropped) => "dropped".to_string(),
            Ok(HaltOutcome::NotPublishing) => "not_publishing".to_string(),
            Ok(HaltOutcome::Recorded) => "recorded".to_string(),
            Err(e) => format!("failed: {e}"),
        };
        match &outcome {
            Ok(_) => {
                tracing::warn!(stream = id, actor, reason, actuator = %actuator, "stream halted");
                self.store().record_event(
                    id,
                    AuditEvent::HaltSent,
                    self.actuator.name(),
                    reason,
                    &actuator,
                    alert_id,
                )?;
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
                self.store().record_event(
                    id,
                    AuditEvent::HaltFailed,
                    self.actuator.name(),
                    reason,
                    &e.to_string(),
                    alert_id,
                )?;
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
        let changed = self.store().reinstate(id, actor, reason)?;
        if let Some(info) = self.manager.get(id) {
            info.set_halted(false);
        }
        self.unconfirmed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
        if changed {
            tracing::info!(stream = id, actor, reason, "stream reinstated");
        }
        Ok(changed)
    }

    pub fn is_halted(&self, id: &str) -> bool {
        self.store().is_halted(id).unwrap_or(false)
    }

    /// Brings the watched set in line with what the server said was live at `listed_at_ms`
    /// (when the request for the list was sent): starts streams that are live but not
    /// watched (and not halted; a stream that failed stays failed until it is published
    /// again), stops discovered streams that are gone, confirms halts, and repeats the halt of
    /// a halted stream that is still publishing. A stream with a callback or a start newer
    /// than the list is left alone: the list may predate it.
    pub fn reconcile(&self, live: &[StreamKey], listed_at_ms: u64) {
        let apps = &self.cfg.ingest.apps;
        let live_ids: BTreeSet<String> = live
            .iter()
            .filter(|k| apps.contains(&k.app))
            .map(StreamKey::id)
            .collect();
        let newer_than_list = |id: &str| {
            self.callbacks
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(id)
                .is_some_and(|&t| t >= listed_at_ms)
        };
        for key in live.iter().filter(|k| apps.contains(&k.app)) {
            let id = key.id();
            if self.is_halted(&id) {
                tracing::warn!(stream = %id, "halted stream still publishing; halting again");
                let _ = self.actuator.halt(key);
                continue;
            }
            if newer_than_list(&id) {
                continue;
            }
            let _gate = self.gate.lock().unwrap_or_else(|e| e.into_inner());
            if self.manager.get(&id).is_none() && !self.is_halted(&id) {
                tracing::info!(stream = %id, "live at the server but not watched: picking it up");
                let p = Publish {
                    key: key.clone(),
                    args: BTreeMap::new(),
                    addr: None,
                };
                self.manager.start(self.spec_for(&p));
            }
        }
        for info in self.manager.list() {
            let id = &info.spec.id;
            if info.spec.origin == Origin::Discovered
                && !live_ids.contains(id)
                && info.status().started_at_ms < listed_at_ms
                && !newer_than_list(id)
            {
                self.manager.stop(id, "no longer live at the server");
            }
        }
        let confirmed: Vec<(String, Option<i64>)> = {
            let mut u = self.unconfirmed.lock().unwrap_or_else(|e| e.into_inner());
            let gone: Vec<String> = u
                .keys()
                .filter(|id| !live_ids.contains(*id))
                .cloned()
                .collect();
            gone.into_iter()
                .map(|id| {
                    let alert = u.remove(&id).flatten();
                    (id, alert)
                })
                .collect()
        };
        for (id, alert) in confirmed {
            tracing::info!(stream = %id, "halt confirmed: stream gone from the server");
            let _ = self.store().record_event(
                &id,
                AuditEvent::HaltConfirmed,
                "reconciliation",
                "stream no longer listed by the server",
                "",
                alert,
            );
        }
    }

    /// Reconciles every `ingest.reconcile_ms` until `stop` fires or is dropped.
    pub fn spawn_reconciler(
        self: &Arc<Self>,
        stop: Receiver<()>,
    ) -> Option<std::thread::JoinHandle<()>> {
        let ing = &self.cfg.ingest;
        if ing.server == IngestServer::None || ing.stat_url.is_empty() {
            return None;
        }
        let (this, url) = (self.clone(), ing.stat_url.clone());
        let every = Duration::from_millis(ing.reconcile_ms);
        let thread = std::thread::Builder::new()
            .name("reconcile".into())
            .spawn(move || {
                let mut failing = false;
                loop {
                    let listed_at = unix_ms();
                    match discovery::fetch_stat(&url, Duration::from_secs(2)) {
                        Ok(live) => {
                            if failing {
                                tracing::info!(%url, "stream list readable again");
                            }
                            failing = false;
                            this.reconcile(&live, listed_at);
                        }
                        // The server being down says nothing about its streams: keep them.
                        Err(e) if !failing => {
                            tracing::warn!(error = %e, "cannot read the server's stream list");
                            failing = true;
                        }
                        Err(_) => {}
                    }
                    match stop.recv_timeout(every) {
                        Err(RecvTimeoutError::Timeout) => {}
                        _ => return,
                    }
                }
            })
            .expect("spawn reconciler");
        Some(thread)
    }
}
