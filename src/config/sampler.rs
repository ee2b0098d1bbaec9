use super::Problem;
use crate::sampler::adaptive::AdaptiveParams;
use serde::Deserialize;

/// How a stream's frames are chosen for decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SamplingMode {
    /// Decode keyframes only; analyse the first keyframe at or after each interval. Cheapest:
    /// nothing between keyframes is decoded.
    Keyframes,
    /// Decode every frame; analyse the first frame at or after each interval. Samples exactly
    /// on the interval whatever the keyframe spacing, at the cost of decoding every frame.
    All,
    /// Keyframes only while calm, every frame while suspicious (see `[sampler.adaptive]` and
    /// `src/sampler/adaptive.rs`); `interval_ms` is not used.
    Adaptive,
}

/// `[sampler]` (and the optional per-stream overrides `streams.N.mode` / `streams.N.interval_ms`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct SamplerConfig {
    /// `keyframes` or `all`. Default: `keyframes`.
    pub mode: SamplingMode,
    /// Target time between analysed frames, in milliseconds of stream time. In `keyframes`
    /// mode the real spacing is rounded up to the next keyframe. Default: 1000.
    pub interval_ms: u64,
    /// Access units buffered between a stream's parser and its sampler. When a live stream
    /// overruns it, units are dropped and counted (the pipeline never blocks). Default: 512.
    pub queue: usize,
    /// `[sampler.adaptive]`: the adaptive controller's settings (used when `mode = "adaptive"`);
    /// each key is documented on `AdaptiveParams`.
    pub adaptive: AdaptiveParams,
}

impl Default for SamplerConfig {
    fn default() -> Self {
        Self {
            mode: SamplingMode::Keyframes,
            interval_ms: 1000,
            queue: 512,
            adaptive: AdaptiveParams::default(),
        }
    }
}

impl SamplerConfig {
    pub(super) fn validate(&self, path: &str, problems: &mut Vec<Problem>) {
        if self.interval_ms == 0 || self.interval_ms > 3_600_000 {
            problems.push(Problem::new(
                format!("{path}.interval_ms"),
                "must be between 1 and 3600000 (one hour)",
            ));
        }
        if self.mode == SamplingMode::Adaptive {
            for (key, msg) in self.adaptive.problems(&format!("{path}.adaptive")) {
                problems.push(Problem::new(key, msg));
            }
        }
        if self.queue == 0 || self.queue > 100_000 {
            problems.push(Problem::new(
                format!("{path}.queue"),
                "must be between 1 and 100000",
            ));
        }
    }
}
