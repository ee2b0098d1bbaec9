//! Reconciliation: the watched set brought in line with the ingest server's list of live
//! streams, halts confirmed, and the halt of a halted stream still publishing repeated.

use super::{Control, PendingWrite, outcome_text};
use crate::config::IngestServer;
use crate::discovery::{self, Publish};
use crate::domain::AuditEvent;
use crate::moderation::actuator::StreamKey;
use crate::supervisor::Origin;
use crate::telemetry::unix_ms;
use crossbeam_channel::{Receiver, RecvTimeoutError};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

impl Control {
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
                self.repeat_halt(key);
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
            self.write(PendingWrite::event(
                &id,
                AuditEvent::HaltConfirmed,
                "reconciliation",
                "stream no longer listed by the server",
                "",
                alert,
            ));
        }
    }

    /// A halted stream the server still lists (the first request failed, or the publisher
    /// came back some other way): the actuator is asked again. A request that goes through
    /// is audited (`halt_sent`) and left for reconciliation to confirm; one that fails is
    /// logged and asked again at the next pass.
    fn repeat_halt(&self, key: &StreamKey) {
        let id = key.id();
        tracing::warn!(stream = %id, "halted stream still publishing; halting again");
        let outcome = self.actuator.halt(key);
        match &outcome {
            Ok(_) => {
                self.write(PendingWrite::event(
                    &id,
                    AuditEvent::HaltSent,
                    self.actuator.name(),
                    "repeated by reconciliation: the stream was still publishing",
                    &outcome_text(&outcome),
                    None,
                ));
                self.unconfirmed
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .entry(id)
                    .or_insert(None);
            }
            Err(e) => {
                tracing::warn!(stream = %id, error = %e, "repeated halt failed; retried at the next reconciliation");
            }
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
