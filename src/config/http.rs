use super::Problem;
use serde::Deserialize;
use std::net::SocketAddr;

/// `[http]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct HttpConfig {
    /// Address the HTTP server listens on (`GET /healthz`, `GET /readyz`). Loopback by
    /// default; there is no authentication yet, so only loopback addresses are accepted.
    /// An empty string disables the server. Default: `127.0.0.1:8088`.
    pub listen: String,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8088".into(),
        }
    }
}

impl HttpConfig {
    /// The address to bind, or `None` when the server is disabled.
    pub fn addr(&self) -> Option<SocketAddr> {
        self.listen.parse().ok()
    }

    pub(super) fn validate(&self, problems: &mut Vec<Problem>) {
        if self.listen.is_empty() {
            return;
        }
        match self.listen.parse::<SocketAddr>() {
            Err(_) => problems.push(Problem::new(
                "http.listen",
                format!("'{}' is not an address like 127.0.0.1:8088", self.listen),
            )),
            Ok(a) if !a.ip().is_loopback() => problems.push(Problem::new(
                "http.listen",
                format!(
                    "{a} is not a loopback address; the API has no authentication yet, so it \
                     only listens on loopback (127.0.0.1 or ::1)"
                ),
            )),
            Ok(_) => {}
        }
    }
}
