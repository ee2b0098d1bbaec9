//! What the moderation API's list queries cost on a large alert store: the console runs
//! them on every live refresh, holding the control plane's store lock.
//!
//!   cargo bench --bench queries            (ALERTS=1000000 by default)
//!
//! The database: ALERTS alerts over 5,000 streams, all closed but every 10,000th (open),
//! two audit entries each. Each query runs 21 times; medians are printed, with the ratio
//! to the baseline of its table measured in the same run: the newest page with no filter
//! (`/api/v1/alerts?limit=200`, `/api/v1/audit?limit=200`), which reads only that page.
mod common;

use std::time::{Duration, Instant};
use streamguard::moderation::store::{AlertFilter, AlertStore, AuditFilter};

const STREAMS: i64 = 5_000;

fn build(path: &std::path::Path, n: i64) {
    common::build(path, |w| {
        for id in 1..=n {
            let state = match id % 10_000 {
                0 => "open",
                1..=5000 => "dismissed",
                _ => "confirmed",
            };
            let stream = format!("live/stream-{}", id % STREAMS);
            w.alert(
                id,
                &stream,
                state,
                id,
                &["alert_claimed", "alert_dismissed"],
            );
        }
    });
}

fn median_of(mut f: impl FnMut() -> usize) -> (Duration, usize) {
    let mut times = Vec::new();
    let mut rows = 0;
    for _ in 0..21 {
        let t = Instant::now();
        rows = f();
        times.push(t.elapsed());
    }
    times.sort();
    (times[times.len() / 2], rows)
}

fn main() {
    let n = common::alerts_from_env(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alerts.db");
    let t = Instant::now();
    build(&path, n);
    eprintln!("built {n} alerts in {:.1} s", t.elapsed().as_secs_f64());
    let s = AlertStore::open(&path).unwrap();
    let list = |f: AlertFilter| s.list_alerts(&f).unwrap().len();
    let audit = |f: AuditFilter| s.audit(&f).unwrap().len();
    let page = |state: Option<&str>, stream: Option<&str>| AlertFilter {
        state: state.and_then(streamguard::domain::AlertState::parse),
        stream: stream.map(str::to_string),
        limit: 200,
        ..AlertFilter::default()
    };
    let log = |stream: Option<&str>, alert: Option<i64>| AuditFilter {
        stream: stream.map(str::to_string),
        alert,
        limit: 200,
        ..AuditFilter::default()
    };
    let old = n / 10; // an alert far from the newest page
    let old_stream = format!("live/stream-{}", old % STREAMS);
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let (base, _) = median_of(|| list(page(None, None)));
    println!("{n} alerts, medians of 21:");
    println!(
        "  alerts?limit=200 (baseline)             {:>9.3} ms",
        ms(base)
    );
    for (what, f) in [
        ("alerts?state=open", page(Some("open"), None)),
        ("alerts?state=dismissed", page(Some("dismissed"), None)),
        (
            "alerts?stream=<one of 5,000>",
            page(None, Some(&old_stream)),
        ),
    ] {
        let (d, rows) = median_of(|| list(f.clone()));
        println!(
            "  {what:<38}  {:>9.3} ms  {:>7.1}x  ({rows} rows)",
            ms(d),
            d.as_secs_f64() / base.as_secs_f64()
        );
    }
    let (base, _) = median_of(|| audit(log(None, None)));
    println!(
        "  audit?limit=200 (baseline)              {:>9.3} ms",
        ms(base)
    );
    for (what, f) in [
        ("audit?alert=<an old alert>", log(None, Some(old))),
        ("audit?stream=<one of 5,000>", log(Some(&old_stream), None)),
    ] {
        let (d, rows) = median_of(|| audit(f.clone()));
        println!(
            "  {what:<38}  {:>9.3} ms  {:>7.1}x  ({rows} rows)",
            ms(d),
            d.as_secs_f64() / base.as_secs_f64()
        );
    }
    // For comparison, the same lookups written with one statement for every filter
    // combination, `(?n IS NULL OR col = ?n)`: SQLite can use no index for such a term.
    let c = rusqlite::Connection::open(&path).unwrap();
    let raw = |sql: &str, args: &[&dyn rusqlite::ToSql]| {
        let mut stmt = c.prepare_cached(sql).unwrap();
        stmt.query_map(args, |_| Ok(())).unwrap().count()
    };
    println!("  the same, with (?n IS NULL OR col = ?n) terms:");
    let none: Option<String> = None;
    let (d, rows) = median_of(|| {
        raw(
            "SELECT id FROM alerts WHERE (?1 IS NULL OR state = ?1) AND (?2 IS NULL OR stream = ?2)
             ORDER BY id DESC LIMIT 200",
            &[&"open", &none],
        )
    });
    println!(
        "  {:<38}  {:>9.3} ms  ({rows} rows)",
        "alerts?state=open",
        ms(d)
    );
    let (d, rows) = median_of(|| {
        raw(
            "SELECT id FROM stream_events WHERE (?1 IS NULL OR stream = ?1) AND (?2 IS NULL OR alert_id = ?2)
             ORDER BY id DESC LIMIT 200",
            &[&none, &old],
        )
    });
    println!(
        "  {:<38}  {:>9.3} ms  ({rows} rows)",
        "audit?alert=<an old alert>",
        ms(d)
    );
}
