//! The decoder switches between keyframes-only and every-frame decoding at run time, without
//! touching the ingest pipeline: the fact adaptive sampling rests on.
use crossbeam_channel::{Receiver, bounded, unbounded};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;
use streamguard::config::SamplingMode;
use streamguard::decode::{Decoder, Frame};
use streamguard::ingest::{self, IngestEvent};
use streamguard::telemetry::StreamStats;

/// A running ingest pipeline of `frames` synthetic frames (320x180, 30 fps, a keyframe exactly
/// every 30 frames, no scene-cut keyframes, as fast as possible) and a running decoder in
/// `mode`; returns them with the access-unit and decoded-frame channels.
fn start(
    name: &str,
    frames: u32,
    mode: SamplingMode,
) -> (
    gstreamer::Pipeline,
    Decoder,
    Receiver<IngestEvent>,
    Receiver<Frame>,
) {
    gstreamer::init().unwrap();
    use gstreamer::prelude::*;
    let desc = format!(
        "videotestsrc num-buffers={frames} pattern=ball ! video/x-raw,width=320,height=180,framerate=30/1 \
         ! x264enc speed-preset=ultrafast key-int-max=30 option-string=scenecut=0 ! h264parse \
         ! video/x-h264,stream-format=byte-stream,alignment=au ! appsink name={} sync=false",
        ingest::template::AU_SINK_NAME
    );
    let pipeline = ingest::build(name, &desc).unwrap();
    let stats = Arc::new(StreamStats::default());
    let stopping = Arc::new(AtomicBool::new(false));
    let (units_tx, units_rx) = bounded::<IngestEvent>(1024);
    let live = ingest::attach(name, &pipeline, units_tx, stats.clone(), stopping.clone()).unwrap();
    let (frames_tx, frames_rx) = unbounded();
    let stream: Arc<str> = Arc::from(name);
    let dec = Decoder::new(&stream, mode, frames_tx, live, stats, stopping, None).unwrap();
    dec.pipeline.set_state(gstreamer::State::Playing).unwrap();
    pipeline.set_state(gstreamer::State::Playing).unwrap();
    (pipeline, dec, units_rx, frames_rx)
}

fn stop(pipeline: &gstreamer::Pipeline, dec: &Decoder) {
    use gstreamer::prelude::*;
    let _ = pipeline.set_state(gstreamer::State::Null);
    let _ = dec.pipeline.set_state(gstreamer::State::Null);
}

#[test]
fn keyframes_then_every_frame_then_keyframes_again() {
    let (pipeline, mut dec, units_rx, frames_rx) = start("switch", 300, SamplingMode::Keyframes);

    // Frames 0..100: keyframes only (0, 30, 60, 90). Frames 120..240: every frame, from the
    // keyframe at 120. Frames 240..300: keyframes only again (240, 270).
    let (mut pushed_analysed, mut index) = (Vec::new(), 0u64);
    while let Ok(IngestEvent::Unit(au)) = units_rx.recv_timeout(Duration::from_secs(20)) {
        let i = index;
        index += 1;
        let (push, keyframes_only) = match i {
            0..100 => (au.keyframe, true),
            100..120 => (false, true),
            120..240 => (true, false),
            _ => (au.keyframe, true),
        };
        if i == 120 {
            assert!(au.keyframe, "frame 120 should be a keyframe (GOP 30)");
        }
        if !push {
            continue;
        }
        dec.set_keyframes_only(keyframes_only);
        dec.push(au.buffer, au.pts_ns, true).unwrap();
        pushed_analysed.push(au.pts_ns);
        if index == 300 {
            break;
        }
    }
    assert_eq!(index, 300, "ingest ended early");
    dec.end_of_stream();
    let mut got = Vec::new();
    while let Ok(f) = frames_rx.recv_timeout(Duration::from_secs(5)) {
        got.push(f.pts_ns);
    }
    stop(&pipeline, &dec);
    // 4 + 120 + 2 frames pushed, every one decoded and delivered.
    assert_eq!(pushed_analysed.len(), 126);
    got.sort_unstable();
    pushed_analysed.sort_unstable();
    assert_eq!(
        got, pushed_analysed,
        "decoded frames differ from those pushed"
    );
}

#[test]
fn every_frame_mode_outputs_each_frame_before_the_next_is_pushed() {
    let (pipeline, mut dec, units_rx, frames_rx) = start("prompt", 120, SamplingMode::All);
    dec.set_keyframes_only(false);
    // Adaptive sampling's feedback (and a replay that waits for it) needs each frame out of
    // the decoder before the next unit goes in.
    let (mut prompt, mut total) = (0, 0);
    while let Ok(IngestEvent::Unit(au)) = units_rx.recv_timeout(Duration::from_secs(10)) {
        let pts = au.pts_ns;
        total += 1;
        dec.push(au.buffer, pts, true).unwrap();
        if frames_rx
            .recv_timeout(Duration::from_secs(2))
            .is_ok_and(|f| f.pts_ns == pts)
        {
            prompt += 1;
        }
    }
    stop(&pipeline, &dec);
    assert_eq!((prompt, total), (120, 120));
}
