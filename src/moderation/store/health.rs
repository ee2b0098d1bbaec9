//! Whether the store takes writes, as the writers on the protective path (the recorder and
//! the control plane) last found it, and how much waits for it. `/readyz` and `/metrics`
//! show it. While the store refuses writes (disk full, files made read-only, I/O errors),
//! halts still happen from memory; what could not be written waits, in order, and is
//! written once the store takes writes again.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct StoreHealth {
    /// When writes began failing (ms since the epoch); 0 while they succeed.
    failing_since_ms: AtomicU64,
    /// Failed writes since start.
    errors: AtomicU64,
    /// Findings whose alerts are not recorded yet (the recorder's queue).
    pending_alerts: AtomicU64,
    /// Deny-list and audit writes not made yet (the control plane's queue).
    pending_writes: AtomicU64,
    last_error: Mutex<String>,
}

/// What `/readyz` and `/metrics` show.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HealthSnapshot {
    /// The last write succeeded and nothing waits.
    pub ok: bool,
    pub failing_since_ms: Option<u64>,
    pub last_error: Option<String>,
    pub errors_total: u64,
    pub pending_alerts: u64,
    pub pending_writes: u64,
}

impl StoreHealth {
    /// A write failed with `error`. Callers count what waits (`set_pending_*`) first.
    pub fn failed(&self, error: &dyn std::fmt::Display) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let first = self
            .failing_since_ms
            .compare_exchange(
                0,
                crate::telemetry::unix_ms().max(1),
                Ordering::Relaxed,
                Ordering::Relaxed,
            )
            .is_ok();
        let text = error.to_string();
        if first {
            tracing::error!(error = %text, "the alert store refuses writes: halting from memory, keeping what is not written until it takes writes again");
        }
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = text;
    }

    /// The recorder's queue now holds `n` findings.
    pub fn set_pending_alerts(&self, n: usize) {
        self.pending_alerts.store(n as u64, Ordering::Relaxed);
        self.maybe_recovered();
    }

    /// The control plane's queue now holds `n` writes.
    pub fn set_pending_writes(&self, n: usize) {
        self.pending_writes.store(n as u64, Ordering::Relaxed);
        self.maybe_recovered();
    }

    /// A write succeeded: healthy again once nothing waits.
    fn maybe_recovered(&self) {
        let waiting = self.pending_alerts.load(Ordering::Relaxed)
            + self.pending_writes.load(Ordering::Relaxed);
        if waiting == 0 {
            let since = self.failing_since_ms.swap(0, Ordering::Relaxed);
            if since != 0 {
                tracing::info!(
                    down_ms = crate::telemetry::unix_ms().saturating_sub(since),
                    "the alert store takes writes again; everything held back is written"
                );
            }
        }
    }

    pub fn snapshot(&self) -> HealthSnapshot {
        let since = self.failing_since_ms.load(Ordering::Relaxed);
        let last = self.last_error.lock().unwrap_or_else(|e| e.into_inner());
        HealthSnapshot {
            ok: since == 0,
            failing_since_ms: (since != 0).then_some(since),
            last_error: (since != 0 && !last.is_empty()).then(|| last.clone()),
            errors_total: self.errors.load(Ordering::Relaxed),
            pending_alerts: self.pending_alerts.load(Ordering::Relaxed),
            pending_writes: self.pending_writes.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failing_until_nothing_waits() {
        let h = StoreHealth::default();
        assert!(h.snapshot().ok);
        h.failed(&"disk I/O error");
        h.set_pending_alerts(2);
        h.set_pending_writes(1);
        let s = h.snapshot();
        assert!(!s.ok && s.failing_since_ms.is_some());
        assert_eq!(s.last_error.as_deref(), Some("disk I/O error"));
        assert_eq!(
            (s.errors_total, s.pending_alerts, s.pending_writes),
            (1, 2, 1)
        );
        h.set_pending_alerts(0);
        assert!(!h.snapshot().ok, "a write still waits");
        h.set_pending_writes(0);
        let s = h.snapshot();
        assert!(s.ok && s.last_error.is_none());
        assert_eq!(s.errors_total, 1, "a counter: it stays");
    }
}
