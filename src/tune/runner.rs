//! Replaying the combinations: one `streamguard replay --json` child process each (its CPU
//! time is its own), `jobs` at a time, with a progress line on a terminal.

use super::{Combo, Plan, Row, TuneError};
use crate::replay::report::Summary;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Why one configuration's replay failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot start replay: {0}")]
    Start(#[source] std::io::Error),
    /// It printed no JSON; what it printed on stderr.
    #[error("replay failed: {stderr}")]
    Failed { stderr: String },
    #[error("unexpected replay output: {0}")]
    Output(#[source] serde_json::Error),
    /// Some files did not replay; what it printed on stderr.
    #[error("{count} file(s) failed: {stderr}")]
    Files { count: usize, stderr: String },
}

/// Replays every combination, `jobs` child processes at a time, with a progress line on a
/// terminal. Fails if any replay fails.
pub fn run(plan: &Plan, combos: &[Combo]) -> Result<Vec<Row>, TuneError> {
    let exe = std::env::current_exe().map_err(|e| TuneError::Replay(e.to_string()))?;
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    // After a failure no new replay starts (the run fails anyway).
    let failed = std::sync::atomic::AtomicBool::new(false);
    let results: Mutex<Vec<Option<Result<Summary, RunError>>>> =
        Mutex::new(combos.iter().map(|_| None).collect());
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
    // The first failure, else the first configuration not run.
    let mut rows = Vec::new();
    let mut not_run = None;
    for (c, r) in combos.iter().zip(results) {
        match r {
            Some(Ok(summary)) => rows.push(Row {
                combo: c.clone(),
                summary,
            }),
            Some(Err(source)) => {
                return Err(TuneError::Run {
                    combo: c.id.clone(),
                    source,
                });
            }
            None => {
                not_run.get_or_insert(&c.id);
            }
        }
    }
    match not_run {
        Some(id) => Err(TuneError::Replay(format!("{id}: not run"))),
        None => Ok(rows),
    }
}

fn replay_one(exe: &Path, plan: &Plan, c: &Combo) -> Result<Summary, RunError> {
    let out = Command::new(exe)
        .arg("replay")
        .arg("--config")
        .arg(&c.config)
        .arg("--labels")
        .arg(&plan.labels)
        .arg("--json")
        .args(&plan.files)
        .output()
        .map_err(RunError::Start)?;
    let stderr = || String::from_utf8_lossy(&out.stderr).trim().to_string();
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|_| RunError::Failed { stderr: stderr() })?;
    let summary: Summary =
        serde_json::from_value(v["overall"][0].clone()).map_err(RunError::Output)?;
    if summary.failed_files > 0 {
        return Err(RunError::Files {
            count: summary.failed_files,
            stderr: stderr(),
        });
    }
    Ok(summary)
}
