//! Exact radius-search throughput of the bank index against a linear scan, on a synthetic
//! bank (half random, half clustered near-duplicates; see `analysis::index::synth`).
//! Used by scripts/bench-hash.sh:
//!     cargo run --release --example index_bench -- [--entries N] [--queries Q] [--radius R]
//!         [--slots M] [--dump DIR] [--write-csv FILE]
//! `--dump DIR` also writes the bank and queries (32 bytes per hash) for the FAISS baseline.
use std::time::Instant;
use streamguard::analysis::index::{HashIndex, Hit, Layout, synth};
use streamguard::analysis::pdq::PdqHash;

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| v.parse().unwrap_or_else(|_| panic!("bad value for {name}")))
        .unwrap_or(default)
}

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn write_hashes(path: &std::path::Path, hashes: &[PdqHash]) {
    let mut bytes = Vec::with_capacity(hashes.len() * 32);
    for h in hashes {
        for limb in h.0 {
            bytes.extend_from_slice(&limb.to_le_bytes());
        }
    }
    std::fs::write(path, bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = arg(&args, "--entries", 10_000_000);
    let nq: usize = arg(&args, "--queries", 2000);
    let radius: u32 = arg(&args, "--radius", 31);
    let slots: u32 = arg(&args, "--slots", 0);
    let scan_queries: usize = arg(&args, "--scan-queries", 40);
    let dump: String = arg(&args, "--dump", String::new());
    let dump = Some(dump).filter(|d| !d.is_empty());

    let bank = synth::bank(n, 42);
    let csv: String = arg(&args, "--write-csv", String::new());
    if !csv.is_empty() {
        // The same bank as a CSV bank file, for `streamguard bank stats`.
        use std::io::Write;
        let mut out = std::io::BufWriter::new(std::fs::File::create(&csv).unwrap());
        writeln!(
            out,
            "# synthetic bank: random bit strings and near-duplicate clusters"
        )
        .unwrap();
        for (i, h) in bank.iter().enumerate() {
            writeln!(out, "{h},synth-{i:08},synthetic-{}", i % 16).unwrap();
        }
        out.flush().unwrap();
        println!("wrote {n} entries to {csv}");
        return;
    }
    let queries = synth::queries(&bank, nq, 43);
    if let Some(dir) = &dump {
        let dir = std::path::Path::new(dir);
        std::fs::create_dir_all(dir).unwrap();
        write_hashes(&dir.join("bank.bin"), &bank);
        write_hashes(&dir.join("queries.bin"), &queries);
    }
    let rss_before = rss_mib();
    let layout = if slots == 0 {
        Layout::for_len(n)
    } else {
        Layout::MultiIndex { slots }
    };
    let t = Instant::now();
    let index = HashIndex::build_with(bank, &layout);
    let build_s = t.elapsed().as_secs_f64();
    let rss_after = rss_mib();
    println!(
        "index entries={n} layout={layout:?} build_s={build_s:.2} memory_mib={:.0} rss_growth_mib={:.0}",
        index.memory_bytes() as f64 / 1048576.0,
        rss_after - rss_before
    );

    // Batches of 8, as the daemon forms them from a frame's dihedral variants.
    let mut hits = Vec::new();
    let mut per_query_ms = Vec::new();
    let mut found = 0usize;
    let t_all = Instant::now();
    for batch in queries.chunks(8) {
        let t = Instant::now();
        for q in batch {
            hits.clear();
            index.search_into(q, radius, &mut hits);
            found += hits.len();
        }
        per_query_ms.push(t.elapsed().as_secs_f64() * 1e3 / batch.len() as f64);
    }
    let total_s = t_all.elapsed().as_secs_f64();
    let mih_ms = median(&mut per_query_ms);
    println!(
        "mih radius={radius} queries={nq} median_ms_per_query={mih_ms:.4} mean_ms_per_query={:.4} qps={:.0} hits={found}",
        total_s * 1e3 / nq as f64,
        nq as f64 / total_s
    );

    // The linear scan, on the first queries, must agree exactly. With --dump, the result
    // sets go to expected.txt (`query entry distance` lines) for the FAISS comparison.
    let mut scan_ms = Vec::new();
    let mut expected = String::new();
    for (qi, q) in queries.iter().take(scan_queries).enumerate() {
        let t = Instant::now();
        let expect: Vec<Hit> = index.search_scan(q, radius);
        scan_ms.push(t.elapsed().as_secs_f64() * 1e3);
        assert_eq!(index.search(q, radius), expect, "index and scan disagree");
        for h in &expect {
            expected.push_str(&format!("{qi} {} {}\n", h.entry, h.distance));
        }
    }
    if let Some(dir) = &dump {
        std::fs::write(std::path::Path::new(dir).join("expected.txt"), expected).unwrap();
    }
    let scan = median(&mut scan_ms);
    println!(
        "scan queries={} median_ms_per_query={scan:.3} speedup={:.1} results_identical=true",
        scan_ms.len(),
        scan / mih_ms
    );
}
