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
    url: String,
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
        Ok(Nats {
            rt,
            url: cfg.url.clone(),
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
        shown: &str,
        subject: &str,
        stream: &str,
        timeout: Duration,
    ) -> Result<jetstream::Context, DeliveryError> {
        let client = async_nats::ConnectOptions::new()
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
        let (url, shown, subject, stream, timeout) = (
            &self.url,
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
                    Nats::connect(url, shown, subject, stream, timeout),
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
