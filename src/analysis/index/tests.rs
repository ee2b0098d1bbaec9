//! Unit tests of the index: every search equals a scan, on random and clustered data.
use super::*;

#[test]
fn enumerates_every_value_within_radius_once() {
    for (width, radius, expect) in [(16, 0, 1), (16, 1, 17), (16, 2, 137), (5, 9, 32)] {
        let mut seen = Vec::new();
        for_each_within(0b10110, width, radius, |k| seen.push(k));
        assert_eq!(seen.len(), expect, "width {width} radius {radius}");
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), expect);
        assert!(seen.iter().all(|k| (k ^ 0b10110).count_ones() <= radius));
    }
}

#[test]
fn slot_keys_cover_all_bits_across_limb_boundaries() {
    let h = PdqHash([u64::MAX, 0, u64::MAX, 0]);
    assert_eq!(slot_key(&h.0, 60, 8), 0b1111);
    assert_eq!(slot_key(&h.0, 120, 16), 0xff00);
    assert_eq!(slot_key(&h.0, 240, 16), 0);
}

#[test]
fn layout_grows_with_the_bank() {
    assert_eq!(Layout::for_len(10), Layout::Scan);
    assert_eq!(Layout::for_len(50_000), Layout::MultiIndex { slots: 16 });
    assert_eq!(Layout::for_len(1_000_000), Layout::MultiIndex { slots: 16 });
    assert_eq!(
        Layout::for_len(10_000_000),
        Layout::MultiIndex { slots: 11 }
    );
    // A radius this large makes every slot probe thousands of values: scan instead.
    assert_eq!(Layout::for_search(50_000, 80), Layout::Scan);
}

fn check_equal(bank: Vec<PdqHash>, layout: Layout, radii: &[u32]) {
    let queries = synth::queries(&bank, 300, 99);
    let index = HashIndex::build_with(bank, &layout);
    let mut total = 0;
    for q in &queries {
        for &r in radii {
            let got = index.search(q, r);
            assert_eq!(got, index.search_scan(q, r), "layout {layout:?} radius {r}");
            total += got.len();
        }
    }
    assert!(total > 100, "too few hits ({total}) to mean anything");
}

#[test]
fn multi_index_equals_scan_on_clustered_and_random_data() {
    for slots in [16, 14, 13] {
        check_equal(
            synth::bank(20_000, 7),
            Layout::MultiIndex { slots },
            &[0, 10, 31, 40],
        );
    }
    let mut rng = synth::SplitMix64(3);
    let random: Vec<PdqHash> = (0..20_000).map(|_| rng.hash()).collect();
    check_equal(random, Layout::MultiIndex { slots: 16 }, &[31, 64, 100]);
}

#[test]
fn duplicates_and_empty_index() {
    let h = synth::SplitMix64(1).hash();
    let index = HashIndex::build_with(vec![h, h, h], &Layout::MultiIndex { slots: 16 });
    assert_eq!(index.search(&h, 0).len(), 3);
    let empty = HashIndex::build_with(Vec::new(), &Layout::MultiIndex { slots: 16 });
    assert!(empty.search(&h, 31).is_empty());
    assert!(HashIndex::build(Vec::new(), 31).search(&h, 256).is_empty());
    // Any radius is exact, even past 256 bits.
    assert_eq!(index.search(&h, 300).len(), 3);
}
