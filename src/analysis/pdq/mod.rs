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

mod filter;
use filter::{
    box_columns, box_phases, jarosz_window, lanes_to_rows, luma_row, rows_to_lanes, running_sums,
    sample_index,
};

/// Images smaller than this in either dimension get an all-zero hash of quality 0.
const MIN_HASHABLE_DIM: usize = 5;

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
        if let Some(c) = s.chars().find(|c| !c.is_ascii_hexdigit()) {
            return Err(ParseHashError::Digit(c));
        }
        // Only ASCII hex digits from here on, so bytes are characters.
        if s.len() != 64 {
            return Err(ParseHashError::Length(s.len()));
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

/// The eight dihedral transformations of an image, in the reference's order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dihedral {
    Original,
    Rotate90,
    Rotate180,
    Rotate270,
    FlipX,
    FlipY,
    FlipPlus1,
    FlipMinus1,
}

impl Dihedral {
    pub const ALL: [Dihedral; 8] = [
        Dihedral::Original,
        Dihedral::Rotate90,
        Dihedral::Rotate180,
        Dihedral::Rotate270,
        Dihedral::FlipX,
        Dihedral::FlipY,
        Dihedral::FlipPlus1,
        Dihedral::FlipMinus1,
    ];

    /// Short name used in logs, alerts and the CLI.
    pub fn name(self) -> &'static str {
        match self {
            Dihedral::Original => "original",
            Dihedral::Rotate90 => "rot90",
            Dihedral::Rotate180 => "rot180",
            Dihedral::Rotate270 => "rot270",
            Dihedral::FlipX => "flipx",
            Dihedral::FlipY => "flipy",
            Dihedral::FlipPlus1 => "flip+1",
            Dihedral::FlipMinus1 => "flip-1",
        }
    }

    /// Applies the transformation to the 16×16 DCT block: a transpose and/or sign flips of
    /// odd rows or columns, exactly as the reference derives each variant from one DCT.
    fn apply(self, a: &[[f32; 16]; 16]) -> [[f32; 16]; 16] {
        let mut b = [[0f32; 16]; 16];
        for i in 0..16 {
            for j in 0..16 {
                let v = a[i][j];
                let (negate, transpose) = match self {
                    Dihedral::Original => (false, false),
                    Dihedral::Rotate90 => (j & 1 == 0, true),
                    Dihedral::Rotate180 => ((i + j) & 1 == 1, false),
                    Dihedral::Rotate270 => (i & 1 == 0, true),
                    Dihedral::FlipX => (i & 1 == 0, false),
                    Dihedral::FlipY => (j & 1 == 0, false),
                    Dihedral::FlipPlus1 => (false, true),
                    Dihedral::FlipMinus1 => ((i + j) & 1 == 1, true),
                };
                let v = if negate { -v } else { v };
                if transpose {
                    b[j][i] = v;
                } else {
                    b[i][j] = v;
                }
            }
        }
        b
    }
}

/// The hashes of all eight dihedral variants of one image, from one DCT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PdqDihedral {
    /// Indexed like [`Dihedral::ALL`]; `hashes[0]` is the plain hash.
    pub hashes: [PdqHash; 8],
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
mod tests {
    use super::filter::box_1d;
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
    fn lane_row_filter_equals_box_1d_on_each_row() {
        // box_rows must give exactly what box_1d gives on each row, for row counts that are
        // and are not multiples of LANES, and for every window shape.
        for (w, h, window) in [(300, 19, 3), (129, 8, 2), (700, 5, 6), (9, 17, 1)] {
            let input: Vec<f32> = (0..w * h)
                .map(|i| ((i * 7919) % 251) as f32 * 0.37 + 0.001)
                .collect();
            let cols: Vec<usize> = (0..w).collect();
            let mut out = vec![0f32; w * h];
            let mut hasher = PdqHasher::new();
            let mut row = vec![0f32; LANES * w];
            hasher.box_rows(
                w,
                h,
                window,
                |y, r| r.copy_from_slice(&input[y * w..(y + 1) * w]),
                &mut row,
                &cols,
                &mut out,
            );
            for y in 0..h {
                let mut expect = vec![0f32; w];
                box_1d(&input[y * w..(y + 1) * w], &mut expect, window);
                assert_eq!(&out[y * w..(y + 1) * w], &expect[..], "{w}x{h} row {y}");
            }
        }
    }

    #[test]
    fn dihedral_original_is_the_plain_hash() {
        let (w, h) = (120, 90);
        let data: Vec<u8> = (0..w * h * 3).map(|i| ((i * 31) % 253) as u8).collect();
        let img = RgbImage::packed(&data, w, h);
        let mut hasher = PdqHasher::new();
        let plain = hasher.hash_rgb(img);
        let all = hasher.hash_rgb_dihedral(img);
        assert_eq!(all.hashes[0], plain.hash);
        assert_eq!(all.quality, plain.quality);
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
        let out = hasher.hash_rgb(RgbImage::packed(&flat, 100, 80));
        assert_eq!(out.quality, 0);
        let tiny = vec![1u8; 4 * 4 * 3];
        let out = hasher.hash_rgb(RgbImage::packed(&tiny, 4, 4));
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
