//! Median time to PDQ-hash each image (already decoded to RGB), as used by scripts/bench-pdq.sh.
//!     cargo run --release --example pdq_bench -- IMAGE...
use std::time::Instant;
use streamguard::analysis::pdq::{PdqHasher, RgbImage};

/// Median of 201 timed runs, in milliseconds.
fn median_ms(mut f: impl FnMut()) -> f64 {
    let mut times: Vec<f64> = (0..201)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn main() {
    let mut hasher = PdqHasher::new();
    for path in std::env::args().skip(1) {
        let img = image::open(&path)
            .unwrap_or_else(|e| panic!("{path}: {e}"))
            .into_rgb8();
        let input = RgbImage::packed(img.as_raw(), img.width() as usize, img.height() as usize);
        let one = median_ms(|| {
            std::hint::black_box(hasher.hash_rgb(input));
        });
        let all8 = median_ms(|| {
            std::hint::black_box(hasher.hash_rgb_dihedral(input));
        });
        println!(
            "streamguard {}x{} median_ms={one:.3} dihedral8_median_ms={all8:.3} ratio={:.2} {path}",
            input.width,
            input.height,
            all8 / one
        );
    }
}
