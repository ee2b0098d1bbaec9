//! One run of a stream's pipelines: ingest → sampler thread (`sampler/worker.rs`) → decoder.
//! The supervisor starts a session, watches it, and starts another when it fails or stalls.

use crate::config::{SamplerConfig, SamplingMode};
use crate::decode::{DecodeError, Decoder, Frame};
use crate::ingest::template::TemplateError;
use crate::ingest::{self, IngestError, IngestEvent};
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

/// Why a stream's session could not start.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The stream's pipeline template is unknown or does not render with its parameters.
    #[error("stream '{stream}': {error}")]
    Template {
        stream: String,
        error: TemplateError,
    },
    /// The daemon is shutting down: no frame channel to start on.
    #[error("shutting down")]
    ShuttingDown,
    /// The ingest pipeline does not build, or ingest cannot attach to it.
    #[error(transparent)]
    Ingest(#[from] IngestError),
    /// The decoder pipeline does not build.
    #[error(transparent)]
    Decoder(#[from] DecodeError),
    /// The decoder pipeline does not start playing.
    #[error("stream '{stream}': decoder: {error}")]
    DecoderState {
        stream: String,
        error: gst::StateChangeError,
    },
    /// The ingest pipeline does not start playing.
    #[error("stream '{stream}': cannot start ingest pipeline: {error}")]
    IngestState {
        stream: String,
        error: gst::StateChangeError,
    },
    /// The stream's sampler thread could not be started.
    #[error(transparent)]
    Spawn(#[from] std::io::Error),
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

/// Starts the session of stream `id` on an ingest pipeline already built.
pub fn start(
    id: &str,
    pipeline: gst::Pipeline,
    sampler: SamplerConfig,
    frames: Sender<Frame>,
    stats: Arc<StreamStats>,
    opts: SessionOptions,
) -> Result<Session, SessionError> {
    let SessionOptions {
        queue,
        high_risk,
        lockstep,
        classified,
    } = opts;
    let stream: Arc<str> = Arc::from(id);
    let stopping = Arc::new(AtomicBool::new(false));
    let (units_tx, units_rx) = bounded::<IngestEvent>(queue);
    let (control_tx, control_rx) = unbounded::<Control>();

    watch_bus(&pipeline, control_tx.clone(), "ingest", false);
    let feedback = (sampler.mode == SamplingMode::Adaptive).then(unbounded::<Feedback>);
    let started = (|| {
        let live = ingest::attach(id, &pipeline, units_tx, stats.clone(), stopping.clone())?;
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
        )?;
        watch_bus(&decoder.pipeline, control_tx.clone(), "decoder", true);
        play(id, &decoder, &pipeline)?;
        Ok((live, decoder))
    })();
    let (live, decoder) = match started {
        Ok(v) => v,
        Err(e) => {
            // Nothing may keep running (threads, sockets) after a failed start.
            stopping.store(true, Ordering::Relaxed);
            let _ = pipeline.set_state(gst::State::Null);
            return Err(e);
        }
    };
    stats.live.store(live, Ordering::Relaxed);
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
    let thread = worker.spawn(units_rx, control_rx)?;
    Ok(Session {
        control: control_tx,
        thread,
    })
}

/// Sets the decoder playing, then the ingest pipeline. On failure the decoder is stopped
/// again; the ingest pipeline is the caller's to stop.
fn play(id: &str, decoder: &Decoder, pipeline: &gst::Pipeline) -> Result<(), SessionError> {
    let playing = decoder
        .pipeline
        .set_state(gst::State::Playing)
        .map_err(|error| SessionError::DecoderState {
            stream: id.to_string(),
            error,
        })
        .and_then(|_| {
            pipeline
                .set_state(gst::State::Playing)
                .map_err(|error| SessionError::IngestState {
                    stream: id.to_string(),
                    error,
                })
        });
    if let Err(e) = playing {
        let _ = decoder.pipeline.set_state(gst::State::Null);
        return Err(e);
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The supervisor shows these as `cannot start: <error>`: the wording stays.
    #[test]
    fn start_errors_keep_their_wording() {
        let template = SessionError::Template {
            stream: "cam".into(),
            error: TemplateError::Unknown {
                name: "rtsp2".into(),
                known: "file, rtsp".into(),
            },
        };
        assert_eq!(
            template.to_string(),
            "stream 'cam': no pipeline template 'rtsp2' (known: file, rtsp)"
        );
        assert_eq!(SessionError::ShuttingDown.to_string(), "shutting down");
        let decoder = SessionError::from(DecodeError {
            stream: "cam".into(),
            message: "no h264 decoder".into(),
        });
        assert_eq!(
            decoder.to_string(),
            "stream 'cam': decoder: no h264 decoder"
        );
        let state = |f: fn(String, gst::StateChangeError) -> SessionError| {
            f("cam".into(), gst::StateChangeError).to_string()
        };
        assert_eq!(
            state(|stream, error| SessionError::DecoderState { stream, error }),
            "stream 'cam': decoder: Element failed to change its state"
        );
        assert_eq!(
            state(|stream, error| SessionError::IngestState { stream, error }),
            "stream 'cam': cannot start ingest pipeline: Element failed to change its state"
        );
        let spawn = std::io::Error::other("out of threads");
        assert_eq!(SessionError::from(spawn).to_string(), "out of threads");
    }
}
