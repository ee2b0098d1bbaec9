//! The frame path: what happens to a decoded frame, the same in the daemon (`run`) and in
//! `replay`. Decoders send [`Frame`]s into a bounded channel; the analysis pool hashes each
//! one and matches it against the banks (and, with classifiers configured, submits it to the
//! classifier stage first, which scores it meanwhile); both send [`Finding`]s to the policy
//! and moderation stage that the caller runs on the other end of `findings`.
//!
//! ```text
//! decoders ──Frame (bounded: analysis.queue)──► analysis pool ──Finding──► findings
//!                                                  │    ▲
//!                                          submit  ▼    │ (scores → findings)
//!                                               classifier stage
//! ```
//!
//! The path ends when every sender of its frames channel is gone: [`FramePath::finish`]
//! then waits until every queued frame is analysed and scored, and every finding sent.

use crate::analysis::{self, bank::BankSet};
use crate::classify::ClassifyError;
use crate::classify::stage::Stage;
use crate::config::{ClassifyConfig, Config};
use crate::decode::Frame;
use crate::policy::Finding;
use crossbeam_channel::{Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;

/// How the frame path runs.
#[derive(Debug, Clone)]
pub struct FramePathSettings {
    /// Analysis threads (`analysis.workers`).
    pub workers: usize,
    /// Hashes below this quality are never matched (`analysis.min_quality`).
    pub min_quality: u32,
    pub classify: ClassifyConfig,
    /// Replay: a full classifier queue waits instead of dropping the frame, so that every
    /// analysed frame is scored.
    pub blocking: bool,
    /// Keep a greyscale thumbnail of this width with each classified frame (evidence).
    pub evidence_width: Option<usize>,
}

impl FramePathSettings {
    /// The daemon's: live, frames the classifiers cannot take in time are dropped and
    /// counted; evidence as `store.evidence` says.
    pub fn live(cfg: &Config) -> FramePathSettings {
        FramePathSettings {
            workers: cfg.analysis.workers,
            min_quality: cfg.analysis.min_quality,
            classify: cfg.classify.clone(),
            blocking: false,
            evidence_width: cfg.store.evidence.then_some(cfg.store.evidence_width),
        }
    }

    /// Replay's: every analysed frame is scored, nothing is kept as evidence.
    pub fn replay(cfg: &Config) -> FramePathSettings {
        FramePathSettings {
            blocking: true,
            evidence_width: None,
            ..FramePathSettings::live(cfg)
        }
    }
}

/// The running frame path: the analysis threads and, with classifiers, their stage.
pub struct FramePath {
    workers: Vec<JoinHandle<()>>,
    classify: Option<Stage>,
}

impl FramePath {
    /// Starts the classifier stage (if models are configured) and the analysis pool reading
    /// `frames`; findings of both go to `findings`. Fails, with nothing running, if a model
    /// does not load.
    pub fn start(
        settings: &FramePathSettings,
        banks: Arc<BankSet>,
        frames: Receiver<Frame>,
        findings: Sender<Finding>,
    ) -> Result<FramePath, ClassifyError> {
        // Classifiers (if any) score what the analysis threads submit; their findings go to
        // the same policy and moderation stage.
        let (classify, submitter) = if settings.classify.models.is_empty() {
            (None, None)
        } else {
            let (stage, submitter) = Stage::start(
                &settings.classify,
                findings.clone(),
                settings.blocking,
                settings.evidence_width,
            )?;
            (Some(stage), Some(submitter))
        };
        let workers = analysis::start_pool(
            settings.workers,
            settings.min_quality,
            banks,
            frames,
            findings,
            submitter,
        );
        Ok(FramePath { workers, classify })
    }

    /// Classifiers score every analysed frame (a lockstep replay waits for their scores).
    pub fn classified(&self) -> bool {
        self.classify.is_some()
    }

    /// Waits for the path to drain and end; every sender of its frames channel must be
    /// dropped first. Queued frames are analysed and scored, their findings sent.
    pub fn finish(self) {
        for w in self.workers {
            let _ = w.join();
        }
        // The analysis workers held the classifiers' inlets: the pool drains and ends.
        if let Some(c) = self.classify {
            c.join();
        }
    }
}
