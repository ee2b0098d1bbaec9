//! Meta's PDQ perceptual hash, bit-exact with the reference implementation.
//!
//! Steps (as in Meta's C++ reference, `pdq/cpp/hashing/pdqhashing.cpp`):
//! 1. luma from RGB (`0.299 R + 0.587 G + 0.114 B`), stored as `f32`;
//! 2. two passes of a Jarosz box filter along rows then columns, window
//!    `ceil(dim / 128)`, then decimation to 64×64 at the cell centres;
//! 3. a quality metric from the 64×64 image (integer-truncated gradients);
//! 4. the 16×16 low-frequency block of a 64×64 DCT (skipping the DC term);
//! 5. one bit per coefficient: set when it is above the median (Torben's method).
//!
//! Every floating-point operation happens in the reference's order and precision, so hashes
//! and quality are identical to the reference, not merely close. The luma step computes in
//! `f64` and rounds to `f32`, which is what the PyPI `pdqhash` wrapper of the reference does
//! (its conformance vectors are in `tests/data/pdq/`).

use std::sync::OnceLock;

mod filter;
mod hash;
use filter::{
    box_columns, box_phases, jarosz_window, lanes_to_rows, luma_row, rows_to_lanes, running_sums,
    sample_index,
};
pub use hash::{Dihedral, ParseHashError, PdqDihedral, PdqHash, PdqOutput};

/// Images smaller than this in either dimension get an all-zero hash of quality 0.
const MIN_HASHABLE_DIM: usize = 5;

/// Borrowed 8-bit RGB pixels, `stride` bytes from one row to the next.
#[derive(Clone, Copy, Debug)]
pub struct RgbImage<'a> {
    pub data: &'a [u8],
    pub width: usize,
    pub height: usize,
    pub stride: usize,
}

impl<'a> RgbImage<'a> {
    /// Tightly packed pixels: `stride` is `3 * width`.
    pub fn packed(data: &'a [u8], width: usize, height: usize) -> Self {
        RgbImage {
            data,
            width,
            height,
            stride: 3 * width,
        }
    }
}

/// Rows filtered side by side by [`box_rows`]: each lane is one row's running sum, so the
/// sequential dependency of one row's sum is spread over independent SIMD lanes.
const LANES: usize = 8;

/// Reusable working buffers; one hasher per thread avoids allocating for every frame.
#[derive(Default)]
pub struct PdqHasher {
    /// Row-filtered image (pass 1), then column-filtered (pass 2), full size.
    full1: Vec<f32>,
    full2: Vec<f32>,
    /// Pass 3 output at the 64 sampled columns only (`h` × 64), and pass 4's.
    narrow1: Vec<f32>,
    narrow2: Vec<f32>,
    col_sums: Vec<f32>,
    /// `LANES` rows of input as `f32`, row-major.
    row: Vec<f32>,
    /// `LANES` rows, transposed: `tile[x][lane]`; and their running sums.
    tile: Vec<[f32; LANES]>,
    sums: Vec<[f32; LANES]>,
    /// Divisor of each output position of a row filter.
    divisors: Vec<f32>,
}

impl PdqHasher {
    pub fn new() -> Self {
        Self::default()
    }

    /// Hashes an RGB image.
    ///
    /// # Panics
    /// When `data` is shorter than `stride * (height - 1) + 3 * width`.
    pub fn hash_rgb(&mut self, img: RgbImage<'_>) -> PdqOutput {
        let (dct, quality) = self.dct_rgb(img);
        PdqOutput {
            hash: bits_above_median(&dct),
            quality,
        }
    }

    /// Hashes an RGB image and its seven rotations and mirrors, from one DCT.
    pub fn hash_rgb_dihedral(&mut self, img: RgbImage<'_>) -> PdqDihedral {
        let (dct, quality) = self.dct_rgb(img);
        dihedral_hashes(&dct, quality)
    }

    /// Hashes an 8-bit greyscale image (`stride` bytes per row).
    pub fn hash_grey(
        &mut self,
        data: &[u8],
        width: usize,
        height: usize,
        stride: usize,
    ) -> PdqOutput {
        let (dct, quality) = self.dct_of(width, height, |y, out| {
            for (o, &v) in out.iter_mut().zip(&data[y * stride..y * stride + width]) {
                *o = f32::from(v);
            }
        });
        PdqOutput {
            hash: bits_above_median(&dct),
            quality,
        }
    }

    fn dct_rgb(&mut self, img: RgbImage<'_>) -> ([[f32; 16]; 16], u32) {
        let (w, h) = (img.width, img.height);
        assert!(
            h == 0 || img.data.len() >= img.stride * (h - 1) + 3 * w,
            "RGB buffer of {} bytes is too short for {w}x{h} with stride {}",
            img.data.len(),
            img.stride
        );
        self.dct_of(w, h, |y, out| {
            luma_row(&img.data[y * img.stride..y * img.stride + 3 * w], out)
        })
    }

    /// The 16×16 DCT block and quality of an image whose rows `luma_row(y, out)` writes.
    fn dct_of(
        &mut self,
        w: usize,
        h: usize,
        mut luma_row: impl FnMut(usize, &mut [f32]),
    ) -> ([[f32; 16]; 16], u32) {
        if w < MIN_HASHABLE_DIM || h < MIN_HASHABLE_DIM {
            return ([[0f32; 16]; 16], 0);
        }
        let mut block = [[0f32; 64]; 64];
        self.row.resize(LANES * w.max(64), 0.0);
        if w == 64 && h == 64 {
            // The reference takes a 64x64 input as already downsampled.
            for (y, out) in block.iter_mut().enumerate() {
                luma_row(y, out);
            }
        } else {
            self.downsample(w, h, luma_row, &mut block);
        }
        (dct64_to_16(&block), quality(&block))
    }

    /// Two Jarosz passes (rows then columns, twice) and decimation to 64×64, with every
    /// filtered value computed by the reference's running sums in the reference's order. Only
    /// what decimation reads is produced: the last row pass divides at the 64 sampled columns
    /// only, and the last column pass runs down those 64 columns only.
    fn downsample(
        &mut self,
        w: usize,
        h: usize,
        mut luma_row: impl FnMut(usize, &mut [f32]),
        block: &mut [[f32; 64]; 64],
    ) {
        let (win_rows, win_cols) = (jarosz_window(w), jarosz_window(h));
        let all_cols: Vec<usize> = (0..w).collect();
        let sample_cols: Vec<usize> = (0..64).map(|j| sample_index(j, w)).collect();
        self.full1.resize(w * h, 0.0);
        self.full2.resize(w * h, 0.0);
        self.narrow1.resize(h * 64, 0.0);
        self.narrow2.resize(h * 64, 0.0);

        let mut row = std::mem::take(&mut self.row);
        let mut full1 = std::mem::take(&mut self.full1);
        let mut full2 = std::mem::take(&mut self.full2);
        self.box_rows(
            w,
            h,
            win_rows,
            |y, out| luma_row(y, out),
            &mut row,
            &all_cols,
            &mut full1,
        );
        box_columns(&full1, &mut full2, w, h, win_cols, &mut self.col_sums);
        let mut narrow1 = std::mem::take(&mut self.narrow1);
        self.box_rows(
            w,
            h,
            win_rows,
            |y, out| out.copy_from_slice(&full2[y * w..(y + 1) * w]),
            &mut row,
            &sample_cols,
            &mut narrow1,
        );
        box_columns(
            &narrow1,
            &mut self.narrow2,
            64,
            h,
            win_cols,
            &mut self.col_sums,
        );
        for (i, out) in block.iter_mut().enumerate() {
            let src = sample_index(i, h) * 64;
            out.copy_from_slice(&self.narrow2[src..src + 64]);
        }
        self.row = row;
        self.full1 = full1;
        self.full2 = full2;
        self.narrow1 = narrow1;
    }

    /// The reference's row filter on every row of a `w`×`h` image whose rows `source(y, row)`
    /// writes, keeping only the columns `cols`: `out[y * cols.len() + k]` is row `y` filtered
    /// at column `cols[k]`. `LANES` rows run side by side, each in its own lane with exactly
    /// the operations of [`box_1d`].
    #[allow(clippy::too_many_arguments)]
    fn box_rows(
        &mut self,
        w: usize,
        h: usize,
        window: usize,
        mut source: impl FnMut(usize, &mut [f32]),
        rows: &mut [f32],
        cols: &[usize],
        out: &mut [f32],
    ) {
        let (p1, p2, p3, p4) = box_phases(w, window);
        self.divisors.clear();
        let half = (window + 2) / 2;
        self.divisors
            .extend((half..=window).take(p2).map(|s| s as f32));
        self.divisors.extend(std::iter::repeat_n(window as f32, p3));
        self.divisors
            .extend((0..p4).map(|k| (window - 1 - k) as f32));
        self.tile.resize(w, [0.0; LANES]);
        self.sums.resize(w, [0.0; LANES]);
        let n_out = cols.len();
        let full = n_out == w;
        for y0 in (0..h).step_by(LANES) {
            let lanes = LANES.min(h - y0);
            // Lanes past the last row keep whatever they held: finite values, never written out.
            for lane in 0..lanes {
                source(y0 + lane, &mut rows[lane * w..(lane + 1) * w]);
            }
            rows_to_lanes(rows, w, &mut self.tile);
            running_sums(&self.tile, &mut self.sums, (p1, p2, p3, p4));
            if full {
                // Divide all lanes at once (the same IEEE division per lane), then transpose.
                for (s, &d) in self.sums.iter_mut().zip(&self.divisors) {
                    for v in s.iter_mut() {
                        *v /= d;
                    }
                }
                lanes_to_rows(&self.sums, w, rows);
                out[y0 * w..(y0 + lanes) * w].copy_from_slice(&rows[..lanes * w]);
            } else {
                for lane in 0..lanes {
                    let out_row = &mut out[(y0 + lane) * n_out..(y0 + lane + 1) * n_out];
                    for (o, &x) in out_row.iter_mut().zip(cols) {
                        *o = self.sums[x][lane] / self.divisors[x];
                    }
                }
            }
        }
    }
}

/// The reference's image-domain quality: summed, integer-truncated gradients, scaled to 0..=100.
fn quality(b: &[[f32; 64]; 64]) -> u32 {
    let grad = |u: f32, v: f32| (((u - v) * 100.0) / 255.0) as i32;
    let mut sum: i32 = 0;
    for (upper, lower) in b.iter().zip(b.iter().skip(1)) {
        for (&u, &v) in upper.iter().zip(lower) {
            sum += grad(u, v).abs();
        }
    }
    for row in b.iter() {
        for j in 0..63 {
            sum += grad(row[j], row[j + 1]).abs();
        }
    }
    (sum / 90).min(100) as u32
}

/// Rows 1..=16 of the 64-point DCT-II matrix, as the reference builds it.
fn dct_matrix() -> &'static [[f32; 64]; 16] {
    static MATRIX: OnceLock<[[f32; 64]; 16]> = OnceLock::new();
    MATRIX.get_or_init(|| {
        let scale = (2.0f64 / 64.0).sqrt() as f32;
        let mut m = [[0f32; 64]; 16];
        for (i, row) in m.iter_mut().enumerate() {
            for (j, v) in row.iter_mut().enumerate() {
                let angle =
                    (std::f64::consts::PI / 2.0 / 64.0) * (i + 1) as f64 * (2 * j + 1) as f64;
                *v = (f64::from(scale) * angle.cos()) as f32;
            }
        }
        m
    })
}

/// `D · A · Dᵀ` for the 16×64 matrix `D`, summing over k in ascending order like the reference.
fn dct64_to_16(a: &[[f32; 64]; 64]) -> [[f32; 16]; 16] {
    let d = dct_matrix();
    let mut t = [[0f32; 64]; 16];
    for (ti, di) in t.iter_mut().zip(d.iter()) {
        for (k, &dik) in di.iter().enumerate() {
            // Accumulating row k into all 64 columns keeps each column's sum order k = 0..64.
            for (tij, &akj) in ti.iter_mut().zip(a[k].iter()) {
                *tij += dik * akj;
            }
        }
    }
    let mut b = [[0f32; 16]; 16];
    for (bi, ti) in b.iter_mut().zip(t.iter()) {
        for (bij, dj) in bi.iter_mut().zip(d.iter()) {
            let mut sum = 0f32;
            for k in 0..64 {
                sum += ti[k] * dj[k];
            }
            *bij = sum;
        }
    }
    b
}

/// Torben's median, as in the reference (returns an element of `m` or the midpoint guess).
fn torben_median(m: &[f32]) -> f32 {
    let n = m.len();
    let (mut min, mut max) = (m[0], m[0]);
    for &v in &m[1..] {
        if v < min {
            min = v;
        }
        if v > max {
            max = v;
        }
    }
    let half = n.div_ceil(2);
    loop {
        let guess = (min + max) / 2.0;
        let (mut less, mut greater, mut equal) = (0usize, 0usize, 0usize);
        let (mut max_lt, mut min_gt) = (min, max);
        for &v in m {
            if v < guess {
                less += 1;
                if v > max_lt {
                    max_lt = v;
                }
            } else if v > guess {
                greater += 1;
                if v < min_gt {
                    min_gt = v;
                }
            } else {
                equal += 1;
            }
        }
        if less <= half && greater <= half {
            return if less >= half {
                max_lt
            } else if less + equal >= half {
                guess
            } else {
                min_gt
            };
        } else if less > greater {
            max = max_lt;
        } else {
            min = min_gt;
        }
    }
}

fn bits_above_median(dct: &[[f32; 16]; 16]) -> PdqHash {
    let flat = dct.as_flattened();
    let median = torben_median(flat);
    let mut hash = PdqHash::default();
    for (k, &v) in flat.iter().enumerate() {
        if v > median {
            hash.set_bit(k);
        }
    }
    hash
}

fn dihedral_hashes(dct: &[[f32; 16]; 16], quality: u32) -> PdqDihedral {
    let mut hashes = [PdqHash::default(); 8];
    for (h, d) in hashes.iter_mut().zip(Dihedral::ALL) {
        *h = bits_above_median(&d.apply(dct));
    }
    PdqDihedral { hashes, quality }
}

#[cfg(test)]
mod tests;
