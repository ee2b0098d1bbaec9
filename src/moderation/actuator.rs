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
    /// `app/name`, the stream id of a discovered stream (a static stream's: its name).
    pub fn id(&self) -> String {
        if self.app.is_empty() {
            self.name.clone()
        } else {
            format!("{}/{}", self.app, self.name)
        }
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

/// Why a halt request failed (it is retried, unless [`ActuatorError::is_permanent`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActuatorError {
    /// A static stream (`[[streams]]`, no `app/name`) that this actuator cannot address: the
    /// server knows streams by app and name, and a guess could cut off someone else.
    #[error(
        "stream '{id}' is a static stream without an app/name key; the {actuator} actuator cannot address it (the halt is recorded, nothing is sent to the server)"
    )]
    Unaddressable { id: String, actuator: &'static str },
    /// The request could not be built or sent, or got no answer.
    #[error("{url}: {message}")]
    Request { url: String, message: String },
    /// nginx-rtmp answered something other than the number of clients it dropped.
    #[error(
        "{url}: HTTP {status}, body '{body}' (expected 200 with the number of clients dropped)"
    )]
    NginxAnswer {
        url: String,
        status: u16,
        body: String,
    },
    /// The server answered with another status than the configured one.
    #[error("{method} {url}: HTTP {status} (expected {expected}), body '{body}'")]
    Status {
        method: String,
        url: String,
        status: u16,
        expected: u16,
        body: String,
    },
}

impl ActuatorError {
    /// No retry can change the answer.
    pub fn is_permanent(&self) -> bool {
        matches!(self, ActuatorError::Unaddressable { .. })
    }
}

pub trait Actuator: Send + Sync {
    /// Cuts the publisher of `key` off; an error says why (and the halt is retried).
    fn halt(&self, key: &StreamKey) -> Result<HaltOutcome, ActuatorError>;
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
    fn halt(&self, _: &StreamKey) -> Result<HaltOutcome, ActuatorError> {
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

fn request(url: &str, e: impl std::fmt::Display) -> ActuatorError {
    ActuatorError::Request {
        url: url.to_string(),
        message: e.to_string(),
    }
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
    fn halt(&self, key: &StreamKey) -> Result<HaltOutcome, ActuatorError> {
        // nginx-rtmp would drop whoever publishes `name` in an app named "" or, worse, read
        // an empty app as any: never send a key without an app.
        if key.app.is_empty() {
            return Err(ActuatorError::Unaddressable {
                id: key.id(),
                actuator: self.name(),
            });
        }
        let url = format!(
            "{}/drop/publisher?app={}&name={}",
            self.control_url,
            url_encode(&key.app),
            url_encode(&key.name)
        );
        let mut resp = self.agent.get(&url).call().map_err(|e| request(&url, e))?;
        let status = resp.status().as_u16();
        let body = read_body(&mut resp);
        match (status, body.trim()) {
            (200, "0") => Ok(HaltOutcome::NotPublishing),
            (200, n) if n.parse::<u32>().is_ok_and(|n| n > 0) => Ok(HaltOutcome::Dropped),
            _ => Err(ActuatorError::NginxAnswer {
                status,
                body: body.trim().to_string(),
                url,
            }),
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
    fn halt(&self, key: &StreamKey) -> Result<HaltOutcome, ActuatorError> {
        // A template that names the app cannot address a static stream (it has none).
        if key.app.is_empty() && (self.url.contains("{app}") || self.body.contains("{app}")) {
            return Err(ActuatorError::Unaddressable {
                id: key.id(),
                actuator: self.name(),
            });
        }
        let url = fill(&self.url, key, true);
        let body = fill(&self.body, key, false);
        let req = ureq::http::Request::builder()
            .method(self.method.as_str())
            .uri(&url)
            .body(body)
            .map_err(|e| request(&url, e))?;
        let mut resp = self.agent.run(req).map_err(|e| request(&url, e))?;
        let status = resp.status().as_u16();
        if status == self.expect_status {
            Ok(HaltOutcome::Dropped)
        } else {
            let body = read_body(&mut resp);
            Err(ActuatorError::Status {
                method: self.method.clone(),
                url,
                status,
                expected: self.expect_status,
                body: body.trim().to_string(),
            })
        }
    }
    fn name(&self) -> &'static str {
        "http"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;

    /// Serves one request with `status` and `body`; returns the request line and body.
    fn one_shot(
        status: u16,
        body: &'static str,
    ) -> (u16, std::thread::JoinHandle<(String, String)>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let t = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut first = String::new();
            r.read_line(&mut first).unwrap();
            let mut len = 0;
            loop {
                let mut h = String::new();
                r.read_line(&mut h).unwrap();
                if h.trim().is_empty() {
                    break;
                }
                if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
            }
            let mut b = vec![0; len];
            std::io::Read::read_exact(&mut r, &mut b).unwrap();
            write!(
                s,
                "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .unwrap();
            (first.trim().to_string(), String::from_utf8(b).unwrap())
        });
        (port, t)
    }

    fn key() -> StreamKey {
        StreamKey {
            app: "live".into(),
            name: "k1".into(),
        }
    }

    #[test]
    fn generic_http_actuator_sends_templates_and_checks_status() {
        for (status, ok) in [(204, true), (500, false)] {
            let (port, server) = one_shot(status, "nope");
            let a = from_config(&ActuatorConfig {
                kind: ActuatorKind::Http,
                method: "POST".into(),
                url: format!("http://127.0.0.1:{port}/kick/{{app}}/{{name}}"),
                body: r#"{"stream":"{id}"}"#.into(),
                expect_status: 204,
                ..ActuatorConfig::default()
            });
            let got = a.halt(&key());
            let (line, body) = server.join().unwrap();
            assert_eq!(line, "POST /kick/live/k1 HTTP/1.1");
            assert_eq!(body, r#"{"stream":"live/k1"}"#);
            if ok {
                assert_eq!(got, Ok(HaltOutcome::Dropped));
            } else {
                let e = got.unwrap_err().to_string();
                assert!(
                    e.contains("HTTP 500 (expected 204)") && e.contains("nope"),
                    "{e}"
                );
            }
        }
    }

    #[test]
    fn nginx_actuator_reads_the_answer_body() {
        for (body, want) in [
            ("1", Ok(HaltOutcome::Dropped)),
            ("0", Ok(HaltOutcome::NotPublishing)),
        ] {
            let (port, server) = one_shot(200, body);
            let a = from_config(&ActuatorConfig {
                kind: ActuatorKind::NginxRtmp,
                control_url: format!("http://127.0.0.1:{port}/control/"),
                ..ActuatorConfig::default()
            });
            assert_eq!(a.halt(&key()), want);
            let (line, _) = server.join().unwrap();
            assert_eq!(
                line,
                "GET /control/drop/publisher?app=live&name=k1 HTTP/1.1"
            );
        }
        let (port, server) = one_shot(200, "<html>not the control module</html>");
        let a = from_config(&ActuatorConfig {
            kind: ActuatorKind::NginxRtmp,
            control_url: format!("http://127.0.0.1:{port}/control"),
            ..ActuatorConfig::default()
        });
        let e = a.halt(&key()).unwrap_err().to_string();
        assert!(
            e.contains("expected 200 with the number of clients dropped"),
            "{e}"
        );
        server.join().unwrap();
    }

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

    /// Counts the requests it is sent, answering each "1" (one publisher dropped); the
    /// thread ends with the test process.
    fn counting_server() -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let n = seen.clone();
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(mut s) = s else { break };
                // Read the request head first: closing on unread data would reset the
                // connection before the answer is read.
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut line = String::new();
                while r.read_line(&mut line).is_ok_and(|n| n > 0) && line.trim() != "" {
                    line.clear();
                }
                n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let _ = write!(
                    s,
                    "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: close\r\n\r\n1"
                );
            }
        });
        (port, seen)
    }

    /// A static stream (`[[streams]] id = "live1"`) has no app: halting it must never ask
    /// nginx to drop `?app=&name=live1` (which cut off whoever published `live/live1`).
    #[test]
    fn a_static_stream_is_never_sent_to_the_server_as_someone_elses_key() {
        let (port, seen) = counting_server();
        let static_key = StreamKey::from_id("live1");
        let nginx = from_config(&ActuatorConfig {
            kind: ActuatorKind::NginxRtmp,
            control_url: format!("http://127.0.0.1:{port}/control"),
            ..ActuatorConfig::default()
        });
        let http_by_app = from_config(&ActuatorConfig {
            kind: ActuatorKind::Http,
            method: "POST".into(),
            url: format!("http://127.0.0.1:{port}/kick/{{app}}/{{name}}"),
            expect_status: 200,
            ..ActuatorConfig::default()
        });
        for a in [&nginx, &http_by_app] {
            let e = a.halt(&static_key).unwrap_err();
            assert!(e.is_permanent(), "{e}");
            let text = e.to_string();
            assert!(
                text.contains("stream 'live1' is a static stream")
                    && text.contains("cannot address it"),
                "{text}"
            );
        }
        assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 0);
        // A template without {app} addresses a static stream by its name or id.
        let http_by_id = from_config(&ActuatorConfig {
            kind: ActuatorKind::Http,
            method: "POST".into(),
            url: format!("http://127.0.0.1:{port}/kick?stream={{id}}"),
            expect_status: 200,
            ..ActuatorConfig::default()
        });
        assert_eq!(http_by_id.halt(&static_key), Ok(HaltOutcome::Dropped));
        assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 1);
        // A discovered stream's key is sent as before.
        assert_eq!(nginx.halt(&key()), Ok(HaltOutcome::Dropped));
        assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 2);
        assert_eq!(static_key.id(), "live1");
    }
}
