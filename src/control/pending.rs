//! Control-plane writes the store has not taken yet. A halt acts at once, from memory (the
//! deny list the callbacks read, the actuator); its durable record (the deny list row, the
//! audit entries, the sinks' messages) is written when the store takes it, in the order the
//! events happened and stamped with the time they happened.

use crate::domain::AuditEvent;
use crate::moderation::store::{AlertStore, StoreError};

/// One write, as it would have been made.
#[derive(Debug, Clone, PartialEq)]
pub enum PendingWrite {
    /// `stream` onto the deny list ([`AlertStore::halt_at`]).
    Halt {
        stream: String,
        actor: String,
        reason: String,
        alert_id: Option<i64>,
        at_ms: i64,
    },
    /// An audit entry ([`AlertStore::record_event_at`]).
    Event {
        stream: String,
        event: AuditEvent,
        actor: String,
        reason: String,
        detail: String,
        alert_id: Option<i64>,
        at_ms: i64,
    },
}

impl PendingWrite {
    pub fn event(
        stream: &str,
        event: AuditEvent,
        actor: &str,
        reason: &str,
        detail: &str,
        alert_id: Option<i64>,
    ) -> PendingWrite {
        PendingWrite::Event {
            stream: stream.to_string(),
            event,
            actor: actor.to_string(),
            reason: reason.to_string(),
            detail: detail.to_string(),
            alert_id,
            at_ms: crate::telemetry::unix_ms() as i64,
        }
    }

    pub fn apply(&self, store: &mut AlertStore) -> Result<(), StoreError> {
        match self {
            PendingWrite::Halt {
                stream,
                actor,
                reason,
                alert_id,
                at_ms,
            } => store
                .halt_at(stream, actor, reason, *alert_id, *at_ms)
                .map(|_| ()),
            PendingWrite::Event {
                stream,
                event,
                actor,
                reason,
                detail,
                alert_id,
                at_ms,
            } => store.record_event_at(stream, *event, actor, reason, detail, *alert_id, *at_ms),
        }
    }
}
