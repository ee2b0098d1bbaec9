//! The outbox (one row per event and sink, written in the transaction that records the
//! event and deleted only once that sink acknowledged it) and the delivery log.

use super::{AlertStore, Columns, NewAlert, SinkRoute, StoreError, Where, insert_event, now_ms};
use crate::domain::{AuditEvent, SinkEvent};
use rusqlite::{OptionalExtension, TransactionBehavior, params};

/// A message waiting in the outbox for one sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    pub id: i64,
    pub sink: String,
    /// Stable across retries and restarts: `<instance>-<alert id>-<event>` for an alert's
    /// events, `<instance>-stream-<audit id>` for a halt or reinstatement.
    pub msg_id: String,
    /// The alert it is about (a halt through the API has none).
    pub alert_id: Option<i64>,
    /// The JSON body.
    pub payload: String,
    /// Failed attempts so far.
    pub attempts: u32,
    pub created_at_ms: i64,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When it is tried next (ms since the epoch).
    pub next_attempt_ms: i64,
    /// Set aside as dead (ms since the epoch): its sink can never take it (over
    /// [`MAX_MESSAGE_BYTES`], or refused for good), so it is no longer sent and no longer
    /// holds back the sink's later messages. It stays listed until an operator discards it.
    pub dead_at_ms: Option<i64>,
}

/// The largest message queued for sending: NATS refuses payloads over its `max_payload`
/// (1 MiB by default), and no alert or moderation event comes near it (bank ids and labels
/// are bounded at load). A larger one is queued dead, with the reason, never dropped.
pub const MAX_MESSAGE_BYTES: usize = 1_000_000;

impl OutboxRow {
    /// Its JSON body (`Null` if it were not JSON).
    fn body(&self) -> serde_json::Value {
        serde_json::from_str(&self.payload).unwrap_or_default()
    }

    /// Its event: `alert.raised`, `alert.claimed`, `stream.halted`...
    pub fn event(&self) -> Option<String> {
        event_in(&self.body())
    }

    /// The stream it is about.
    pub fn stream(&self) -> String {
        stream_in(&self.body())
    }
}

fn event_in(body: &serde_json::Value) -> Option<String> {
    body["event"].as_str().map(str::to_string)
}

/// A halt's message names its stream; an alert's event has it in its alert.
fn stream_in(body: &serde_json::Value) -> String {
    body["stream"]
        .as_str()
        .or(body["alert"]["stream"].as_str())
        .unwrap_or_default()
        .to_string()
}

/// One acknowledged delivery.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeliveryRow {
    pub sink: String,
    pub msg_id: String,
    pub alert_id: Option<i64>,
    /// Attempts it took (1: the first one was accepted).
    pub attempts: u32,
    pub queued_at_ms: i64,
    pub delivered_at_ms: i64,
}

impl AlertStore {
    /// Up to `limit` outbox messages of `sink` to send at `now_ms`, oldest first: the
    /// oldest ones up to the first that is not due. A message waiting out its backoff holds
    /// back every later one, so that a sink gets each alert's events in order (a claim never
    /// before the alert it claims).
    pub fn outbox_due(
        &self,
        sink: &str,
        now_ms: i64,
        limit: usize,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let mut w = Where::default();
        w.add("sink =", Some(sink.to_string()));
        w.add_term("dead_at_ms IS NULL");
        let (sql, args) = w.select_oldest_first(OUTBOX_COLUMNS, "outbox", limit);
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(args), outbox_row)?;
        let mut due = Vec::new();
        for row in rows {
            let row = row?;
            if row.next_attempt_ms > now_ms {
                break;
            }
            due.push(row);
        }
        Ok(due)
    }

    /// `row`'s sink can never take it: it is set aside as dead, with the reason.
    pub fn outbox_dead(&mut self, row: &OutboxRow, error: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE outbox SET attempts = attempts + 1, last_error = ?2, dead_at_ms = ?3 WHERE id = ?1",
            params![row.id, error, now_ms()],
        )?;
        Ok(())
    }

    /// When `sink`'s oldest message (the next one it sends) is due, ms since the epoch, if
    /// any is queued.
    pub fn outbox_next_due(&self, sink: &str) -> Result<Option<i64>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT next_attempt_ms FROM outbox WHERE sink = ?1 AND dead_at_ms IS NULL ORDER BY id LIMIT 1",
                params![sink],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Messages queued for sinks not in `configured` (a sink removed from the config): how
    /// many per sink name. They stay queued, unsent, until that sink is configured again.
    pub fn outbox_unrouted(&self, configured: &[String]) -> Result<Vec<(String, u64)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT sink, COUNT(*) FROM outbox GROUP BY sink ORDER BY sink")?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (sink, n) = row?;
            if !configured.contains(&sink) {
                out.push((sink, n));
            }
        }
        Ok(out)
    }

    /// Up to `limit` queued messages (of one sink, or all), oldest first: the order each sink
    /// sends them in, so a sink's first row that is not dead is the one holding the others
    /// back.
    pub fn outbox_page(
        &self,
        sink: Option<&str>,
        limit: usize,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let mut w = Where::default();
        w.add("sink =", sink.map(str::to_string));
        let (sql, args) = w.select_oldest_first(OUTBOX_COLUMNS, "outbox", limit);
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(args), outbox_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every message still queued, per sink (for metrics and tests).
    pub fn outbox(&self) -> Result<Vec<OutboxRow>, StoreError> {
        self.outbox_page(None, i64::MAX as usize)
    }

    /// The sink acknowledged `row`: it leaves the outbox and enters the delivery log, in
    /// one durable transaction.
    pub fn outbox_delivered(&mut self, row: &OutboxRow) -> Result<(), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let removed = tx.execute("DELETE FROM outbox WHERE id = ?1", params![row.id])?;
        if removed == 1 {
            tx.execute(
                "INSERT INTO deliveries (sink, msg_id, alert_id, attempts, queued_at_ms, delivered_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![row.sink, row.msg_id, row.alert_id, row.attempts + 1, row.created_at_ms, now_ms()],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// An attempt at `row` failed: it stays queued, next tried at `next_attempt_ms`.
    pub fn outbox_failed(
        &mut self,
        row: &OutboxRow,
        error: &str,
        next_attempt_ms: i64,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE outbox SET attempts = attempts + 1, last_error = ?2, next_attempt_ms = ?3 WHERE id = ?1",
            params![row.id, error, next_attempt_ms],
        )?;
        Ok(())
    }

    /// An operator gives up on message `id` (its sink keeps refusing it, and it holds back
    /// the sink's later messages): it leaves the outbox unsent, and the audit log records
    /// `message_discarded` with who, why and which message (sink, message id, event,
    /// failed attempts, last error), in one durable transaction. The sink's delivery thread
    /// is woken to send the next one. `None` when no such message is queued (delivered
    /// meanwhile, discarded already, or never queued).
    pub fn outbox_discard(
        &mut self,
        id: i64,
        actor: &str,
        reason: &str,
    ) -> Result<Option<OutboxRow>, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let row = tx
            .query_row(
                &format!("SELECT {OUTBOX_COLUMNS} FROM outbox WHERE id = ?1"),
                params![id],
                outbox_row,
            )
            .optional()?;
        let Some(row) = row else {
            return Ok(None);
        };
        tx.execute("DELETE FROM outbox WHERE id = ?1", params![id])?;
        let body = row.body();
        let detail = serde_json::json!({
            "sink": row.sink, "msg_id": row.msg_id, "event": event_in(&body),
            "attempts": row.attempts, "last_error": row.last_error,
        });
        insert_event(
            &tx,
            &stream_in(&body),
            AuditEvent::MessageDiscarded,
            actor,
            reason,
            &detail.to_string(),
            row.alert_id,
        )?;
        tx.commit()?;
        self.queued();
        Ok(Some(row))
    }

    /// The delivery log, oldest first.
    pub fn deliveries(&self) -> Result<Vec<DeliveryRow>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT sink, msg_id, alert_id, attempts, queued_at_ms, delivered_at_ms FROM deliveries ORDER BY id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(DeliveryRow {
                sink: r.get(0)?,
                msg_id: r.get(1)?,
                alert_id: r.get(2)?,
                attempts: r.get(3)?,
                queued_at_ms: r.get(4)?,
                delivered_at_ms: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

const OUTBOX_COLUMNS: &str = "id, sink, msg_id, alert_id, payload, attempts, created_at_ms, \
     last_error, next_attempt_ms, dead_at_ms";

/// An outbox row selected as [`OUTBOX_COLUMNS`].
fn outbox_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<OutboxRow> {
    Ok(OutboxRow {
        id: r.get(0)?,
        sink: r.get(1)?,
        msg_id: r.get(2)?,
        alert_id: r.get(3)?,
        payload: r.get(4)?,
        attempts: r.get(5)?,
        created_at_ms: r.get(6)?,
        last_error: r.get(7)?,
        next_attempt_ms: r.get(8)?,
        dead_at_ms: r.get(9)?,
    })
}

/// The message for `event` (`raised`, `escalated`) of alert `id`: its id and JSON body.
pub(super) fn alert_message(
    instance: &str,
    id: i64,
    event: SinkEvent,
    m: &NewAlert,
    now: i64,
) -> (String, serde_json::Value) {
    // The message id ends in the event's name without its `alert.` prefix.
    let short = event.as_str().trim_start_matches("alert.");
    let msg_id = format!("{instance}-{id}-{short}");
    let c = Columns::of(&m.subject);
    let payload = serde_json::json!({
        "id": msg_id,
        "event": event,
        "daemon": instance,
        "at_ms": now,
        "alert": {
            "id": id,
            "stream": m.stream,
            "reason": m.subject.reason(),
            "bank": m.subject.source(),
            "item_id": m.subject.item(),
            "label": c.label,
            "action": m.action,
            "distance": c.distance,
            "variant": c.variant,
            "score": c.score,
            "frame_pts_ms": m.frame_pts_ms,
            "detect_ms": m.detect_ms,
        },
    });
    (msg_id, payload)
}

/// Queues message `msg_id` (sink event `event`, e.g. `alert.raised`) for every sink that
/// takes that event, inside the caller's transaction.
pub(super) fn enqueue(
    tx: &rusqlite::Transaction<'_>,
    sinks: &[SinkRoute],
    msg_id: &str,
    event: SinkEvent,
    alert_id: Option<i64>,
    payload: &serde_json::Value,
    now: i64,
) -> Result<(), rusqlite::Error> {
    let mut body = None;
    for sink in sinks.iter().filter(|s| s.takes(event)) {
        let body: &String = body.get_or_insert_with(|| payload.to_string());
        // Too large for any sink: queued dead at once, so it never blocks the later ones.
        let (dead, why) = if body.len() > MAX_MESSAGE_BYTES {
            tracing::error!(sink = %sink.name, msg = msg_id, bytes = body.len(), limit = MAX_MESSAGE_BYTES,
                "message too large for a sink: queued as dead (see /api/v1/outbox)");
            let why = format!(
                "message of {} bytes is over the {MAX_MESSAGE_BYTES}-byte limit",
                body.len()
            );
            (Some(now), Some(why))
        } else {
            (None, None)
        };
        tx.execute(
            "INSERT OR IGNORE INTO outbox (sink, msg_id, alert_id, payload, next_attempt_ms, created_at_ms, dead_at_ms, last_error)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6, ?7)",
            params![sink.name, msg_id, alert_id, body, now, dead, why],
        )?;
    }
    Ok(())
}
