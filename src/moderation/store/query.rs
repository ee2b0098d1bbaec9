//! The list queries' SQL: a WHERE clause of only the filters given, so that SQLite can use
//! an index for each.

use super::{ALERT_COLUMNS, AUDIT_COLUMNS, AlertFilter, AuditFilter};

/// The query [`AlertStore::list_alerts`] runs, and its arguments.
pub(super) fn alerts_query(f: &AlertFilter) -> (String, Vec<rusqlite::types::Value>) {
    let mut w = Where::default();
    w.add("state =", f.state.map(|s| s.as_str().to_string()));
    w.add("stream =", f.stream.clone());
    w.add("reason =", f.reason.map(|r| r.as_str().to_string()));
    w.add("id <", f.before);
    w.select(ALERT_COLUMNS, "alerts", f.limit)
}

/// The query [`AlertStore::audit`] runs, and its arguments.
pub(super) fn audit_query(f: &AuditFilter) -> (String, Vec<rusqlite::types::Value>) {
    let mut w = Where::default();
    w.add("stream =", f.stream.clone());
    w.add("alert_id =", f.alert);
    w.add("id <", f.before);
    w.select(AUDIT_COLUMNS, "stream_events", f.limit)
}

/// A query's WHERE clause made of only the filters given, newest first. One statement
/// with a `(?n IS NULL OR col = ?n)` term per filter would be simpler, but SQLite uses no
/// index for such a term: a filtered list would scan the whole table (BENCHMARKS.md,
/// `cargo bench --bench queries`).
#[derive(Default)]
pub(super) struct Where {
    terms: Vec<String>,
    args: Vec<rusqlite::types::Value>,
}

impl Where {
    /// Adds `<term> ?n` (e.g. `stream =`) when `value` is given.
    pub(super) fn add<V: Into<rusqlite::types::Value>>(&mut self, term: &str, value: Option<V>) {
        if let Some(v) = value {
            self.args.push(v.into());
            self.terms.push(format!("{term} ?{}", self.args.len()));
        }
    }

    /// Adds a term that takes no argument (e.g. `dead_at_ms IS NULL`).
    pub(super) fn add_term(&mut self, term: &str) {
        self.terms.push(term.to_string());
    }

    /// `SELECT <columns> FROM <table> WHERE ... ORDER BY id DESC LIMIT <limit>`.
    pub(super) fn select(
        self,
        columns: &str,
        table: &str,
        limit: usize,
    ) -> (String, Vec<rusqlite::types::Value>) {
        self.select_ordered(columns, table, "id DESC", limit)
    }

    /// The same, oldest first (`ORDER BY id`).
    pub(super) fn select_oldest_first(
        self,
        columns: &str,
        table: &str,
        limit: usize,
    ) -> (String, Vec<rusqlite::types::Value>) {
        self.select_ordered(columns, table, "id", limit)
    }

    fn select_ordered(
        mut self,
        columns: &str,
        table: &str,
        order: &str,
        limit: usize,
    ) -> (String, Vec<rusqlite::types::Value>) {
        let filter = if self.terms.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.terms.join(" AND "))
        };
        self.args.push((limit as i64).into());
        let sql = format!(
            "SELECT {columns} FROM {table} {filter} ORDER BY {order} LIMIT ?{}",
            self.args.len()
        );
        (sql, self.args)
    }
}
