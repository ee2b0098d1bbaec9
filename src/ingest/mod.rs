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
    // Liveness decides drop-or-wait; a live pipeline answers NO_PREROLL on PAUSED. Some
    // network sources (rtmp2src) do not say they are live, yet their sender does not wait
    // for us: a network source makes the stream live too, so that an overrun drops and
    // counts units instead of backing up into unbounded buffers.
    let network = network_source(pipeline);
    let live = match pipeline.set_state(gst::State::Paused) {
        Ok(gst::StateChangeSuccess::NoPreroll) => true,
        Ok(_) => network,
        Err(_) => {
            return Err(IngestError::Start {
                stream: stream.to_string(),
                message: "failed to pause".into(),
            });
        }
    };
    let mut keyframes = KeyframeTracker::default();
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
                    keyframe: keyframes.is_keyframe(&buffer, pts_ns),
                    size: buffer.size(),
                    buffer,
                };
                stats.count(|s| &s.units_received, 1);
                if live {
                    offer(&tx, au, &stats)
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

/// URI protocols of live network sources whose element class does not say `Network`.
const LIVE_PROTOCOLS: &[&str] = &["rtmp", "rtmps", "rtmpt", "srt", "rist", "udp", "tcp"];

/// Whether a source element of `pipeline` receives a live stream from the network: its
/// class says so (`Source/Network`: srtsrc, rtspsrc, udpsrc, souphttpsrc for HLS), or it
/// handles a live protocol ([`LIVE_PROTOCOLS`]: rtmp2src, whose class is plain `Source`).
/// Files, `appsrc`, `fdsrc` and synthetic sources are not.
pub fn network_source(pipeline: &gst::Pipeline) -> bool {
    pipeline.iterate_sources().into_iter().flatten().any(|e| {
        let klass = e
            .factory()
            .map(|f| {
                f.metadata(gst::ELEMENT_METADATA_KLASS)
                    .unwrap_or_default()
                    .to_string()
            })
            .unwrap_or_default();
        let live_uri = e.dynamic_cast_ref::<gst::URIHandler>().is_some_and(|u| {
            u.protocols()
                .iter()
                .any(|p| LIVE_PROTOCOLS.contains(&p.as_str()))
        });
        klass.contains("Network") || live_uri
    })
}

/// Live: hands a unit to the sampler thread without waiting; a full queue drops it
/// (counted in `units_dropped`).
fn offer(
    tx: &Sender<IngestEvent>,
    au: AccessUnit,
    stats: &StreamStats,
) -> Result<gst::FlowSuccess, gst::FlowError> {
    match tx.try_send(IngestEvent::Unit(au)) {
        Ok(()) => Ok(gst::FlowSuccess::Ok),
        Err(TrySendError::Full(_)) => {
            stats.count(|s| &s.units_dropped, 1);
            Ok(gst::FlowSuccess::Ok)
        }
        Err(TrySendError::Disconnected(_)) => Err(gst::FlowError::Flushing),
    }
}

/// Decides which flagged units are keyframes for the sampler (see `nal_sync_point`).
#[derive(Default)]
struct KeyframeTracker {
    /// Last sync point passed on as a keyframe.
    last_sync_ns: Option<u64>,
}

impl KeyframeTracker {
    fn is_keyframe(&mut self, buffer: &gst::Buffer, pts_ns: u64) -> bool {
        if buffer.flags().contains(gst::BufferFlags::DELTA_UNIT) {
            return false;
        }
        let sync = buffer
            .map_readable()
            .ok()
            .and_then(|m| nal_sync_point(m.as_slice()));
        match sync {
            Some(true) | None => {
                self.last_sync_ns = Some(pts_ns);
                true
            }
            // An I-frame that is no sync point counts only when the stream has had none for
            // a while (an encoder that never repeats its IDR).
            Some(false) => {
                let starved = self
                    .last_sync_ns
                    .is_none_or(|t| pts_ns.saturating_sub(t) > SYNC_STARVED_NS);
                if starved {
                    self.last_sync_ns = Some(pts_ns);
                }
                starved
            }
        }
    }
}

/// A flagged I-frame that is no sync point still counts as a keyframe when the stream has
/// had no sync point for this long (10 s): some encoders send one IDR and then only
/// I-frames, and keyframe sampling must not go blind on them.
const SYNC_STARVED_NS: u64 = 10_000_000_000;

/// Whether an H.264 access unit (byte-stream) is a decoder sync point: `Some(true)` when its
/// first slice is an IDR slice (NAL type 5) or an SEI before it carries a recovery point
/// (payload type 6: open-GOP and intra-refresh streams), `Some(false)` when it is another
/// slice (an I-frame an encoder put in for a scene cut, say: later frames may still refer
/// to frames before it, so decoding cannot start there after skipped units; measured with
/// x264's scene-cut I-frames: avdec_h264 output nothing for several frames), `None` when no
/// slice is found. The parser flags all of these as keyframes.
pub fn nal_sync_point(au: &[u8]) -> Option<bool> {
    let mut recovery_point = false;
    let mut i = 0;
    while i + 3 < au.len() {
        if au[i] == 0 && au[i + 1] == 0 && au[i + 2] == 1 {
            match au[i + 3] & 0x1f {
                5 => return Some(true),
                1..=4 => return Some(recovery_point),
                6 => {
                    // The first SEI message's payload type: 0xFF bytes add 255 each.
                    let mut t = 0usize;
                    let mut j = i + 4;
                    while j < au.len() && au[j] == 0xff {
                        t += 255;
                        j += 1;
                    }
                    if au.get(j).is_some_and(|&b| t + b as usize == 6) {
                        recovery_point = true;
                    }
                    i += 3;
                }
                _ => i += 3,
            }
        } else {
            i += 1;
        }
    }
    None
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

#[cfg(test)]
mod tests {
    use super::nal_sync_point;

    /// Issue 21, defect 5: every rtmp2src session once reported live=false, so an overrun
    /// waited instead of dropping and counting. Network templates are live, files are not.
    #[test]
    fn network_templates_are_live_and_files_are_not() {
        gstreamer::init().unwrap();
        let t = super::template::Templates::load(None).unwrap();
        let with = |name: &str, k: &str, v: &str| {
            let params = [(k.to_string(), v.to_string())].into_iter().collect();
            let d = t.get(name).unwrap().render(&params).unwrap();
            super::network_source(&super::build("s", &d).unwrap())
        };
        assert!(with("rtmp", "url", "rtmp://127.0.0.1:1/live/x"));
        assert!(with("srt", "uri", "srt://127.0.0.1:7001"));
        assert!(with("rtsp", "url", "rtsp://127.0.0.1:1/cam"));
        assert!(with("hls", "url", "http://127.0.0.1:1/x.m3u8"));
        assert!(!with("file", "location", "/tmp/x.mp4"));
        let built = |d: &str| {
            use gstreamer::prelude::*;
            let e = gstreamer::parse::launch(d).unwrap();
            super::network_source(&e.downcast::<gstreamer::Pipeline>().unwrap())
        };
        assert!(!built("appsrc ! fakesink"));
        assert!(!built("fdsrc ! fakesink"));
        assert!(!built("multifilesrc location=/tmp/x%d.png ! fakesink"));
        assert!(built("udpsrc port=0 ! fakesink"));
        assert!(!with("testsrc", "pattern", "ball"));
    }

    #[test]
    fn sync_points_are_idr_slices() {
        // AUD, SPS, PPS, then an IDR slice (4-byte and 3-byte start codes).
        let idr = [
            0, 0, 0, 1, 9, 0xf0, 0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 1, 0x65, 0x88,
        ];
        assert_eq!(nal_sync_point(&idr), Some(true));
        // AUD, SEI, then a non-IDR slice (an I-frame put in at a scene cut, or a P-frame).
        let non_idr = [0, 0, 0, 1, 9, 0x10, 0, 0, 1, 6, 5, 0, 0, 1, 0x41, 0x9a];
        assert_eq!(nal_sync_point(&non_idr), Some(false));
        // An I-frame after an SEI recovery point (payload type 6) is a sync point.
        let recovery = [
            0, 0, 0, 1, 9, 0x10, 0, 0, 1, 6, 6, 1, 0x84, 0, 0, 1, 0x41, 0x9a,
        ];
        assert_eq!(nal_sync_point(&recovery), Some(true));
        assert_eq!(nal_sync_point(&[0, 0, 1, 9, 0x10]), None);
        assert_eq!(nal_sync_point(&[]), None);
    }
}
