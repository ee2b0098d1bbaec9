//! Unit tests of the hasher's parts: hex form, the lane row filter, the median, edge cases.
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
