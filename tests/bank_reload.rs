//! Hot reload of a 1M-entry bank under load: lookups never fail or miss while the file is
//! replaced, and a corrupt replacement keeps the loaded version and names the line.
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use streamguard::analysis::bank::BankSet;
use streamguard::analysis::index::synth;
use streamguard::analysis::pdq::PdqHash;
use streamguard::config::BankConfig;

const ENTRIES: usize = 1_000_000;

/// A CSV bank: the probes first (same ids in every version), then `ENTRIES - probes` others.
fn write_bank(path: &Path, probes: &[PdqHash], seed: u64, corrupt_line: Option<usize>) {
    let mut rng = synth::SplitMix64(seed);
    let mut text = String::with_capacity(ENTRIES * 80);
    text.push_str("# synthetic test bank (random bit strings)\n");
    for (i, p) in probes.iter().enumerate() {
        text.push_str(&format!("{p},probe-{i}\n"));
    }
    for i in probes.len()..ENTRIES {
        let line = i + 2;
        if corrupt_line == Some(line) {
            text.push_str("this is not a hash,x\n");
        } else {
            text.push_str(&format!("{},v{seed}-{i},synthetic\n", rng.hash()));
        }
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn reload_under_load_never_misses_and_corrupt_file_keeps_old_version() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.csv");
    let mut rng = synth::SplitMix64(1);
    let probes: Vec<PdqHash> = (0..64).map(|_| rng.hash()).collect();
    write_bank(&path, &probes, 100, None);
    let cfg = BankConfig {
        name: "big".into(),
        path: Some(path.clone()),
        ..BankConfig::default()
    };
    let set = BankSet::load(std::slice::from_ref(&cfg)).unwrap();
    let first = set.status()[0].version.clone().unwrap();
    assert_eq!(set.status()[0].entries, ENTRIES);

    // Hammer: every probe must be found at distance 0 with its id, at every moment.
    let stop = Arc::new(AtomicBool::new(false));
    let (lookups, failures) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let hammers: Vec<_> = (0..2)
        .map(|t| {
            let (set, stop, probes) = (set.clone(), stop.clone(), probes.clone());
            let (lookups, failures) = (lookups.clone(), failures.clone());
            std::thread::spawn(move || {
                let mut i = t;
                while !stop.load(Ordering::Relaxed) {
                    let banks = set.snapshot();
                    let ok = banks.len() == 1
                        && banks[0]
                            .best_match(&[probes[i % probes.len()]])
                            .is_some_and(|m| {
                                m.distance == 0 && m.id == format!("probe-{}", i % probes.len())
                            });
                    if !ok {
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                    lookups.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
            })
        })
        .collect();

    let (stop_watch, rx) = crossbeam_channel::bounded::<()>(1);
    let watcher = set.spawn_watcher(Duration::from_millis(50), rx);

    // Two good replacements: each becomes the loaded version.
    let mut seen = vec![first.fingerprint.clone()];
    for seed in [200, 300] {
        let before = lookups.load(Ordering::Relaxed);
        write_bank(&path, &probes, seed, None);
        wait_for("reload", || {
            set.status()[0]
                .version
                .as_ref()
                .is_some_and(|v| !seen.contains(&v.fingerprint))
        });
        seen.push(set.status()[0].version.clone().unwrap().fingerprint);
        assert!(
            lookups.load(Ordering::Relaxed) > before,
            "no lookups ran during the reload"
        );
    }
    // A corrupt replacement: the old version stays, the error names file and line.
    let failed_before = set.status()[0].failed_reloads;
    write_bank(&path, &probes, 400, Some(500_001));
    wait_for("failed reload", || {
        set.status()[0].failed_reloads > failed_before
    });
    let status = set.status()[0].clone();
    assert_eq!(status.version.unwrap().fingerprint, *seen.last().unwrap());
    let err = status.last_error.unwrap();
    assert!(
        err.contains("big.csv:500001") && err.contains("bad hash"),
        "{err}"
    );
    // And a good file after that loads again.
    write_bank(&path, &probes, 500, None);
    wait_for("recovery", || set.status()[0].last_error.is_none());

    stop.store(true, Ordering::Relaxed);
    for h in hammers {
        h.join().unwrap();
    }
    drop(stop_watch);
    watcher.join().unwrap();
    let (n, bad) = (
        lookups.load(Ordering::Relaxed),
        failures.load(Ordering::Relaxed),
    );
    println!("{n} lookups during 4 replacements, {bad} failed or missed");
    assert!(n > 1000, "only {n} lookups");
    assert_eq!(bad, 0, "{bad} of {n} lookups failed or missed");
}
