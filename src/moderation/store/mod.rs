//! The alert store: SQLite (WAL, synchronous=FULL) as the system of record. The schema is
//! created and migrated at open; every alert is committed before it is logged as raised.
//! Several connections share the file (the recorder's, the control plane's, one per delivery
//! sink, retention's), so every read-then-write transaction starts IMMEDIATE: it waits for
//! the write lock (up to the busy timeout) instead of failing when another connection
//! committed in between.

use crate::domain::{Action, AlertState, AuditEvent, Reason, SinkEvent, Subject};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("alert store {}: {message}", path.display())]
    Open { path: PathBuf, message: String },
    #[error("alert store: {0}")]
    Sql(#[from] rusqlite::Error),
}

/// A greyscale thumbnail (8-bit, packed rows).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thumbnail {
    pub width: usize,
    pub height: usize,
    pub grey: Vec<u8>,
}

/// Which alerts to list.
#[derive(Debug, Clone, Default)]
pub struct AlertFilter {
    pub state: Option<AlertState>,
    pub stream: Option<String>,
    pub reason: Option<Reason>,
    /// Only alerts with a smaller id (paging, newest first).
    pub before: Option<i64>,
    pub limit: usize,
}

/// Which audit entries to list.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub stream: Option<String>,
    /// Only the entries of this alert.
    pub alert: Option<i64>,
    /// Only entries with a smaller id (paging, newest first).
    pub before: Option<i64>,
    pub limit: usize,
}

/// Counts for `/metrics`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoreCounts {
    /// (reason, action, state, alerts): label values as stored.
    pub alerts: Vec<(String, String, String, u64)>,
    /// (sink, messages waiting, failed attempts of those); dead ones included.
    pub outbox: Vec<(String, u64, u64)>,
    /// (sink, dead messages: set aside, never sent, waiting for an operator).
    pub dead: Vec<(String, u64)>,
    /// (sink, messages delivered, failed attempts before delivery).
    pub deliveries: Vec<(String, u64, u64)>,
    pub halted_streams: u64,
    /// Halts recorded in the audit log (policy and API).
    pub halts: u64,
}

/// An alert to record: what was found ([`Subject`]: a bank item or a classifier label) on
/// which stream and frame, and what the verdict calls for.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAlert {
    pub stream: String,
    pub subject: Subject,
    pub frame_pts_ms: u64,
    /// From the bank's configuration, or the classifier policy's k-of-n.
    pub action: Action,
    /// Time to detect (ms): from the frame leaving the decoder to the policy's verdict, just
    /// before the alert is written (set by the recorder; `None` when unknown).
    pub detect_ms: Option<u64>,
}

/// How a [`Subject`] is stored in the alert columns (and sent to sinks): a classifier
/// finding is stored with the model as `bank`, its label as `item_id` and `label`, no
/// distance, quality or hash, and variant `-`.
pub(super) struct Columns<'a> {
    pub label: Option<&'a str>,
    pub distance: u32,
    pub quality: u32,
    pub hash: &'a str,
    pub variant: &'a str,
    pub score: Option<f64>,
}

impl Columns<'_> {
    pub(super) fn of(subject: &Subject) -> Columns<'_> {
        match subject {
            Subject::Hash(h) => Columns {
                label: h.label.as_deref(),
                distance: h.distance,
                quality: h.quality,
                hash: &h.hash,
                variant: &h.variant,
                score: subject.score(),
            },
            Subject::Classifier(c) => Columns {
                label: Some(&c.label),
                distance: 0,
                quality: 0,
                hash: "",
                variant: "-",
                score: subject.score(),
            },
        }
    }
}

/// A stored alert row.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AlertRow {
    pub id: i64,
    pub stream: String,
    pub reason: Reason,
    pub bank: String,
    pub item_id: String,
    pub label: Option<String>,
    pub distance: u32,
    pub quality: u32,
    pub frame_pts_ms: u64,
    pub last_frame_pts_ms: u64,
    pub hits: u64,
    pub state: AlertState,
    pub action: Action,
    pub variant: String,
    /// Classifier alerts: the highest score seen.
    pub score: Option<f64>,
    pub claimed_by: Option<String>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    /// Time to detect (ms): from the raising frame leaving the decoder to the policy's
    /// verdict, just before the alert is written; `None` for alerts of older versions or
    /// without a decode time (tests).
    pub detect_ms: Option<u64>,
}

/// One row of the stream audit log.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StreamEvent {
    pub id: i64,
    pub stream: String,
    pub event: AuditEvent,
    pub actor: String,
    pub reason: String,
    pub detail: String,
    pub alert_id: Option<i64>,
    pub at_ms: i64,
}

/// Whether a match opened a new alert or attached to the open one of the same stream and item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    Raised(i64),
    Attached(i64),
    /// A moderator dismissed this stream's alert for the same item less than the cooldown
    /// ago: counted on that alert (`hits`), nothing raised, halted or sent.
    Suppressed(i64),
}

/// A sink the store queues messages for, and the events it takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkRoute {
    pub name: String,
    pub events: Vec<SinkEvent>,
}

impl SinkRoute {
    /// A sink that takes every event.
    pub fn all(name: &str) -> SinkRoute {
        SinkRoute {
            name: name.to_string(),
            events: SinkEvent::ALL.to_vec(),
        }
    }

    fn takes(&self, event: SinkEvent) -> bool {
        self.events.contains(&event)
    }
}

pub struct AlertStore {
    conn: Connection,
    /// Sinks every event is queued for (see [`AlertStore::with_sinks`]).
    sinks: Vec<SinkRoute>,
    /// This database's instance id (random, made once).
    instance: String,
    /// After a dismissal, findings of the same stream and item are suppressed this long.
    cooldown_ms: i64,
    /// Called after a commit that may have queued messages (wakes the delivery threads).
    on_queued: Option<Box<dyn Fn() + Send>>,
}

/// Appends an entry, stamped now, to the audit log through `conn` (a connection, or the
/// transaction of the change it records).
fn insert_event(
    conn: &rusqlite::Connection,
    stream: &str,
    event: AuditEvent,
    actor: &str,
    reason: &str,
    detail: &str,
    alert_id: Option<i64>,
) -> rusqlite::Result<()> {
    insert_event_at(
        conn,
        stream,
        event,
        actor,
        reason,
        detail,
        alert_id,
        now_ms(),
    )
}

/// [`insert_event`] stamped `at_ms` (an event that happened while the store was down).
#[allow(clippy::too_many_arguments)]
fn insert_event_at(
    conn: &rusqlite::Connection,
    stream: &str,
    event: AuditEvent,
    actor: &str,
    reason: &str,
    detail: &str,
    alert_id: Option<i64>,
    at_ms: i64,
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO stream_events (stream, event, actor, reason, detail, alert_id, at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![stream, event, actor, reason, detail, alert_id, at_ms],
    )?;
    Ok(())
}

fn now_ms() -> i64 {
    crate::telemetry::unix_ms() as i64
}

impl AlertStore {
    pub fn open(path: &Path) -> Result<AlertStore, StoreError> {
        let err = |message: String| StoreError::Open {
            path: path.to_path_buf(),
            message,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| err(format!("cannot create {}: {e}", dir.display())))?;
        }
        let conn = Connection::open(path).map_err(|e| err(e.to_string()))?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| err(e.to_string()))?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(|e| err(e.to_string()))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(|e| err(e.to_string()))?;
        let mut store = AlertStore {
            conn,
            sinks: Vec::new(),
            instance: String::new(),
            cooldown_ms: 0,
            on_queued: None,
        };
        store.migrate().map_err(|e| err(e.to_string()))?;
        store.instance = store.instance_id().map_err(|e| err(e.to_string()))?;
        Ok(store)
    }

    /// Queues every event recorded from now on through this connection (alerts raised or
    /// escalated, moderators' actions, halts and reinstatements) for the sinks that take
    /// it, in the same transaction that records it.
    pub fn with_sinks(mut self, sinks: Vec<SinkRoute>) -> AlertStore {
        self.sinks = sinks;
        self
    }

    /// Calls `f` after every commit that may have queued a message for a sink (to wake the
    /// delivery threads instead of letting them find it on their next poll).
    pub fn set_on_queued(&mut self, f: impl Fn() + Send + 'static) {
        self.on_queued = Some(Box::new(f));
    }

    fn queued(&self) {
        if let Some(f) = &self.on_queued {
            f();
        }
    }

    /// Suppresses findings of a stream and item for `ms` after a moderator dismissed its
    /// alert (0: never).
    pub fn with_cooldown(mut self, ms: u64) -> AlertStore {
        self.cooldown_ms = ms as i64;
        self
    }

    /// The random id this database got when it was created (made now if missing).
    fn instance_id(&mut self) -> Result<String, rusqlite::Error> {
        let mut bytes = [0u8; 6];
        if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
            use std::io::Read;
            let _ = f.read_exact(&mut bytes);
        }
        if bytes == [0; 6] {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos() as u64
                ^ ((std::process::id() as u64) << 32);
            bytes.copy_from_slice(&t.to_le_bytes()[..6]);
        }
        let fresh: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        self.conn.execute(
            "INSERT OR IGNORE INTO meta (key, value) VALUES ('instance', ?1)",
            params![fresh],
        )?;
        self.conn
            .query_row("SELECT value FROM meta WHERE key = 'instance'", [], |r| {
                r.get(0)
            })
    }

    /// This database's instance id (the prefix of every message id).
    pub fn instance(&self) -> &str {
        &self.instance
    }

    fn migrate(&mut self) -> Result<(), rusqlite::Error> {
        // The version is read under the write lock: two processes opening one database at
        // once must not both run the same migrations.
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let version: usize = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", i + 1)?;
        }
        tx.commit()
    }

    /// Counts for `/metrics`.
    pub fn counts(&self) -> Result<StoreCounts, StoreError> {
        let rows = |sql: &str| -> Result<Vec<(String, u64, u64)>, StoreError> {
            let mut stmt = self.conn.prepare(sql)?;
            let r = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            Ok(r.collect::<Result<_, _>>()?)
        };
        let mut stmt = self.conn.prepare(
            "SELECT reason, action, state, COUNT(*) FROM alerts GROUP BY reason, action, state ORDER BY 1, 2, 3",
        )?;
        let alerts = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
            .collect::<Result<_, _>>()?;
        let one = |sql: &str| -> Result<u64, StoreError> {
            Ok(self.conn.query_row(sql, [], |r| r.get(0))?)
        };
        Ok(StoreCounts {
            alerts,
            outbox: rows(
                "SELECT sink, COUNT(*), COALESCE(SUM(attempts), 0) FROM outbox GROUP BY sink ORDER BY sink",
            )?,
            dead: rows(
                "SELECT sink, COUNT(*), 0 FROM outbox WHERE dead_at_ms IS NOT NULL GROUP BY sink ORDER BY sink",
            )?
            .into_iter()
            .map(|(s, n, _)| (s, n))
            .collect(),
            deliveries: rows(
                "SELECT sink, COUNT(*), COALESCE(SUM(attempts - 1), 0) FROM deliveries GROUP BY sink ORDER BY sink",
            )?,
            halted_streams: one("SELECT COUNT(*) FROM stream_halts WHERE halted = 1")?,
            halts: one("SELECT COUNT(*) FROM stream_events WHERE event = 'halt'")?,
        })
    }

    /// Keeps `thumb` as alert `id`'s evidence (the first one stays).
    pub fn put_evidence(&mut self, id: i64, thumb: &Thumbnail) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT OR IGNORE INTO evidence (alert_id, width, height, grey, created_at_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![id, thumb.width as i64, thumb.height as i64, thumb.grey, now_ms()],
        )?;
        Ok(())
    }

    /// Alert `id`'s evidence, if any was kept.
    pub fn evidence(&self, id: i64) -> Result<Option<Thumbnail>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT width, height, grey FROM evidence WHERE alert_id = ?1",
                params![id],
                |r| {
                    Ok(Thumbnail {
                        width: r.get::<_, i64>(0)? as usize,
                        height: r.get::<_, i64>(1)? as usize,
                        grey: r.get(2)?,
                    })
                },
            )
            .optional()?)
    }
}

mod alerts;
mod halts;
mod health;
mod outbox;
mod query;
mod retention;
mod schema;
pub use crate::domain::AlertAction;
use alerts::ALERT_COLUMNS;
pub use alerts::TransitionError;
use halts::AUDIT_COLUMNS;
pub use halts::{HaltOutcome, HaltRow};
pub use health::{HealthSnapshot, StoreHealth};
pub use outbox::{DeliveryRow, MAX_MESSAGE_BYTES, OutboxRow};
use outbox::{alert_message, enqueue};
use query::{Where, alerts_query, audit_query};
pub use retention::{PRUNE_BATCH, Pruned, Retention, spawn_pruner};
use schema::MIGRATIONS;

#[cfg(test)]
mod tests;
