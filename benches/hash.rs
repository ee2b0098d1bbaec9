//! Criterion benches for hash matching: PDQ (one hash, all 8 dihedral variants) on a
//! 512x512 image, and exact radius-31 search in a 1M-entry synthetic bank (multi-index
//! vs linear scan). `cargo bench --bench hash`. scripts/bench-hash.sh adds the 10M-entry
//! index, the reference PDQ and FAISS baselines.
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use streamguard::analysis::index::{HashIndex, synth};
use streamguard::analysis::pdq::{PdqHasher, RgbImage};

fn pdq(c: &mut Criterion) {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/pdq/images/camera_orig.png"
    );
    let img = image::open(path).unwrap().into_rgb8();
    let input = RgbImage::packed(img.as_raw(), img.width() as usize, img.height() as usize);
    let mut hasher = PdqHasher::new();
    let mut g = c.benchmark_group("pdq_512x512");
    g.bench_function("hash", |b| {
        b.iter(|| black_box(hasher.hash_rgb(black_box(input))))
    });
    g.bench_function("dihedral8", |b| {
        b.iter(|| black_box(hasher.hash_rgb_dihedral(black_box(input))))
    });
    g.finish();
}

fn index(c: &mut Criterion) {
    let bank = synth::bank(1_000_000, 42);
    let queries = synth::queries(&bank, 64, 43);
    let index = HashIndex::build(bank, 31);
    let mut g = c.benchmark_group("index_1m_radius31");
    let mut hits = Vec::new();
    let mut i = 0;
    g.bench_function(BenchmarkId::new("multi_index", "per_query"), |b| {
        b.iter(|| {
            hits.clear();
            index.search_into(&queries[i % queries.len()], 31, &mut hits);
            i += 1;
            black_box(hits.len())
        })
    });
    g.sample_size(10);
    g.bench_function(BenchmarkId::new("scan", "per_query"), |b| {
        b.iter(|| black_box(index.search_scan(&queries[i % queries.len()], 31).len()))
    });
    g.finish();
}

criterion_group!(benches, pdq, index);
criterion_main!(benches);
