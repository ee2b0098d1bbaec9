//! Policy: findings to verdicts.
//!
//! - A bank match within its threshold becomes an alert carrying its bank's action (`halt`
//!   or `review`; `allow` banks suppress matches before this stage).
//! - A classifier label with thresholds: a frame scoring at least `review` raises (or
//!   attaches to) a review alert; the alert's action becomes `halt` once `halt_k` of the
//!   stream's last `halt_n` classified frames scored at least `halt` for that label, so one
//!   odd frame does not halt a stream ([`ScorePolicy`]).
//!
//! The store keeps one open alert per stream, reason and item (bank item or model label);
//! later findings attach to it.

use crate::analysis::bank::BankMatch;
use crate::analysis::pdq::PdqOutput;
use crate::classify::manifest::Thresholds;
use crate::config::BankAction;
use crate::domain::{Action, ClassifierSubject, HashSubject, Subject};
use crate::moderation::store::NewAlert;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// A bank match on one analysed frame.
#[derive(Debug, Clone)]
pub struct MatchFinding {
    pub stream: String,
    pub frame_pts_ns: u64,
    pub pdq: PdqOutput,
    pub matched: BankMatch,
    /// When the frame left the decoder (None in tests).
    pub decoded_at: Option<std::time::Instant>,
}

/// A classifier label over its review threshold on one analysed frame.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreFinding {
    pub stream: String,
    pub frame_pts_ns: u64,
    pub model: String,
    pub label: String,
    pub score: f32,
    /// `halt` when enough recent frames were over the halt threshold, else `review`.
    pub action: Action,
    /// How many of the last `halt_n` classified frames were over the halt threshold.
    pub over_halt: usize,
    /// When the frame left the decoder (None in tests).
    pub decoded_at: Option<std::time::Instant>,
    /// A greyscale thumbnail of the frame, kept as the alert's evidence (`store.evidence`).
    pub thumb: Option<Arc<crate::moderation::store::Thumbnail>>,
}

/// What analysis found on one frame.
#[derive(Debug, Clone)]
pub enum Finding {
    Match(MatchFinding),
    Score(ScoreFinding),
}

impl Finding {
    pub fn stream(&self) -> &str {
        match self {
            Finding::Match(m) => &m.stream,
            Finding::Score(s) => &s.stream,
        }
    }

    pub fn frame_pts_ns(&self) -> u64 {
        match self {
            Finding::Match(m) => m.frame_pts_ns,
            Finding::Score(s) => s.frame_pts_ns,
        }
    }

    pub fn decoded_at(&self) -> Option<std::time::Instant> {
        match self {
            Finding::Match(m) => m.decoded_at,
            Finding::Score(s) => s.decoded_at,
        }
    }
}

/// The alert a finding raises (or attaches to).
pub fn verdict(f: &Finding) -> NewAlert {
    match f {
        Finding::Match(f) => NewAlert {
            stream: f.stream.clone(),
            subject: Subject::Hash(HashSubject {
                bank: f.matched.bank.clone(),
                item_id: f.matched.id.clone(),
                label: f.matched.label.clone(),
                distance: f.matched.distance,
                quality: f.pdq.quality,
                hash: f.pdq.hash.to_string(),
                variant: f.matched.variant.name().to_string(),
            }),
            frame_pts_ms: f.frame_pts_ns / 1_000_000,
            // Allow banks never get here: analysis drops their matches (and the frame's others).
            action: if f.matched.action == BankAction::Halt {
                Action::Halt
            } else {
                Action::Review
            },
            detect_ms: None,
        },
        Finding::Score(f) => NewAlert {
            stream: f.stream.clone(),
            subject: Subject::Classifier(ClassifierSubject {
                model: f.model.clone(),
                label: f.label.clone(),
                score: f.score as f64,
            }),
            frame_pts_ms: f.frame_pts_ns / 1_000_000,
            action: f.action,
            detect_ms: None,
        },
    }
}

/// One model as the policy sees it: its name, labels and per-label thresholds.
#[derive(Debug, Clone)]
pub struct ModelPolicy {
    pub name: String,
    pub labels: Vec<String>,
    /// Per label (same order): thresholds, if the label alerts at all.
    pub thresholds: Vec<Option<Thresholds>>,
}

impl ModelPolicy {
    pub fn from_manifest(name: &str, m: &crate::classify::Manifest) -> ModelPolicy {
        ModelPolicy {
            name: name.to_string(),
            labels: m.labels.clone(),
            thresholds: m
                .labels
                .iter()
                .map(|l| m.thresholds.get(l).copied())
                .collect(),
        }
    }
}

/// Classifier scores to findings, with the k-of-n rule for halts: per stream, model and
/// label, whether each of the last `n` classified frames scored at least the halt
/// threshold.
#[derive(Debug)]
pub struct ScorePolicy {
    k: usize,
    n: usize,
    models: Vec<ModelPolicy>,
    /// Per stream, model and label: the last `n` frames (over the halt threshold or not)
    /// and when the key was last seen.
    recent: HashMap<WindowKey, (VecDeque<bool>, std::time::Instant)>,
    observed: u64,
}

/// Stream, model index, label index.
type WindowKey = (Arc<str>, usize, usize);

/// A stream not classified for this long loses its window (ended streams leave no trace).
const FORGET_AFTER: std::time::Duration = std::time::Duration::from_secs(600);

impl ScorePolicy {
    /// `k` of the last `n` frames over the halt threshold halt (1 <= k <= n).
    pub fn new(k: usize, n: usize, models: Vec<ModelPolicy>) -> ScorePolicy {
        let n = n.max(1);
        ScorePolicy {
            k: k.clamp(1, n),
            n,
            models,
            recent: HashMap::new(),
            observed: 0,
        }
    }

    pub fn models(&self) -> &[ModelPolicy] {
        &self.models
    }

    /// Model `model`'s scores (labels in manifest order) on the frame of `stream` at
    /// `pts_ns`: the findings it makes, one per label over its review threshold (or
    /// counting towards a halt).
    pub fn observe(
        &mut self,
        stream: &Arc<str>,
        pts_ns: u64,
        model: usize,
        scores: &[f32],
    ) -> Vec<ScoreFinding> {
        let Some(m) = self.models.get(model) else {
            return Vec::new();
        };
        let now = std::time::Instant::now();
        self.observed += 1;
        if self.observed.is_multiple_of(1024) {
            self.recent
                .retain(|_, (_, seen)| now.duration_since(*seen) < FORGET_AFTER);
        }
        let mut out = Vec::new();
        for (label, (&score, t)) in scores.iter().zip(&m.thresholds).enumerate() {
            let Some(t) = t else { continue };
            let (window, seen) = self
                .recent
                .entry((stream.clone(), model, label))
                .or_insert_with(|| (VecDeque::new(), now));
            *seen = now;
            let halting = score >= t.halt;
            window.push_back(halting);
            while window.len() > self.n {
                window.pop_front();
            }
            let over_halt = window.iter().filter(|&&b| b).count();
            // Only a frame over a threshold itself makes a finding.
            let action = if halting && over_halt >= self.k {
                // The halt is decided: a reinstated (or reconnected) stream starts afresh,
                // so one odd frame after it does not halt it again.
                window.clear();
                Action::Halt
            } else if halting || score >= t.review {
                Action::Review
            } else {
                continue;
            };
            out.push(ScoreFinding {
                stream: stream.to_string(),
                frame_pts_ns: pts_ns,
                model: m.name.clone(),
                label: m.labels[label].clone(),
                score,
                action,
                over_halt,
                decoded_at: None,
                thumb: None,
            });
        }
        out
    }

    /// Forgets a stream's recent frames.
    pub fn forget(&mut self, stream: &str) {
        self.recent.retain(|(s, _, _), _| &**s != stream);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(k: usize, n: usize) -> ScorePolicy {
        ScorePolicy::new(
            k,
            n,
            vec![ModelPolicy {
                name: "marker".into(),
                labels: vec!["benign".into(), "marker".into()],
                thresholds: vec![
                    None,
                    Some(Thresholds {
                        review: 0.5,
                        halt: 0.9,
                    }),
                ],
            }],
        )
    }

    fn actions(
        p: &mut ScorePolicy,
        stream: &Arc<str>,
        scores: &[f32],
    ) -> Vec<Option<&'static str>> {
        scores
            .iter()
            .enumerate()
            .map(|(i, &s)| {
                let f = p.observe(stream, i as u64 * 200_000_000, 0, &[1.0 - s, s]);
                assert!(f.len() <= 1, "one label alerts");
                f.first().map(|f| f.action.as_str())
            })
            .collect()
    }

    #[test]
    fn one_frame_over_the_halt_threshold_reviews_k_of_n_halt() {
        let a: Arc<str> = Arc::from("live/a");
        let mut p = policy(3, 5);
        // One odd frame: review, no halt; below review: nothing; the "benign" label (no
        // thresholds) never alerts, even at 1.0.
        assert_eq!(
            actions(&mut p, &a, &[0.95, 0.1, 0.6, 0.2, 0.0]),
            [Some("review"), None, Some("review"), None, None]
        );
        // Three of the last five over 0.9: the third one halts and empties the window, so
        // the next one over 0.9 only reviews; a frame under the thresholds finds nothing.
        assert_eq!(
            actions(&mut p, &a, &[0.92, 0.3, 0.97, 0.91, 0.95, 0.2, 0.1, 0.1]),
            [
                Some("review"),
                None,
                Some("review"),
                Some("halt"),
                Some("review"),
                None,
                None,
                None
            ]
        );
        // Streams do not share windows.
        let b: Arc<str> = Arc::from("live/b");
        assert_eq!(
            actions(&mut p, &b, &[0.95, 0.95]),
            [Some("review"), Some("review")]
        );
        // After forgetting, a stream starts over.
        let mut p = policy(2, 3);
        assert_eq!(actions(&mut p, &a, &[0.95]), [Some("review")]);
        p.forget("live/a");
        assert_eq!(actions(&mut p, &a, &[0.95]), [Some("review")]);
        assert_eq!(actions(&mut p, &a, &[0.95]), [Some("halt")]);
    }

    #[test]
    fn k_of_one_halts_at_once_and_findings_name_model_and_label() {
        let a: Arc<str> = Arc::from("live/a");
        let mut p = policy(1, 1);
        let f = p.observe(&a, 5_000_000_000, 0, &[0.0, 0.99]);
        assert_eq!(
            f,
            vec![ScoreFinding {
                stream: "live/a".into(),
                frame_pts_ns: 5_000_000_000,
                model: "marker".into(),
                label: "marker".into(),
                score: 0.99,
                action: Action::Halt,
                over_halt: 1,
                decoded_at: None,
                thumb: None,
            }]
        );
        let alert = verdict(&Finding::Score(f[0].clone()));
        assert_eq!(
            (
                alert.subject.reason().as_str(),
                alert.subject.source(),
                alert.subject.item()
            ),
            ("classifier", "marker", "marker")
        );
        assert_eq!((alert.frame_pts_ms, alert.action.as_str()), (5000, "halt"));
        // An unknown model index finds nothing.
        assert!(p.observe(&a, 0, 7, &[1.0]).is_empty());
    }
}
