//! The reference's image-domain filters, made fast without changing a single rounding: luma
//! (the same `f64` arithmetic, two pixels per instruction) and the running-sum box filter
//! (several rows side by side in SIMD lanes, each lane doing exactly the reference's
//! operations, with 4×4 SSE transposes in and out).

use super::LANES;
use std::sync::OnceLock;

/// The luma weights as the reference wrapper applies them: `f64` products of each channel,
/// summed in `f64`, rounded to `f32`. Tabulating the products changes no rounding.
fn luma_tables() -> &'static [[f64; 256]; 3] {
    static TABLES: OnceLock<[[f64; 256]; 3]> = OnceLock::new();
    TABLES.get_or_init(|| {
        [0.299, 0.587, 0.114].map(|weight| std::array::from_fn(|v| v as f64 * weight))
    })
}

/// Luma of one row of RGB pixels into `out` (one value per pixel).
pub(super) fn luma_row(rgb: &[u8], out: &mut [f32]) {
    #[cfg(all(target_arch = "x86_64", target_feature = "ssse3"))]
    let done = luma_row_ssse3(rgb, out);
    #[cfg(not(all(target_arch = "x86_64", target_feature = "ssse3")))]
    let done = 0;
    luma_row_scalar(&rgb[3 * done..], &mut out[done..]);
}

fn luma_row_scalar(rgb: &[u8], out: &mut [f32]) {
    let [tr, tg, tb] = luma_tables();
    for (o, p) in out.iter_mut().zip(rgb.chunks_exact(3)) {
        *o = (tr[p[0] as usize] + tg[p[1] as usize] + tb[p[2] as usize]) as f32;
    }
}

/// Four pixels at a time: the same `f64` multiplies and adds, in the same order, two lanes
/// per instruction; `cvtpd2ps` rounds to nearest like `as f32`. Returns the pixels done.
#[cfg(all(target_arch = "x86_64", target_feature = "ssse3"))]
fn luma_row_ssse3(rgb: &[u8], out: &mut [f32]) -> usize {
    use std::arch::x86_64::*;
    let n = out.len().min(rgb.len() / 3);
    // Each step loads 16 bytes and uses 12, so stop while 16 bytes remain readable.
    let steps = if rgb.len() >= 16 {
        ((rgb.len() - 16) / 12 + 1).min(n / 4)
    } else {
        0
    };
    // SAFETY: `ssse3` (and the SSE2 it implies) is enabled at compile time (cfg above); every
    // load reads bytes `12 * i .. 12 * i + 16` with `12 * i + 16 <= rgb.len()` by the choice
    // of `steps`, and every store writes `out[4 * i .. 4 * i + 4]` with `4 * i + 4 <= n`.
    unsafe {
        let pick = |c: i8| {
            _mm_setr_epi8(
                c,
                -1,
                -1,
                -1,
                c + 3,
                -1,
                -1,
                -1,
                c + 6,
                -1,
                -1,
                -1,
                c + 9,
                -1,
                -1,
                -1,
            )
        };
        let (mr, mg, mb) = (pick(0), pick(1), pick(2));
        let (cr, cg, cb) = (_mm_set1_pd(0.299), _mm_set1_pd(0.587), _mm_set1_pd(0.114));
        for i in 0..steps {
            let px = _mm_loadu_si128(rgb.as_ptr().add(12 * i) as *const __m128i);
            let (r, g, b) = (
                _mm_shuffle_epi8(px, mr),
                _mm_shuffle_epi8(px, mg),
                _mm_shuffle_epi8(px, mb),
            );
            let half = |r: __m128i, g: __m128i, b: __m128i| {
                let y = _mm_add_pd(
                    _mm_mul_pd(_mm_cvtepi32_pd(r), cr),
                    _mm_mul_pd(_mm_cvtepi32_pd(g), cg),
                );
                _mm_cvtpd_ps(_mm_add_pd(y, _mm_mul_pd(_mm_cvtepi32_pd(b), cb)))
            };
            let lo = half(r, g, b);
            let hi = half(
                _mm_unpackhi_epi64(r, r),
                _mm_unpackhi_epi64(g, g),
                _mm_unpackhi_epi64(b, b),
            );
            _mm_storeu_ps(out.as_mut_ptr().add(4 * i), _mm_movelh_ps(lo, hi));
        }
    }
    4 * steps
}

/// `LANES` rows of `w` values (row-major) to `tile[x][lane]`.
pub(super) fn rows_to_lanes(rows: &[f32], w: usize, tile: &mut [[f32; LANES]]) {
    let blocks = w / 4;
    #[cfg(target_arch = "x86_64")]
    for b in 0..blocks {
        for half in 0..LANES / 4 {
            let r = |k: usize| {
                let start = (half * 4 + k) * w + 4 * b;
                <&[f32; 4]>::try_from(&rows[start..start + 4]).unwrap()
            };
            let cols = transpose4([r(0), r(1), r(2), r(3)]);
            for (k, c) in cols.iter().enumerate() {
                tile[4 * b + k][half * 4..half * 4 + 4].copy_from_slice(c);
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let blocks = 0;
    for x in 4 * blocks..w {
        for lane in 0..LANES {
            tile[x][lane] = rows[lane * w + x];
        }
    }
}

/// The inverse of [`rows_to_lanes`].
pub(super) fn lanes_to_rows(tile: &[[f32; LANES]], w: usize, rows: &mut [f32]) {
    let blocks = w / 4;
    #[cfg(target_arch = "x86_64")]
    for b in 0..blocks {
        for half in 0..LANES / 4 {
            let t =
                |k: usize| <&[f32; 4]>::try_from(&tile[4 * b + k][half * 4..half * 4 + 4]).unwrap();
            let lanes = transpose4([t(0), t(1), t(2), t(3)]);
            for (k, l) in lanes.iter().enumerate() {
                let start = (half * 4 + k) * w + 4 * b;
                rows[start..start + 4].copy_from_slice(l);
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let blocks = 0;
    for x in 4 * blocks..w {
        for lane in 0..LANES {
            rows[lane * w + x] = tile[x][lane];
        }
    }
}

/// Transposes a 4×4 block of `f32` (moves only; no arithmetic).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn transpose4(a: [&[f32; 4]; 4]) -> [[f32; 4]; 4] {
    use std::arch::x86_64::*;
    let mut out = [[0f32; 4]; 4];
    // SAFETY: SSE is part of the x86_64 baseline; every load and store is of a 4-float array.
    unsafe {
        let (a0, a1, a2, a3) = (
            _mm_loadu_ps(a[0].as_ptr()),
            _mm_loadu_ps(a[1].as_ptr()),
            _mm_loadu_ps(a[2].as_ptr()),
            _mm_loadu_ps(a[3].as_ptr()),
        );
        let (t0, t1) = (_mm_unpacklo_ps(a0, a1), _mm_unpacklo_ps(a2, a3));
        let (t2, t3) = (_mm_unpackhi_ps(a0, a1), _mm_unpackhi_ps(a2, a3));
        _mm_storeu_ps(out[0].as_mut_ptr(), _mm_movelh_ps(t0, t1));
        _mm_storeu_ps(out[1].as_mut_ptr(), _mm_movehl_ps(t1, t0));
        _mm_storeu_ps(out[2].as_mut_ptr(), _mm_movelh_ps(t2, t3));
        _mm_storeu_ps(out[3].as_mut_ptr(), _mm_movehl_ps(t3, t2));
    }
    out
}

/// The running sums of [`box_1d`] for `LANES` vectors side by side (before the division).
pub(super) fn running_sums(
    input: &[[f32; LANES]],
    sums: &mut [[f32; LANES]],
    (p1, p2, p3, p4): (usize, usize, usize, usize),
) {
    let mut s = [0f32; LANES];
    let (mut li, mut ri, mut oi) = (0usize, 0usize, 0usize);
    for _ in 0..p1 {
        add_lanes(&mut s, &input[ri]);
        ri += 1;
    }
    for _ in 0..p2 {
        add_lanes(&mut s, &input[ri]);
        sums[oi] = s;
        ri += 1;
        oi += 1;
    }
    for _ in 0..p3 {
        add_lanes(&mut s, &input[ri]);
        sub_lanes(&mut s, &input[li]);
        sums[oi] = s;
        li += 1;
        ri += 1;
        oi += 1;
    }
    for _ in 0..p4 {
        sub_lanes(&mut s, &input[li]);
        sums[oi] = s;
        li += 1;
        oi += 1;
    }
}

#[inline(always)]
fn add_lanes(s: &mut [f32; LANES], v: &[f32; LANES]) {
    for k in 0..LANES {
        s[k] += v[k];
    }
}

#[inline(always)]
fn sub_lanes(s: &mut [f32; LANES], v: &[f32; LANES]) {
    for k in 0..LANES {
        s[k] -= v[k];
    }
}

/// The source index decimation reads for output cell `i` of 64 along a dimension of `dim`.
pub(super) fn sample_index(i: usize, dim: usize) -> usize {
    ((i as f64 + 0.5) * dim as f64 / 64.0) as usize
}

/// Box-filter window for downsampling `dim` to 64 in two passes: `ceil(dim / 128)`.
pub(super) fn jarosz_window(dim: usize) -> usize {
    dim.div_ceil(2 * 64)
}

/// Phases of the reference's running-sum box filter for a vector of length `n`:
/// (adds without writes, writes while the window grows, full-window writes, shrinking writes).
pub(super) fn box_phases(n: usize, window: usize) -> (usize, usize, usize, usize) {
    let half = (window + 2) / 2;
    (
        half - 1,
        window - half + 1,
        n.saturating_sub(window),
        half - 1,
    )
}

#[cfg(test)]
/// One-dimensional box filter over a contiguous vector, in the reference's arithmetic order.
pub(super) fn box_1d(input: &[f32], out: &mut [f32], window: usize) {
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
pub(super) fn box_columns(
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn simd_luma_equals_scalar_luma() {
        for n in [1usize, 4, 5, 6, 7, 64, 333] {
            let rgb: Vec<u8> = (0..3 * n).map(|i| ((i * 7919 + n) % 256) as u8).collect();
            let (mut fast, mut slow) = (vec![0f32; n], vec![0f32; n]);
            luma_row(&rgb, &mut fast);
            luma_row_scalar(&rgb, &mut slow);
            assert_eq!(fast, slow, "{n} pixels");
        }
    }
}
