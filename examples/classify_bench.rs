//! Classifier throughput: raw ONNX Runtime (one session per thread, a prepared input tensor
//! run in a loop) against the whole pool path (frames of 640x360 RGB resized by the
//! submitting thread, sent over the pool's channel, normalised, classified, results
//! received), same model, workers, intra-op threads and batch (1). Used by
//! scripts/bench-classify.sh.
//!
//!   cargo run --release --example classify_bench -- --model models/ppocr-cls --workers 2 --frames 2000
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use streamguard::analysis::pdq::RgbImage;
use streamguard::classify::Classifier;
use streamguard::classify::model::{normalise, resize};
use streamguard::classify::pool::Pool;

fn arg(args: &[String], name: &str, default: &str) -> String {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| default.to_string())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let model = PathBuf::from(arg(&args, "--model", "models/ppocr-cls"));
    let workers: usize = arg(&args, "--workers", "1").parse().unwrap();
    let threads: usize = arg(&args, "--threads", "1").parse().unwrap();
    let frames: usize = arg(&args, "--frames", "1000").parse().unwrap();
    let rounds: usize = arg(&args, "--rounds", "3").parse().unwrap();

    // A natural-looking 640x360 frame (a gradient with texture), the same for every job.
    let (w, h) = (640usize, 360usize);
    let pixels: Vec<u8> = (0..w * h * 3)
        .map(|i| ((i * 7 + (i / (w * 3)) * 13) % 251) as u8)
        .collect();
    let pixels = Arc::new(pixels);

    let mut raw_fps = Vec::new();
    let mut pool_fps = Vec::new();
    for _ in 0..rounds {
        // Raw: each thread its own session, a fixed input tensor, frames / workers runs.
        let mut sessions: Vec<Classifier> = (0..workers)
            .map(|_| Classifier::load(&model, None, threads).unwrap())
            .collect();
        let t = Instant::now();
        std::thread::scope(|s| {
            for c in sessions.iter_mut() {
                s.spawn(move || {
                    let x = vec![0.1f32; c.input_len()];
                    for _ in 0..frames / workers {
                        std::hint::black_box(c.run_tensor(&x).unwrap());
                    }
                });
            }
        });
        raw_fps.push((frames / workers * workers) as f64 / t.elapsed().as_secs_f64());
        drop(sessions);

        // Pool: frames in over the channel, scores out.
        let (out_tx, out_rx) =
            crossbeam_channel::bounded::<streamguard::classify::pool::Scored<u64>>(64);
        let (pool, inlet) = Pool::start(
            std::slice::from_ref(&model),
            None,
            threads,
            workers,
            16,
            out_tx,
        )
        .unwrap();
        let n = frames / workers * workers;
        let t = Instant::now();
        let feeder = {
            let inlet = inlet.clone();
            let pixels = pixels.clone();
            std::thread::spawn(move || {
                let img = RgbImage::packed(&pixels, w, h);
                for key in 0..n as u64 {
                    inlet.normal.send(inlet.job(key, img).unwrap()).unwrap();
                }
            })
        };
        drop(inlet);
        for _ in 0..n {
            let r = out_rx.recv().unwrap();
            for s in r.scores {
                std::hint::black_box(s.unwrap());
            }
        }
        pool_fps.push(n as f64 / t.elapsed().as_secs_f64());
        feeder.join().unwrap();
        pool.join();
    }
    // Preprocessing alone, for the record: the resize (on the submitting thread) and the
    // normalisation (on the worker), per frame.
    let c = Classifier::load(&model, None, threads).unwrap();
    let mut x = vec![0f32; c.input_len()];
    let img = RgbImage::packed(&pixels, w, h);
    let (mw, mh) = (c.manifest.width, c.manifest.height);
    let t = Instant::now();
    for _ in 0..frames {
        std::hint::black_box(resize(img, mw, mh));
    }
    let resize_us = t.elapsed().as_secs_f64() * 1e6 / frames as f64;
    let resized = resize(img, mw, mh);
    let t = Instant::now();
    for _ in 0..frames {
        normalise(&c.manifest, &resized, &mut x);
        std::hint::black_box(&x);
    }
    let normalise_us = t.elapsed().as_secs_f64() * 1e6 / frames as f64;
    let (raw, pool) = (median(raw_fps), median(pool_fps));
    println!(
        "model={} workers={workers} threads={threads} frames={frames} rounds={rounds} raw_fps={raw:.1} pool_fps={pool:.1} ratio={:.3} resize_us={resize_us:.1} normalise_us={normalise_us:.1}",
        model.display(),
        pool / raw
    );
}
