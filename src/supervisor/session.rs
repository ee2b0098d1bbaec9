//! One run of a stream's pipelines: ingest → sampler thread (`sampler/worker.rs`) → decoder.
//! The supervisor starts a session, watches it, and starts another when it fails or stalls.

use crate::config::{SamplerConfig, SamplingMode};
use crate::decode::{Decoder, Frame};
use crate::ingest::{self, IngestEvent};
use crate::sampler::Feedback;
use crate::sampler::worker::{Control, Sampling, StreamWorker};
use crate::telemetry::StreamStats;
use crossbeam_channel::{Sender, bounded, unbounded};
use gstreamer as gst;
use gstreamer::prelude::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

pub use crate::sampler::worker::Exit;

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

    let worker = StreamWorker {
        id: stream,
        sampling: Sampling::new(&sampler, high_risk),
        feedback: feedback.map(|(_, rx)| rx),
        lockstep,
        classified,
        decoder,
        pipeline,
        stats,
        stopping,
    };
    let thread = worker
        .spawn(units_rx, control_rx)
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
