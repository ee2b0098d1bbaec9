//! The alert store: SQLite (WAL, synchronous=FULL) as the system of record. The schema is
//! created and migrated at open; every alert is committed before it is logged as raised.
//! Several connections share the file (the moderation thread's, the control plane's), so
//! every read-then-write transaction starts IMMEDIATE: it waits for the write lock (up to the
//! busy timeout) instead of failing when another connection committed in between.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("alert store {}: {message}", path.display())]
    Open { path: PathBuf, message: String },
    #[error("alert store: {0}")]
    Sql(#[from] rusqlite::Error),
}

/// Schema migrations, applied in order; `PRAGMA user_version` records how many ran.
const MIGRATIONS: &[&str] = &[
    "CREATE TABLE alerts (
        id INTEGER PRIMARY KEY,
        stream TEXT NOT NULL,
        reason TEXT NOT NULL,
        bank TEXT NOT NULL,
        item_id TEXT NOT NULL,
        label TEXT,
        distance INTEGER NOT NULL,
        quality INTEGER NOT NULL,
        hash TEXT NOT NULL,
        frame_pts_ms INTEGER NOT NULL,
        last_frame_pts_ms INTEGER NOT NULL,
        hits INTEGER NOT NULL DEFAULT 1,
        state TEXT NOT NULL DEFAULT 'open',
        created_at_ms INTEGER NOT NULL,
        updated_at_ms INTEGER NOT NULL
    );
    CREATE UNIQUE INDEX alerts_one_open ON alerts(stream, reason, bank, item_id) WHERE state = 'open';",
    // 2: what the bank's configuration called for, and which rotation or mirror matched.
    "ALTER TABLE alerts ADD COLUMN action TEXT NOT NULL DEFAULT 'review';
    ALTER TABLE alerts ADD COLUMN variant TEXT NOT NULL DEFAULT 'original';",
    // 3: halted streams (the deny list `on_publish` consults) and an audit log of every
    // halt, reinstatement, refused publish and confirmation.
    "CREATE TABLE stream_halts (
        stream TEXT PRIMARY KEY,
        halted INTEGER NOT NULL,
        actor TEXT NOT NULL,
        reason TEXT NOT NULL,
        alert_id INTEGER,
        updated_at_ms INTEGER NOT NULL
    );
    CREATE TABLE stream_events (
        id INTEGER PRIMARY KEY,
        stream TEXT NOT NULL,
        event TEXT NOT NULL,
        actor TEXT NOT NULL,
        reason TEXT NOT NULL,
        detail TEXT NOT NULL DEFAULT '',
        alert_id INTEGER,
        at_ms INTEGER NOT NULL
    );
    CREATE INDEX stream_events_by_stream ON stream_events(stream, id);",
];

/// A hash match to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchAlert {
    pub stream: String,
    pub bank: String,
    pub item_id: String,
    pub label: Option<String>,
    pub distance: u32,
    pub quality: u32,
    pub hash: String,
    pub frame_pts_ms: u64,
    /// `halt` or `review`, from the bank's configuration.
    pub action: String,
    /// The dihedral variant of the frame that matched (`original`, `rot90`, `flipx`, ...).
    pub variant: String,
}

/// A stored alert row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertRow {
    pub id: i64,
    pub stream: String,
    pub reason: String,
    pub bank: String,
    pub item_id: String,
    pub distance: u32,
    pub quality: u32,
    pub frame_pts_ms: u64,
    pub hits: u64,
    pub state: String,
    pub action: String,
    pub variant: String,
}

/// One row of the stream audit log.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StreamEvent {
    pub id: i64,
    pub stream: String,
    /// `halt`, `reinstate`, `publish_refused`, `halt_confirmed`, `halt_failed`.
    pub event: String,
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
}

pub struct AlertStore {
    conn: Connection,
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
        let mut store = AlertStore { conn };
        store.migrate().map_err(|e| err(e.to_string()))?;
        Ok(store)
    }

    fn migrate(&mut self) -> Result<(), rusqlite::Error> {
        let version: usize = self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", i + 1)?;
        }
        tx.commit()
    }

    /// Records a match: a new open alert, or one more hit on the open alert for the same
    /// stream, bank and item. Committed durably before returning.
    pub fn record_match(&mut self, m: &MatchAlert) -> Result<Recorded, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let now = now_ms();
        let open: Option<i64> = tx
            .query_row(
                "SELECT id FROM alerts WHERE stream = ?1 AND reason = 'hash_match' AND bank = ?2 AND item_id = ?3 AND state = 'open'",
                params![m.stream, m.bank, m.item_id],
                |r| r.get(0),
            )
            .optional()?;
        let recorded = match open {
            Some(id) => {
                tx.execute(
                    "UPDATE alerts SET hits = hits + 1, last_frame_pts_ms = ?2, updated_at_ms = ?3, distance = MIN(distance, ?4) WHERE id = ?1",
                    params![id, m.frame_pts_ms as i64, now, m.distance],
                )?;
                Recorded::Attached(id)
            }
            None => {
                tx.execute(
                    "INSERT INTO alerts (stream, reason, bank, item_id, label, distance, quality, hash, frame_pts_ms, last_frame_pts_ms, created_at_ms, updated_at_ms, action, variant)
                     VALUES (?1, 'hash_match', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, ?9, ?9, ?10, ?11)",
                    params![m.stream, m.bank, m.item_id, m.label, m.distance, m.quality, m.hash, m.frame_pts_ms as i64, now, m.action, m.variant],
                )?;
                Recorded::Raised(tx.last_insert_rowid())
            }
        };
        tx.commit()?;
        Ok(recorded)
    }

    /// Marks `stream` halted (the deny list). Returns false, and records nothing, when it
    /// already was: halts are idempotent.
    pub fn halt(
        &mut self,
        stream: &str,
        actor: &str,
        reason: &str,
        alert_id: Option<i64>,
    ) -> Result<bool, StoreError> {
        self.set_halted(stream, true, actor, reason, alert_id)
    }

    /// Lifts a halt. Returns false, and records nothing, when the stream was not halted.
    pub fn reinstate(
        &mut self,
        stream: &str,
        actor: &str,
        reason: &str,
    ) -> Result<bool, StoreError> {
        self.set_halted(stream, false, actor, reason, None)
    }

    fn set_halted(
        &mut self,
        stream: &str,
        halted: bool,
        actor: &str,
        reason: &str,
        alert_id: Option<i64>,
    ) -> Result<bool, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let now = now_ms();
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
            params![stream, if halted { "halt" } else { "reinstate" }, actor, reason, alert_id, now],
        )?;
        tx.commit()?;
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
        event: &str,
        actor: &str,
        reason: &str,
        detail: &str,
        alert_id: Option<i64>,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO stream_events (stream, event, actor, reason, detail, alert_id, at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![stream, event, actor, reason, detail, alert_id, now_ms()],
        )?;
        Ok(())
    }

    /// The audit log of one stream (or of all with `None`), oldest first.
    pub fn events(&self, stream: Option<&str>) -> Result<Vec<StreamEvent>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT id, stream, event, actor, reason, detail, alert_id, at_ms FROM stream_events
             WHERE ?1 IS NULL OR stream = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map(params![stream], |r| {
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
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// All alerts, oldest first.
    pub fn alerts(&self) -> Result<Vec<AlertRow>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT id, stream, reason, bank, item_id, distance, quality, frame_pts_ms, hits, state, action, variant FROM alerts ORDER BY id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(AlertRow {
                id: r.get(0)?,
                stream: r.get(1)?,
                reason: r.get(2)?,
                bank: r.get(3)?,
                item_id: r.get(4)?,
                distance: r.get(5)?,
                quality: r.get(6)?,
                frame_pts_ms: r.get::<_, i64>(7)? as u64,
                hits: r.get::<_, i64>(8)? as u64,
                state: r.get(9)?,
                action: r.get(10)?,
                variant: r.get(11)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(stream: &str, item: &str, pts: u64) -> MatchAlert {
        MatchAlert {
            stream: stream.into(),
            bank: "demo".into(),
            item_id: item.into(),
            label: None,
            distance: 4,
            quality: 90,
            hash: "00".repeat(32),
            frame_pts_ms: pts,
            action: "review".into(),
            variant: "flipx".into(),
        }
    }

    #[test]
    fn one_open_alert_per_stream_and_item_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/alerts.db");
        let mut s = AlertStore::open(&path).unwrap();
        assert!(matches!(
            s.record_match(&m("a", "x", 10)).unwrap(),
            Recorded::Raised(_)
        ));
        assert!(matches!(
            s.record_match(&m("a", "x", 20)).unwrap(),
            Recorded::Attached(_)
        ));
        assert!(matches!(
            s.record_match(&m("b", "x", 30)).unwrap(),
            Recorded::Raised(_)
        ));
        drop(s);
        let s = AlertStore::open(&path).unwrap(); // migrations are idempotent
        let rows = s.alerts().unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(
            (rows[0].stream.as_str(), rows[0].hits, rows[0].frame_pts_ms),
            ("a", 2, 10)
        );
        assert_eq!(
            (rows[0].action.as_str(), rows[0].variant.as_str()),
            ("review", "flipx")
        );
        let mode: String = s
            .conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
    }

    #[test]
    fn halts_are_idempotent_and_audited() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = AlertStore::open(&dir.path().join("a.db")).unwrap();
        assert!(s.halt("live/a", "policy", "bank demo", Some(7)).unwrap());
        assert!(!s.halt("live/a", "api", "again", None).unwrap());
        assert!(s.is_halted("live/a").unwrap());
        assert_eq!(s.halted_streams().unwrap(), vec!["live/a".to_string()]);
        assert!(s.reinstate("live/a", "api", "false positive").unwrap());
        assert!(!s.reinstate("live/a", "api", "again").unwrap());
        assert!(!s.is_halted("live/a").unwrap());
        let ev = s.events(Some("live/a")).unwrap();
        let kinds: Vec<_> = ev
            .iter()
            .map(|e| (e.event.as_str(), e.actor.as_str()))
            .collect();
        assert_eq!(kinds, vec![("halt", "policy"), ("reinstate", "api")]);
        assert_eq!(ev[0].alert_id, Some(7));
    }

    #[test]
    fn unopenable_path_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, "x").unwrap();
        let msg = AlertStore::open(&file.join("db.sqlite"))
            .err()
            .unwrap()
            .to_string();
        assert!(
            msg.contains("db.sqlite") || msg.contains(&file.display().to_string()),
            "{msg}"
        );
    }
}
