//! A stream's sampler thread: takes the stream's access units from ingest, asks the stream's
//! sampler (fixed, or the adaptive controller fed with analysis results) what to do with
//! each, and pushes the chosen ones to the decoder. It runs until the stream ends, a
//! pipeline fails or its session stops it; the session (`supervisor/session.rs`) builds the
//! pipelines and starts it.

use super::adaptive::{AdaptiveParams, Controller, Mode, Trigger};
use super::gop::GopBuffer;
use super::{Decision, Feedback, FixedSampler};
use crate::config::{SamplerConfig, SamplingMode};
use crate::decode::Decoder;
use crate::ingest::{AccessUnit, IngestEvent};
use crate::telemetry::StreamStats;
use crossbeam_channel::{Receiver, select};
use gstreamer as gst;
use gstreamer::prelude::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Control messages to a stream's sampler thread.
pub enum Control {
    Error(String),
    DecoderDone,
    Stop,
}

/// How a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// The source ended (end of file; publisher gone).
    Ended,
    /// A pipeline reported an error.
    Failed(String),
    /// Asked to stop.
    Stopped,
}

/// Longest a lockstep session waits for one frame's analysis result.
const LOCKSTEP_WAIT: Duration = Duration::from_secs(2);

/// How a stream's units are chosen.
pub enum Sampling {
    Fixed(FixedSampler),
    Adaptive(AdaptiveSampling),
}

impl Sampling {
    /// The sampling `sampler` configures; `high_risk` from the stream's metadata
    /// (`sampler.adaptive.risk_args`, adaptive sampling only).
    pub fn new(sampler: &SamplerConfig, high_risk: bool) -> Sampling {
        match sampler.mode {
            SamplingMode::Adaptive => Sampling::Adaptive(AdaptiveSampling {
                params: sampler.adaptive.clone(),
                ctl: None,
                gop: GopBuffer::default(),
                high_risk,
            }),
            _ => Sampling::Fixed(FixedSampler::new(sampler)),
        }
    }
}

/// A stream's adaptive sampling: its controller and GOP buffer.
pub struct AdaptiveSampling {
    params: AdaptiveParams,
    /// Created at the first access unit (its time starts the warm-up).
    ctl: Option<Box<Controller>>,
    /// The current GOP's units while calm (keyframe first), for a retroactive decode.
    gop: GopBuffer<gst::Buffer>,
    /// From the stream's metadata (`sampler.adaptive.risk_args`).
    high_risk: bool,
}

/// What the retroactive decode of a GOP decodes before the unit that asked for it.
type Retro = Vec<(gst::Buffer, u64)>;

impl AdaptiveSampling {
    /// Asks the controller about a unit and keeps the GOP buffer in step; returns the
    /// decision, the mode the controller left, and the buffered GOP to decode first (empty
    /// unless the decision decodes from the keyframe).
    fn decide(
        &mut self,
        id: &str,
        stats: &StreamStats,
        au: &AccessUnit,
    ) -> (Decision, Mode, Retro) {
        let ctl = self
            .ctl
            .get_or_insert_with(|| start_controller(&self.params, self.high_risk, au.pts_ns));
        let before = ctl.mode();
        // The buffer holds the GOP from its keyframe (cleared at every keyframe, kept while calm).
        let buffered = self.gop.holds_gop_of(au.keyframe);
        let decision = ctl.on_unit(au.pts_ns, au.size, au.keyframe, buffered);
        let after = ctl.mode();
        tracing::trace!(stream = %id, pts_ns = au.pts_ns, keyframe = au.keyframe, size = au.size, ?decision, ?after, "access unit");
        if au.keyframe {
            self.gop.clear_at_keyframe();
        }
        let retro = match decision {
            Decision::AnalyseFromKeyframe | Decision::DecodeFromKeyframe => self.gop.take(),
            _ => Vec::new(),
        };
        self.gop.follow(after, &au.buffer, au.pts_ns);
        if before != after {
            log_mode_change(id, ctl);
        }
        publish_demand(stats, ctl, after);
        (decision, after, retro)
    }
}

/// The stream's controller, created at its first access unit (whose time, `start_ns`,
/// starts the warm-up).
fn start_controller(params: &AdaptiveParams, high_risk: bool, start_ns: u64) -> Box<Controller> {
    let mut c = Controller::new(params.clone(), start_ns);
    c.set_risk(high_risk, start_ns);
    Box::new(c)
}

fn log_mode_change(id: &str, ctl: &Controller) {
    let fired: Vec<String> = ctl
        .trigger_counts()
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(t, n)| format!("{}={n}", t.name()))
        .collect();
    tracing::info!(stream = %id, mode = ?ctl.mode(), interval_ms = ctl.current_interval_ms(), triggers = %fired.join(","), "sampling mode changed");
}

/// The global budget: publishes what this stream asks for and how it samples (as before
/// this call's grant), and applies the rate the budget granted it.
fn publish_demand(stats: &StreamStats, ctl: &mut Controller, mode: Mode) {
    let (interval, missed) = (ctl.current_interval_ms(), ctl.missed_gaps());
    let counts = ctl.trigger_counts();
    let (want, floor) = ctl.demand();
    stats
        .want_mfps
        .store((want * 1000.0) as u64, Ordering::Relaxed);
    stats
        .floor_mfps
        .store((floor * 1000.0) as u64, Ordering::Relaxed);
    stats
        .risk
        .store(u64::from(ctl.is_high_risk()), Ordering::Relaxed);
    let granted = stats.granted_mfps.load(Ordering::Relaxed);
    if granted > 0 {
        ctl.set_granted_rate(granted as f64 / 1000.0);
    }
    stats.dense.store(mode == Mode::Dense, Ordering::Relaxed);
    stats.interval_ms.store(interval, Ordering::Relaxed);
    stats.missed_gaps.store(missed, Ordering::Relaxed);
    for (i, (_, n)) in counts.iter().enumerate().take(Trigger::ALL.len()) {
        stats.triggers[i].store(*n, Ordering::Relaxed);
    }
}

/// A stream's sampler thread, before it starts.
pub struct StreamWorker {
    pub id: Arc<str>,
    pub sampling: Sampling,
    /// Analysis results for the adaptive controller.
    pub feedback: Option<Receiver<Feedback>>,
    /// Wait for each analysed frame's result (replay).
    pub lockstep: bool,
    /// Classifier scores follow each analysed frame's hash (lockstep waits for both).
    pub classified: bool,
    pub decoder: Decoder,
    /// The ingest pipeline (stopped when the thread ends).
    pub pipeline: gst::Pipeline,
    pub stats: Arc<StreamStats>,
    pub stopping: Arc<AtomicBool>,
}

impl StreamWorker {
    /// Starts the thread (`stream-<id>`) on the stream's units and control messages; it
    /// returns how the session ended.
    pub fn spawn(
        self,
        units: Receiver<IngestEvent>,
        control: Receiver<Control>,
    ) -> std::io::Result<JoinHandle<Exit>> {
        std::thread::Builder::new()
            .name(format!("stream-{}", self.id))
            .spawn(move || self.run(units, control))
    }

    fn run(mut self, units: Receiver<IngestEvent>, control: Receiver<Control>) -> Exit {
        // Once ingest has ended, its channel is replaced by one that never delivers, and the
        // loop waits for the decoder to drain (or for a stop).
        let never = crossbeam_channel::never();
        let never_fb = crossbeam_channel::never();
        let mut units = Some(units);
        let feedback = self.feedback.clone();
        let exit = loop {
            select! {
                recv(feedback.as_ref().unwrap_or(&never_fb)) -> fb => {
                    if let Ok(fb) = fb {
                        self.on_feedback(&fb);
                    }
                },
                recv(units.as_ref().unwrap_or(&never)) -> ev => match ev {
                    Ok(IngestEvent::Unit(au)) => self.on_unit(au),
                    Ok(IngestEvent::End) | Err(_) => {
                        tracing::info!(stream = %self.id, "stream ended");
                        self.decoder.end_of_stream();
                        units = None;
                    }
                },
                recv(control) -> msg => match msg {
                    Ok(Control::Stop) | Err(_) => break Exit::Stopped,
                    Ok(Control::DecoderDone) if units.is_none() => break Exit::Ended,
                    Ok(Control::DecoderDone) => {}
                    Ok(Control::Error(e)) => {
                        tracing::error!(stream = %self.id, error = %e, "stream failed");
                        break Exit::Failed(e);
                    }
                },
            }
        };
        self.stopping.store(true, Ordering::Relaxed);
        drop(units);
        let _ = self.pipeline.set_state(gst::State::Null);
        let _ = self.decoder.pipeline.set_state(gst::State::Null);
        exit
    }

    fn on_feedback(&mut self, fb: &Feedback) {
        if let Sampling::Adaptive(AdaptiveSampling { ctl: Some(ctl), .. }) = &mut self.sampling {
            let before = ctl.mode();
            match fb {
                Feedback::Hash(h) => ctl.on_hash(h.pts_ns, h.hash, h.nearest, h.usable),
                Feedback::Scores { pts_ns, scores } => {
                    for &(score, threshold) in scores {
                        ctl.on_score(*pts_ns, score, threshold);
                    }
                }
            }
            if before != ctl.mode() {
                tracing::info!(stream = %self.id, mode = ?ctl.mode(), pts_ms = fb.pts_ns() / 1_000_000,
                    feedback = ?fb, "sampling mode changed by an analysis result");
            }
        }
    }

    /// Lockstep (replay): waits for the analysis result of the frame at `pts_ns` (its hash,
    /// and its classifier scores when classifiers run), applying every result that arrives
    /// meanwhile.
    fn await_feedback(&mut self, pts_ns: u64) {
        let Some(rx) = self.feedback.clone() else {
            return;
        };
        let deadline = Instant::now() + LOCKSTEP_WAIT;
        let (mut hash, mut scores) = (false, !self.classified);
        loop {
            match rx.recv_deadline(deadline) {
                Ok(fb) => {
                    self.on_feedback(&fb);
                    if fb.pts_ns() == pts_ns {
                        match fb {
                            Feedback::Hash(_) => hash = true,
                            Feedback::Scores { .. } => scores = true,
                        }
                        if hash && scores {
                            return;
                        }
                    }
                }
                Err(_) => {
                    self.stats.feedback_timeouts.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(stream = %self.id, pts_ns, "no analysis result for a frame within 2 s; reading on");
                    return;
                }
            }
        }
    }

    fn on_unit(&mut self, au: AccessUnit) {
        self.stats
            .position_ms
            .store(au.pts_ns / 1_000_000, Ordering::Relaxed);
        match &mut self.sampling {
            Sampling::Fixed(sampler) => {
                let decision = sampler.decide(au.pts_ns, au.keyframe);
                tracing::trace!(stream = %self.id, pts_ns = au.pts_ns, keyframe = au.keyframe, size = au.size, ?decision, "access unit");
                if decision != Decision::Skip {
                    let analyse = decision == Decision::Analyse;
                    self.push(au.buffer, au.pts_ns, analyse);
                }
            }
            Sampling::Adaptive(adaptive) => {
                let (decision, mode, retro) = adaptive.decide(&self.id, &self.stats, &au);
                self.apply(decision, mode, retro, au);
            }
        }
    }

    /// Carries out an adaptive decision on `au`, in the controller's `mode` after it:
    /// switches the decoder between keyframes only and every frame, and pushes the units.
    fn apply(&mut self, decision: Decision, mode: Mode, retro: Retro, au: AccessUnit) {
        match decision {
            Decision::Skip => {}
            Decision::Decode => {
                self.decoder.set_keyframes_only(false);
                self.push(au.buffer, au.pts_ns, false);
            }
            Decision::Analyse => {
                self.decoder.set_keyframes_only(mode == Mode::Calm);
                self.push(au.buffer, au.pts_ns, true);
            }
            Decision::AnalyseFromKeyframe | Decision::DecodeFromKeyframe => {
                // Decode the GOP from its keyframe, then this unit (analysed when due): dense
                // decoding starts now, and a trigger acts on the frame that caused it.
                self.decoder.set_keyframes_only(false);
                for (b, pts) in retro {
                    if pts != au.pts_ns {
                        self.push(b, pts, false);
                    }
                }
                let analyse = decision == Decision::AnalyseFromKeyframe;
                self.push(au.buffer, au.pts_ns, analyse);
            }
        }
    }

    fn push(&mut self, buffer: gst::Buffer, pts_ns: u64, analyse: bool) {
        self.stats.count(|s| &s.units_decoded, 1);
        if analyse {
            self.stats.frames_selected.fetch_add(1, Ordering::Relaxed);
        }
        if let Err(e) = self.decoder.push(buffer, pts_ns, analyse) {
            tracing::debug!(stream = %self.id, error = ?e, "decoder refused unit");
        } else if analyse && self.lockstep {
            self.await_feedback(pts_ns);
        }
    }
}
