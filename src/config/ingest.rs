use super::Problem;
use serde::Deserialize;
use std::collections::BTreeMap;

/// Which ingest server streams are discovered from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IngestServer {
    /// No discovery: only `[[streams]]` are watched.
    None,
    /// nginx with the RTMP module: `on_publish`/`on_publish_done` callbacks to
    /// `/ingest/nginx/on_publish` and `/ingest/nginx/on_publish_done`, and `/stat` for
    /// reconciliation.
    NginxRtmp,
}

/// `[ingest]`: discovery of live streams at the ingest server.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct IngestConfig {
    /// `none` or `nginx-rtmp`. Default: `none`.
    pub server: IngestServer,
    /// Applications whose streams are watched; a callback for another app gets 404 and
    /// changes nothing. Default: `["live"]`.
    pub apps: Vec<String>,
    /// Pipeline template for discovered streams. Default: `rtmp`.
    pub pipeline: String,
    /// Template parameters for discovered streams; `{app}` and `{name}` in the values are
    /// replaced by the stream's. Default: `url = "rtmp://127.0.0.1:1935/{app}/{name}"`.
    pub params: BTreeMap<String, String>,
    /// The server's stream list (nginx-rtmp `rtmp_stat` XML), read every `reconcile_ms` to
    /// pick up streams that were live before the daemon started or whose callback was
    /// missed, drop streams that ended, and confirm halts. Empty disables reconciliation.
    /// Default: `http://127.0.0.1:8080/stat`.
    pub stat_url: String,
    /// Milliseconds between reconciliations. Default: 5000.
    pub reconcile_ms: u64,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            server: IngestServer::None,
            apps: vec!["live".into()],
            pipeline: "rtmp".into(),
            params: BTreeMap::from([(
                "url".to_string(),
                "rtmp://127.0.0.1:1935/{app}/{name}".to_string(),
            )]),
            stat_url: "http://127.0.0.1:8080/stat".into(),
            reconcile_ms: 5000,
        }
    }
}

/// How a halt is carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ActuatorKind {
    /// Halts are recorded (and re-publishes refused through `on_publish`), nothing is called.
    None,
    /// nginx-rtmp `rtmp_control`: `{control_url}/drop/publisher?app=A&name=N`, answer body
    /// `1` (dropped) or `0` (nobody publishing).
    NginxRtmp,
    /// Any server with an HTTP API: `method`, `url` and `body` templates, `expect_status`.
    Http,
}

/// `[actuator]`: how streams are halted at the ingest server.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ActuatorConfig {
    /// `none`, `nginx-rtmp` or `http`. Default: `none`.
    pub kind: ActuatorKind,
    /// nginx-rtmp: the `rtmp_control` location. Default: `http://127.0.0.1:8080/control`.
    pub control_url: String,
    /// http: request method. Default: `POST`.
    pub method: String,
    /// http: URL template; `{app}`, `{name}` and `{id}` are replaced (URL-encoded).
    pub url: String,
    /// http: body template (same placeholders, not encoded). Default: empty.
    pub body: String,
    /// http: the status that means "halted". Default: 200.
    pub expect_status: u16,
    /// Seconds before a halt request counts as failed (it is then retried). Default: 2.
    pub timeout_s: u64,
}

impl Default for ActuatorConfig {
    fn default() -> Self {
        Self {
            kind: ActuatorKind::None,
            control_url: "http://127.0.0.1:8080/control".into(),
            method: "POST".into(),
            url: String::new(),
            body: String::new(),
            expect_status: 200,
            timeout_s: 2,
        }
    }
}

/// `[supervisor]`: restarting streams that fail or stall.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct SupervisorConfig {
    /// Milliseconds without a single access unit after which a running stream counts as
    /// stalled and is restarted. Default: 10000.
    pub stall_ms: u64,
    /// First wait before a restart; doubles on each failure in a row. Default: 500.
    pub backoff_initial_ms: u64,
    /// Longest wait between restarts. Default: 30000.
    pub backoff_max_ms: u64,
    /// At most this many restarts per stream within `restart_window_s`; past it the stream
    /// is marked failed and left alone until it is published again. Default: 20.
    pub max_restarts: u32,
    /// Default: 600.
    pub restart_window_s: u64,
}

impl Default for SupervisorConfig {
    fn default() -> Self {
        Self {
            stall_ms: 10_000,
            backoff_initial_ms: 500,
            backoff_max_ms: 30_000,
            max_restarts: 20,
            restart_window_s: 600,
        }
    }
}

impl IngestConfig {
    pub(super) fn validate(&self, problems: &mut Vec<Problem>) {
        for (i, app) in self.apps.iter().enumerate() {
            if let Some(msg) = super::streams::name_problem(app) {
                problems.push(Problem::new(format!("ingest.apps[{i}]"), msg));
            }
        }
        if self.pipeline.is_empty() {
            problems.push(Problem::new("ingest.pipeline", "is required"));
        }
        if !self.stat_url.is_empty() && !self.stat_url.starts_with("http://") {
            problems.push(Problem::new(
                "ingest.stat_url",
                format!("'{}' is not an http:// URL", self.stat_url),
            ));
        }
        if self.reconcile_ms < 100 {
            problems.push(Problem::new("ingest.reconcile_ms", "must be at least 100"));
        }
    }
}

impl ActuatorConfig {
    pub(super) fn validate(&self, problems: &mut Vec<Problem>) {
        match self.kind {
            ActuatorKind::None => {}
            ActuatorKind::NginxRtmp => {
                if !self.control_url.starts_with("http://") {
                    problems.push(Problem::new(
                        "actuator.control_url",
                        format!("'{}' is not an http:// URL", self.control_url),
                    ));
                }
            }
            ActuatorKind::Http => {
                if !self.url.starts_with("http://") {
                    problems.push(Problem::new(
                        "actuator.url",
                        "is required for kind = \"http\" (an http:// URL template)",
                    ));
                }
                if self.method.is_empty() || !self.method.chars().all(|c| c.is_ascii_uppercase()) {
                    problems.push(Problem::new(
                        "actuator.method",
                        format!("'{}' is not an HTTP method such as POST", self.method),
                    ));
                }
                if !(100..=599).contains(&self.expect_status) {
                    problems.push(Problem::new(
                        "actuator.expect_status",
                        "must be an HTTP status (100..=599)",
                    ));
                }
            }
        }
        if self.timeout_s == 0 {
            problems.push(Problem::new("actuator.timeout_s", "must be at least 1"));
        }
    }
}

impl SupervisorConfig {
    pub(super) fn validate(&self, problems: &mut Vec<Problem>) {
        if self.stall_ms < 100 {
            problems.push(Problem::new("supervisor.stall_ms", "must be at least 100"));
        }
        if self.backoff_initial_ms == 0 || self.backoff_initial_ms > self.backoff_max_ms {
            problems.push(Problem::new(
                "supervisor.backoff_initial_ms",
                "must be at least 1 and at most backoff_max_ms",
            ));
        }
        if self.max_restarts == 0 {
            problems.push(Problem::new(
                "supervisor.max_restarts",
                "must be at least 1",
            ));
        }
    }
}
