//! Analysis: perceptual hashing (PDQ) and matching against hash banks.
pub mod bank;
pub mod index;
pub mod pdq;

use crate::classify::stage::Submitter;
use crate::config::BankAction;
use crate::decode::Frame;
use crate::policy::{Finding, MatchFinding};
use bank::{Bank, BankSet};
use crossbeam_channel::{Receiver, Sender};
use gstreamer as gst;
use pdq::{PdqHash, PdqHasher, RgbImage};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;

/// Starts `workers` analysis threads. Each hashes the frames it receives (with the 7 dihedral
/// variants when a bank asks for them), skips hashes below `min_quality`, and sends one finding
/// per matching bank, unless an `allow` bank matches too. With `classify`, each frame is
/// first submitted to the classifiers (which score it while it is hashed). They end when
/// `frames` closes.
pub fn start_pool(
    workers: usize,
    min_quality: u32,
    banks: Arc<BankSet>,
    frames: Receiver<Frame>,
    findings: Sender<Finding>,
    classify: Option<Submitter>,
) -> Vec<JoinHandle<()>> {
    (0..workers)
        .map(|i| {
            let (frames, findings, banks) = (frames.clone(), findings.clone(), banks.clone());
            let classify = classify.clone();
            std::thread::Builder::new()
                .name(format!("analysis-{i}"))
                .spawn(move || {
                    let mut hasher = PdqHasher::new();
                    for frame in frames {
                        analyse(
                            &mut hasher,
                            &frame,
                            min_quality,
                            &banks,
                            &findings,
                            classify.as_ref(),
                        );
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
    banks: &BankSet,
    findings: &Sender<Finding>,
    classify: Option<&Submitter>,
) {
    // Observed when this returns, whichever way.
    struct Latency(std::time::Instant);
    impl Drop for Latency {
        fn drop(&mut self) {
            crate::telemetry::metrics::ANALYSIS_LATENCY.observe(self.0.elapsed());
        }
    }
    let _latency = Latency(frame.decoded_at);
    let Ok(map) = frame.buffer.map_readable() else {
        tracing::warn!(stream = %frame.stream, "decoded frame not readable");
        return;
    };
    let data: &[u8] = map.as_slice();
    let Some(pixels) = data.get(frame.offset..) else {
        return;
    };
    let img = RgbImage {
        data: pixels,
        width: frame.width,
        height: frame.height,
        stride: frame.stride,
    };
    if let Some(c) = classify {
        c.submit(frame, img);
    }
    let (variants, quality): (Vec<PdqHash>, u32) = if banks.wants_dihedral() {
        let d = hasher.hash_rgb_dihedral(img);
        (d.hashes.to_vec(), d.quality)
    } else {
        let o = hasher.hash_rgb(img);
        (vec![o.hash], o.quality)
    };
    let out = pdq::PdqOutput {
        hash: variants[0],
        quality,
    };
    frame.stats.count(|s| &s.frames_analysed, 1);
    frame
        .stats
        .last_analysis_ms
        .store(crate::telemetry::unix_ms(), Ordering::Relaxed);
    let pts = gst::ClockTime::from_nseconds(frame.pts_ns);
    // One view of the banks for the whole frame: the feedback and the matches agree.
    let loaded = banks.snapshot();
    let usable = out.quality >= min_quality;
    if let Some((tx, band)) = &frame.feedback {
        send_hash_feedback(tx, *band, frame.pts_ns, &loaded, &out, usable);
    }
    if !usable {
        frame
            .stats
            .frames_low_quality
            .fetch_add(1, Ordering::Relaxed);
        tracing::debug!(stream = %frame.stream, %pts, quality = out.quality, "hash below quality gate");
        return;
    }
    tracing::debug!(stream = %frame.stream, %pts, hash = %out.hash, quality = out.quality, "frame hashed");
    send_matches(frame, pts, &loaded, &variants, out, findings);
}

/// The closest bank within threshold + `band`, for the stream's adaptive controller (hashes
/// below the quality gate still tell it about scene changes).
fn send_hash_feedback(
    tx: &Sender<crate::sampler::Feedback>,
    band: u32,
    pts_ns: u64,
    loaded: &[Arc<Bank>],
    out: &pdq::PdqOutput,
    usable: bool,
) {
    let nearest = if usable {
        loaded
            .iter()
            .filter(|b| b.action != BankAction::Allow)
            .filter_map(|b| b.nearest_within(&out.hash, band).map(|d| (d, b.threshold)))
            .min_by_key(|&(d, t)| (d.saturating_sub(t), d))
    } else {
        None
    };
    let _ = tx.send(crate::sampler::Feedback::Hash(
        crate::sampler::HashFeedback {
            pts_ns,
            hash: out.hash,
            nearest,
            usable,
        },
    ));
}

/// One finding per bank that `variants` match, unless an `allow` bank matches too.
fn send_matches(
    frame: &Frame,
    pts: gst::ClockTime,
    loaded: &[Arc<Bank>],
    variants: &[PdqHash],
    out: pdq::PdqOutput,
    findings: &Sender<Finding>,
) {
    let matches: Vec<_> = loaded
        .iter()
        .filter_map(|bank| bank.best_match(variants))
        .collect();
    if let Some(allowed) = matches.iter().find(|m| m.action == BankAction::Allow) {
        if matches.len() > 1 {
            frame.stats.allowed.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(stream = %frame.stream, %pts, allow_bank = %allowed.bank, item = %allowed.id,
                "frame matches an allow bank; other matches suppressed");
        }
        return;
    }
    for matched in matches {
        frame.stats.count(|s| &s.matches, 1);
        let finding = Finding::Match(MatchFinding {
            stream: frame.stream.to_string(),
            frame_pts_ns: frame.pts_ns,
            pdq: out,
            matched,
            decoded_at: Some(frame.decoded_at),
        });
        if findings.send(finding).is_err() {
            tracing::error!(stream = %frame.stream, "policy stage gone; finding not recorded");
        }
    }
}
