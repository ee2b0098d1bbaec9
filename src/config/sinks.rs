use super::Problem;
use crate::domain::SinkEvent;
use serde::Deserialize;

/// Where alerts and moderation events are delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SinkKind {
    /// NATS JetStream: each message published to `subject` (captured by the JetStream
    /// stream `stream`, created if missing) with its message id as `Nats-Msg-Id`, so that
    /// JetStream drops a re-delivery within the stream's duplicate window.
    Nats,
    /// An HTTP endpoint: each message POSTed as JSON, signed with HMAC-SHA256 of the body in
    /// `X-Streamguard-Signature: sha256=<hex>`; any 2xx answer accepts it.
    Webhook,
}

/// `[[sinks]]`: one destination for alerts and moderation events. Every event is put in the
/// store's outbox for every sink that takes it (`events`) in the same transaction that
/// records it, and stays there until that sink
/// acknowledged it (retried with backoff for as long as it takes: a sink that is down delays
/// delivery, never loses it).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkConfig {
    /// Unique name, used in the outbox, logs and metrics.
    pub name: String,
    /// `nats` or `webhook`.
    pub kind: SinkKind,
    /// `nats://host:port` for NATS; `http://` or `https://` URL for a webhook.
    pub url: String,
    /// NATS: the subject alerts are published to. Default: `streamguard.alerts`.
    #[serde(default = "default_subject")]
    pub subject: String,
    /// NATS: the JetStream stream that captures `subject` (created with that one subject if
    /// it does not exist). Default: `STREAMGUARD_ALERTS`.
    #[serde(default = "default_stream")]
    pub stream: String,
    /// Webhook: the HMAC-SHA256 key, given directly or (better) as the name of an
    /// environment variable holding it. One of the two is required for a webhook.
    #[serde(default)]
    pub secret: Option<String>,
    #[serde(default)]
    pub secret_env: Option<String>,
    /// Longest wait for each step of one delivery attempt (a webhook's whole request; NATS:
    /// connecting, then publishing and its acknowledgement). Default: 5000.
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
    /// Waits between failed attempts of one alert: doubling from `backoff_initial_ms` up to
    /// `backoff_max_ms`. Defaults: 500 and 30000.
    #[serde(default = "default_backoff_initial")]
    pub backoff_initial_ms: u64,
    #[serde(default = "default_backoff_max")]
    pub backoff_max_ms: u64,
    /// Which events this sink gets (see [`SINK_EVENTS`]): a new alert (`alert.raised`), a
    /// review alert turned into a halt (`alert.escalated`), a moderator's action on an
    /// alert (`alert.claimed`, `alert.confirmed`, `alert.dismissed`), a stream halted or
    /// reinstated, by the policy or through the API (`stream.halted`, `stream.reinstated`).
    /// Default: all of them. Events are queued when they happen: a sink given more events
    /// later does not get the earlier ones.
    #[serde(default = "default_events")]
    pub events: Vec<String>,
}

/// Every event a sink can get, in the order they usually happen ([`SinkEvent`]'s names).
pub const SINK_EVENTS: [&str; SinkEvent::ALL.len()] = {
    let mut names = [""; SinkEvent::ALL.len()];
    let mut i = 0;
    while i < names.len() {
        names[i] = SinkEvent::ALL[i].as_str();
        i += 1;
    }
    names
};

fn default_events() -> Vec<String> {
    SINK_EVENTS.iter().map(|e| e.to_string()).collect()
}

fn default_subject() -> String {
    "streamguard.alerts".into()
}
fn default_stream() -> String {
    "STREAMGUARD_ALERTS".into()
}
fn default_timeout() -> u64 {
    5000
}
fn default_backoff_initial() -> u64 {
    500
}
fn default_backoff_max() -> u64 {
    30_000
}

/// Why a webhook sink has no usable secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("give `secret` or `secret_env`, not both")]
    Both,
    /// An empty key would let anyone compute the signature.
    #[error("must not be empty")]
    Empty,
    /// `secret_env` names a variable that is unset or empty.
    #[error("environment variable {0} is not set")]
    Unset(String),
    #[error("a webhook needs `secret` or `secret_env`")]
    Missing,
}

impl SinkConfig {
    /// The webhook secret: `secret`, or the value of the variable `secret_env` names.
    pub fn resolve_secret(&self) -> Result<String, SecretError> {
        match (&self.secret, &self.secret_env) {
            (Some(_), Some(_)) => Err(SecretError::Both),
            (Some(s), None) if s.is_empty() => Err(SecretError::Empty),
            (Some(s), None) => Ok(s.clone()),
            (None, Some(var)) => match std::env::var(var) {
                Ok(v) if !v.is_empty() => Ok(v),
                _ => Err(SecretError::Unset(var.clone())),
            },
            (None, None) => Err(SecretError::Missing),
        }
    }
}

pub(super) fn validate_sinks(sinks: &[SinkConfig], problems: &mut Vec<Problem>) {
    let mut seen = std::collections::BTreeSet::new();
    for (i, s) in sinks.iter().enumerate() {
        let key = |k: &str| format!("sinks[{i}].{k}");
        if s.name.is_empty()
            || !s
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            problems.push(Problem::new(
                key("name"),
                "must be letters, digits, '-' or '_'",
            ));
        } else if !seen.insert(s.name.clone()) {
            problems.push(Problem::new(
                key("name"),
                format!("'{}' is used by another sink", s.name),
            ));
        }
        match s.kind {
            SinkKind::Nats => {
                if !s.url.starts_with("nats://") {
                    problems.push(Problem::new(key("url"), "must start with nats://"));
                }
                let token_ok = |t: &str| {
                    !t.is_empty() && !t.chars().any(|c| c.is_whitespace() || c == '*' || c == '>')
                };
                if !s.subject.split('.').all(token_ok) {
                    problems.push(Problem::new(
                        key("subject"),
                        "must be dot-separated tokens without spaces or wildcards",
                    ));
                }
                if s.stream.is_empty()
                    || s.stream
                        .chars()
                        .any(|c| c.is_whitespace() || ".*>/\\".contains(c))
                {
                    problems.push(Problem::new(
                        key("stream"),
                        "must be a JetStream stream name (no spaces, '.', '*', '>', '/')",
                    ));
                }
            }
            SinkKind::Webhook => {
                if !(s.url.starts_with("http://") || s.url.starts_with("https://")) {
                    problems.push(Problem::new(
                        key("url"),
                        "must start with http:// or https://",
                    ));
                }
                if let Err(e) = s.resolve_secret() {
                    let k = if s.secret_env.is_some() {
                        "secret_env"
                    } else {
                        "secret"
                    };
                    problems.push(Problem::new(key(k), e.to_string()));
                }
            }
        }
        if s.events.is_empty() {
            problems.push(Problem::new(
                key("events"),
                format!(
                    "names no event; leave it out for all ({}), or remove the sink",
                    SINK_EVENTS.join(", ")
                ),
            ));
        }
        for e in &s.events {
            if !SINK_EVENTS.contains(&e.as_str()) {
                problems.push(Problem::new(
                    key("events"),
                    format!("unknown event '{e}' (known: {})", SINK_EVENTS.join(", ")),
                ));
            }
        }
        if s.timeout_ms == 0 {
            problems.push(Problem::new(key("timeout_ms"), "must be at least 1"));
        }
        if s.backoff_initial_ms == 0 || s.backoff_initial_ms > s.backoff_max_ms {
            problems.push(Problem::new(
                key("backoff_initial_ms"),
                "must be at least 1 and at most backoff_max_ms",
            ));
        }
    }
}
