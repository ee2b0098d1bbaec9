//! NATS JetStream sink: each message published to the configured subject with its id as
//! `Nats-Msg-Id`, delivered once JetStream acknowledged storing it.
//!
//! The JetStream stream (`stream`, capturing `subject`) is created on first connection if it
//! does not exist, with a 10-minute duplicate window: a message published again within it
//! (after a crash between the acknowledgement and the outbox update, or a lost
//! acknowledgement) is dropped by JetStream and acknowledged as a duplicate. A stream the
//! provider created keeps its own settings.

use super::Sink;
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
    pub fn new(cfg: &SinkConfig) -> Result<Nats, String> {
        // One worker thread keeps the connection (pings, reconnects) alive between sends.
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name(format!("sink-{}-io", cfg.name))
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
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

    async fn connect(
        url: &str,
        subject: &str,
        stream: &str,
        timeout: Duration,
    ) -> Result<jetstream::Context, String> {
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(timeout)
            .connect(url)
            .await
            .map_err(|e| e.to_string())?;
        let mut ctx = jetstream::new(client);
        ctx.set_timeout(timeout);
        ctx.get_or_create_stream(jetstream::stream::Config {
            name: stream.to_string(),
            subjects: vec![subject.to_string()],
            duplicate_window: DUPLICATE_WINDOW,
            ..Default::default()
        })
        .await
        .map_err(|e| format!("JetStream stream '{stream}': {e}"))?;
        Ok(ctx)
    }
}

impl Sink for Nats {
    fn deliver(&mut self, msg: &OutboxRow) -> Result<(), String> {
        let (url, subject, stream, timeout) =
            (&self.url, &self.subject, &self.stream, self.timeout);
        let ctx = self.ctx.take();
        let result = self.rt.block_on(async move {
            let ctx = match ctx {
                Some(c) => c,
                None => {
                    tokio::time::timeout(timeout * 2, Nats::connect(url, subject, stream, timeout))
                        .await
                        .map_err(|_| format!("no connection within {timeout:?}"))??
                }
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
                Ok(Err(e)) => Err(format!("publish to '{subject}': {e}")),
                Err(_) => Err(format!("no acknowledgement within {timeout:?}")),
            }
        });
        match result {
            Ok(ctx) => {
                self.ctx = Some(ctx);
                Ok(())
            }
            Err(e) => Err(format!("{}: {e}", self.shown)),
        }
    }
}
