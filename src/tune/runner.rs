//! Replaying the combinations: one `streamguard replay --json` child process each (its CPU
//! time is its own), `jobs` at a time, with a progress line on a terminal.

use super::{Combo, Plan, Row, TuneError};
use crate::replay::report::Summary;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Replays every combination, `jobs` child processes at a time, with a progress line on a
/// terminal. Fails if any replay fails.
pub fn run(plan: &Plan, combos: &[Combo]) -> Result<Vec<Row>, TuneError> {
    let exe = std::env::current_exe().map_err(|e| TuneError::Replay(e.to_string()))?;
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    // After a failure no new replay starts (the run fails anyway).
    let failed = std::sync::atomic::AtomicBool::new(false);
    let results: Mutex<Vec<Option<Result<Summary, String>>>> = Mutex::new(vec![None; combos.len()]);
    let tty = std::io::stderr().is_terminal();
    let started = std::time::Instant::now();
    std::thread::scope(|s| {
        for _ in 0..plan.jobs.max(1).min(combos.len()) {
            s.spawn(|| {
                loop {
                    if failed.load(Ordering::Relaxed) {
                        break;
                    }
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(c) = combos.get(i) else { break };
                    let r = replay_one(&exe, plan, c);
                    if r.is_err() {
                        failed.store(true, Ordering::Relaxed);
                    }
                    results.lock().expect("results")[i] = Some(r);
                    let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                    if tty {
                        eprint!(
                            "\r\x1b[2K[tune] {n}/{} configurations replayed ({:.0} s)",
                            combos.len(),
                            started.elapsed().as_secs_f64()
                        );
                        let _ = std::io::stderr().flush();
                    }
                }
            });
        }
    });
    if tty {
        eprintln!();
    }
    let results = results.into_inner().expect("results");
    if let Some((c, Some(Err(e)))) = combos
        .iter()
        .zip(&results)
        .find(|(_, r)| matches!(r, Some(Err(_))))
    {
        return Err(TuneError::Replay(format!("{}: {e}", c.id)));
    }
    let mut rows = Vec::new();
    for (c, r) in combos.iter().zip(results) {
        match r {
            Some(Ok(summary)) => rows.push(Row {
                combo: c.clone(),
                summary,
            }),
            _ => return Err(TuneError::Replay(format!("{}: not run", c.id))),
        }
    }
    Ok(rows)
}

fn replay_one(exe: &Path, plan: &Plan, c: &Combo) -> Result<Summary, String> {
    let out = Command::new(exe)
        .arg("replay")
        .arg("--config")
        .arg(&c.config)
        .arg("--labels")
        .arg(&plan.labels)
        .arg("--json")
        .args(&plan.files)
        .output()
        .map_err(|e| format!("cannot start replay: {e}"))?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|_| {
        format!(
            "replay failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )
    })?;
    let summary: Summary = serde_json::from_value(v["overall"][0].clone())
        .map_err(|e| format!("unexpected replay output: {e}"))?;
    if summary.failed_files > 0 {
        return Err(format!(
            "{} file(s) failed: {}",
            summary.failed_files,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(summary)
}
