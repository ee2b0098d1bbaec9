//! Alerts: recording findings (one open alert per stream and item, escalation, the
//! dismissal cooldown), listing them and moderators' actions on them.

use super::{
    AlertFilter, AlertRow, AlertStore, Columns, NewAlert, Recorded, StoreError, alert_message,
    alerts_query, enqueue, now_ms,
};
use crate::domain::{Action, AlertAction, AlertState, SinkEvent};
use rusqlite::{OptionalExtension, TransactionBehavior, params};

/// Why an alert action was refused.
#[derive(Debug, thiserror::Error)]
pub enum TransitionError {
    #[error("no alert {0}")]
    UnknownAlert(i64),
    #[error("alert {id} is {state}; it cannot be {wanted}")]
    WrongState {
        id: i64,
        state: AlertState,
        wanted: AlertState,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub(super) const ALERT_COLUMNS: &str = "id, stream, reason, bank, item_id, label, distance, quality, frame_pts_ms, \
    last_frame_pts_ms, hits, state, action, variant, score, claimed_by, created_at_ms, updated_at_ms, detect_ms";

pub(super) fn alert_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AlertRow> {
    Ok(AlertRow {
        id: r.get(0)?,
        stream: r.get(1)?,
        reason: r.get(2)?,
        bank: r.get(3)?,
        item_id: r.get(4)?,
        label: r.get(5)?,
        distance: r.get(6)?,
        quality: r.get(7)?,
        frame_pts_ms: r.get::<_, i64>(8)? as u64,
        last_frame_pts_ms: r.get::<_, i64>(9)? as u64,
        hits: r.get::<_, i64>(10)? as u64,
        state: r.get(11)?,
        action: r.get(12)?,
        variant: r.get(13)?,
        score: r.get(14)?,
        claimed_by: r.get(15)?,
        created_at_ms: r.get(16)?,
        updated_at_ms: r.get(17)?,
        detect_ms: r.get::<_, Option<i64>>(18)?.map(|v| v.max(0) as u64),
    })
}

impl AlertStore {
    /// Records a finding: a new open alert, or one more hit on the open alert for the same
    /// stream, reason, bank and item (a `halt` finding escalates a `review` alert; the
    /// highest score is kept). Committed durably before returning.
    pub fn record_match(&mut self, m: &NewAlert) -> Result<Recorded, StoreError> {
        self.record_match_at(m, now_ms())
    }

    /// [`AlertStore::record_match`] at wall-clock time `now` (ms; tests use a fake clock).
    pub fn record_match_at(&mut self, m: &NewAlert, now: i64) -> Result<Recorded, StoreError> {
        let (reason, bank, item) = (m.subject.reason(), m.subject.source(), m.subject.item());
        let c = Columns::of(&m.subject);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let open: Option<i64> = tx
            .query_row(
                "SELECT id FROM alerts WHERE stream = ?1 AND reason = ?4 AND bank = ?2 AND item_id = ?3 AND state IN ('open', 'claimed')",
                params![m.stream, bank, item, reason],
                |r| r.get(0),
            )
            .optional()?;
        let recorded = match open {
            Some(id) => {
                let was: Action = tx.query_row(
                    "SELECT action FROM alerts WHERE id = ?1",
                    params![id],
                    |r| r.get(0),
                )?;
                if was != Action::Halt && m.action == Action::Halt {
                    let event = SinkEvent::AlertEscalated;
                    let (msg_id, payload) = alert_message(&self.instance, id, event, m, now);
                    enqueue(&tx, &self.sinks, &msg_id, event, Some(id), &payload, now)?;
                }
                tx.execute(
                    "UPDATE alerts SET hits = hits + 1, last_frame_pts_ms = ?2, updated_at_ms = ?3, distance = MIN(distance, ?4),
                     action = CASE WHEN ?5 = 'halt' THEN 'halt' ELSE action END,
                     score = CASE WHEN ?6 IS NULL THEN score ELSE MAX(COALESCE(score, ?6), ?6) END WHERE id = ?1",
                    params![id, m.frame_pts_ms as i64, now, c.distance, m.action, c.score],
                )?;
                Recorded::Attached(id)
            }
            None if self.cooldown_ms > 0
                && let Some(id) = tx
                    .query_row(
                        "SELECT id FROM alerts WHERE stream = ?1 AND reason = ?4 AND bank = ?2 AND item_id = ?3
                         AND state = 'dismissed' AND updated_at_ms > ?5 ORDER BY updated_at_ms DESC LIMIT 1",
                        params![m.stream, bank, item, reason, now - self.cooldown_ms],
                        |r| r.get::<_, i64>(0),
                    )
                    .optional()? =>
            {
                // Counted, but updated_at_ms (the dismissal time) stays: the cooldown runs
                // from the dismissal, not from the last suppressed finding.
                tx.execute(
                    "UPDATE alerts SET hits = hits + 1, last_frame_pts_ms = ?2 WHERE id = ?1",
                    params![id, m.frame_pts_ms as i64],
                )?;
                Recorded::Suppressed(id)
            }
            None => {
                tx.execute(
                    "INSERT INTO alerts (stream, reason, bank, item_id, label, distance, quality, hash, frame_pts_ms, last_frame_pts_ms, created_at_ms, updated_at_ms, action, variant, score, detect_ms)
                     VALUES (?1, ?12, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, ?9, ?9, ?10, ?11, ?13, ?14)",
                    params![m.stream, bank, item, c.label, c.distance, c.quality, c.hash, m.frame_pts_ms as i64, now, m.action, c.variant, reason, c.score, m.detect_ms.map(|v| v as i64)],
                )?;
                let id = tx.last_insert_rowid();
                let event = SinkEvent::AlertRaised;
                let (msg_id, payload) = alert_message(&self.instance, id, event, m, now);
                enqueue(&tx, &self.sinks, &msg_id, event, Some(id), &payload, now)?;
                Recorded::Raised(id)
            }
        };
        tx.commit()?;
        if !matches!(recorded, Recorded::Suppressed(_)) {
            self.queued();
        }
        Ok(recorded)
    }

    /// All alerts, oldest first.
    pub fn alerts(&self) -> Result<Vec<AlertRow>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(&format!("SELECT {ALERT_COLUMNS} FROM alerts ORDER BY id"))?;
        let rows = stmt.query_map([], alert_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Alerts matching `f`, newest first.
    pub fn list_alerts(&self, f: &AlertFilter) -> Result<Vec<AlertRow>, StoreError> {
        let (sql, args) = alerts_query(f);
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(args), alert_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// One alert.
    pub fn alert(&self, id: i64) -> Result<Option<AlertRow>, StoreError> {
        Ok(self
            .conn
            .query_row(
                &format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE id = ?1"),
                params![id],
                alert_row,
            )
            .optional()?)
    }

    /// Claims, confirms or dismisses alert `id`, writing the audit entry in the same
    /// transaction. A transition its state does not allow changes nothing.
    pub fn act_on_alert(
        &mut self,
        id: i64,
        action: AlertAction,
        actor: &str,
        reason: &str,
    ) -> Result<AlertRow, TransitionError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(StoreError::from)?;
        let found: Option<(AlertState, String)> = tx
            .query_row(
                "SELECT state, stream FROM alerts WHERE id = ?1",
                params![id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(StoreError::from)?;
        let Some((state, stream)) = found else {
            return Err(TransitionError::UnknownAlert(id));
        };
        let (to, event, message) = action.target();
        if !action.allowed_from(state) {
            return Err(TransitionError::WrongState {
                id,
                state,
                wanted: to,
            });
        }
        let now = now_ms();
        let claimed = (action == AlertAction::Claim).then_some(actor);
        tx.execute(
            "UPDATE alerts SET state = ?2, updated_at_ms = ?3, claimed_by = COALESCE(?4, claimed_by) WHERE id = ?1",
            params![id, to, now, claimed],
        )
        .map_err(StoreError::from)?;
        tx.execute(
            "INSERT INTO stream_events (stream, event, actor, reason, alert_id, at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![stream, event, actor, reason, id, now],
        )
        .map_err(StoreError::from)?;
        let row = tx
            .query_row(
                &format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE id = ?1"),
                params![id],
                alert_row,
            )
            .map_err(StoreError::from)?;
        // Each action happens at most once to an alert (claimed only when open; confirmed
        // and dismissed are final), so alert id and new state make a stable message id.
        let msg_id = format!("{}-{id}-{to}", self.instance);
        let payload = serde_json::json!({
            "id": msg_id,
            "event": message,
            "daemon": self.instance,
            "at_ms": now,
            "actor": actor,
            "reason": reason,
            "alert": row,
        });
        enqueue(&tx, &self.sinks, &msg_id, message, Some(id), &payload, now)
            .map_err(StoreError::from)?;
        tx.commit().map_err(StoreError::from)?;
        self.queued();
        Ok(row)
    }
}
