//! Actuators: how a halt reaches the ingest server. Two implementations cover every server:
//! nginx-rtmp's `rtmp_control` (drop the publisher, check the answer body) and a generic HTTP
//! request built from templates in config (SRS, MediaMTX, OvenMediaEngine, or a provider's
//! own service). Keeping a halted stream off the air is the deny list's job (`on_publish`).

use crate::config::{ActuatorConfig, ActuatorKind};
use std::io::Read;
use std::time::Duration;

/// A stream as the ingest server names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamKey {
    pub app: String,
    pub name: String,
}

impl StreamKey {
    /// `app/name`, the stream id of a discovered stream.
    pub fn id(&self) -> String {
        format!("{}/{}", self.app, self.name)
    }

    /// Splits `app/name`; a static stream id (no `/`) has an empty app.
    pub fn from_id(id: &str) -> StreamKey {
        match id.split_once('/') {
            Some((app, name)) => StreamKey {
                app: app.into(),
                name: name.into(),
            },
            None => StreamKey {
                app: String::new(),
                name: id.into(),
            },
        }
    }
}

/// What a halt request achieved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HaltOutcome {
    /// The server dropped the publisher.
    Dropped,
    /// The server answered that nobody was publishing (already gone).
    NotPublishing,
    /// Nothing to call (`kind = "none"`): the halt is recorded and enforced at re-publish.
    Recorded,
}

pub trait Actuator: Send + Sync {
    /// Cuts the publisher of `key` off; an error says why (and the halt is retried).
    fn halt(&self, key: &StreamKey) -> Result<HaltOutcome, String>;
    fn name(&self) -> &'static str;
}

/// Builds the configured actuator.
pub fn from_config(cfg: &ActuatorConfig) -> Box<dyn Actuator> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(cfg.timeout_s)))
        .http_status_as_error(false)
        .build()
        .into();
    match cfg.kind {
        ActuatorKind::None => Box::new(NoActuator),
        ActuatorKind::NginxRtmp => Box::new(NginxRtmp {
            control_url: cfg.control_url.trim_end_matches('/').to_string(),
            agent,
        }),
        ActuatorKind::Http => Box::new(HttpActuator {
            method: cfg.method.clone(),
            url: cfg.url.clone(),
            body: cfg.body.clone(),
            expect_status: cfg.expect_status,
            agent,
        }),
    }
}

struct NoActuator;

impl Actuator for NoActuator {
    fn halt(&self, _: &StreamKey) -> Result<HaltOutcome, String> {
        Ok(HaltOutcome::Recorded)
    }
    fn name(&self) -> &'static str {
        "none"
    }
}

/// Percent-encodes everything but unreserved characters (RFC 3986).
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn fill(template: &str, key: &StreamKey, encode: bool) -> String {
    let e = |s: &str| if encode { url_encode(s) } else { s.to_string() };
    template
        .replace("{app}", &e(&key.app))
        .replace("{name}", &e(&key.name))
        .replace("{id}", &e(&key.id()))
}

fn read_body(resp: &mut ureq::http::Response<ureq::Body>) -> String {
    let mut body = String::new();
    let _ = resp
        .body_mut()
        .as_reader()
        .take(64 * 1024)
        .read_to_string(&mut body);
    body
}

struct NginxRtmp {
    control_url: String,
    agent: ureq::Agent,
}

impl Actuator for NginxRtmp {
    fn halt(&self, key: &StreamKey) -> Result<HaltOutcome, String> {
        let url = format!(
            "{}/drop/publisher?app={}&name={}",
            self.control_url,
            url_encode(&key.app),
            url_encode(&key.name)
        );
        let mut resp = self
            .agent
            .get(&url)
            .call()
            .map_err(|e| format!("{url}: {e}"))?;
        let status = resp.status().as_u16();
        let body = read_body(&mut resp);
        match (status, body.trim()) {
            (200, "0") => Ok(HaltOutcome::NotPublishing),
            (200, n) if n.parse::<u32>().is_ok_and(|n| n > 0) => Ok(HaltOutcome::Dropped),
            _ => Err(format!(
                "{url}: HTTP {status}, body '{}' (expected 200 with the number of clients dropped)",
                body.trim()
            )),
        }
    }
    fn name(&self) -> &'static str {
        "nginx-rtmp"
    }
}

struct HttpActuator {
    method: String,
    url: String,
    body: String,
    expect_status: u16,
    agent: ureq::Agent,
}

impl Actuator for HttpActuator {
    fn halt(&self, key: &StreamKey) -> Result<HaltOutcome, String> {
        let url = fill(&self.url, key, true);
        let body = fill(&self.body, key, false);
        let req = ureq::http::Request::builder()
            .method(self.method.as_str())
            .uri(&url)
            .body(body)
            .map_err(|e| format!("{url}: {e}"))?;
        let mut resp = self.agent.run(req).map_err(|e| format!("{url}: {e}"))?;
        let status = resp.status().as_u16();
        if status == self.expect_status {
            Ok(HaltOutcome::Dropped)
        } else {
            let body = read_body(&mut resp);
            Err(format!(
                "{} {url}: HTTP {status} (expected {}), body '{}'",
                self.method,
                self.expect_status,
                body.trim()
            ))
        }
    }
    fn name(&self) -> &'static str {
        "http"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_fill_and_encode() {
        let key = StreamKey {
            app: "live".into(),
            name: "a b/c".into(),
        };
        assert_eq!(
            fill("http://h/api/{app}/{name}?id={id}", &key, true),
            "http://h/api/live/a%20b%2Fc?id=live%2Fa%20b%2Fc"
        );
        assert_eq!(
            fill("{\"stream\":\"{name}\"}", &key, false),
            "{\"stream\":\"a b/c\"}"
        );
        assert_eq!(StreamKey::from_id("live/x").name, "x");
        assert_eq!(StreamKey::from_id("demo").app, "");
    }
}
