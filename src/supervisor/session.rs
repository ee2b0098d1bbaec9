//! One run of a stream's pipelines: ingest → sampler thread → decoder. The supervisor
//! starts a session, watches it, and starts another when it fails or stalls.

use crate::config::{SamplerConfig, SamplingMode};
use crate::decode::{Decoder, Frame};
use crate::ingest::{self, IngestEvent};
use crate::sampler::adaptive::{self, Controller, Mode, Trigger};
use crate::sampler::gop::GopBuffer;
use crate::sampler::{Decision, Feedback, FixedSampler};
use crate::telemetry::StreamStats;
use crossbeam_channel::{Receiver, Sender, bounded, select, unbounded};
use gstreamer as gst;
use gstreamer::prelude::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Control messages to a stream's sampler thread.
enum Control {
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

/// A running session.
pub struct Session {
    control: Sender<Control>,
    thread: JoinHandle<Exit>,
}

impl Session {
    pub fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }

    /// Stops the session (if still running) and returns how it ended.
    pub fn finish(self) -> Exit {
        let _ = self.control.send(Control::Stop);
        self.thread
            .join()
            .unwrap_or_else(|_| Exit::Failed("stream thread panicked".into()))
    }
}

/// How a session runs, besides its sampler settings.
#[derive(Debug, Clone, Copy)]
pub struct SessionOptions {
    /// Access units buffered between the parser and the sampler thread.
    pub queue: usize,
    /// The stream is high-risk (adaptive sampling: dense from the start, served first).
    pub high_risk: bool,
    /// Replay: after pushing a frame for analysis, wait for its analysis result before
    /// reading on, so an adaptive controller sees results at the stream time it would see
    /// them live (as fast as the machine allows, analysis never lags behind the stream).
    pub lockstep: bool,
    /// Classifiers run on every analysed frame: lockstep waits for their scores too.
    pub classified: bool,
}

/// Longest a lockstep session waits for one frame's analysis result.
const LOCKSTEP_WAIT: Duration = Duration::from_secs(2);

/// Starts the session of stream `id` on an ingest pipeline already built.
pub fn start(
    id: &str,
    pipeline: gst::Pipeline,
    sampler: SamplerConfig,
    frames: Sender<Frame>,
    stats: Arc<StreamStats>,
    opts: SessionOptions,
) -> Result<Session, String> {
    let SessionOptions {
        queue,
        high_risk,
        lockstep,
        classified,
    } = opts;
    let setup = |e: String| e;
    let stream: Arc<str> = Arc::from(id);
    let stopping = Arc::new(AtomicBool::new(false));
    let (units_tx, units_rx) = bounded::<IngestEvent>(queue);
    let (control_tx, control_rx) = unbounded::<Control>();

    watch_bus(&pipeline, control_tx.clone(), "ingest", false);
    let feedback = (sampler.mode == SamplingMode::Adaptive).then(unbounded::<Feedback>);
    let started = (|| {
        let live = ingest::attach(id, &pipeline, units_tx, stats.clone(), stopping.clone())
            .map_err(|e| e.to_string())?;
        let decoder = Decoder::new(
            &stream,
            sampler.mode,
            frames,
            live,
            stats.clone(),
            stopping.clone(),
            feedback
                .as_ref()
                .map(|(tx, _)| (tx.clone(), sampler.adaptive.near_miss_band)),
        )
        .map_err(|e| e.to_string())?;
        watch_bus(&decoder.pipeline, control_tx.clone(), "decoder", true);
        let playing = decoder
            .pipeline
            .set_state(gst::State::Playing)
            .map_err(|e| format!("stream '{id}': decoder: {e}"))
            .and_then(|_| {
                pipeline
                    .set_state(gst::State::Playing)
                    .map_err(|e| format!("stream '{id}': cannot start ingest pipeline: {e}"))
            });
        if let Err(e) = playing {
            let _ = decoder.pipeline.set_state(gst::State::Null);
            return Err(e);
        }
        Ok((live, decoder))
    })();
    let (live, decoder) = match started {
        Ok(v) => v,
        Err(e) => {
            // Nothing may keep running (threads, sockets) after a failed start.
            stopping.store(true, Ordering::Relaxed);
            let _ = pipeline.set_state(gst::State::Null);
            return Err(setup(e));
        }
    };
    tracing::info!(stream = id, live, mode = ?sampler.mode, "stream started");

    let sampling = match sampler.mode {
        SamplingMode::Adaptive => Sampling::Adaptive {
            params: sampler.adaptive.clone(),
            ctl: None,
            gop: GopBuffer::default(),
            high_risk,
        },
        _ => Sampling::Fixed(FixedSampler::new(&sampler)),
    };
    let feedback_rx = feedback.map(|(_, rx)| rx);
    let worker = StreamWorker {
        id: stream,
        sampling,
        feedback: feedback_rx,
        lockstep,
        classified,
        decoder,
        pipeline,
        stats,
        stopping,
    };
    let thread = std::thread::Builder::new()
        .name(format!("stream-{id}"))
        .spawn(move || worker.run(units_rx, control_rx))
        .map_err(|e| setup(e.to_string()))?;
    Ok(Session {
        control: control_tx,
        thread,
    })
}

/// Forwards errors (and, for the decoder, end of stream) from a pipeline's bus.
fn watch_bus(
    pipeline: &gst::Pipeline,
    tx: Sender<Control>,
    what: &'static str,
    eos_means_done: bool,
) {
    let bus = pipeline.bus().expect("pipeline has a bus");
    bus.set_sync_handler(move |_, msg| {
        match msg.view() {
            gst::MessageView::Error(e) => {
                let src = msg
                    .src()
                    .map(|s| s.path_string().to_string())
                    .unwrap_or_default();
                let debug = e.debug().map(|d| d.to_string()).unwrap_or_default();
                // A demuxer with nothing linked means the stream has no track the pipeline
                // can use: say so before GStreamer's generic wording.
                let hint = if debug.contains("not-linked") {
                    "no H.264 video in the stream: "
                } else {
                    ""
                };
                let _ = tx.send(Control::Error(format!(
                    "{hint}{what}: {src}: {} ({debug})",
                    e.error()
                )));
            }
            gst::MessageView::Eos(_) if eos_means_done => {
                let _ = tx.send(Control::DecoderDone);
            }
            _ => {}
        }
        gst::BusSyncReply::Drop
    });
}

/// How a stream's units are chosen.
enum Sampling {
    Fixed(FixedSampler),
    Adaptive {
        params: adaptive::AdaptiveParams,
        /// Created at the first access unit (its time starts the warm-up).
        ctl: Option<Box<Controller>>,
        /// The current GOP's units while calm (keyframe first), for a retroactive decode.
        gop: GopBuffer<gst::Buffer>,
        /// From the stream's metadata (`sampler.adaptive.risk_args`).
        high_risk: bool,
    },
}

struct StreamWorker {
    id: Arc<str>,
    sampling: Sampling,
    /// Analysis results for the adaptive controller.
    feedback: Option<Receiver<Feedback>>,
    /// Wait for each analysed frame's result (replay).
    lockstep: bool,
    /// Classifier scores follow each analysed frame's hash (lockstep waits for both).
    classified: bool,
    decoder: Decoder,
    pipeline: gst::Pipeline,
    stats: Arc<StreamStats>,
    stopping: Arc<AtomicBool>,
}

impl StreamWorker {
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
        if let Sampling::Adaptive { ctl: Some(ctl), .. } = &mut self.sampling {
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

    fn on_unit(&mut self, au: ingest::AccessUnit) {
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
            Sampling::Adaptive { .. } => self.on_unit_adaptive(au),
        }
    }

    fn on_unit_adaptive(&mut self, au: ingest::AccessUnit) {
        let Sampling::Adaptive {
            params,
            ctl,
            gop,
            high_risk,
        } = &mut self.sampling
        else {
            return;
        };
        let ctl = ctl.get_or_insert_with(|| {
            let mut c = Controller::new(params.clone(), au.pts_ns);
            c.set_risk(*high_risk, au.pts_ns);
            Box::new(c)
        });
        let before = ctl.mode();
        // The buffer holds the GOP from its keyframe (cleared at every keyframe, kept while calm).
        let buffered = gop.holds_gop_of(au.keyframe);
        let decision = ctl.on_unit(au.pts_ns, au.size, au.keyframe, buffered);
        let after = ctl.mode();
        tracing::trace!(stream = %self.id, pts_ns = au.pts_ns, keyframe = au.keyframe, size = au.size, ?decision, ?after, "access unit");
        if au.keyframe {
            gop.clear_at_keyframe();
        }
        let retro: Vec<(gst::Buffer, u64)> = match decision {
            Decision::AnalyseFromKeyframe | Decision::DecodeFromKeyframe => gop.take(),
            _ => Vec::new(),
        };
        gop.follow(after, &au.buffer, au.pts_ns);
        let (interval, missed) = (ctl.current_interval_ms(), ctl.missed_gaps());
        let counts = ctl.trigger_counts();
        if before != after {
            let fired: Vec<String> = counts
                .iter()
                .filter(|(_, n)| *n > 0)
                .map(|(t, n)| format!("{}={n}", t.name()))
                .collect();
            tracing::info!(stream = %self.id, mode = ?after, interval_ms = interval, triggers = %fired.join(","), "sampling mode changed");
        }
        let stats = &self.stats;
        // The global budget: publish what this stream asks for, apply what it granted.
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
        stats.dense.store(after == Mode::Dense, Ordering::Relaxed);
        stats.interval_ms.store(interval, Ordering::Relaxed);
        stats.missed_gaps.store(missed, Ordering::Relaxed);
        for (i, (_, n)) in counts.iter().enumerate().take(Trigger::ALL.len()) {
            stats.triggers[i].store(*n, Ordering::Relaxed);
        }
        match decision {
            Decision::Skip => {}
            Decision::Decode => {
                self.decoder.set_keyframes_only(false);
                self.push(au.buffer, au.pts_ns, false);
            }
            Decision::Analyse => {
                self.decoder.set_keyframes_only(after == Mode::Calm);
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
        self.stats.units_decoded.fetch_add(1, Ordering::Relaxed);
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
