//! Typed configuration, one file per section.
//!
//! A configuration is a TOML file read with the `config` crate, overridable by environment
//! variables named `STREAMGUARD__SECTION__KEY` (for example `STREAMGUARD__SAMPLER__INTERVAL_MS=500`).
//! Every field has a default, so a file only names what it changes. Unknown keys are rejected,
//! and [`Config::validate`] reports every problem at once, each with its key path.
//! `config/default.toml` (the demo configuration) is embedded in the binary.
//!
//! Relative paths in a configuration resolve against the daemon's working directory.

mod analysis;
mod classify;
mod daemon;
mod http;
mod ingest;
mod load;
mod policy;
mod sampler;
mod sinks;
mod store;
mod streams;

pub use analysis::{AnalysisConfig, BankAction, BankConfig, BankFormat};
pub use classify::ClassifyConfig;
pub use daemon::{DaemonConfig, LogFormat};
pub use http::{HttpConfig, Role, TokenConfig};
pub use ingest::{ActuatorConfig, ActuatorKind, IngestConfig, IngestServer, SupervisorConfig};
pub use load::{ConfigError, Problem, Source};
pub use policy::PolicyConfig;
pub use sampler::{SamplerConfig, SamplingMode};
pub use sinks::{SINK_EVENTS, SecretError, SinkConfig, SinkKind};
pub use store::StoreConfig;
pub use streams::StreamConfig;

use serde::Deserialize;

/// The embedded default configuration (`config/default.toml`): one synthetic demo stream.
pub const DEFAULT_TOML: &str = include_str!("../../config/default.toml");

/// The whole configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Config {
    /// `[daemon]`: process-wide settings (logging, where pipeline templates come from).
    pub daemon: DaemonConfig,
    /// `[sampler]`: which frames are decoded and analysed, unless a stream overrides it.
    pub sampler: SamplerConfig,
    /// `[analysis]`: the worker pool and the PDQ quality gate.
    pub analysis: AnalysisConfig,
    /// `[[banks]]`: hash banks of known material, matched against every analysed frame.
    pub banks: Vec<BankConfig>,
    /// `[classify]`: ONNX image classifiers.
    pub classify: ClassifyConfig,
    /// `[http]`: the HTTP server (health, readiness, ingest callbacks, the API, the console).
    pub http: HttpConfig,
    /// `[store]`: the SQLite alert store.
    pub store: StoreConfig,
    /// `[ingest]`: discovering live streams at the ingest server.
    pub ingest: IngestConfig,
    /// `[actuator]`: halting streams at the ingest server.
    pub actuator: ActuatorConfig,
    /// `[supervisor]`: restarting streams that fail or stall.
    pub supervisor: SupervisorConfig,
    /// `[[streams]]`: streams watched from start-up, each built from a pipeline template.
    pub streams: Vec<StreamConfig>,
    /// `[[sinks]]`: where alerts are delivered (NATS JetStream, webhooks), at least once.
    pub sinks: Vec<SinkConfig>,
    /// `[policy]`: how findings become alerts (cooldown after a dismissal).
    pub policy: PolicyConfig,
}

impl Config {
    /// Checks every value that the types alone do not constrain, and returns all problems.
    /// Files (banks) and pipelines are checked separately, when they are loaded and built.
    pub fn validate(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        self.daemon.validate(&mut problems);
        self.sampler.validate("sampler", &mut problems);
        self.analysis.validate(&mut problems);
        analysis::validate_banks(&self.banks, &mut problems);
        self.classify.validate(&mut problems);
        self.http.validate(&mut problems);
        self.store.validate(&mut problems);
        self.ingest.validate(&mut problems);
        self.actuator.validate(&mut problems);
        self.supervisor.validate(&mut problems);
        streams::validate_streams(&self.streams, &mut problems);
        sinks::validate_sinks(&self.sinks, &mut problems);
        self.policy.validate(&mut problems);
        // The cooldown after a dismissal counts on the dismissed alert: it must outlive it.
        let kept_s = self.store.retain_dismissed_days as u64 * 86_400;
        if kept_s > 0 && self.policy.dismiss_cooldown_s > kept_s {
            problems.push(Problem::new(
                "store.retain_dismissed_days",
                format!(
                    "{} days is shorter than policy.dismiss_cooldown_s ({} s): a dismissed alert must be kept for its cooldown",
                    self.store.retain_dismissed_days, self.policy.dismiss_cooldown_s
                ),
            ));
        }
        problems
    }
}
