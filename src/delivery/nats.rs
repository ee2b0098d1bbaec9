//! NATS JetStream sink: each message published to the configured subject with its id as
//! `Nats-Msg-Id`, delivered once JetStream acknowledged storing it.
//!
//! The JetStream stream (`stream`, capturing `subject`) is created on first connection if it
//! does not exist, with a 10-minute duplicate window: a message published again within it
//! (after a crash between the acknowledgement and the outbox update, or a lost
//! acknowledgement) is dropped by JetStream and acknowledged as a duplicate. A stream the
//! provider created keeps its own settings.

use super::{DeliveryError, Sink};
use crate::config::SinkConfig;
use crate::moderation::store::OutboxRow;
use async_nats::jetstream;
use std::time::Duration;

/// The duplicate window of a stream streamguard creates.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(600);

pub struct Nats {
    rt: tokio::runtime::Runtime,
    /// The server's address without credentials: the client logs its addresses (debug
    /// level), so a password must never be part of one.
    url: String,
    /// From the URL's `user:password@` or `token@`, given to the client apart from the URL.
    auth: Credentials,
    /// `url` as errors show it (no credentials).
    shown: String,
    subject: String,
    stream: String,
    timeout: Duration,
    /// Connected, with the stream checked; dropped after a failure so that the next attempt
    /// connects afresh.
    ctx: Option<jetstream::Context>,
}

impl Nats {
    pub fn new(cfg: &SinkConfig) -> Result<Nats, DeliveryError> {
        // One worker thread keeps the connection (pings, reconnects) alive between sends.
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name(format!("sink-{}-io", cfg.name))
            .enable_all()
            .build()?;
        let (url, auth) = split_credentials(&cfg.url);
        Ok(Nats {
            rt,
            url,
            auth,
            shown: super::shown_url(&cfg.url),
            subject: cfg.subject.clone(),
            stream: cfg.stream.clone(),
            timeout: Duration::from_millis(cfg.timeout_ms),
            ctx: None,
        })
    }

    /// Connects to `url` (`shown` in errors) and finds or creates the stream.
    async fn connect(
        url: &str,
        auth: &Credentials,
        shown: &str,
        subject: &str,
        stream: &str,
        timeout: Duration,
    ) -> Result<jetstream::Context, DeliveryError> {
        let client = auth
            .options()
            .connection_timeout(timeout)
            .connect(url)
            .await
            .map_err(|source| DeliveryError::NatsConnect {
                url: shown.to_string(),
                source,
            })?;
        let mut ctx = jetstream::new(client);
        ctx.set_timeout(timeout);
        ctx.get_or_create_stream(jetstream::stream::Config {
            name: stream.to_string(),
            subjects: vec![subject.to_string()],
            duplicate_window: DUPLICATE_WINDOW,
            ..Default::default()
        })
        .await
        .map_err(|source| DeliveryError::NatsStream {
            url: shown.to_string(),
            stream: stream.to_string(),
            source,
        })?;
        Ok(ctx)
    }
}

impl Sink for Nats {
    fn deliver(&mut self, msg: &OutboxRow) -> Result<(), DeliveryError> {
        let (url, auth, shown, subject, stream, timeout) = (
            &self.url,
            &self.auth,
            &self.shown,
            &self.subject,
            &self.stream,
            self.timeout,
        );
        let ctx = self.ctx.take();
        let result = self.rt.block_on(async move {
            let ctx = match ctx {
                Some(c) => c,
                None => tokio::time::timeout(
                    timeout * 2,
                    Nats::connect(url, auth, shown, subject, stream, timeout),
                )
                .await
                .map_err(|_| DeliveryError::NatsConnectTimeout {
                    url: shown.clone(),
                    timeout,
                })??,
            };
            let mut headers = async_nats::HeaderMap::new();
            headers.insert(async_nats::header::NATS_MESSAGE_ID, msg.msg_id.as_str());
            let sent = async {
                ctx.publish_with_headers(subject.clone(), headers, msg.payload.clone().into())
                    .await?
                    .await
            };
            match tokio::time::timeout(timeout, sent).await {
                Ok(Ok(ack)) => {
                    if ack.duplicate {
                        tracing::info!(msg = %msg.msg_id, "JetStream had this message already (duplicate window)");
                    }
                    Ok(ctx)
                }
                Ok(Err(source)) => Err(DeliveryError::NatsPublish {
                    url: shown.clone(),
                    subject: subject.clone(),
                    source,
                }),
                Err(_) => Err(DeliveryError::NatsAckTimeout {
                    url: shown.clone(),
                    timeout,
                }),
            }
        });
        self.ctx = Some(result?);
        Ok(())
    }
}

/// Credentials a NATS URL carried.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    None,
    /// `nats://TOKEN@host`
    Token(String),
    /// `nats://USER:PASSWORD@host`
    UserPassword(String, String),
}

impl Credentials {
    /// Connect options that carry these credentials (apart from the URL).
    pub fn options(&self) -> async_nats::ConnectOptions {
        match self.clone() {
            Credentials::None => async_nats::ConnectOptions::new(),
            Credentials::Token(t) => async_nats::ConnectOptions::with_token(t),
            Credentials::UserPassword(u, p) => {
                async_nats::ConnectOptions::with_user_and_password(u, p)
            }
        }
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Credentials::None => "None",
            Credentials::Token(_) => "Token(<redacted>)",
            Credentials::UserPassword(..) => "UserPassword(<redacted>)",
        })
    }
}

/// Splits `nats://user:password@host:port` (or `token@`) into the URL without them and the
/// credentials, percent-decoded. A comma-separated list of servers has each entry's taken
/// out (the first entry's credentials are used). The password may hold a `/`: the host
/// starts after the last `@`.
pub fn split_credentials(url: &str) -> (String, Credentials) {
    let mut auth = Credentials::None;
    let bare: Vec<String> = url
        .split(',')
        .map(|entry| {
            let (bare, found) = split_one(entry.trim());
            if auth == Credentials::None {
                auth = found;
            }
            bare
        })
        .collect();
    (bare.join(","), auth)
}

fn split_one(url: &str) -> (String, Credentials) {
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r)) => (Some(s), r),
        None => (None, url),
    };
    let Some(at) = rest.rfind('@') else {
        return (url.to_string(), Credentials::None);
    };
    let (userinfo, host) = (&rest[..at], &rest[at + 1..]);
    let bare = match scheme {
        Some(s) => format!("{s}://{host}"),
        None => host.to_string(),
    };
    let auth = match userinfo.split_once(':') {
        Some((u, p)) => Credentials::UserPassword(percent_decode(u), percent_decode(p)),
        None if userinfo.is_empty() => Credentials::None,
        None => Credentials::Token(percent_decode(userinfo)),
    };
    (bare, auth)
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (
            b[i],
            b.get(i + 1).and_then(|&c| hex(c)),
            b.get(i + 2).and_then(|&c| hex(c)),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_leave_the_url() {
        assert_eq!(
            split_credentials("nats://alerts:s%3Acret%40x@127.0.0.1:4222"),
            (
                "nats://127.0.0.1:4222".to_string(),
                Credentials::UserPassword("alerts".into(), "s:cret@x".into())
            )
        );
        assert_eq!(
            split_credentials("nats://tok123@host:4222/x"),
            (
                "nats://host:4222/x".to_string(),
                Credentials::Token("tok123".into())
            )
        );
        assert_eq!(
            split_credentials("nats://host:4222"),
            ("nats://host:4222".to_string(), Credentials::None)
        );
        assert_eq!(
            split_credentials("nats://u:pa/ss@a:4222, nats://u:pa/ss@b:4222"),
            (
                "nats://a:4222,nats://b:4222".to_string(),
                Credentials::UserPassword("u".into(), "pa/ss".into())
            )
        );
        let dbg = format!("{:?}", split_credentials("nats://u:hunter2@h").1);
        assert!(!dbg.contains("hunter2"), "{dbg}");
    }
}
