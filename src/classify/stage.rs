//! The classifier stage, as the daemon and replay run it: analysis threads submit each
//! analysed frame (resized once per model size, urgent when its stream is dense or
//! high-risk), the pool's workers score it, and one results thread turns scores into
//! findings ([`ScorePolicy`]: review thresholds, k-of-n halts) for the moderation stage and
//! into feedback for the stream's adaptive controller (grey-zone scores raise its rate).

use super::pool::{Inlet, Pool, Scored};
use super::{Classifier, ClassifyError};
use crate::analysis::pdq::RgbImage;
use crate::config::ClassifyConfig;
use crate::decode::Frame;
use crate::moderation::store::Thumbnail;
use crate::policy::{Finding, ModelPolicy, ScorePolicy};
use crate::sampler::Feedback;
use crate::telemetry::StreamStats;
use crossbeam_channel::{Sender, TrySendError, unbounded};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;

/// What comes back with a frame's scores.
#[derive(Debug)]
pub struct FrameTag {
    pub stream: Arc<str>,
    pub pts_ns: u64,
    pub stats: Arc<StreamStats>,
    /// The stream's adaptive controller, if it has one.
    pub feedback: Option<Sender<Feedback>>,
    /// When the frame left the decoder.
    pub decoded_at: std::time::Instant,
    /// A greyscale thumbnail, when evidence is kept.
    pub thumb: Option<Arc<Thumbnail>>,
}

/// A greyscale thumbnail `width` pixels wide (height by the frame's aspect).
pub fn thumbnail(img: RgbImage, width: usize) -> Thumbnail {
    let height = ((width * img.height) as f64 / img.width.max(1) as f64)
        .round()
        .max(1.0) as usize;
    let rgb = super::model::resize(img, width, height);
    let grey = rgb
        .data
        .chunks_exact(3)
        .map(|p| (0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2] + 0.5).clamp(0.0, 255.0) as u8)
        .collect();
    Thumbnail {
        width,
        height,
        grey,
    }
}

/// Puts frames into the classifier pool; one clone per analysis thread.
#[derive(Debug, Clone)]
pub struct Submitter {
    inlet: Inlet<FrameTag>,
    /// Wait for room in the queue (replay) instead of dropping the frame (live).
    blocking: bool,
    /// Keep a thumbnail of this width with each frame (evidence for its alert).
    evidence_width: Option<usize>,
}

impl Submitter {
    /// Queues `frame`, whose pixels are `img`, for every model: on the urgent queue when
    /// its stream is dense or high-risk. Live, a full queue drops the frame (counted in
    /// the stream's `classify_dropped`); blocking, it waits.
    pub fn submit(&self, frame: &Frame, img: RgbImage) {
        let stats = &frame.stats;
        let urgent = stats.dense.load(Ordering::Relaxed) || stats.risk.load(Ordering::Relaxed) > 0;
        let feedback = frame.feedback.as_ref().map(|(tx, _)| tx.clone());
        // A frame that will not be scored still answers a lockstep session waiting for it.
        let no_scores = |fb: &Option<Sender<Feedback>>| {
            if let Some(tx) = fb {
                let _ = tx.send(Feedback::Scores {
                    pts_ns: frame.pts_ns,
                    scores: Vec::new(),
                });
            }
        };
        let tag = FrameTag {
            stream: frame.stream.clone(),
            pts_ns: frame.pts_ns,
            stats: frame.stats.clone(),
            feedback: feedback.clone(),
            decoded_at: frame.decoded_at,
            thumb: self
                .evidence_width
                .filter(|_| super::model::check_image(&img).is_ok())
                .map(|w| Arc::new(thumbnail(img, w))),
        };
        let job = match self.inlet.job(tag, img) {
            Ok(j) => j,
            Err(e) => {
                tracing::warn!(stream = %frame.stream, error = %e, "frame not classified");
                no_scores(&feedback);
                return;
            }
        };
        let queue = if urgent {
            &self.inlet.urgent
        } else {
            &self.inlet.normal
        };
        if self.blocking {
            if queue.send(job).is_err() {
                no_scores(&feedback);
            }
            return;
        }
        let sent = queue.try_send(job);
        crate::telemetry::metrics::CLASSIFY_QUEUE.store(
            (self.inlet.urgent.len() + self.inlet.normal.len()) as u64,
            Ordering::Relaxed,
        );
        match sent {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                stats.count(|s| &s.classify_dropped, 1);
                tracing::debug!(stream = %frame.stream, urgent, "classifier queue full; frame not classified");
                no_scores(&feedback);
            }
            Err(TrySendError::Disconnected(_)) => no_scores(&feedback),
        }
    }
}

/// The running stage: the pool and its results thread.
pub struct Stage {
    pool: Pool,
    results: JoinHandle<()>,
}

impl Stage {
    /// Loads every model of `cfg` on `cfg.workers` workers and starts the results thread,
    /// which sends findings to `findings`. Fails, with nothing running, if a model does not
    /// load.
    pub fn start(
        cfg: &ClassifyConfig,
        findings: Sender<Finding>,
        blocking: bool,
        evidence_width: Option<usize>,
    ) -> Result<(Stage, Submitter), ClassifyError> {
        let (out_tx, out_rx) = unbounded::<Scored<FrameTag>>();
        let (pool, inlet) = Pool::start(
            &cfg.models,
            Some(&cfg.runtime),
            cfg.threads,
            cfg.workers,
            cfg.queue,
            out_tx,
        )?;
        let models = pool
            .models
            .iter()
            .map(|(name, m)| ModelPolicy::from_manifest(name, m))
            .collect();
        let mut policy = ScorePolicy::new(cfg.halt_k, cfg.halt_n, models);
        let results = std::thread::Builder::new()
            .name("classify-results".into())
            .spawn(move || {
                for scored in out_rx {
                    on_scores(&mut policy, scored, &findings);
                }
            })
            .expect("spawn classifier results thread");
        Ok((
            Stage { pool, results },
            Submitter {
                inlet,
                blocking,
                evidence_width,
            },
        ))
    }

    /// Waits for the stage to end: drop every [`Submitter`] first; queued frames are
    /// scored and their findings sent.
    pub fn join(self) {
        self.pool.join();
        let _ = self.results.join();
    }
}

fn on_scores(policy: &mut ScorePolicy, scored: Scored<FrameTag>, findings: &Sender<Finding>) {
    let tag = scored.tag;
    crate::telemetry::metrics::CLASSIFY_LATENCY.observe(tag.decoded_at.elapsed());
    let mut feedback = Vec::new();
    for (model, result) in scored.scores.iter().enumerate() {
        let scores = match result {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(stream = %tag.stream, pts_ms = tag.pts_ns / 1_000_000, error = %e, "classifier failed on a frame");
                continue;
            }
        };
        if let Some(m) = policy.models().get(model) {
            feedback.extend(
                scores
                    .iter()
                    .zip(&m.thresholds)
                    .filter_map(|(&s, t)| t.map(|t| (s, t.review))),
            );
        }
        for mut f in policy.observe(&tag.stream, tag.pts_ns, model, scores) {
            f.decoded_at = Some(tag.decoded_at);
            f.thumb = tag.thumb.clone();
            tag.stats.count(|s| &s.classifier_findings, 1);
            tracing::debug!(stream = %tag.stream, model = %f.model, label = %f.label, score = f.score,
                action = %f.action, over_halt = f.over_halt, pts_ms = tag.pts_ns / 1_000_000, "classifier finding");
            if findings.send(Finding::Score(f)).is_err() {
                tracing::error!(stream = %tag.stream, "policy stage gone; finding not recorded");
            }
        }
    }
    tag.stats.count(|s| &s.frames_classified, 1);
    if let Some(tx) = &tag.feedback {
        let _ = tx.send(Feedback::Scores {
            pts_ns: tag.pts_ns,
            scores: feedback,
        });
    }
}

/// Checks that every model of `cfg` loads (runtime first), for `check-config` and start-up:
/// one problem per model that does not.
pub fn check(cfg: &ClassifyConfig) -> Vec<String> {
    let missing: Vec<String> = cfg
        .models
        .iter()
        .enumerate()
        .filter(|(_, dir)| !dir.join("model.toml").is_file())
        .map(|(i, dir)| {
            format!(
                "classify.models[{i}]: {}: no model.toml there",
                dir.display()
            )
        })
        .collect();
    if cfg.models.is_empty() || !missing.is_empty() {
        return missing;
    }
    if let Err(e) = super::environment(Some(&cfg.runtime)) {
        return vec![format!("classify.runtime: {e}")];
    }
    cfg.models
        .iter()
        .enumerate()
        .filter_map(|(i, dir)| {
            Classifier::load(dir, Some(&cfg.runtime), cfg.threads)
                .err()
                .map(|e| format!("classify.models[{i}]: {e}"))
        })
        .collect()
}
