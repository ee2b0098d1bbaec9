//! A large alert store for the store benches, written with plain SQL (the store's own
//! methods would take minutes for a million alerts).
use rusqlite::{Connection, Statement, Transaction, params};
use std::path::Path;
use streamguard::moderation::store::AlertStore;

/// How many alerts to build: `$ALERTS`, else `default`.
pub fn alerts_from_env(default: i64) -> i64 {
    std::env::var("ALERTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Creates the store at `path` (schema and migrations) and fills it in one transaction.
pub fn build(path: &Path, fill: impl FnOnce(&mut Writer<'_>)) {
    drop(AlertStore::open(path).unwrap());
    let mut c = Connection::open(path).unwrap();
    let tx = c.transaction().unwrap();
    {
        let mut w = Writer {
            alert: tx
                .prepare(
                    "INSERT INTO alerts (id, stream, reason, bank, item_id, distance, quality, hash, frame_pts_ms,
                     last_frame_pts_ms, state, created_at_ms, updated_at_ms, action, variant)
                     VALUES (?1, ?2, 'hash_match', 'demo', ?3, 4, 90, '', 0, 0, ?4, ?5, ?5, 'review', 'original')",
                )
                .unwrap(),
            event: tx
                .prepare(
                    "INSERT INTO stream_events (stream, event, actor, reason, alert_id, at_ms)
                     VALUES (?1, ?2, 'token:mo', 'bench', ?3, ?4)",
                )
                .unwrap(),
            tx: &tx,
        };
        fill(&mut w);
    }
    tx.commit().unwrap();
}

pub struct Writer<'a> {
    /// For rows of other tables.
    #[allow(dead_code)] // each bench compiles this module; not every one writes those
    pub tx: &'a Transaction<'a>,
    alert: Statement<'a>,
    event: Statement<'a>,
}

impl Writer<'_> {
    /// Hash-match alert `id` (item `item-<id>`) of `stream` in `state`, created and last
    /// updated at `at_ms`, with one audit entry of that time per `events`.
    pub fn alert(&mut self, id: i64, stream: &str, state: &str, at_ms: i64, events: &[&str]) {
        self.alert
            .execute(params![id, stream, format!("item-{id}"), state, at_ms])
            .unwrap();
        for e in events {
            self.event.execute(params![stream, e, id, at_ms]).unwrap();
        }
    }
}
