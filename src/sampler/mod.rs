//! Sampler: decides, for every access unit, whether it is decoded and whether the resulting
//! frame is analysed. Pure logic on stream time, but for each stream's sampler thread
//! (`worker.rs`), which drives the decoder with the decisions.
//!
//! Fixed sampling ([`FixedSampler`]): `keyframes` mode decodes keyframes only and analyses
//! the first keyframe at or after each due time; `all` mode decodes every unit from the
//! first keyframe and analyses the first frame at or after each due time. Adaptive
//! sampling: [`adaptive`].

pub mod adaptive;
pub mod budget;
pub mod gop;
pub mod worker;

use crate::analysis::pdq::PdqHash;

/// What analysis tells a stream's adaptive controller about one of its frames.
#[derive(Debug, Clone)]
pub enum Feedback {
    /// The frame's hash (sent for every analysed frame).
    Hash(HashFeedback),
    /// Classifier scores (sent for every frame the classifiers ran on): per label with
    /// thresholds, its score and its review threshold.
    Scores {
        pts_ns: u64,
        scores: Vec<(f32, f32)>,
    },
}

impl Feedback {
    pub fn pts_ns(&self) -> u64 {
        match self {
            Feedback::Hash(h) => h.pts_ns,
            Feedback::Scores { pts_ns, .. } => *pts_ns,
        }
    }
}

/// The hash half of [`Feedback`].
#[derive(Debug, Clone, Copy)]
pub struct HashFeedback {
    pub pts_ns: u64,
    pub hash: PdqHash,
    /// The closest bank distance within the bank's threshold plus the near-miss band, with
    /// that bank's threshold.
    pub nearest: Option<(u32, u32)>,
    /// Whether the hash's quality passed `analysis.min_quality`: scene changes are only
    /// judged between usable hashes (a flat or near-flat frame's hash flips at random).
    pub usable: bool,
}

use crate::config::{SamplerConfig, SamplingMode};

/// What to do with one access unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Skip,
    /// Decode it (a reference for later frames) without analysing it.
    Decode,
    /// Decode and analyse it.
    Analyse,
    /// Decode the buffered access units of the current GOP from its keyframe, then analyse
    /// this one: a trigger seen on a delta frame acts on that frame, not a GOP later
    /// (adaptive sampling only).
    AnalyseFromKeyframe,
    /// Decode the buffered GOP from its keyframe and this unit, analysing nothing: dense
    /// decoding catches up now, and the next due frame is analysed (adaptive sampling only).
    DecodeFromKeyframe,
}

#[derive(Debug, Clone)]
pub struct FixedSampler {
    mode: SamplingMode,
    interval_ns: u64,
    next_due_ns: Option<u64>,
    seen_keyframe: bool,
}

impl FixedSampler {
    pub fn new(cfg: &SamplerConfig) -> Self {
        Self {
            mode: cfg.mode,
            interval_ns: cfg.interval_ms * 1_000_000,
            next_due_ns: None,
            seen_keyframe: false,
        }
    }

    pub fn mode(&self) -> SamplingMode {
        self.mode
    }

    pub fn decide(&mut self, pts_ns: u64, keyframe: bool) -> Decision {
        if keyframe {
            self.seen_keyframe = true;
        }
        if !self.seen_keyframe {
            return Decision::Skip; // nothing decodes before the first keyframe
        }
        let due = self.next_due_ns.is_none_or(|d| pts_ns >= d);
        match (self.mode, keyframe, due) {
            (SamplingMode::Keyframes | SamplingMode::Adaptive, false, _) => Decision::Skip,
            (SamplingMode::Keyframes | SamplingMode::Adaptive, true, false) => Decision::Skip,
            (SamplingMode::All, _, false) => Decision::Decode,
            (_, _, true) => {
                // Due times follow the schedule, not the frame that happened to be picked,
                // unless the stream jumped ahead by more than an interval.
                let next = self.next_due_ns.map_or(pts_ns, |d| d + self.interval_ns);
                self.next_due_ns = Some(if next <= pts_ns {
                    pts_ns + self.interval_ns
                } else {
                    next
                });
                Decision::Analyse
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn run(
        mode: SamplingMode,
        interval_ms: u64,
        gop: u64,
        frames: u64,
        frame_ms: u64,
    ) -> Vec<(u64, Decision)> {
        let mut s = FixedSampler::new(&SamplerConfig {
            mode,
            interval_ms,
            queue: 1,
            adaptive: Default::default(),
        });
        (0..frames)
            .map(|i| {
                (
                    i * frame_ms,
                    s.decide(1_000 * MS + i * frame_ms * MS, i % gop == 0),
                )
            })
            .collect()
    }

    fn analysed(d: &[(u64, Decision)]) -> Vec<u64> {
        d.iter()
            .filter(|(_, x)| *x == Decision::Analyse)
            .map(|(t, _)| *t)
            .collect()
    }

    #[test]
    fn keyframes_mode_picks_keyframes_at_interval() {
        // 25 fps, keyframe every 10 frames (400 ms), 1 s interval: the first keyframe at or
        // after 0, 1000 and 2000 ms.
        let d = run(SamplingMode::Keyframes, 1000, 10, 75, 40);
        assert_eq!(analysed(&d), vec![0, 1200, 2000]);
        assert!(
            d.iter()
                .all(|(t, x)| *x != Decision::Decode && (*x == Decision::Skip || t % 400 == 0))
        );
    }

    #[test]
    fn keyframes_every_gop_when_interval_is_short() {
        let d = run(SamplingMode::Keyframes, 100, 10, 40, 40);
        assert_eq!(analysed(&d), vec![0, 400, 800, 1200]);
    }

    #[test]
    fn all_mode_decodes_everything_and_analyses_on_schedule() {
        let d = run(SamplingMode::All, 500, 50, 50, 40);
        assert_eq!(analysed(&d), vec![0, 520, 1000, 1520]);
        assert!(d.iter().all(|(_, x)| *x != Decision::Skip));
    }

    #[test]
    fn nothing_before_first_keyframe() {
        let mut s = FixedSampler::new(&SamplerConfig {
            mode: SamplingMode::All,
            interval_ms: 1,
            queue: 1,
            adaptive: Default::default(),
        });
        assert_eq!(s.decide(0, false), Decision::Skip);
        assert_eq!(s.decide(40 * MS, true), Decision::Analyse);
        assert_eq!(s.decide(80 * MS, false), Decision::Analyse);
    }
}
