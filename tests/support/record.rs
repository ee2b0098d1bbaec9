//! Recordings for replay and tune tests, made with GStreamer's x264enc, and the folder
//! they are replayed in. Needs the `cmd` support module beside it.
use crate::cmd::{output_within, repo};
use std::path::Path;
use std::process::Command;

/// A folder to replay in: the demo bank and config ([`demo_replay_config`]), one recording
/// per `(name, [before, show, after])` ([`record`]) and `labels.json` with `labels`.
pub fn replay_fixture(recordings: &[(&str, [u32; 3])], labels: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    demo_replay_config(d);
    for (name, [before, show, after]) in recordings {
        record(&d.join(name), *before, *show, *after);
    }
    std::fs::write(d.join("labels.json"), labels).unwrap();
    dir
}

/// Writes the demo bank (`bank.txt`, action halt) and an adaptive replay config
/// (`replay.toml`) into `d`.
pub fn demo_replay_config(d: &Path) {
    std::fs::copy(repo().join("config/demo-bank.txt"), d.join("bank.txt")).unwrap();
    std::fs::write(
        d.join("replay.toml"),
        "[sampler]\nmode = \"adaptive\"\n\n[[banks]]\nname = \"demo\"\npath = \"bank.txt\"\naction = \"halt\"\n",
    )
    .unwrap();
}

/// An MP4 at 25 fps, 640x360: `before` frames of test pattern, `show` frames of the demo
/// image (the stand-in bank's item), cut in, then `after` frames of another pattern.
/// Keyframes every 2 s, no B-frames.
pub fn record(path: &Path, before: u32, show: u32, after: u32) {
    let caps = "video/x-raw,format=I420,width=640,height=360,framerate=25/1,pixel-aspect-ratio=1/1";
    // pngdec, not decodebin: decodebin's pad, linked late into concat, hung gst-launch for
    // good in about one recording in fifty under load (it cost a CI run its time limit).
    // No image part at all when the image is shown for no frame.
    let image = (show > 0).then(|| {
        format!(
            "filesrc location={} ! pngdec ! videoconvert ! videoscale \
             ! imagefreeze num-buffers={show} ! {caps} ! parts.",
            repo().join("config/demo-image.png").display()
        )
    });
    let desc = format!(
        "videotestsrc pattern=smpte num-buffers={before} ! {caps} ! parts. {} \
         videotestsrc pattern=bar num-buffers={after} ! {caps} ! parts. \
         concat name=parts ! x264enc speed-preset=veryfast key-int-max=50 bframes=0 threads=1 \
         ! h264parse ! mp4mux ! filesink location={}",
        image.unwrap_or_default(),
        path.display()
    );
    let mut gst = Command::new("gst-launch-1.0");
    gst.arg("-q").args(desc.split_whitespace());
    let what = format!(
        "gst-launch-1.0 (scripts/setup.sh installs it) recording {}",
        path.display()
    );
    let out = output_within(&mut gst, &what);
    assert!(
        out.status.success(),
        "could not record {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}
