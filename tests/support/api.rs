//! A client of the daemon's HTTP API for the tests: one request helper (any method,
//! headers, status returned rather than an error) and [`Api`], bearer tokens and JSON.
use serde_json::Value;
use std::io::Read;
use std::time::{Duration, Instant};

/// One HTTP request: status and body, whatever the status; `Err` only when no answer came.
pub fn send(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Result<(u16, Vec<u8>), String> {
    let mut req = ureq::http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let mut resp = agent
        .run(req.body(body.to_string()).map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    resp.body_mut()
        .as_reader()
        .read_to_end(&mut out)
        .map_err(|e| e.to_string())?;
    Ok((resp.status().as_u16(), out))
}

/// An agent that returns every status (no error for 4xx/5xx) and gives up after `timeout`.
pub fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .build()
        .into()
}

/// The API at `base` (`http://host:port`).
pub struct Api {
    pub base: String,
    agent: ureq::Agent,
}

impl Api {
    pub fn new(base: String) -> Api {
        Api {
            base,
            agent: agent(Duration::from_secs(10)),
        }
    }

    /// Method, path, token, body: status and raw body (panics if no answer came).
    fn raw(&self, method: &str, path: &str, token: Option<&str>, body: &str) -> (u16, Vec<u8>) {
        let bearer = token.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = bearer
            .as_deref()
            .map(|b| ("Authorization", b))
            .into_iter()
            .collect();
        send(
            &self.agent,
            method,
            &format!("{}{path}", self.base),
            &headers,
            body,
        )
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    /// Method, path, token, body: status and JSON body (a string if it is not JSON).
    pub fn call(&self, method: &str, path: &str, token: Option<&str>, body: &str) -> (u16, Value) {
        let (code, bytes) = self.raw(method, path, token, body);
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (code, json)
    }

    /// GET with a token: status and raw body.
    pub fn bytes(&self, path: &str, token: &str) -> (u16, Vec<u8>) {
        self.raw("GET", path, Some(token), "")
    }

    /// The id of the first alert `list` (an alerts URL) returns to `token`, waiting up to
    /// `timeout` for one.
    pub fn first_alert(&self, list: &str, token: &str, timeout: Duration) -> i64 {
        let deadline = Instant::now() + timeout;
        loop {
            let (code, body) = self.call("GET", list, Some(token), "");
            assert_eq!(code, 200, "{body}");
            if let Some(id) = body["alerts"][0]["id"].as_i64() {
                return id;
            }
            assert!(Instant::now() < deadline, "no alert from {list}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
