//! Delivery: from the store's outbox to every configured sink, at least once.
//!
//! The moderation thread records an alert (the control plane a moderator's action, a halt
//! or a reinstatement) and, in the same SQLite transaction, one outbox message per sink
//! that takes that event ([`crate::moderation::store::AlertStore::with_sinks`]). Here one thread
//! per sink, with its own connection to the store, takes the messages that are due, oldest
//! first and in order (a failure holds back the messages after it until it goes through),
//! and sends each; a message leaves the outbox only after the sink acknowledged it
//! (JetStream's publish acknowledgement; a 2xx answer from a webhook). A failed attempt is
//! retried after a doubling wait (`backoff_initial_ms` .. `backoff_max_ms`), for as long as
//! it takes, across restarts. Messages carry a stable id (`<instance>-<alert>-<event>`, or
//! `<instance>-stream-<audit id>` for a halt or reinstatement): the
//! NATS sink sends it as `Nats-Msg-Id`, so a message sent again after a crash (sent, but not
//! yet marked delivered) is dropped by JetStream's duplicate window; a webhook gets it in
//! `X-Streamguard-Id` to de-duplicate on.

mod nats;
pub mod webhook;

pub use nats::{Credentials, DUPLICATE_WINDOW, split_credentials};

use crate::config::{SecretError, SinkConfig, SinkKind};
use crate::moderation::store::{AlertStore, OutboxRow, StoreError};
use crossbeam_channel::{Receiver, Sender, bounded};
use std::path::Path;
use std::thread::JoinHandle;
use std::time::Duration;

/// Why a sink did not start, or a message was not delivered. `url` is the sink's URL as
/// [`shown_url`] gives it. The text of a failed delivery is what the outbox records.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// A webhook sink's secret is missing or unusable.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// A sink's thread or I/O runtime did not start.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// A sink's own connection to the store did not open.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The sink `[[sinks]]` names could not be built.
    #[error("sinks '{sink}': {source}")]
    Sink {
        sink: String,
        source: Box<DeliveryError>,
    },
    /// A webhook request got no answer.
    #[error("{url}: {source}")]
    Http { url: String, source: ureq::Error },
    /// A webhook answered with a status other than 2xx.
    #[error("{url}: HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("{url}: {source}")]
    NatsConnect {
        url: String,
        source: async_nats::ConnectError,
    },
    #[error("{url}: no connection within {timeout:?}")]
    NatsConnectTimeout { url: String, timeout: Duration },
    /// The JetStream stream could not be found or created.
    #[error("{url}: JetStream stream '{stream}': {source}")]
    NatsStream {
        url: String,
        stream: String,
        source: async_nats::jetstream::context::CreateStreamError,
    },
    #[error("{url}: publish to '{subject}': {source}")]
    NatsPublish {
        url: String,
        subject: String,
        source: async_nats::jetstream::context::PublishError,
    },
    #[error("{url}: no acknowledgement within {timeout:?}")]
    NatsAckTimeout { url: String, timeout: Duration },
}

impl DeliveryError {
    /// The sink will never take this message, however often it is sent: a webhook that
    /// answers 413 (too large), a NATS server whose `max_payload` it exceeds. Such a message
    /// is set aside as dead instead of holding back every later one.
    pub fn is_permanent(&self) -> bool {
        use async_nats::jetstream::context::PublishErrorKind;
        match self {
            DeliveryError::Status { status, .. } => *status == 413,
            DeliveryError::NatsPublish { source, .. } => {
                source.kind() == PublishErrorKind::MaxPayloadExceeded
            }
            _ => false,
        }
    }
}

/// One destination.
pub trait Sink: Send {
    /// Sends one message; Ok once the destination acknowledged it.
    fn deliver(&mut self, msg: &OutboxRow) -> Result<(), DeliveryError>;
}

/// Builds the sink a config describes.
pub fn sink_for(cfg: &SinkConfig) -> Result<Box<dyn Sink>, DeliveryError> {
    Ok(match cfg.kind {
        SinkKind::Webhook => Box::new(webhook::Webhook::new(cfg)?),
        SinkKind::Nats => Box::new(nats::Nats::new(cfg)?),
    })
}

/// The running delivery threads.
pub struct Delivery {
    wake: Vec<Sender<()>>,
    stop: Vec<Sender<()>>,
    threads: Vec<JoinHandle<()>>,
}

/// Wakes the delivery threads when a message was queued (cheap; never blocks).
#[derive(Debug, Clone, Default)]
pub struct Waker(Vec<Sender<()>>);

impl Waker {
    pub fn wake(&self) {
        for w in &self.0 {
            let _ = w.try_send(());
        }
    }
}

/// A sink's URL as errors, logs and `/api/v1/outbox` show it: scheme, host and port only.
/// No `user:password@`, and no path or query (a webhook's may carry a token).
pub fn shown_url(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            // After the last `@` before any query: a password may hold a `/`.
            let head = rest.split(['?', '#']).next().unwrap_or_default();
            let after = head.rsplit_once('@').map_or(head, |(_, h)| h);
            let host = after.split(['/', ',']).next().unwrap_or_default();
            format!("{scheme}://{host}")
        }
        None => "(sink url)".into(),
    }
}

/// How long a sink thread sleeps when nothing is due (a new alert wakes it at once).
const IDLE: Duration = Duration::from_secs(1);

/// The wait after `attempts` failed attempts (1, 2, ...): doubling from `initial`, at most
/// `max`.
pub fn backoff_ms(attempts: u32, initial: u64, max: u64) -> u64 {
    let doublings = attempts.saturating_sub(1).min(32);
    initial.saturating_mul(1u64 << doublings).min(max)
}

impl Delivery {
    /// Starts one thread per sink, each with its own connection to the store at `db`.
    pub fn start(sinks: &[SinkConfig], db: &Path) -> Result<Delivery, DeliveryError> {
        let mut d = Delivery {
            wake: Vec::new(),
            stop: Vec::new(),
            threads: Vec::new(),
        };
        for cfg in sinks {
            let sink = sink_for(cfg).map_err(|e| DeliveryError::Sink {
                sink: cfg.name.clone(),
                source: Box::new(e),
            })?;
            let store = AlertStore::open(db)?;
            let (wake_tx, wake_rx) = bounded::<()>(1);
            let (stop_tx, stop_rx) = bounded::<()>(1);
            let cfg = cfg.clone();
            let t = std::thread::Builder::new()
                .name(format!("sink-{}", cfg.name))
                .spawn(move || run(cfg, sink, store, wake_rx, stop_rx))?;
            d.wake.push(wake_tx);
            d.stop.push(stop_tx);
            d.threads.push(t);
        }
        Ok(d)
    }

    pub fn waker(&self) -> Waker {
        Waker(self.wake.clone())
    }

    /// Stops every sink thread (a message being sent is finished first; the rest stays in
    /// the outbox for the next start).
    pub fn stop(self) {
        for s in &self.stop {
            let _ = s.try_send(());
        }
        drop(self.stop);
        for t in self.threads {
            let _ = t.join();
        }
    }
}

/// Waits up to `wait` for a stop (or for the [`Delivery`] to be dropped).
fn stopped(stop: &Receiver<()>, wait: Duration) -> bool {
    !matches!(
        stop.recv_timeout(wait),
        Err(crossbeam_channel::RecvTimeoutError::Timeout)
    )
}

fn run(
    cfg: SinkConfig,
    mut sink: Box<dyn Sink>,
    mut store: AlertStore,
    wake: Receiver<()>,
    stop: Receiver<()>,
) {
    let name = cfg.name.as_str();
    loop {
        if stop.try_recv().is_ok() {
            return;
        }
        let now = crate::telemetry::unix_ms() as i64;
        let due = match store.outbox_due(name, now, 32) {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(sink = name, error = %e, "cannot read the outbox; retrying");
                // Not at once: the next read would most likely fail the same way.
                if stopped(&stop, IDLE) {
                    return;
                }
                continue;
            }
        };
        let mut failed = false;
        for msg in &due {
            if stop.try_recv().is_ok() {
                return;
            }
            match sink.deliver(msg) {
                Ok(()) => {
                    tracing::info!(sink = name, msg = %msg.msg_id, alert = msg.alert_id, attempts = msg.attempts + 1, "message delivered");
                    // Retried until the store takes it: the sink has the message, and
                    // marking it delivered is what keeps it from being sent again.
                    // (On a stop it is left queued: sent again next start, which JetStream
                    // and webhook receivers de-duplicate by its id.)
                    let mut wait = Duration::from_millis(100);
                    while let Err(e) = store.outbox_delivered(msg) {
                        tracing::error!(sink = name, msg = %msg.msg_id, error = %e, "delivery not recorded yet; retrying");
                        if stopped(&stop, wait) {
                            return;
                        }
                        wait = (wait * 2).min(Duration::from_secs(5));
                    }
                }
                Err(e) if e.is_permanent() => {
                    tracing::error!(sink = name, msg = %msg.msg_id, error = %e, "the sink can never take this message: set aside as dead (see /api/v1/outbox)");
                    if let Err(e) = store.outbox_dead(msg, &e.to_string()) {
                        tracing::error!(sink = name, error = %e, "cannot record a dead message");
                        failed = true;
                        if stopped(&stop, Duration::from_millis(cfg.backoff_initial_ms)) {
                            return;
                        }
                        break;
                    }
                }
                Err(e) => {
                    let wait =
                        backoff_ms(msg.attempts + 1, cfg.backoff_initial_ms, cfg.backoff_max_ms);
                    tracing::warn!(sink = name, msg = %msg.msg_id, attempts = msg.attempts + 1, retry_in_ms = wait, error = %e, "message not delivered; will retry");
                    let next = crate::telemetry::unix_ms() as i64 + wait as i64;
                    if let Err(e) = store.outbox_failed(msg, &e.to_string(), next) {
                        tracing::error!(sink = name, error = %e, "cannot record a failed delivery");
                        // Not recorded, so not pushed back: wait here instead.
                        if stopped(&stop, Duration::from_millis(cfg.backoff_initial_ms)) {
                            return;
                        }
                    }
                    // In order: the messages after this one wait for it.
                    failed = true;
                    break;
                }
            }
        }
        if due.len() == 32 && !failed {
            continue; // more may be due now
        }
        let now = crate::telemetry::unix_ms() as i64;
        let sleep = match store.outbox_next_due(name) {
            Ok(Some(t)) => {
                Duration::from_millis((t - now).clamp(0, IDLE.as_millis() as i64) as u64)
            }
            _ => IDLE,
        };
        crossbeam_channel::select! {
            recv(stop) -> _ => return,
            recv(wake) -> _ => {},
            default(sleep) => {},
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sink_urls_are_shown_without_credentials_or_paths() {
        for (url, shown) in [
            ("nats://user:secret@127.0.0.1:4222", "nats://127.0.0.1:4222"),
            ("nats://127.0.0.1:4222", "nats://127.0.0.1:4222"),
            (
                "https://bot:pw@hooks.example/t/abc123?key=k",
                "https://hooks.example",
            ),
            ("http://[::1]:8080/path#frag", "http://[::1]:8080"),
            ("nats://u:pa/ss@10.0.0.1:4222", "nats://10.0.0.1:4222"),
            ("nats://u:p@a:4222,nats://u:p@b:4222", "nats://b:4222"),
            ("no scheme", "(sink url)"),
        ] {
            assert_eq!(shown_url(url), shown, "{url}");
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let waits: Vec<u64> = (1..=8).map(|a| backoff_ms(a, 500, 30_000)).collect();
        assert_eq!(waits, [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000]);
        assert_eq!(backoff_ms(100, 500, 30_000), 30_000);
    }
}
