use super::Problem;
use serde::Deserialize;
use std::path::PathBuf;

/// How log lines are written (`daemon.log_format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// `[daemon]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct DaemonConfig {
    /// Log filter in `tracing` syntax (`info`, `streamguard=debug,warn`, ...). The `RUST_LOG`
    /// environment variable, when set, takes precedence. Default: `info`.
    pub log_level: String,
    /// `text` (one human-readable line per event; colours only when stderr is a terminal)
    /// or `json` (one JSON object per line: `timestamp`, `level`, `target`, `fields` with
    /// `message` and the event's fields, and `span`s; for a log pipeline). Default: `text`.
    pub log_format: LogFormat,
    /// A folder of extra pipeline templates (`NAME.pipeline`). A template found there replaces
    /// the built-in one of the same name. Default: none (built-in templates only).
    pub pipelines_dir: Option<PathBuf>,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        Self {
            log_level: "info".into(),
            log_format: LogFormat::Text,
            pipelines_dir: None,
        }
    }
}

impl DaemonConfig {
    pub(super) fn validate(&self, problems: &mut Vec<Problem>) {
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log_level) {
            problems.push(Problem::new(
                "daemon.log_level",
                format!("'{}' is not a log filter: {e}", self.log_level),
            ));
        }
        if let Some(dir) = &self.pipelines_dir
            && !dir.is_dir()
        {
            problems.push(Problem::new(
                "daemon.pipelines_dir",
                format!("{} is not a folder", dir.display()),
            ));
        }
    }
}
