//! Ingest: one GStreamer pipeline per stream, built from a template and ending after the
//! H.264 parser. Its appsink hands compressed access units to the stream's sampler over a
//! bounded channel; the callback never blocks a live pipeline (overruns are dropped and
//! counted) and applies back-pressure to non-live ones (files, synthetic sources), which then
//! run as fast as analysis allows without losing frames.

pub mod template;

use crate::telemetry::StreamStats;
use crossbeam_channel::{Sender, TrySendError};
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// One compressed access unit (an H.264 frame) as the parser emitted it.
#[derive(Debug, Clone)]
pub struct AccessUnit {
    /// Running time in nanoseconds: zero-based, continuous (see [`running_time_ns`]).
    pub pts_ns: u64,
    pub keyframe: bool,
    pub size: usize,
    /// The parser's buffer, shared rather than copied.
    pub buffer: gst::Buffer,
}

/// What the ingest side of a stream reports to its sampler, in order.
#[derive(Debug)]
pub enum IngestEvent {
    Unit(AccessUnit),
    /// The source ended (end of file, publisher gone).
    End,
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("stream '{stream}': pipeline does not build: {message}\n  pipeline: {description}")]
    Build {
        stream: String,
        description: String,
        message: String,
    },
    #[error("stream '{stream}': cannot start pipeline: {message}")]
    Start { stream: String, message: String },
}

/// Builds (but does not start) a stream's ingest pipeline from a rendered description.
pub fn build(stream: &str, description: &str) -> Result<gst::Pipeline, IngestError> {
    let err = |message: String| IngestError::Build {
        stream: stream.to_string(),
        description: description.to_string(),
        message,
    };
    let element = gst::parse::launch(description).map_err(|e| err(e.to_string()))?;
    let pipeline = element
        .downcast::<gst::Pipeline>()
        .map_err(|_| err("not a pipeline".into()))?;
    pipeline
        .by_name(template::AU_SINK_NAME)
        .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
        .ok_or_else(|| err(format!("no appsink named {}", template::AU_SINK_NAME)))?;
    Ok(pipeline)
}

/// Connects the pipeline's appsink to `tx` and returns whether the pipeline is live.
/// Must be called before the pipeline reaches PLAYING.
pub fn attach(
    stream: &str,
    pipeline: &gst::Pipeline,
    tx: Sender<IngestEvent>,
    stats: Arc<StreamStats>,
    stopping: Arc<AtomicBool>,
) -> Result<bool, IngestError> {
    let sink = pipeline
        .by_name(template::AU_SINK_NAME)
        .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
        .expect("checked by build()");
    sink.set_property("max-buffers", 64u32);
    // Liveness decides drop-or-wait; a live pipeline answers NO_PREROLL on PAUSED.
    let live = match pipeline.set_state(gst::State::Paused) {
        Ok(gst::StateChangeSuccess::NoPreroll) => true,
        Ok(_) => false,
        Err(_) => {
            return Err(IngestError::Start {
                stream: stream.to_string(),
                message: "failed to pause".into(),
            });
        }
    };
    let eos_tx = tx.clone();
    let eos_stop = stopping.clone();
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Flushing)?;
                let Some(buffer) = sample.buffer_owned() else {
                    return Ok(gst::FlowSuccess::Ok);
                };
                let pts_ns = running_time_ns(&sample, &buffer);
                let au = AccessUnit {
                    pts_ns,
                    keyframe: !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT),
                    size: buffer.size(),
                    buffer,
                };
                stats.units_received.fetch_add(1, Ordering::Relaxed);
                if live {
                    match tx.try_send(IngestEvent::Unit(au)) {
                        Ok(()) => Ok(gst::FlowSuccess::Ok),
                        Err(TrySendError::Full(_)) => {
                            stats.units_dropped.fetch_add(1, Ordering::Relaxed);
                            Ok(gst::FlowSuccess::Ok)
                        }
                        Err(TrySendError::Disconnected(_)) => Err(gst::FlowError::Flushing),
                    }
                } else {
                    send_waiting(&tx, IngestEvent::Unit(au), &stopping)
                }
            })
            .eos(move |_| {
                let _ = send_waiting(&eos_tx, IngestEvent::End, &eos_stop);
            })
            .build(),
    );
    Ok(live)
}

/// The buffer's running time: zero-based and continuous across segment changes (a source
/// that restarts its timestamps, RTMP's absolute times), unlike the raw PTS.
fn running_time_ns(sample: &gst::Sample, buffer: &gst::Buffer) -> u64 {
    let Some(pts) = buffer.pts().or(buffer.dts()) else {
        return 0;
    };
    sample
        .segment()
        .and_then(|s| s.downcast_ref::<gst::ClockTime>())
        .and_then(|s| s.to_running_time(pts))
        .unwrap_or(pts)
        .nseconds()
}

/// A blocking send for the streaming threads of non-live pipelines (back-pressure) that gives
/// up when the stream is stopping, so that stopping a pipeline never waits on a full channel.
pub(crate) fn send_waiting<T>(
    tx: &Sender<T>,
    mut ev: T,
    stopping: &AtomicBool,
) -> Result<gst::FlowSuccess, gst::FlowError> {
    loop {
        match tx.send_timeout(ev, Duration::from_millis(100)) {
            Ok(()) => return Ok(gst::FlowSuccess::Ok),
            Err(crossbeam_channel::SendTimeoutError::Timeout(back))
                if !stopping.load(Ordering::Relaxed) =>
            {
                ev = back
            }
            Err(_) => return Err(gst::FlowError::Flushing),
        }
    }
}
