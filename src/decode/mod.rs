//! Decode: one small pipeline per stream, `appsrc ! avdec_h264 ! videoconvert ! appsink`, fed
//! only the access units the sampler chose. Frames not chosen for analysis are dropped right
//! after the decoder, before any colour conversion.
//!
//! In `keyframes` mode the segment the decoder sees carries `TRICKMODE_KEY_UNITS`: without it
//! avdec_h264 holds each keyframe for one to three GOPs (seconds); with it the frame comes out
//! at once (13-22 ms measured).
//!
//! The decoder runs one thread (`max-threads=1`): with frame threading it holds every frame
//! until more input arrives (measured: in every-frame mode, none of 120 frames came out before
//! the next unit was pushed; with one thread all 120 did, in about 0.5 ms). A daemon watching
//! many streams gets its parallelism from the streams, not from threads inside one decoder.

use crate::config::SamplingMode;
use crate::sampler::Feedback;
use crate::telemetry::StreamStats;
use crossbeam_channel::{Sender, TrySendError};
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;
use std::collections::BTreeSet;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

/// A decoded RGB frame chosen for analysis.
#[derive(Debug, Clone)]
pub struct Frame {
    pub stream: Arc<str>,
    pub pts_ns: u64,
    pub width: usize,
    pub height: usize,
    pub stride: usize,
    pub offset: usize,
    /// The converter's buffer, shared rather than copied.
    pub buffer: gst::Buffer,
    pub stats: Arc<StreamStats>,
    /// Where analysis reports back to an adaptive stream's controller, with the near-miss
    /// band to search.
    pub feedback: Option<(Sender<Feedback>, u32)>,
    /// When it left the decoder (latency metrics).
    pub decoded_at: std::time::Instant,
}

#[derive(Debug, thiserror::Error)]
#[error("stream '{stream}': decoder: {message}")]
pub struct DecodeError {
    pub stream: String,
    pub message: String,
}

const DESCRIPTION: &str = "appsrc name=src format=time handle-segment-change=true block=true max-buffers=8 \
    caps=video/x-h264,stream-format=byte-stream,alignment=au \
    ! avdec_h264 name=dec max-threads=1 ! videoconvert ! video/x-raw,format=RGB ! appsink name=sink sync=false";

pub struct Decoder {
    pub pipeline: gst::Pipeline,
    src: gst_app::AppSrc,
    segment: gst::FormattedSegment<gst::ClockTime>,
    caps: gst::Caps,
    /// PTS of the units pushed for analysis; the pad probe after the decoder lets only these through.
    selected: Arc<Mutex<BTreeSet<u64>>>,
}

impl Decoder {
    pub fn new(
        stream: &Arc<str>,
        mode: SamplingMode,
        frames: Sender<Frame>,
        live: bool,
        stats: Arc<StreamStats>,
        stopping: Arc<AtomicBool>,
        feedback: Option<(Sender<Feedback>, u32)>,
    ) -> Result<Decoder, DecodeError> {
        let err = |message: String| DecodeError {
            stream: stream.to_string(),
            message,
        };
        let pipeline = gst::parse::launch(DESCRIPTION)
            .map_err(|e| err(e.to_string()))?
            .downcast::<gst::Pipeline>()
            .map_err(|_| err("not a pipeline".into()))?;
        let src = pipeline
            .by_name("src")
            .and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
            .ok_or_else(|| err("no appsrc".into()))?;
        let sink = pipeline
            .by_name("sink")
            .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
            .ok_or_else(|| err("no appsink".into()))?;
        let dec = pipeline
            .by_name("dec")
            .ok_or_else(|| err("no decoder".into()))?;

        let selected: Arc<Mutex<BTreeSet<u64>>> = Arc::default();
        let dec_src = dec
            .static_pad("src")
            .ok_or_else(|| err("decoder has no src pad".into()))?;
        pass_selected_only(&dec_src, selected.clone());
        let out = FrameSender {
            stream: stream.clone(),
            frames,
            live,
            stats,
            stopping,
            feedback,
        };
        sink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |sink| out.on_sample(sink))
                .build(),
        );

        let mut segment = gst::FormattedSegment::<gst::ClockTime>::new();
        if mode != SamplingMode::All {
            segment.set_flags(gst::SegmentFlags::TRICKMODE_KEY_UNITS);
        }
        let caps = gst::Caps::builder("video/x-h264")
            .field("stream-format", "byte-stream")
            .field("alignment", "au")
            .build();
        Ok(Decoder {
            pipeline,
            src,
            segment,
            caps,
            selected,
        })
    }

    /// Switches between keyframes-only decoding (the segment carries `TRICKMODE_KEY_UNITS`)
    /// and decoding every unit, at run time: the next unit pushed carries the new segment,
    /// which appsrc (`handle-segment-change`) forwards to the decoder. The ingest pipeline is
    /// not touched. Switching to every unit should start at a keyframe (or replay the GOP from
    /// its keyframe): delta units whose references were never decoded decode wrongly.
    pub fn set_keyframes_only(&mut self, on: bool) {
        let flags = if on {
            gst::SegmentFlags::TRICKMODE_KEY_UNITS
        } else {
            gst::SegmentFlags::empty()
        };
        self.segment.set_flags(flags);
    }

    /// Pushes one access unit; `analyse` marks its frame for analysis.
    pub fn push(
        &self,
        buffer: gst::Buffer,
        pts_ns: u64,
        analyse: bool,
    ) -> Result<(), gst::FlowError> {
        if analyse {
            self.selected.lock().expect("selection lock").insert(pts_ns);
        }
        // Timestamps become the ingest running time, so the decoder sees one continuous segment.
        let mut buffer = buffer;
        {
            let b = buffer.make_mut();
            b.set_pts(gst::ClockTime::from_nseconds(pts_ns));
            b.set_dts(gst::ClockTime::NONE);
        }
        let sample = gst::Sample::builder()
            .buffer(&buffer)
            .caps(&self.caps)
            .segment(&self.segment)
            .build();
        self.src.push_sample(&sample).map(|_| ())
    }

    pub fn end_of_stream(&self) {
        let _ = self.src.end_of_stream();
    }
}

/// Lets through the decoder's src pad only the frames of units pushed for analysis
/// (their PTS in `selected`); every other decoded frame is dropped there.
fn pass_selected_only(pad: &gst::Pad, selected: Arc<Mutex<BTreeSet<u64>>>) {
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        let pts = info.buffer().and_then(|b| b.pts()).map(|t| t.nseconds());
        let mut sel = selected.lock().expect("selection lock");
        match pts {
            Some(p) if sel.remove(&p) => {
                // Units older than this one will never come out now; forget them.
                sel.retain(|&q| q > p);
                gst::PadProbeReturn::Ok
            }
            _ => gst::PadProbeReturn::Drop,
        }
    });
}

/// Where the decoder's appsink sends each decoded frame: the frame path, tagged with its
/// stream, counters and feedback channel.
struct FrameSender {
    stream: Arc<str>,
    frames: Sender<Frame>,
    live: bool,
    stats: Arc<StreamStats>,
    stopping: Arc<AtomicBool>,
    feedback: Option<(Sender<Feedback>, u32)>,
}

impl FrameSender {
    fn on_sample(&self, sink: &gst_app::AppSink) -> Result<gst::FlowSuccess, gst::FlowError> {
        let sample = sink.pull_sample().map_err(|_| gst::FlowError::Flushing)?;
        let (Some(buffer), Some(caps)) = (sample.buffer_owned(), sample.caps()) else {
            return Ok(gst::FlowSuccess::Ok);
        };
        let info =
            gst_video::VideoInfo::from_caps(caps).map_err(|_| gst::FlowError::NotNegotiated)?;
        let frame = Frame {
            stream: self.stream.clone(),
            pts_ns: buffer.pts().map_or(0, |t| t.nseconds()),
            width: info.width() as usize,
            height: info.height() as usize,
            stride: info.stride()[0] as usize,
            offset: info.offset()[0],
            buffer,
            stats: self.stats.clone(),
            feedback: self.feedback.clone(),
            decoded_at: std::time::Instant::now(),
        };
        send_frame(&self.frames, frame, self.live, &self.stopping)
    }
}

fn send_frame(
    tx: &Sender<Frame>,
    frame: Frame,
    live: bool,
    stopping: &AtomicBool,
) -> Result<gst::FlowSuccess, gst::FlowError> {
    if live {
        return match tx.try_send(frame) {
            Ok(()) => Ok(gst::FlowSuccess::Ok),
            Err(TrySendError::Full(f)) => {
                f.stats.count(|s| &s.frames_dropped, 1);
                Ok(gst::FlowSuccess::Ok)
            }
            Err(TrySendError::Disconnected(_)) => Err(gst::FlowError::Flushing),
        };
    }
    crate::ingest::send_waiting(tx, frame, stopping)
}
