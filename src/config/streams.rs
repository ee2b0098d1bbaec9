use super::{Problem, SamplerConfig, SamplingMode};
use serde::Deserialize;
use std::collections::{BTreeMap, HashSet};

/// One `[[streams]]` entry: a stream watched from start-up.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct StreamConfig {
    /// Stream id used in alerts, logs and the API; unique. Letters, digits, `-`, `_` and `.`.
    pub id: String,
    /// Pipeline template name (a file `pipelines/NAME.pipeline`, built in or from
    /// `daemon.pipelines_dir`), for example `testsrc`, `file` or `rtmp`.
    pub pipeline: String,
    /// Template parameters (`{name}` placeholders in the template). Each template documents its
    /// parameters and their defaults; unknown or missing ones are errors.
    pub params: BTreeMap<String, String>,
    /// Overrides `sampler.mode` for this stream.
    pub mode: Option<SamplingMode>,
    /// Overrides `sampler.interval_ms` for this stream.
    pub interval_ms: Option<u64>,
}

impl StreamConfig {
    /// The sampler settings of this stream: the global ones with this stream's overrides.
    pub fn sampler(&self, global: &SamplerConfig) -> SamplerConfig {
        SamplerConfig {
            mode: self.mode.unwrap_or(global.mode),
            interval_ms: self.interval_ms.unwrap_or(global.interval_ms),
            queue: global.queue,
            adaptive: global.adaptive.clone(),
        }
    }
}

/// Why `name` is not a valid stream or bank name, if it is not.
pub(super) fn name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("is required".into());
    }
    if name.len() > 128 {
        return Some("must be at most 128 characters".into());
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Some(format!(
            "'{name}' contains '{c}'; use letters, digits, '-', '_' and '.'"
        ));
    }
    None
}

pub(super) fn validate_streams(streams: &[StreamConfig], problems: &mut Vec<Problem>) {
    let mut seen = HashSet::new();
    for (i, s) in streams.iter().enumerate() {
        let key = format!("streams[{i}]");
        if let Some(msg) = name_problem(&s.id) {
            problems.push(Problem::new(format!("{key}.id"), msg));
        } else if !seen.insert(s.id.as_str()) {
            problems.push(Problem::new(
                format!("{key}.id"),
                format!("stream '{}' is declared twice", s.id),
            ));
        }
        if s.pipeline.is_empty() {
            problems.push(Problem::new(
                format!("{key}.pipeline"),
                "is required (a template name such as testsrc, file or rtmp)",
            ));
        }
        if let Some(ms) = s.interval_ms {
            let probe = SamplerConfig {
                interval_ms: ms,
                ..SamplerConfig::default()
            };
            probe.validate(&key, problems);
        }
    }
}
