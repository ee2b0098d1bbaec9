//! Retention: closed alerts (with their evidence) and old log entries are deleted once past
//! the configured age. Open and claimed alerts are never deleted, nor the newest alert (so
//! that no alert id, part of every message id, is ever given out twice), nor an alert that still has
//! a message waiting in the outbox (nothing undelivered is lost), nor the audit entries of an
//! alert that is still kept or of a stream that is halted now (why it was halted stays), nor
//! the newest audit entry (its id is part of a halt's message id).

use super::{AlertStore, StoreError, now_ms};
use crate::domain::AlertState;
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

/// Rows deleted per transaction: a pass on a large database holds the write lock for one
/// batch at a time, so the other connections never wait long (benches/retention.rs).
pub const PRUNE_BATCH: u64 = 5_000;

impl AlertStore {
    /// Deletes what `r` no longer keeps, in transactions of up to [`PRUNE_BATCH`] rows.
    pub fn prune(&mut self, r: &Retention) -> Result<Pruned, StoreError> {
        self.prune_at(r, now_ms())
    }

    /// [`AlertStore::prune`] at wall-clock time `now` (ms; tests use a fake clock).
    pub fn prune_at(&mut self, r: &Retention, now: i64) -> Result<Pruned, StoreError> {
        self.prune_with(r, now, PRUNE_BATCH, &mut |_| {})
    }

    /// A pass in transactions of up to `limit` rows, `on_tx` told how long each took.
    /// First the expired alerts of each closed state (with their evidence), `limit` at a
    /// time, oldest first (in the order of the index on state and age); then the audit and delivery logs in windows of `limit`
    /// consecutive rows (each row looked at once per pass, so the pass is linear in the
    /// size of the logs).
    pub fn prune_with(
        &mut self,
        r: &Retention,
        now: i64,
        limit: u64,
        on_tx: &mut dyn FnMut(std::time::Duration),
    ) -> Result<Pruned, StoreError> {
        let mut p = Pruned::default();
        let limit = limit.clamp(1, i64::MAX as u64) as i64;
        for (state, days) in [
            (AlertState::Dismissed, r.dismissed_days),
            (AlertState::Confirmed, r.confirmed_days),
        ] {
            if days == 0 {
                continue;
            }
            let cutoff = now - days as i64 * DAY_MS;
            loop {
                let t = std::time::Instant::now();
                let tx = self
                    .conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)?;
                // The same rows both times: nothing else writes inside this transaction.
                // The newest alert is never deleted: ids are rowids, and SQLite would give
                // the next alert a deleted highest id again (and its message ids, which
                // consumers de-duplicate on, with it).
                let expired = "SELECT id FROM alerts WHERE state = ?1 AND updated_at_ms < ?2
                     AND id NOT IN (SELECT alert_id FROM outbox WHERE alert_id IS NOT NULL)
                     AND id < (SELECT MAX(id) FROM alerts)
                     ORDER BY updated_at_ms, id LIMIT ?3";
                p.evidence += tx.execute(
                    &format!("DELETE FROM evidence WHERE alert_id IN ({expired})"),
                    params![state, cutoff, limit],
                )? as u64;
                let n = tx.execute(
                    &format!("DELETE FROM alerts WHERE id IN ({expired})"),
                    params![state, cutoff, limit],
                )? as i64;
                tx.commit()?;
                on_tx(t.elapsed());
                p.alerts += n as u64;
                if n < limit {
                    break;
                }
            }
        }
        if r.log_days > 0 {
            let cutoff = now - r.log_days as i64 * DAY_MS;
            p.audit = self.prune_log(
                "stream_events",
                // The newest row stays: its id is part of a halt's message id (see
                // `alerts` above).
                "at_ms < ?1 AND (alert_id IS NULL OR alert_id NOT IN (SELECT id FROM alerts))
                 AND stream NOT IN (SELECT stream FROM stream_halts WHERE halted = 1)
                 AND id < (SELECT MAX(id) FROM stream_events)",
                cutoff,
                limit,
                on_tx,
            )?;
            p.deliveries = self.prune_log(
                "deliveries",
                "delivered_at_ms < ?1 AND (alert_id IS NULL OR alert_id NOT IN (SELECT id FROM alerts))",
                cutoff,
                limit,
                on_tx,
            )?;
        }
        Ok(p)
    }

    /// Deletes the rows of `table` matching `expired` (with `?1` the cutoff), one window of
    /// `limit` consecutive ids per transaction.
    fn prune_log(
        &mut self,
        table: &str,
        expired: &str,
        cutoff: i64,
        limit: i64,
        on_tx: &mut dyn FnMut(std::time::Duration),
    ) -> Result<u64, StoreError> {
        let mut after = 0i64;
        let mut deleted = 0;
        loop {
            let t = std::time::Instant::now();
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            let window = format!("SELECT id FROM {table} WHERE id > ?2 ORDER BY id LIMIT ?3");
            let last: Option<i64> = tx.query_row(
                &format!("SELECT MAX(id) FROM ({window})"),
                params![cutoff, after, limit],
                |r| r.get(0),
            )?;
            let Some(last) = last else {
                return Ok(deleted);
            };
            deleted += tx.execute(
                &format!("DELETE FROM {table} WHERE id IN ({window}) AND {expired}"),
                params![cutoff, after, limit],
            )? as u64;
            tx.commit()?;
            on_tx(t.elapsed());
            after = last;
        }
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

#[cfg(test)]
mod tests;
