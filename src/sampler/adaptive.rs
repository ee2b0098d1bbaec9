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

mod params;
mod trigger;

pub use super::Decision;
use crate::analysis::pdq::PdqHash;
pub use params::AdaptiveParams;
pub use trigger::Trigger;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Calm,
    Dense,
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
        let spike = self.size_spike(size, keyframe);
        if self.mode == Mode::Dense && pts_ns >= self.dense_until_ns {
            self.mode = Mode::Calm;
            self.resume_calm = true;
        }
        // Judged in the mode the unit arrived in, before a spike on it triggers.
        let retro = gop_buffered
            && !keyframe
            && (spike || self.mode == Mode::Dense)
            && (self.mode == Mode::Calm || !self.synced);
        if spike {
            self.trigger(Trigger::Spike, pts_ns);
        }
        self.count_missed_gap(pts_ns);
        let since = self.last_analysed_ns.map_or(u64::MAX, |l| {
            pts_ns.saturating_sub(l).saturating_add(SLACK_NS)
        });
        if keyframe {
            self.follow_keyframes(pts_ns, spike);
        }
        let decision = match self.mode {
            Mode::Calm => self.decide_calm(since, keyframe),
            Mode::Dense => self.decide_dense(since, keyframe, retro),
        };
        if matches!(decision, Decision::Analyse | Decision::AnalyseFromKeyframe) {
            self.last_analysed_ns = Some(pts_ns);
        }
        decision
    }

    /// Compressed-domain activity, measured on every unit without decoding it: delta units
    /// against delta units, keyframes against keyframes (a cut that lands on a scheduled
    /// keyframe makes it larger than the others). Whether this unit is a spike; its size
    /// joins the running statistics.
    fn size_spike(&mut self, size: usize, keyframe: bool) -> bool {
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
        spike
    }

    /// Counts a gap longer than `max_gap` since the last analysed frame, once per gap.
    fn count_missed_gap(&mut self, pts_ns: u64) {
        if let Some(last) = self.last_analysed_ns
            && pts_ns.saturating_sub(last) > self.p.max_gap_ms * MS
            && self.gap_counted_from != Some(last)
        {
            self.missed_gaps += 1;
            self.gap_counted_from = Some(last);
        }
    }

    /// Follows the stream's keyframe cadence (the GOP length): a keyframe before it is a
    /// scene cut the encoder marked, a spike unless this unit's size already was one.
    fn follow_keyframes(&mut self, pts_ns: u64, spike: bool) {
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

    /// Calm: a keyframe is analysed when due after the calm interval, or earlier when
    /// waiting for the next keyframe (one GOP on) would break the max-gap guarantee.
    /// `since`: time since the last analysed frame (plus slack).
    fn decide_calm(&mut self, since: u64, keyframe: bool) -> Decision {
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

    /// Dense: every unit decoded from a keyframe (`retro`: from the buffered GOP's, now),
    /// one analysed per dense interval. A retroactive decode analyses this unit only if it
    /// is due at the dense rate (which the budget may have stretched), so the budget is
    /// never overrun; otherwise it only decodes, to catch up.
    fn decide_dense(&mut self, since: u64, keyframe: bool, retro: bool) -> Decision {
        if retro {
            self.synced = true;
            return if since >= self.dense_interval_ns {
                Decision::AnalyseFromKeyframe
            } else {
                Decision::DecodeFromKeyframe
            };
        }
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
