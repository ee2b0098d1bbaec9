//! Webhook sink: each message POSTed as JSON with an HMAC-SHA256 signature.
//!
//! Headers: `Content-Type: application/json`, `X-Streamguard-Id: <message id>` (stable
//! across retries: de-duplicate on it), `X-Streamguard-Signature: sha256=<hex>` where hex is
//! HMAC-SHA256 of the exact body bytes under the configured secret. Any 2xx answer is an
//! acknowledgement; anything else (or no answer within `timeout_ms`) is retried.

use super::{DeliveryError, Sink};
use crate::config::SinkConfig;
use crate::moderation::store::OutboxRow;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::time::Duration;

pub struct Webhook {
    url: String,
    /// Scheme, host and port only: what logs show (a webhook URL's path may hold a secret).
    shown: String,
    secret: Vec<u8>,
    agent: ureq::Agent,
}

/// `sha256=<hex of HMAC-SHA256(secret, body)>`, the signature header's value.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret).expect("HMAC takes any key");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

impl Webhook {
    pub fn new(cfg: &SinkConfig) -> Result<Webhook, DeliveryError> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_millis(cfg.timeout_ms)))
            .http_status_as_error(false)
            .build()
            .into();
        let shown = super::shown_url(&cfg.url);
        Ok(Webhook {
            url: cfg.url.clone(),
            shown,
            secret: cfg.resolve_secret()?.into_bytes(),
            agent,
        })
    }
}

impl Sink for Webhook {
    fn deliver(&mut self, msg: &OutboxRow) -> Result<(), DeliveryError> {
        let body = msg.payload.as_bytes();
        let resp = self
            .agent
            .post(&self.url)
            .header("Content-Type", "application/json")
            .header("X-Streamguard-Id", &msg.msg_id)
            .header("X-Streamguard-Signature", &signature(&self.secret, body))
            .send(body)
            .map_err(|source| DeliveryError::Http {
                url: self.shown.clone(),
                source,
            })?;
        let status = resp.status().as_u16();
        if (200..300).contains(&status) {
            Ok(())
        } else {
            Err(DeliveryError::Status {
                url: self.shown.clone(),
                status,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_rfc_4231_test_case_2() {
        // RFC 4231, test case 2: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
