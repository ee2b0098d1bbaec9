//! How long one retention pass holds the alert store's write lock on a large database (the
//! other connections wait for it, up to their 5 s busy timeout).
//!
//!   cargo bench --bench retention            (ALERTS=200000 by default)
//!
//! The database: ALERTS alerts (half dismissed 100 days ago, a quarter confirmed 100 days ago,
//! a quarter open), two audit entries each, a thumbnail per classifier-like alert (every
//! fourth), and 1,000 outbox rows of dismissed alerts. One pass at the default retention
//! (dismissed 90 days, confirmed 365, logs 30 days) deletes the dismissed alerts not in the
//! outbox, their evidence and their audit entries, in transactions of up to PRUNE_BATCH
//! rows. Each of the 5 runs starts from a fresh copy of the same file; medians are printed:
//! the whole pass, its longest transaction (how long the other connections may wait), and a
//! second pass with nothing left to delete as the baseline.
mod common;

use rusqlite::params;
use std::time::{Duration, Instant};
use streamguard::moderation::store::{AlertStore, PRUNE_BATCH, Pruned, Retention};

const DAY_MS: i64 = 86_400_000;

fn build(path: &std::path::Path, n: i64, now: i64) {
    common::build(path, |w| {
        let mut evidence = w
            .tx
            .prepare(
                "INSERT INTO evidence (alert_id, width, height, grey, created_at_ms) VALUES (?1, 96, 54, ?2, ?3)",
            )
            .unwrap();
        let grey = vec![128u8; 96 * 54];
        let old = now - 100 * DAY_MS;
        for id in 1..=n {
            let state = match id % 4 {
                0 | 1 => "dismissed",
                2 => "confirmed",
                _ => "open",
            };
            let stream = format!("live/stream-{}", id % 500);
            w.alert(
                id,
                &stream,
                state,
                old,
                &["alert_claimed", "alert_dismissed"],
            );
            if id % 4 == 1 {
                evidence.execute(params![id, grey, old]).unwrap();
            }
        }
        let mut outbox = w
            .tx
            .prepare(
                "INSERT INTO outbox (sink, msg_id, alert_id, payload, next_attempt_ms, created_at_ms)
                 VALUES ('hook', ?1, ?2, '{}', ?3, ?3)",
            )
            .unwrap();
        for id in (1..=n).filter(|i| i % 4 == 1).take(1000) {
            outbox
                .execute(params![format!("bench-{id}-raised"), id, old])
                .unwrap();
        }
    });
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let n = common::alerts_from_env(200_000);
    let dir = tempfile::tempdir().unwrap();
    let template = dir.path().join("template.db");
    let now = 1_800_000_000_000;
    let t = Instant::now();
    build(&template, n, now);
    eprintln!("built {n} alerts in {:.1} s", t.elapsed().as_secs_f64());
    let r = Retention {
        dismissed_days: 90,
        confirmed_days: 365,
        log_days: 30,
    };
    // Per run: the whole pass, its longest transaction (how long other connections may
    // wait), and a second pass with nothing left to delete.
    let (mut pass, mut longest, mut idle) = (Vec::new(), Vec::new(), Vec::new());
    let (mut deleted, mut batches) = (Pruned::default(), 0);
    for run in 0..5 {
        let path = dir.path().join(format!("run-{run}.db"));
        std::fs::copy(&template, &path).unwrap();
        let mut s = AlertStore::open(&path).unwrap();
        let mut txs = Vec::new();
        let t = Instant::now();
        deleted = s
            .prune_with(&r, now, PRUNE_BATCH, &mut |d| txs.push(d))
            .unwrap();
        pass.push(t.elapsed());
        batches = txs.len();
        longest.push(txs.into_iter().max().unwrap_or_default());
        let t = Instant::now();
        s.prune_at(&r, now).unwrap();
        idle.push(t.elapsed());
        drop(s);
        std::fs::remove_file(&path).unwrap();
    }
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "retention pass on {n} alerts: deleted {} alerts, {} thumbnails, {} audit entries in {batches} transactions of up to {PRUNE_BATCH} rows each; \
         whole pass median {:.0} ms, longest transaction median {:.0} ms; a pass with nothing to delete: median {:.1} ms (5 runs)",
        deleted.alerts,
        deleted.evidence,
        deleted.audit,
        ms(median(pass)),
        ms(median(longest)),
        ms(median(idle)),
    );
}
