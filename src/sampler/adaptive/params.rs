//! The adaptive controller's parameters, `[sampler.adaptive]`: their defaults, their
//! validation, and the stream risk they read from metadata.

/// Controller parameters (times in milliseconds of stream time): `[sampler.adaptive]`.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(default)]
pub struct AdaptiveParams {
    /// Calm: at most one analysed frame per this interval. Default: 2000.
    pub base_interval_ms: u64,
    /// Calm: at least one analysed frame per this interval (the coverage guarantee; the
    /// budget never stretches calm sampling past it). Default: 6000.
    pub max_gap_ms: u64,
    /// Dense: analysed frames per second. Default: 5.
    pub dense_rate: f64,
    /// Dense lasts this long after the last match, near miss, grey-zone score or risk
    /// signal. Default: 6000.
    pub hold_ms: u64,
    /// Dense lasts this long after a spike or scene change: signs that the picture changed,
    /// not that anything suspicious is in it. The changed frame itself is analysed at once
    /// (from the buffered GOP), so a short hold is enough to look again. Default: 1500.
    pub activity_hold_ms: u64,
    /// A new stream starts dense for this long (0: calm from the start). Default: 5000.
    pub warmup_ms: u64,
    /// A delta access unit larger than this many times the running mean of delta units,
    /// and by more than `spike_sigma` standard deviations, is a spike (0: off). Constant
    /// bitrate encoders keep a cut's first frame small (measured: 1.8 times the mean for an
    /// image cut into a test pattern at 2 Mbit/s), hence the low ratio. Default: 1.5.
    pub spike_ratio: f64,
    /// How many running standard deviations above the running mean a spike must be. Busy
    /// content (pans, zooms) varies a lot and needs a larger jump. Default: 4.
    pub spike_sigma: f64,
    /// Delta units seen before spikes count (the mean needs some history). Default: 30.
    pub spike_min_units: u64,
    /// A keyframe that comes before the stream's keyframe cadence (under 95% of the last
    /// regular GOP: the encoder cut the scene) counts as a spike too. Default: true.
    pub scene_cut_keyframes: bool,
    /// Hamming distance between consecutive analysed frames' hashes that counts as a scene
    /// change, judged while calm (0: off). Default: 80.
    pub scene_change_distance: u32,
    /// Distances within this many bits above a bank's threshold are near misses (0: off).
    /// Near-miss search runs on the frame's plain hash only, at the larger radius: cheap for
    /// small banks, costlier for banks of millions. Default: 16.
    pub near_miss_band: u32,
    /// Classifier scores in `[grey_zone_low, alert threshold)` are in the grey zone.
    /// Default: 0.3.
    pub grey_zone_low: f32,
    /// Publish-URL arguments that mark a stream high-risk (dense from the start, served
    /// first by the budget) when present with a value other than empty, `0` or `false`:
    /// for example `["new_account"]` for `rtmp://host/live/key?new_account=1`. Default: none.
    pub risk_args: Vec<String>,
}

impl Default for AdaptiveParams {
    fn default() -> Self {
        Self {
            base_interval_ms: 2000,
            max_gap_ms: 6000,
            dense_rate: 5.0,
            hold_ms: 6000,
            activity_hold_ms: 1500,
            warmup_ms: 5000,
            spike_ratio: 1.5,
            spike_sigma: 4.0,
            spike_min_units: 30,
            scene_cut_keyframes: true,
            scene_change_distance: 80,
            near_miss_band: 16,
            grey_zone_low: 0.3,
            risk_args: Vec::new(),
        }
    }
}

impl AdaptiveParams {
    /// Whether stream metadata (publish-URL arguments) marks the stream high-risk.
    pub fn is_high_risk(&self, metadata: &std::collections::BTreeMap<String, String>) -> bool {
        self.risk_args.iter().any(|k| {
            metadata
                .get(k)
                .is_some_and(|v| !matches!(v.trim(), "" | "0" | "false"))
        })
    }

    /// Every problem with these values, each naming its key under `prefix`.
    pub fn problems(&self, prefix: &str) -> Vec<(String, String)> {
        let mut p = Vec::new();
        let mut bad = |k: &str, m: &str| p.push((format!("{prefix}.{k}"), m.to_string()));
        if self.base_interval_ms == 0 {
            bad("base_interval_ms", "must be at least 1");
        }
        if self.base_interval_ms > self.max_gap_ms {
            bad("base_interval_ms", "must not exceed max_gap_ms");
        }
        if !(self.dense_rate > 0.0 && self.dense_rate.is_finite()) {
            bad(
                "dense_rate",
                "must be a positive number of frames per second",
            );
        }
        if self.spike_ratio < 0.0 || (self.spike_ratio > 0.0 && self.spike_ratio <= 1.0) {
            bad("spike_ratio", "must be 0 (off) or greater than 1");
        }
        if !(self.spike_sigma >= 0.0 && self.spike_sigma.is_finite()) {
            bad("spike_sigma", "must be a number >= 0");
        }
        if !(0.0..=1.0).contains(&self.grey_zone_low) {
            bad("grey_zone_low", "must be between 0 and 1");
        }
        p
    }
}
