//! The domain's words, each an enum with its string form in one place: what the alert store
//! writes, the API and its OpenAPI document show, server-sent events and sink messages carry.
//!
//! - [`AlertState`]: `open` → `claimed` → `confirmed` / `dismissed`;
//! - [`AlertAction`]: what a moderator does to an alert, `claim`, `confirm`, `dismiss`;
//! - [`Action`]: what a verdict calls for, `review` or `halt`;
//! - [`Reason`]: why an alert was raised, `hash_match` or `classifier`;
//! - [`StreamState`]: where a watched stream's supervisor is;
//! - [`AuditEvent`]: the kinds of entries in the audit log;
//! - [`SinkEvent`]: the kinds of messages the sinks get;
//! - [`Subject`]: what an alert is about, a bank item or a classifier label.
//!
//! Every enum has `ALL` (in the order the API documents it), `as_str`, `parse`, `Display`,
//! serde (as its string) and SQLite conversions (as TEXT).

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use std::fmt;

/// Defines a field-less enum whose variants are written as fixed strings.
macro_rules! words {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every value, in the order the API documents them.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The string form stored, served and sent.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            /// Every string form, comma-separated (for "expected one of" messages).
            pub fn names() -> String {
                $name::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", ")
            }

            /// The value of a string form; `None` for anything else.
            pub fn parse(s: &str) -> Option<$name> {
                match s {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        /// So that a value compares with its string form (`event == "halt"`).
        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<$name, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                $name::parse(&s).ok_or_else(|| {
                    serde::de::Error::custom(format!(
                        "unknown {} '{s}' (expected one of: {})",
                        stringify!($name),
                        $name::names()
                    ))
                })
            }
        }

        impl ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::from(self.as_str()))
            }
        }

        impl FromSql for $name {
            fn column_result(v: ValueRef<'_>) -> FromSqlResult<$name> {
                let s = v.as_str()?;
                $name::parse(s).ok_or_else(|| {
                    FromSqlError::Other(format!("unknown {} '{s}'", stringify!($name)).into())
                })
            }
        }
    };
}

words! {
    /// Where an alert is in a moderator's hands.
    AlertState {
        /// Raised, nobody has taken it yet.
        Open = "open",
        /// A moderator is looking at it.
        Claimed = "claimed",
        /// A true finding.
        Confirmed = "confirmed",
        /// A false positive.
        Dismissed = "dismissed",
    }
}

words! {
    /// What a moderator does to an alert.
    AlertAction {
        /// `open` → `claimed`: someone is looking at it.
        Claim = "claim",
        /// `open` or `claimed` → `confirmed`: a true finding.
        Confirm = "confirm",
        /// `open` or `claimed` → `dismissed`: a false positive.
        Dismiss = "dismiss",
    }
}

impl AlertAction {
    /// The state it leads to, the audit event it writes and the message the sinks get.
    pub fn target(self) -> (AlertState, AuditEvent, SinkEvent) {
        match self {
            AlertAction::Claim => (
                AlertState::Claimed,
                AuditEvent::AlertClaimed,
                SinkEvent::AlertClaimed,
            ),
            AlertAction::Confirm => (
                AlertState::Confirmed,
                AuditEvent::AlertConfirmed,
                SinkEvent::AlertConfirmed,
            ),
            AlertAction::Dismiss => (
                AlertState::Dismissed,
                AuditEvent::AlertDismissed,
                SinkEvent::AlertDismissed,
            ),
        }
    }

    /// Whether an alert in `state` can be acted on so.
    pub fn allowed_from(self, state: AlertState) -> bool {
        match self {
            AlertAction::Claim => state == AlertState::Open,
            AlertAction::Confirm | AlertAction::Dismiss => {
                matches!(state, AlertState::Open | AlertState::Claimed)
            }
        }
    }
}

words! {
    /// What a verdict calls for.
    Action {
        /// A moderator reviews the alert.
        Review = "review",
        /// The stream is halted (and the alert reviewed).
        Halt = "halt",
    }
}

words! {
    /// Why an alert was raised.
    Reason {
        /// A frame's PDQ hash matched a bank item.
        HashMatch = "hash_match",
        /// A classifier's label scored over its threshold.
        Classifier = "classifier",
    }
}

words! {
    /// Where a watched stream's supervisor is.
    StreamState {
        /// Its pipelines are being built and started.
        Starting = "starting",
        /// Receiving and sampling.
        Running = "running",
        /// Its session ended or failed; a new one starts after a back-off.
        Restarting = "restarting",
        /// Gave up after `supervisor.max_restarts`.
        Failed = "failed",
        /// The source ended (end of file; the publisher left).
        Ended = "ended",
        /// Halted by the policy or a moderator.
        Halted = "halted",
        /// Stopped by the daemon (shutdown, stream removed).
        Stopped = "stopped",
    }
}

impl StreamState {
    /// The supervisor is done with the stream: nothing more will happen to it.
    pub fn is_done(self) -> bool {
        matches!(
            self,
            StreamState::Ended | StreamState::Failed | StreamState::Stopped | StreamState::Halted
        )
    }
}

words! {
    /// The kinds of entries in the audit log.
    AuditEvent {
        /// A stream halted (by the policy or a moderator): on the deny list.
        Halt = "halt",
        /// The actuator cut the publisher off.
        HaltSent = "halt_sent",
        /// The actuator could not cut the publisher off (the reconciler tries again).
        HaltFailed = "halt_failed",
        /// The ingest server no longer lists the halted stream.
        HaltConfirmed = "halt_confirmed",
        /// A halted stream reinstated.
        Reinstate = "reinstate",
        /// A publish of a halted key refused at the ingest callback.
        PublishRefused = "publish_refused",
        /// A moderator claimed an alert.
        AlertClaimed = "alert_claimed",
        /// A moderator confirmed an alert.
        AlertConfirmed = "alert_confirmed",
        /// A moderator dismissed an alert.
        AlertDismissed = "alert_dismissed",
        /// A moderator looked at an alert's unblurred evidence.
        EvidenceRevealed = "evidence_revealed",
        /// An admin gave up on an outbox message its sink kept refusing.
        MessageDiscarded = "message_discarded",
    }
}

words! {
    /// The kinds of messages the sinks get, in the order they usually happen.
    SinkEvent {
        /// An alert was raised.
        AlertRaised = "alert.raised",
        /// A review alert became a halt.
        AlertEscalated = "alert.escalated",
        /// A moderator claimed an alert.
        AlertClaimed = "alert.claimed",
        /// A moderator confirmed an alert.
        AlertConfirmed = "alert.confirmed",
        /// A moderator dismissed an alert.
        AlertDismissed = "alert.dismissed",
        /// A stream was halted.
        StreamHalted = "stream.halted",
        /// A halted stream was reinstated.
        StreamReinstated = "stream.reinstated",
    }
}

/// What an alert is about: a bank item a frame's hash matched, or a classifier label a frame
/// scored high on.
#[derive(Debug, Clone, PartialEq)]
pub enum Subject {
    Hash(HashSubject),
    Classifier(ClassifierSubject),
}

/// A bank item matched by a frame's PDQ hash.
#[derive(Debug, Clone, PartialEq)]
pub struct HashSubject {
    pub bank: String,
    pub item_id: String,
    /// The item's label in the bank, if it has one.
    pub label: Option<String>,
    /// Hamming distance of the closest variant.
    pub distance: u32,
    /// The frame hash's quality (0-100).
    pub quality: u32,
    /// The frame's hash, 64 hex digits.
    pub hash: String,
    /// The dihedral variant of the frame that matched (`original`, `rot90`, `flipx`, ...).
    pub variant: String,
}

/// A classifier label over its threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassifierSubject {
    pub model: String,
    pub label: String,
    /// The label's score on the frame.
    pub score: f64,
}

impl Subject {
    pub fn reason(&self) -> Reason {
        match self {
            Subject::Hash(_) => Reason::HashMatch,
            Subject::Classifier(_) => Reason::Classifier,
        }
    }

    /// The bank or the model.
    pub fn source(&self) -> &str {
        match self {
            Subject::Hash(h) => &h.bank,
            Subject::Classifier(c) => &c.model,
        }
    }

    /// A classifier finding's score (`None` for hash matches).
    pub fn score(&self) -> Option<f64> {
        match self {
            Subject::Hash(_) => None,
            Subject::Classifier(c) => Some(c.score),
        }
    }

    /// The bank item's id or the model's label.
    pub fn item(&self) -> &str {
        match self {
            Subject::Hash(h) => &h.item_id,
            Subject::Classifier(c) => &c.label,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_word_round_trips_through_its_string_serde_and_sqlite() {
        fn check<T>(all: &[T])
        where
            T: Copy + PartialEq + fmt::Debug + fmt::Display + ToSql + FromSql,
            T: serde::Serialize + serde::de::DeserializeOwned,
        {
            let conn = rusqlite::Connection::open_in_memory().unwrap();
            for &v in all {
                let json = serde_json::to_string(&v).unwrap();
                assert_eq!(json, format!("\"{v}\""));
                assert_eq!(serde_json::from_str::<T>(&json).unwrap(), v);
                let back: T = conn.query_row("SELECT ?1", [v], |r| r.get(0)).unwrap();
                assert_eq!(back, v);
            }
        }
        check(AlertState::ALL);
        check(AlertAction::ALL);
        check(Action::ALL);
        check(Reason::ALL);
        check(StreamState::ALL);
        check(AuditEvent::ALL);
        check(SinkEvent::ALL);
        assert_eq!(AlertState::parse("claimed"), Some(AlertState::Claimed));
        assert_eq!(AlertState::parse("Claimed"), None);
        assert!(AuditEvent::HaltSent == "halt_sent" && AuditEvent::Halt != "halt_sent");
        let e = serde_json::from_str::<Action>("\"ban\"")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("unknown Action 'ban' (expected one of: review, halt)"),
            "{e}"
        );
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let e = conn
            .query_row("SELECT 'nope'", [], |r| r.get::<_, Reason>(0))
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown Reason 'nope'"), "{e}");
    }

    /// The OpenAPI document lists the same words, in the same order.
    #[test]
    fn the_openapi_document_lists_these_words() {
        let doc: serde_json::Value = serde_json::from_str(crate::http::OPENAPI).unwrap();
        let words = |path: &str| -> Vec<String> {
            doc.pointer(path)
                .and_then(|v| v["enum"].as_array())
                .unwrap_or_else(|| panic!("no enum at {path}"))
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        };
        fn names<T: fmt::Display>(all: &[T]) -> Vec<String> {
            all.iter().map(|v| v.to_string()).collect()
        }
        let schemas = "/components/schemas";
        assert_eq!(
            words(&format!("{schemas}/Alert/properties/reason")),
            names(Reason::ALL)
        );
        assert_eq!(
            words(&format!("{schemas}/Alert/properties/state")),
            names(AlertState::ALL)
        );
        assert_eq!(
            words(&format!("{schemas}/Alert/properties/action")),
            names(Action::ALL)
        );
        assert_eq!(
            words(&format!("{schemas}/AuditEntry/properties/event")),
            names(AuditEvent::ALL)
        );
        assert_eq!(
            words(&format!("{schemas}/OutboxMessage/properties/event")),
            names(SinkEvent::ALL)
        );
        assert_eq!(
            words("/paths/~1api~1v1~1alerts/get/parameters/0/schema"),
            names(AlertState::ALL)
        );
        assert_eq!(
            words("/paths/~1api~1v1~1alerts~1{id}~1{action}/post/parameters/1/schema"),
            names(AlertAction::ALL)
        );
    }

    #[test]
    fn done_states() {
        let done: Vec<_> = StreamState::ALL.iter().filter(|s| s.is_done()).collect();
        assert_eq!(
            done,
            [
                &StreamState::Failed,
                &StreamState::Ended,
                &StreamState::Halted,
                &StreamState::Stopped
            ]
        );
    }
}
