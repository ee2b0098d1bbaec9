//! The adaptive per-stream controller: cheap while calm, dense when suspicious.
//!
//! Pure logic driven by stream time (nanoseconds, the clock is whatever the caller passes),
//! no GStreamer inside, so every behaviour is unit-tested with a fake clock.
//!
//! - *Calm*: keyframes only; analyse at most one frame per `base_interval` (or the longer
//!   interval the global budget assigns), and at least one per `max_gap`: a keyframe due past
//!   `max_gap` is analysed whatever the budget, and a gap longer than `max_gap` is counted.
//!   After a dense period, calm resumes at the next keyframe (back on the keyframe grid).
//! - *Dense*: every frame decoded from the next keyframe (or, after a trigger on a delta
//!   frame, from the buffered keyframe of the current GOP: [`Decision::AnalyseFromKeyframe`]),
//!   one analysed per `dense_interval`, until `hold` after the last trigger; then calm again.
//! - Triggers: a classifier score in the grey zone below its alert threshold; a near-miss hash
//!   (distance in a band above the bank threshold); a match; a compressed-domain spike (a delta
//!   access unit much larger than that stream's running mean, seen without decoding); a scene
//!   change between consecutive analysed frames; the warm-up of a new stream; stream risk from
//!   metadata.
//!
//! `sampler.mode = "adaptive"` runs it in each stream's worker (`worker.rs`); with
//! `analysis.capacity_fps` set, the global budget (`budget.rs`) grants each stream its rate.

pub use super::Decision;
use crate::analysis::pdq::PdqHash;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Calm,
    Dense,
}

/// Why a stream went dense.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    GreyZone,
    NearMiss,
    Match,
    Spike,
    SceneChange,
    Warmup,
    Risk,
}

impl Trigger {
    pub const ALL: [Trigger; 7] = [
        Trigger::GreyZone,
        Trigger::NearMiss,
        Trigger::Match,
        Trigger::Spike,
        Trigger::SceneChange,
        Trigger::Warmup,
        Trigger::Risk,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Trigger::GreyZone => "grey_zone",
            Trigger::NearMiss => "near_miss",
            Trigger::Match => "match",
            Trigger::Spike => "spike",
            Trigger::SceneChange => "scene_change",
            Trigger::Warmup => "warmup",
            Trigger::Risk => "risk",
        }
    }

    fn index(self) -> usize {
        Trigger::ALL.iter().position(|&t| t == self).unwrap_or(0)
    }
}

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

/// One stream's controller.
#[derive(Debug, Clone)]
pub struct Controller {
    p: AdaptiveParams,
    mode: Mode,
    dense_until_ns: u64,
    /// In dense mode: whether decoding has reached a keyframe (or was given the GOP buffer).
    synced: bool,
    /// The calm interval the global budget allows (at least `base_interval`).
    calm_interval_ns: u64,
    /// The dense interval the budget allows (at least `1 / dense_rate`).
    dense_interval_ns: u64,
    last_analysed_ns: Option<u64>,
    /// Gap already counted as missed, by the analysed frame it started from.
    gap_counted_from: Option<u64>,
    last_hash: Option<PdqHash>,
    /// Sizes of delta units and of keyframes, each with its own running statistics.
    delta_sizes: SizeStats,
    key_sizes: SizeStats,
    /// The last keyframe's time and the spacing between the last two (the GOP length).
    last_keyframe_ns: Option<u64>,
    gop_ns: u64,
    /// The last keyframe on the stream's schedule (not a scene cut).
    last_regular_keyframe_ns: Option<u64>,
    /// Early keyframes in a row: after three, the shorter spacing is the new cadence.
    early_keyframes: u32,
    triggers: [u64; Trigger::ALL.len()],
    missed_gaps: u64,
    high_risk: bool,
    /// Just back from dense: the next keyframe is analysed whatever the calm interval, so
    /// calm sampling resumes on the keyframe grid instead of up to a GOP late.
    resume_calm: bool,
}

const MS: u64 = 1_000_000;
/// A frame this close to its due time counts as due: keyframes exactly one interval apart
/// carry timestamps rounded a few nanoseconds either way, and must not be skipped for it.
const SLACK_NS: u64 = 10 * MS;

/// Keyframes seen before a keyframe's size can be a spike (they come every few seconds).
const KEYFRAMES_BEFORE_SPIKES: u64 = 5;

/// Running mean and variance of access-unit sizes, adapting over about 100 units.
#[derive(Debug, Clone, Default)]
struct SizeStats {
    n: u64,
    mean: f64,
    var: f64,
}

impl SizeStats {
    fn add(&mut self, s: f64) {
        self.n += 1;
        let k = 1.0 / (self.n.min(100) as f64);
        let d = s - self.mean;
        self.mean += k * d;
        self.var = (1.0 - k) * (self.var + k * d * d);
    }
}

impl Controller {
    /// A controller for a stream whose first access unit has time `start_ns`.
    pub fn new(p: AdaptiveParams, start_ns: u64) -> Controller {
        let dense_interval_ns = (1e9 / p.dense_rate) as u64;
        let mut c = Controller {
            calm_interval_ns: p.base_interval_ms * MS,
            dense_interval_ns,
            p,
            mode: Mode::Calm,
            dense_until_ns: 0,
            synced: false,
            last_analysed_ns: None,
            gap_counted_from: None,
            last_hash: None,
            delta_sizes: SizeStats::default(),
            key_sizes: SizeStats::default(),
            last_keyframe_ns: None,
            gop_ns: 0,
            last_regular_keyframe_ns: None,
            early_keyframes: 0,
            triggers: [0; Trigger::ALL.len()],
            missed_gaps: 0,
            high_risk: false,
            resume_calm: false,
        };
        if c.p.warmup_ms > 0 {
            c.trigger_for(Trigger::Warmup, start_ns, c.p.warmup_ms * MS);
        }
        c
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    pub fn is_high_risk(&self) -> bool {
        self.high_risk
    }

    /// How often each trigger fired, in [`Trigger::ALL`] order.
    pub fn trigger_counts(&self) -> [(Trigger, u64); Trigger::ALL.len()] {
        std::array::from_fn(|i| (Trigger::ALL[i], self.triggers[i]))
    }

    /// Gaps between analysed frames longer than `max_gap`.
    pub fn missed_gaps(&self) -> u64 {
        self.missed_gaps
    }

    /// The interval between analysed frames in the current mode, in milliseconds.
    pub fn current_interval_ms(&self) -> u64 {
        match self.mode {
            Mode::Calm => self.calm_interval_ns / MS,
            Mode::Dense => self.dense_interval_ns / MS,
        }
    }

    /// The analysis rate (frames per second) this stream asks for now, and the least it
    /// must get (`1 / max_gap`), for the global budget.
    pub fn demand(&self) -> (f64, f64) {
        let want = match self.mode {
            Mode::Calm => 1000.0 / self.p.base_interval_ms as f64,
            Mode::Dense => self.p.dense_rate,
        };
        (want, 1000.0 / self.p.max_gap_ms as f64)
    }

    /// The rate the global budget grants (frames per second): stretches the calm interval
    /// towards `max_gap` and the dense interval beyond `1 / dense_rate`.
    pub fn set_granted_rate(&mut self, rate: f64) {
        let interval = if rate > 0.0 {
            (1e9 / rate) as u64
        } else {
            u64::MAX
        };
        self.calm_interval_ns = interval
            .max(self.p.base_interval_ms * MS)
            .min(self.p.max_gap_ms * MS);
        self.dense_interval_ns = interval.max((1e9 / self.p.dense_rate) as u64);
    }

    /// Stream risk from metadata or the API: high risk goes dense now and is served first
    /// by the budget.
    pub fn set_risk(&mut self, high: bool, now_ns: u64) {
        if high && !self.high_risk {
            self.trigger(Trigger::Risk, now_ns);
        }
        self.high_risk = high;
    }

    fn trigger(&mut self, t: Trigger, now_ns: u64) {
        let hold = match t {
            Trigger::Spike | Trigger::SceneChange => self.p.activity_hold_ms,
            _ => self.p.hold_ms,
        };
        self.trigger_for(t, now_ns, hold * MS);
    }

    fn trigger_for(&mut self, t: Trigger, now_ns: u64, hold_ns: u64) {
        self.triggers[t.index()] += 1;
        self.dense_until_ns = self.dense_until_ns.max(now_ns.saturating_add(hold_ns));
        if self.mode == Mode::Calm {
            self.mode = Mode::Dense;
            self.synced = false;
            self.resume_calm = false;
        }
    }

    /// Decides what to do with an access unit (`size` bytes, at stream time `pts_ns`).
    /// `gop_buffered`: the caller holds the current GOP's units from its keyframe, so dense
    /// decoding can start now ([`Decision::AnalyseFromKeyframe`]) instead of at the next
    /// keyframe.
    pub fn on_unit(
        &mut self,
        pts_ns: u64,
        size: usize,
        keyframe: bool,
        gop_buffered: bool,
    ) -> Decision {
        // Compressed-domain activity, measured on every unit without decoding it: delta units
        // against delta units, keyframes against keyframes (a cut that lands on a scheduled
        // keyframe makes it larger than the others).
        let s = size as f64;
        let (stats, min_units) = if keyframe {
            (&mut self.key_sizes, KEYFRAMES_BEFORE_SPIKES)
        } else {
            (&mut self.delta_sizes, self.p.spike_min_units)
        };
        let spike = self.p.spike_ratio > 0.0
            && stats.n >= min_units
            && s > self.p.spike_ratio * stats.mean
            && s > stats.mean + self.p.spike_sigma * stats.var.sqrt();
        stats.add(s);
        if self.mode == Mode::Dense && pts_ns >= self.dense_until_ns {
            self.mode = Mode::Calm;
            self.resume_calm = true;
        }
        // A retroactive decode analyses this unit only if it is due at the dense rate (which
        // the budget may have stretched), so the budget is never overrun; otherwise it only
        // decodes, to catch up.
        let since_last = self.last_analysed_ns.map_or(u64::MAX, |l| {
            pts_ns.saturating_sub(l).saturating_add(SLACK_NS)
        });
        let retro = gop_buffered
            && !keyframe
            && (spike || self.mode == Mode::Dense)
            && (self.mode == Mode::Calm || !self.synced);
        let retro_due = since_last >= self.dense_interval_ns;
        if spike {
            self.trigger(Trigger::Spike, pts_ns);
        }
        if let Some(last) = self.last_analysed_ns
            && pts_ns.saturating_sub(last) > self.p.max_gap_ms * MS
            && self.gap_counted_from != Some(last)
        {
            self.missed_gaps += 1;
            self.gap_counted_from = Some(last);
        }
        let since = self.last_analysed_ns.map_or(u64::MAX, |l| {
            pts_ns.saturating_sub(l).saturating_add(SLACK_NS)
        });
        if keyframe {
            if let Some(k) = self.last_keyframe_ns {
                let spacing = pts_ns.saturating_sub(k);
                let gop = self.gop_ns;
                let early = gop > 0 && spacing < gop / 20 * 19;
                // Encoders that keep their schedule after a scene-cut keyframe: the next
                // scheduled one comes early after the cut, but on time after the last
                // regular keyframe.
                let on_schedule = early
                    && self.last_regular_keyframe_ns.is_some_and(|r| {
                        let m = pts_ns.saturating_sub(r) % gop;
                        m < gop / 20 || gop - m < gop / 20
                    });
                if early && on_schedule {
                    self.last_regular_keyframe_ns = Some(pts_ns);
                } else if early && self.early_keyframes < 2 {
                    // A scene cut the encoder marked with an unscheduled keyframe; the
                    // cadence stays (unless it really changed: three early ones in a row).
                    self.early_keyframes += 1;
                    if self.p.scene_cut_keyframes && !spike {
                        self.trigger(Trigger::Spike, pts_ns);
                    }
                } else {
                    self.early_keyframes = 0;
                    self.gop_ns = spacing;
                    self.last_regular_keyframe_ns = Some(pts_ns);
                }
            }
            self.last_keyframe_ns = Some(pts_ns);
        }
        let decision = match self.mode {
            Mode::Calm => {
                // Due after the calm interval, or earlier when waiting for the next keyframe
                // (one GOP on) would break the max-gap guarantee.
                let due = since >= self.calm_interval_ns
                    || self.resume_calm
                    || since.saturating_add(self.gop_ns) > self.p.max_gap_ms * MS + SLACK_NS;
                if keyframe && due {
                    self.resume_calm = false;
                    Decision::Analyse
                } else {
                    Decision::Skip
                }
            }
            Mode::Dense => {
                if retro {
                    self.synced = true;
                    if retro_due {
                        Decision::AnalyseFromKeyframe
                    } else {
                        Decision::DecodeFromKeyframe
                    }
                } else {
                    if keyframe {
                        self.synced = true;
                    }
                    if !self.synced {
                        Decision::Skip
                    } else if since >= self.dense_interval_ns {
                        Decision::Analyse
                    } else {
                        Decision::Decode
                    }
                }
            }
        };
        if matches!(decision, Decision::Analyse | Decision::AnalyseFromKeyframe) {
            self.last_analysed_ns = Some(pts_ns);
        }
        decision
    }

    /// What analysis found on the frame at `pts_ns`: its hash, the closest bank distance
    /// with that bank's threshold (if any bank was within threshold + near-miss band), and
    /// whether the hash is usable (quality gate): scene changes are judged between usable
    /// hashes only, since a flat frame's hash flips at random.
    pub fn on_hash(
        &mut self,
        pts_ns: u64,
        hash: PdqHash,
        nearest: Option<(u32, u32)>,
        usable: bool,
    ) {
        if let Some((distance, threshold)) = nearest {
            if distance <= threshold {
                self.trigger(Trigger::Match, pts_ns);
            } else if self.p.near_miss_band > 0 && distance <= threshold + self.p.near_miss_band {
                self.trigger(Trigger::NearMiss, pts_ns);
            }
        }
        if !usable {
            return;
        }
        // Judged only while calm: dense frames are a fifth of a second apart, where a pan
        // over fine texture moves the hash as much as a cut, and each such "change" would
        // keep the stream dense for ever.
        if self.p.scene_change_distance > 0
            && self.mode == Mode::Calm
            && let Some(prev) = self.last_hash
            && prev.distance(&hash) >= self.p.scene_change_distance
        {
            self.trigger(Trigger::SceneChange, pts_ns);
        }
        self.last_hash = Some(hash);
    }

    /// A classifier score for a label whose alert threshold is `alert_threshold`.
    pub fn on_score(&mut self, pts_ns: u64, score: f32, alert_threshold: f32) {
        if score >= self.p.grey_zone_low && score < alert_threshold {
            self.trigger(Trigger::GreyZone, pts_ns);
        } else if score >= alert_threshold {
            self.trigger(Trigger::Match, pts_ns);
        }
    }
}

#[cfg(test)]
mod tests;
