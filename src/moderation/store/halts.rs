//! The deny list (halted streams) and the audit log.

use super::{
    AlertStore, AuditFilter, StoreError, StreamEvent, audit_query, enqueue, insert_event_at, now_ms,
};
use crate::domain::{AuditEvent, SinkEvent};
use rusqlite::{OptionalExtension, TransactionBehavior, params};

/// One stream on the deny list.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HaltRow {
    pub stream: String,
    /// Who halted it: `policy:bank:<bank>`, `policy:classifier:<model>`, `token:<name>`...
    pub actor: String,
    pub reason: String,
    /// The alert that halted it (`None` for a halt by hand).
    pub alert_id: Option<i64>,
    /// When it was halted (ms since the epoch).
    pub since_ms: i64,
    /// What the actuator last did about this halt; `None` while nothing is recorded yet.
    pub actuator: Option<HaltOutcome>,
}

/// The actuator's last word on a halt.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HaltOutcome {
    /// `halt_sent` or `halt_failed`.
    pub event: String,
    /// The actuator: `nginx-rtmp`, `http`, or `none` (recorded only, nobody cut off).
    pub actuator: String,
    /// `dropped`, `not_publishing`, `recorded`, or why it failed.
    pub detail: String,
}

impl AlertStore {
    /// Marks `stream` halted (the deny list). Returns false, and records nothing, when it
    /// already was: halts are idempotent.
    pub fn halt(
        &mut self,
        stream: &str,
        actor: &str,
        reason: &str,
        alert_id: Option<i64>,
    ) -> Result<bool, StoreError> {
        self.set_halted(stream, true, actor, reason, alert_id, now_ms())
    }

    /// [`AlertStore::halt`] decided at `at_ms` (written late: the store was down then).
    pub fn halt_at(
        &mut self,
        stream: &str,
        actor: &str,
        reason: &str,
        alert_id: Option<i64>,
        at_ms: i64,
    ) -> Result<bool, StoreError> {
        self.set_halted(stream, true, actor, reason, alert_id, at_ms)
    }

    /// Lifts a halt. Returns false, and records nothing, when the stream was not halted.
    pub fn reinstate(
        &mut self,
        stream: &str,
        actor: &str,
        reason: &str,
    ) -> Result<bool, StoreError> {
        self.set_halted(stream, false, actor, reason, None, now_ms())
    }

    fn set_halted(
        &mut self,
        stream: &str,
        halted: bool,
        actor: &str,
        reason: &str,
        alert_id: Option<i64>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let was: bool = tx
            .query_row(
                "SELECT halted FROM stream_halts WHERE stream = ?1",
                params![stream],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(false);
        if was == halted {
            return Ok(false);
        }
        tx.execute(
            "INSERT INTO stream_halts (stream, halted, actor, reason, alert_id, updated_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT(stream) DO UPDATE SET halted = ?2, actor = ?3, reason = ?4, alert_id = ?5, updated_at_ms = ?6",
            params![stream, halted, actor, reason, alert_id, now],
        )?;
        tx.execute(
            "INSERT INTO stream_events (stream, event, actor, reason, alert_id, at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![stream, if halted { AuditEvent::Halt } else { AuditEvent::Reinstate }, actor, reason, alert_id, now],
        )?;
        // The audit row's id makes the message id (retention keeps the newest audit row,
        // so no id is given out twice).
        let event = if halted {
            SinkEvent::StreamHalted
        } else {
            SinkEvent::StreamReinstated
        };
        let msg_id = format!("{}-stream-{}", self.instance, tx.last_insert_rowid());
        let payload = serde_json::json!({
            "id": msg_id,
            "event": event,
            "daemon": self.instance,
            "at_ms": now,
            "stream": stream,
            "actor": actor,
            "reason": reason,
            "alert_id": alert_id,
        });
        enqueue(&tx, &self.sinks, &msg_id, event, alert_id, &payload, now)?;
        tx.commit()?;
        self.queued();
        Ok(true)
    }

    /// Whether `stream` is halted.
    pub fn is_halted(&self, stream: &str) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT halted FROM stream_halts WHERE stream = ?1",
                params![stream],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(false))
    }

    /// The deny list with who halted each stream, why, when and for which alert, newest
    /// first: what a moderator reinstates from (streams no longer live included).
    pub fn halts(&self) -> Result<Vec<HaltRow>, StoreError> {
        // With what the actuator last did about it since (halt_sent or halt_failed).
        let mut stmt = self.conn.prepare(
            "SELECT h.stream, h.actor, h.reason, h.alert_id, h.updated_at_ms, e.event, e.actor, e.detail
             FROM stream_halts h
             LEFT JOIN stream_events e ON e.id = (
                 SELECT id FROM stream_events
                 WHERE stream = h.stream AND event IN ('halt_sent', 'halt_failed') AND at_ms >= h.updated_at_ms
                 ORDER BY id DESC LIMIT 1)
             WHERE h.halted = 1 ORDER BY h.updated_at_ms DESC, h.stream",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(HaltRow {
                stream: r.get(0)?,
                actor: r.get(1)?,
                reason: r.get(2)?,
                alert_id: r.get(3)?,
                since_ms: r.get(4)?,
                actuator: match r.get::<_, Option<String>>(5)? {
                    Some(event) => Some(HaltOutcome {
                        event,
                        actuator: r.get(6)?,
                        detail: r.get(7)?,
                    }),
                    None => None,
                },
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every halted stream.
    pub fn halted_streams(&self) -> Result<Vec<String>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT stream FROM stream_halts WHERE halted = 1 ORDER BY stream")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Appends an event other than a halt or reinstatement to the audit log.
    pub fn record_event(
        &mut self,
        stream: &str,
        event: AuditEvent,
        actor: &str,
        reason: &str,
        detail: &str,
        alert_id: Option<i64>,
    ) -> Result<(), StoreError> {
        self.record_event_at(stream, event, actor, reason, detail, alert_id, now_ms())
    }

    /// [`AlertStore::record_event`] stamped `at_ms`.
    #[allow(clippy::too_many_arguments)]
    pub fn record_event_at(
        &mut self,
        stream: &str,
        event: AuditEvent,
        actor: &str,
        reason: &str,
        detail: &str,
        alert_id: Option<i64>,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        insert_event_at(
            &self.conn, stream, event, actor, reason, detail, alert_id, at_ms,
        )?;
        Ok(())
    }

    /// The audit log of one stream (or of all with `None`), oldest first.
    pub fn events(&self, stream: Option<&str>) -> Result<Vec<StreamEvent>, StoreError> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {AUDIT_COLUMNS} FROM stream_events WHERE ?1 IS NULL OR stream = ?1 ORDER BY id"
        ))?;
        let rows = stmt.query_map(params![stream], stream_event_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The newest audit entries the filter selects, newest first.
    pub fn audit(&self, f: &AuditFilter) -> Result<Vec<StreamEvent>, StoreError> {
        let (sql, args) = audit_query(f);
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(args), stream_event_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

pub(super) const AUDIT_COLUMNS: &str = "id, stream, event, actor, reason, detail, alert_id, at_ms";

/// A `stream_events` row selected as [`AUDIT_COLUMNS`].
pub(super) fn stream_event_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StreamEvent> {
    Ok(StreamEvent {
        id: r.get(0)?,
        stream: r.get(1)?,
        event: r.get(2)?,
        actor: r.get(3)?,
        reason: r.get(4)?,
        detail: r.get(5)?,
        alert_id: r.get(6)?,
        at_ms: r.get(7)?,
    })
}
