//! Retention: closed alerts (with their evidence) and old log entries are deleted once past
//! the configured age. Open and claimed alerts are never deleted, nor an alert that still has
//! a message waiting in the outbox (nothing undelivered is lost), nor the audit entries of an
//! alert that is still kept or of a stream that is halted now (why it was halted stays).

use super::{AlertStore, StoreError, now_ms};
use rusqlite::{TransactionBehavior, params};
use std::path::PathBuf;
use std::thread::JoinHandle;
use std::time::Duration;

const DAY_MS: i64 = 86_400_000;

/// How long closed alerts and the logs are kept, in days; 0 keeps them for ever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Dismissed alerts, counted from the dismissal.
    pub dismissed_days: u32,
    /// Confirmed alerts (reported material: hashes, ids, evidence), from the confirmation.
    pub confirmed_days: u32,
    /// Audit and delivery log entries (of alerts no longer kept, or of none; a halted
    /// stream's entries stay while it is halted).
    pub log_days: u32,
}

/// What one pass deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub alerts: u64,
    pub evidence: u64,
    pub audit: u64,
    pub deliveries: u64,
}

impl AlertStore {
    /// Deletes what `r` no longer keeps, in one transaction.
    pub fn prune(&mut self, r: &Retention) -> Result<Pruned, StoreError> {
        self.prune_at(r, now_ms())
    }

    /// [`AlertStore::prune`] at wall-clock time `now` (ms; tests use a fake clock).
    pub fn prune_at(&mut self, r: &Retention, now: i64) -> Result<Pruned, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut p = Pruned::default();
        for (state, days) in [
            ("dismissed", r.dismissed_days),
            ("confirmed", r.confirmed_days),
        ] {
            if days == 0 {
                continue;
            }
            let expired = "SELECT id FROM alerts WHERE state = ?1 AND updated_at_ms < ?2
                 AND id NOT IN (SELECT alert_id FROM outbox)";
            let cutoff = now - days as i64 * DAY_MS;
            p.evidence += tx.execute(
                &format!("DELETE FROM evidence WHERE alert_id IN ({expired})"),
                params![state, cutoff],
            )? as u64;
            p.alerts += tx.execute(
                &format!("DELETE FROM alerts WHERE id IN ({expired})"),
                params![state, cutoff],
            )? as u64;
        }
        if r.log_days > 0 {
            let cutoff = now - r.log_days as i64 * DAY_MS;
            p.audit = tx.execute(
                "DELETE FROM stream_events WHERE at_ms < ?1
                 AND (alert_id IS NULL OR alert_id NOT IN (SELECT id FROM alerts))
                 AND stream NOT IN (SELECT stream FROM stream_halts WHERE halted = 1)",
                params![cutoff],
            )? as u64;
            p.deliveries = tx.execute(
                "DELETE FROM deliveries WHERE delivered_at_ms < ?1
                 AND alert_id NOT IN (SELECT id FROM alerts)",
                params![cutoff],
            )? as u64;
        }
        tx.commit()?;
        Ok(p)
    }
}

/// A thread that prunes the store at `path` now and then every `every`, until `stop` is
/// dropped. A failed pass is logged and tried again at the next one.
pub fn spawn_pruner(
    path: PathBuf,
    retention: Retention,
    every: Duration,
    stop: crossbeam_channel::Receiver<()>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("retention".into())
        .spawn(move || {
            let mut store = None;
            loop {
                if store.is_none() {
                    store = AlertStore::open(&path)
                        .map_err(|e| tracing::error!(error = %e, "retention: store not opened"))
                        .ok();
                }
                if let Some(s) = store.as_mut() {
                    match s.prune(&retention) {
                        Ok(p) if p != Pruned::default() => {
                            tracing::info!(
                                alerts = p.alerts,
                                evidence = p.evidence,
                                audit = p.audit,
                                deliveries = p.deliveries,
                                "retention: deleted what store.retain_* no longer keeps"
                            );
                        }
                        Ok(_) => {}
                        Err(e) => {
                            tracing::error!(error = %e, "retention: pass failed; next one later")
                        }
                    }
                }
                if !matches!(
                    stop.recv_timeout(every),
                    Err(crossbeam_channel::RecvTimeoutError::Timeout)
                ) {
                    return;
                }
            }
        })
}
