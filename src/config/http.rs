use super::Problem;
use serde::Deserialize;
use std::net::SocketAddr;

/// `[http]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Address the HTTP server listens on (health, readiness, ingest callbacks, the API).
    /// Without `[[http.tokens]]` the API is open, so only loopback addresses are accepted;
    /// with tokens any address is (ingest callbacks are then accepted from loopback peers
    /// only). An empty string disables the server. Default: `127.0.0.1:8088`.
    pub listen: String,
    /// A second, callbacks-only listener (`/ingest/nginx/*` and `/healthz`), e.g.
    /// `127.0.0.1:8089`, with limits of its own: point nginx's `on_publish` and
    /// `on_publish_done` at it, and no flood of the API port, even from loopback, can delay
    /// a publish. Loopback addresses only. Empty (the default): callbacks are served on
    /// `listen` with everything else.
    pub callback_listen: String,
    /// Largest request body accepted (bytes); larger ones get 413. Default: 16384.
    pub max_body_bytes: usize,
    /// Most connections open at once on each listener; one more is accepted and closed at
    /// once (counted in `streamguard_http_connections_refused_total`), so the daemon never
    /// runs out of file descriptors. Default: 512.
    pub max_connections: usize,
    /// Most connections open at once from one client address, so that one client cannot
    /// take every place. nginx's callbacks come from its own address (loopback): a flood from
    /// elsewhere does not reach them. Default: 64.
    pub max_connections_per_client: usize,
    /// Time a client has to send a request's headers; also how long a keep-alive connection
    /// may sit idle between requests. Then it is closed. Default: 10000.
    pub header_timeout_ms: u64,
    /// Time a client has to send a request's body once its headers are in; then 408.
    /// Default: 10000.
    pub body_timeout_ms: u64,
    /// `[[http.tokens]]`: bearer tokens for `/api/v1`. With none, the API is open (loopback
    /// only); with any, every API request needs `Authorization: Bearer <token>` of a role
    /// allowed to do it.
    pub tokens: Vec<TokenConfig>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8088".into(),
            callback_listen: String::new(),
            max_body_bytes: 16 * 1024,
            max_connections: 512,
            max_connections_per_client: 64,
            header_timeout_ms: 10_000,
            body_timeout_ms: 10_000,
            tokens: Vec::new(),
        }
    }
}

/// What a token may do; each role may do everything the ones before it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Read streams, alerts and the audit log.
    Viewer,
    /// Also claim, confirm and dismiss alerts, halt and reinstate streams.
    Moderator,
    /// Everything.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Moderator => "moderator",
            Role::Admin => "admin",
        }
    }
}

/// One bearer token. Give exactly one of `token_sha256` (the SHA-256 of the token, hex: the
/// config then holds no secret), `token_env` (an environment variable holding it) or `token`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// Who uses it: the actor recorded in the audit log for its actions.
    pub name: String,
    /// `viewer`, `moderator` or `admin`.
    pub role: Role,
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub token_env: Option<String>,
    #[serde(default)]
    pub token_sha256: Option<String>,
}

/// Shortest token accepted (given as `token` or `token_env`).
pub const MIN_TOKEN_LEN: usize = 16;

impl TokenConfig {
    /// The SHA-256 of the token, from whichever key gives it.
    pub fn digest(&self) -> Result<[u8; 32], String> {
        use sha2::Digest;
        let plain = |t: &str| -> Result<[u8; 32], String> {
            if t.len() < MIN_TOKEN_LEN {
                return Err(format!("must be at least {MIN_TOKEN_LEN} characters"));
            }
            Ok(sha2::Sha256::digest(t.as_bytes()).into())
        };
        match (&self.token, &self.token_env, &self.token_sha256) {
            (Some(t), None, None) => plain(t),
            (None, Some(var), None) => match std::env::var(var) {
                Ok(t) => plain(&t).map_err(|e| format!("${var} {e}")),
                Err(_) => Err(format!("environment variable {var} is not set")),
            },
            (None, None, Some(h)) => {
                let bytes = hex::decode(h).map_err(|_| "must be 64 hex digits".to_string())?;
                bytes
                    .try_into()
                    .map_err(|_| "must be 64 hex digits".to_string())
            }
            _ => Err("give exactly one of token_sha256, token_env or token".into()),
        }
    }
}

impl HttpConfig {
    /// The address to bind, or `None` when the server is disabled.
    pub fn addr(&self) -> Option<SocketAddr> {
        self.listen.parse().ok()
    }

    /// The callbacks-only listener's address, if one is configured.
    pub fn callback_addr(&self) -> Option<SocketAddr> {
        self.callback_listen.parse().ok()
    }

    pub(super) fn validate(&self, problems: &mut Vec<Problem>) {
        match self.listen.parse::<SocketAddr>() {
            // Empty: no API server; the other keys still hold for `callback_listen`.
            Err(_) if self.listen.is_empty() => {}
            Err(_) => problems.push(Problem::new(
                "http.listen",
                format!("'{}' is not an address like 127.0.0.1:8088", self.listen),
            )),
            Ok(a) if !a.ip().to_canonical().is_loopback() && self.tokens.is_empty() => problems
                .push(Problem::new(
                    "http.listen",
                    format!(
                        "{a} is not a loopback address; without [[http.tokens]] the API is \
                         open, so it only listens on loopback (127.0.0.1 or ::1)"
                    ),
                )),
            Ok(_) => {}
        }
        if self.max_body_bytes < 256 {
            problems.push(Problem::new("http.max_body_bytes", "must be at least 256"));
        }
        if !self.callback_listen.is_empty() {
            match self.callback_listen.parse::<SocketAddr>() {
                Err(_) => problems.push(Problem::new(
                    "http.callback_listen",
                    format!("'{}' is not an address like 127.0.0.1:8089", self.callback_listen),
                )),
                Ok(a) if !a.ip().to_canonical().is_loopback() => problems.push(Problem::new(
                    "http.callback_listen",
                    format!("{a} is not a loopback address; callbacks come from the ingest server on this host"),
                )),
                Ok(a) if a.port() != 0 && Some(a) == self.addr() => problems.push(Problem::new(
                    "http.callback_listen",
                    "must differ from http.listen",
                )),
                Ok(_) => {}
            }
        }
        if self.max_connections == 0 {
            problems.push(Problem::new("http.max_connections", "must be at least 1"));
        }
        if self.max_connections_per_client == 0
            || self.max_connections_per_client > self.max_connections
        {
            problems.push(Problem::new(
                "http.max_connections_per_client",
                "must be at least 1 and at most http.max_connections",
            ));
        }
        for (key, ms) in [
            ("http.header_timeout_ms", self.header_timeout_ms),
            ("http.body_timeout_ms", self.body_timeout_ms),
        ] {
            if !(100..=600_000).contains(&ms) {
                problems.push(Problem::new(key, "must be between 100 and 600000"));
            }
        }
        let mut names = std::collections::BTreeSet::new();
        let mut digests = std::collections::BTreeSet::new();
        for (i, t) in self.tokens.iter().enumerate() {
            if t.name.is_empty() || t.name.chars().any(|c| c.is_control()) {
                problems.push(Problem::new(
                    format!("http.tokens[{i}].name"),
                    "must be a non-empty name",
                ));
            } else if !names.insert(t.name.clone()) {
                problems.push(Problem::new(
                    format!("http.tokens[{i}].name"),
                    format!("'{}' is used by another token", t.name),
                ));
            }
            match t.digest() {
                Ok(d) => {
                    if !digests.insert(d) {
                        problems.push(Problem::new(
                            format!("http.tokens[{i}]"),
                            "the same token as another entry",
                        ));
                    }
                }
                Err(e) => {
                    let key = match (&t.token, &t.token_env, &t.token_sha256) {
                        (None, Some(_), None) => "token_env",
                        (None, None, Some(_)) => "token_sha256",
                        _ => "token",
                    };
                    problems.push(Problem::new(format!("http.tokens[{i}].{key}"), e));
                }
            }
        }
    }
}
