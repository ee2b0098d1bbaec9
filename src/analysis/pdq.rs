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

use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

/// Images smaller than this in either dimension get an all-zero hash of quality 0.
const MIN_HASHABLE_DIM: usize = 5;
/// Number of row+column box-filter passes (a tent filter after two).
const JAROSZ_PASSES: usize = 2;

/// A 256-bit PDQ hash. Bit `k` is coefficient `(k / 16, k % 16)` of the 16×16 DCT block;
/// the hex form is the 256-bit number with bit 255 first, as the reference prints it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PdqHash(pub [u64; 4]);

impl PdqHash {
    /// Hamming distance: the number of differing bits.
    pub fn distance(&self, other: &PdqHash) -> u32 {
        (0..4).map(|i| (self.0[i] ^ other.0[i]).count_ones()).sum()
    }

    fn set_bit(&mut self, k: usize) {
        self.0[k / 64] |= 1u64 << (k % 64);
    }

    /// Whether bit `k` (0..256) is set.
    pub fn bit(&self, k: usize) -> bool {
        self.0[k / 64] >> (k % 64) & 1 == 1
    }
}

impl fmt::Display for PdqHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for limb in self.0.iter().rev() {
            write!(f, "{limb:016x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for PdqHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PdqHash({self})")
    }
}

/// Why a string is not a PDQ hash.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseHashError {
    #[error("a PDQ hash has 64 hex digits, this has {0}")]
    Length(usize),
    #[error("'{0}' is not a hex digit")]
    Digit(char),
}

impl FromStr for PdqHash {
    type Err = ParseHashError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.len() != 64 {
            return Err(ParseHashError::Length(s.chars().count()));
        }
        if let Some(c) = s.chars().find(|c| !c.is_ascii_hexdigit()) {
            return Err(ParseHashError::Digit(c));
        }
        let mut limbs = [0u64; 4];
        for (i, limb) in limbs.iter_mut().enumerate() {
            let start = (3 - i) * 16;
            // The digits were checked above, so this cannot fail.
            *limb = u64::from_str_radix(&s[start..start + 16], 16)
                .map_err(|_| ParseHashError::Length(64))?;
        }
        Ok(PdqHash(limbs))
    }
}

/// A hash with the reference's quality score (0..=100; below 50 means "not a usable hash").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PdqOutput {
    pub hash: PdqHash,
    pub quality: u32,
}

/// Borrowed 8-bit RGB pixels, `stride` bytes from one row to the next.
#[derive(Clone, Copy, Debug)]
pub struct RgbImage<'a> {
    pub data: &'a [u8],
    pub width: usize,
    pub height: usize,
    pub stride: usize,
}

/// Reusable working buffers; one hasher per thread avoids allocating for every frame.
#[derive(Default)]
pub struct PdqHasher {
    buf1: Vec<f32>,
    buf2: Vec<f32>,
    col_sums: Vec<f32>,
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
        let (w, h) = (img.width, img.height);
        assert!(
            h == 0 || img.data.len() >= img.stride * (h - 1) + 3 * w,
            "RGB buffer of {} bytes is too short for {w}x{h} with stride {}",
            img.data.len(),
            img.stride
        );
        self.buf1.clear();
        self.buf1.reserve(w * h);
        for y in 0..h {
            let row = &img.data[y * img.stride..y * img.stride + 3 * w];
            self.buf1.extend(row.chunks_exact(3).map(|p| {
                (f64::from(p[0]) * 0.299 + f64::from(p[1]) * 0.587 + f64::from(p[2]) * 0.114) as f32
            }));
        }
        self.hash_luma_buffer(w, h)
    }

    /// Hashes an 8-bit greyscale image (`stride` bytes per row).
    pub fn hash_grey(
        &mut self,
        data: &[u8],
        width: usize,
        height: usize,
        stride: usize,
    ) -> PdqOutput {
        self.buf1.clear();
        for y in 0..height {
            self.buf1.extend(
                data[y * stride..y * stride + width]
                    .iter()
                    .map(|&v| f32::from(v)),
            );
        }
        self.hash_luma_buffer(width, height)
    }

    fn hash_luma_buffer(&mut self, w: usize, h: usize) -> PdqOutput {
        if w < MIN_HASHABLE_DIM || h < MIN_HASHABLE_DIM {
            return PdqOutput {
                hash: PdqHash::default(),
                quality: 0,
            };
        }
        let mut block = [[0f32; 64]; 64];
        if w == 64 && h == 64 {
            // The reference takes a 64x64 input as already downsampled.
            for (i, row) in block.iter_mut().enumerate() {
                row.copy_from_slice(&self.buf1[i * 64..(i + 1) * 64]);
            }
        } else {
            self.buf2.resize(w * h, 0.0);
            let win_rows = jarosz_window(w);
            let win_cols = jarosz_window(h);
            for _ in 0..JAROSZ_PASSES {
                for (src, dst) in self.buf1.chunks_exact(w).zip(self.buf2.chunks_exact_mut(w)) {
                    box_1d(src, dst, win_rows);
                }
                box_columns(
                    &self.buf2,
                    &mut self.buf1,
                    w,
                    h,
                    win_cols,
                    &mut self.col_sums,
                );
            }
            decimate(&self.buf1, w, h, &mut block);
        }
        let quality = quality(&block);
        let dct = dct64_to_16(&block);
        PdqOutput {
            hash: bits_above_median(&dct),
            quality,
        }
    }
}

/// Box-filter window for downsampling `dim` to 64 in two passes: `ceil(dim / 128)`.
fn jarosz_window(dim: usize) -> usize {
    dim.div_ceil(2 * 64)
}

/// Phases of the reference's running-sum box filter for a vector of length `n`:
/// (adds without writes, writes while the window grows, full-window writes, shrinking writes).
fn box_phases(n: usize, window: usize) -> (usize, usize, usize, usize) {
    let half = (window + 2) / 2;
    (
        half - 1,
        window - half + 1,
        n.saturating_sub(window),
        half - 1,
    )
}

/// One-dimensional box filter over a contiguous vector, in the reference's arithmetic order.
fn box_1d(input: &[f32], out: &mut [f32], window: usize) {
    let (p1, p2, p3, p4) = box_phases(input.len(), window);
    let (mut li, mut ri, mut oi) = (0usize, 0usize, 0usize);
    let mut sum = 0f32;
    let mut size = 0usize;
    for _ in 0..p1 {
        sum += input[ri];
        size += 1;
        ri += 1;
    }
    for _ in 0..p2 {
        sum += input[ri];
        size += 1;
        out[oi] = sum / size as f32;
        ri += 1;
        oi += 1;
    }
    for _ in 0..p3 {
        sum += input[ri];
        sum -= input[li];
        out[oi] = sum / size as f32;
        li += 1;
        ri += 1;
        oi += 1;
    }
    for _ in 0..p4 {
        sum -= input[li];
        size -= 1;
        out[oi] = sum / size as f32;
        li += 1;
        oi += 1;
    }
}

/// The same filter down every column at once: each column keeps its own running sum with the
/// same sequence of operations as [`box_1d`], but memory is walked row by row.
fn box_columns(
    input: &[f32],
    out: &mut [f32],
    w: usize,
    h: usize,
    window: usize,
    sums: &mut Vec<f32>,
) {
    let (p1, p2, p3, p4) = box_phases(h, window);
    sums.clear();
    sums.resize(w, 0.0);
    let row = |r: usize| &input[r * w..(r + 1) * w];
    let (mut li, mut ri, mut oi) = (0usize, 0usize, 0usize);
    let mut size = 0usize;
    for _ in 0..p1 {
        sums.iter_mut().zip(row(ri)).for_each(|(s, &v)| *s += v);
        size += 1;
        ri += 1;
    }
    for _ in 0..p2 {
        size += 1;
        let d = size as f32;
        let o = &mut out[oi * w..(oi + 1) * w];
        for ((s, &v), o) in sums.iter_mut().zip(row(ri)).zip(o) {
            *s += v;
            *o = *s / d;
        }
        ri += 1;
        oi += 1;
    }
    for _ in 0..p3 {
        let d = size as f32;
        let o = &mut out[oi * w..(oi + 1) * w];
        for (((s, &add), &sub), o) in sums.iter_mut().zip(row(ri)).zip(row(li)).zip(o) {
            *s += add;
            *s -= sub;
            *o = *s / d;
        }
        li += 1;
        ri += 1;
        oi += 1;
    }
    for _ in 0..p4 {
        size -= 1;
        let d = size as f32;
        let o = &mut out[oi * w..(oi + 1) * w];
        for ((s, &sub), o) in sums.iter_mut().zip(row(li)).zip(o) {
            *s -= sub;
            *o = *s / d;
        }
        li += 1;
        oi += 1;
    }
}

/// Picks the 64×64 samples at cell centres.
fn decimate(input: &[f32], w: usize, h: usize, out: &mut [[f32; 64]; 64]) {
    for (i, row) in out.iter_mut().enumerate() {
        let src_i = ((i as f64 + 0.5) * h as f64 / 64.0) as usize;
        for (j, v) in row.iter_mut().enumerate() {
            let src_j = ((j as f64 + 0.5) * w as f64 / 64.0) as usize;
            *v = input[src_i * w + src_j];
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
    let flat: Vec<f32> = dct.iter().flatten().copied().collect();
    let median = torben_median(&flat);
    let mut hash = PdqHash::default();
    for (k, &v) in flat.iter().enumerate() {
        if v > median {
            hash.set_bit(k);
        }
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_distance() {
        let s = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22";
        let h: PdqHash = s.parse().unwrap();
        assert_eq!(h.to_string(), s);
        let mut other = h;
        other.0[0] ^= 0b1011;
        other.0[3] ^= 1 << 63;
        assert_eq!(h.distance(&other), 4);
        assert!(h.bit(255)); // leading 'f'
    }

    #[test]
    fn bad_hex_is_rejected() {
        assert_eq!("abc".parse::<PdqHash>(), Err(ParseHashError::Length(3)));
        let bad = "g".repeat(64);
        assert_eq!(bad.parse::<PdqHash>(), Err(ParseHashError::Digit('g')));
    }

    #[test]
    fn column_filter_equals_strided_reference_order() {
        // box_columns must give exactly what box_1d gives on each column.
        let (w, h) = (7, 300);
        let input: Vec<f32> = (0..w * h)
            .map(|i| ((i * 7919) % 251) as f32 * 0.37)
            .collect();
        let mut out = vec![0f32; w * h];
        let mut sums = Vec::new();
        box_columns(&input, &mut out, w, h, 3, &mut sums);
        for c in 0..w {
            let col: Vec<f32> = (0..h).map(|r| input[r * w + c]).collect();
            let mut expect = vec![0f32; h];
            box_1d(&col, &mut expect, 3);
            let got: Vec<f32> = (0..h).map(|r| out[r * w + c]).collect();
            assert_eq!(got, expect, "column {c}");
        }
    }

    #[test]
    fn torben_matches_sorting_median_for_distinct_values() {
        let v: Vec<f32> = (0..256).map(|i| ((i * 37) % 256) as f32 - 100.5).collect();
        let mut s = v.clone();
        s.sort_by(f32::total_cmp);
        let m = torben_median(&v);
        // Exactly 128 values must lie strictly above the threshold.
        assert_eq!(v.iter().filter(|&&x| x > m).count(), 128);
        assert!(m == s[127] || m == s[128]);
    }

    #[test]
    fn flat_and_tiny_images_have_zero_quality() {
        let mut hasher = PdqHasher::new();
        let flat = vec![128u8; 100 * 80 * 3];
        let out = hasher.hash_rgb(RgbImage {
            data: &flat,
            width: 100,
            height: 80,
            stride: 300,
        });
        assert_eq!(out.quality, 0);
        let tiny = vec![1u8; 4 * 4 * 3];
        let out = hasher.hash_rgb(RgbImage {
            data: &tiny,
            width: 4,
            height: 4,
            stride: 12,
        });
        assert_eq!(
            out,
            PdqOutput {
                hash: PdqHash::default(),
                quality: 0
            }
        );
    }

    #[test]
    fn stride_padding_is_ignored() {
        let (w, h) = (90, 70);
        let mut packed = Vec::new();
        let mut padded = Vec::new();
        for y in 0..h {
            for x in 0..w {
                let p = [(x * 3 + y) as u8, (x * y) as u8, (y * 5) as u8];
                packed.extend_from_slice(&p);
                padded.extend_from_slice(&p);
            }
            padded.extend_from_slice(&[0xAB; 6]);
        }
        let mut hasher = PdqHasher::new();
        let a = hasher.hash_rgb(RgbImage {
            data: &packed,
            width: w,
            height: h,
            stride: w * 3,
        });
        let b = hasher.hash_rgb(RgbImage {
            data: &padded,
            width: w,
            height: h,
            stride: w * 3 + 6,
        });
        assert_eq!(a, b);
    }
}
