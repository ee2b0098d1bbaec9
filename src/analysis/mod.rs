//! Analysis: perceptual hashing (PDQ) and matching against hash banks.
pub mod bank;
pub mod index;
pub mod pdq;

use crate::decode::Frame;
use crate::policy::Finding;
use bank::Bank;
use crossbeam_channel::{Receiver, Sender};
use gstreamer as gst;
use pdq::{PdqHasher, RgbImage};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;

/// Starts `workers` analysis threads. Each hashes the frames it receives, skips hashes below
/// `min_quality`, and sends one finding per matching bank. They end when `frames` closes.
pub fn start_pool(
    workers: usize,
    min_quality: u32,
    banks: Arc<Vec<Bank>>,
    frames: Receiver<Frame>,
    findings: Sender<Finding>,
) -> Vec<JoinHandle<()>> {
    (0..workers)
        .map(|i| {
            let (frames, findings, banks) = (frames.clone(), findings.clone(), banks.clone());
            std::thread::Builder::new()
                .name(format!("analysis-{i}"))
                .spawn(move || {
                    let mut hasher = PdqHasher::new();
                    for frame in frames {
                        analyse(&mut hasher, &frame, min_quality, &banks, &findings);
                    }
                })
                .expect("spawn analysis thread")
        })
        .collect()
}

fn analyse(
    hasher: &mut PdqHasher,
    frame: &Frame,
    min_quality: u32,
    banks: &[Bank],
    findings: &Sender<Finding>,
) {
    let Ok(map) = frame.buffer.map_readable() else {
        tracing::warn!(stream = %frame.stream, "decoded frame not readable");
        return;
    };
    let data: &[u8] = map.as_slice();
    let Some(pixels) = data.get(frame.offset..) else {
        return;
    };
    let out = hasher.hash_rgb(RgbImage {
        data: pixels,
        width: frame.width,
        height: frame.height,
        stride: frame.stride,
    });
    frame.stats.frames_analysed.fetch_add(1, Ordering::Relaxed);
    let pts = gst::ClockTime::from_nseconds(frame.pts_ns);
    if out.quality < min_quality {
        frame
            .stats
            .frames_low_quality
            .fetch_add(1, Ordering::Relaxed);
        tracing::debug!(stream = %frame.stream, %pts, quality = out.quality, "hash below quality gate");
        return;
    }
    tracing::debug!(stream = %frame.stream, %pts, hash = %out.hash, quality = out.quality, "frame hashed");
    for bank in banks {
        if let Some(matched) = bank.best_match(&out.hash) {
            frame.stats.matches.fetch_add(1, Ordering::Relaxed);
            let finding = Finding {
                stream: frame.stream.to_string(),
                frame_pts_ns: frame.pts_ns,
                pdq: out,
                matched,
            };
            if findings.send(finding).is_err() {
                tracing::error!(stream = %frame.stream, "policy stage gone; finding not recorded");
            }
        }
    }
}
