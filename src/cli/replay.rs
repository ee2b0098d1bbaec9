//! `streamguard replay` and `streamguard tune`: recordings replayed through the daemon's
//! own code and scored against labels, once or once per swept configuration.

use super::load;
use anyhow::Context;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use streamguard::config::Source;
use streamguard::telemetry;

pub fn replay(
    config: Option<PathBuf>,
    labels: &Path,
    json: bool,
    compare: &[String],
    files: &[PathBuf],
) -> ExitCode {
    use std::io::{IsTerminal, Write};
    use streamguard::replay::{Policy, Replayer, report, score};
    let source = config.map_or(Source::Embedded, Source::File);
    let cfg = match load(&source) {
        Ok(cfg) => cfg,
        Err(code) => return code,
    };
    telemetry::init_logging("warn", streamguard::config::LogFormat::Text);
    // Every input is checked before the first replay starts.
    let fail = |e: &dyn std::fmt::Display| {
        eprintln!("error: {e}");
        ExitCode::from(2)
    };
    let intervals = match streamguard::replay::ground_truth(labels, files) {
        Ok(i) => i,
        Err(e) => return fail(&e),
    };
    let mut policies = vec![Policy::from_config(&cfg)];
    for spec in compare {
        if compare.iter().filter(|s| *s == spec).count() > 1 {
            return fail(&format!("--compare '{spec}' given twice"));
        }
        match Policy::parse(spec, &cfg.sampler) {
            Ok(p) => policies.push(p),
            Err(e) => return fail(&e),
        }
    }
    for p in &policies[1..] {
        if p.sampler.mode == streamguard::config::SamplingMode::Adaptive {
            let problems = p.sampler.adaptive.problems("sampler.adaptive");
            if let Some((k, m)) = problems.first() {
                return fail(&format!("--compare {}: {k}: {m}", p.name));
            }
        }
    }
    let replayer = match Replayer::new(&cfg) {
        Ok(r) => r,
        Err(e) => return fail(&e),
    };
    let tty = std::io::stderr().is_terminal();
    let total = files.len() * policies.len();
    let mut outcomes = Vec::new();
    for (f, iv) in files.iter().zip(&intervals) {
        for p in &policies {
            let n = outcomes.len() + 1;
            let name = f.display().to_string();
            let mut bar = |pr: streamguard::replay::Progress| {
                if tty {
                    let pos = match pr.duration_s {
                        Some(d) if d > 0.0 => format!(
                            "{:5.1}/{d:.1} s {:3.0}%",
                            pr.position_s,
                            100.0 * pr.position_s / d
                        ),
                        _ => format!("{:5.1} s", pr.position_s),
                    };
                    eprint!("\r\x1b[2K[{n}/{total}] {name} {} {pos}", p.name);
                    let _ = std::io::stderr().flush();
                }
            };
            let result = match replayer.run_file(f, p, &mut bar) {
                Ok(run) => {
                    let (items, false_matches) = score(iv, &run.detections);
                    report::RunResult::Done {
                        run,
                        items,
                        false_matches,
                    }
                }
                Err(e) => {
                    if tty {
                        eprint!("\r\x1b[2K");
                    }
                    eprintln!("error: {e}");
                    report::RunResult::Failed {
                        error: e.to_string(),
                    }
                }
            };
            outcomes.push(report::Outcome {
                file: name,
                policy: p.name.clone(),
                result,
            });
        }
    }
    if tty {
        eprint!("\r\x1b[2K");
    }
    let summaries: Vec<_> = policies
        .iter()
        .map(|p| report::summarise(p, &outcomes))
        .collect();
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report::json(&outcomes, &summaries))
                .expect("report serialises")
        );
    } else {
        print!("{}", report::text(&outcomes, &summaries));
    }
    if summaries.iter().any(|s| s.failed_files > 0) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

pub fn tune(
    config: Option<PathBuf>,
    labels: Option<PathBuf>,
    sweeps: &[String],
    out: PathBuf,
    jobs: Option<usize>,
    estimate_capacity: bool,
    files: Vec<PathBuf>,
) -> ExitCode {
    use streamguard::tune::{self, Plan, Sweep, frontier, output};
    let fail = |e: &dyn std::fmt::Display| {
        eprintln!("error: {e}");
        ExitCode::from(2)
    };
    if sweeps.is_empty() {
        if !estimate_capacity {
            return fail(&"give at least one --sweep KEY=V1,V2,...");
        }
        let path = out.join("results.json");
        return match tune::load_results(&path) {
            Ok((rows, front)) => {
                print!("{}", output::capacity(&rows, &front));
                ExitCode::SUCCESS
            }
            Err(e) => fail(&e),
        };
    }
    // Every input is checked before the first replay starts.
    let mut parsed = Vec::new();
    for s in sweeps {
        match Sweep::parse(s) {
            Ok(s) => parsed.push(s),
            Err(e) => return fail(&e),
        }
    }
    let Some(labels) = labels else {
        return fail(&"--labels is required with --sweep");
    };
    if files.is_empty() {
        return fail(&"give the files to replay");
    }
    if let Err(e) = streamguard::replay::ground_truth(&labels, &files) {
        return fail(&e);
    }
    let plan = Plan {
        base: config.map_or(Source::Embedded, Source::File),
        labels,
        sweeps: parsed,
        out: out.clone(),
        files,
        jobs: jobs.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        }),
    };
    let combos = match tune::prepare(&plan) {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    eprintln!(
        "[tune] {} configurations ({} combinations and the current config) x {} files, {} at a time",
        combos.len(),
        combos.len() - 1,
        plan.files.len(),
        plan.jobs
    );
    let rows = match tune::run(&plan, &combos) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let front = frontier::pareto(&rows);
    let timeouts: u64 = rows.iter().map(|r| r.summary.feedback_timeouts).sum();
    if timeouts > 0 {
        eprintln!(
            "warning: {timeouts} analysed frames had no result within 2 s (recordings with B-frames?): adaptive rows are not faithful"
        );
    }
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let written = (|| -> anyhow::Result<()> {
        let w = |name: &str, text: String| {
            std::fs::write(out.join(name), text)
                .with_context(|| format!("{}", out.join(name).display()))
        };
        w("results.csv", output::csv(&plan.sweeps, &rows, &front))?;
        w(
            "results.json",
            serde_json::to_string_pretty(&output::json(&rows, &front))?,
        )?;
        frontier::draw(&out, &rows, &front).map_err(anyhow::Error::msg)?;
        w(
            "report.md",
            output::report(&command, &plan.sweeps, &rows, &front),
        )?;
        Ok(())
    })();
    if let Err(e) = written {
        eprintln!("error: {e:#}");
        return ExitCode::FAILURE;
    }
    println!("id\tvalues\tfound\tttd_median_s\tcpu_s_per_stream_min\tfrontier");
    for (i, r) in rows.iter().enumerate() {
        let s = &r.summary;
        let values = r.combo.settings(" ");
        println!(
            "{}\t{}\t{}/{}\t{}\t{:.3}\t{}",
            r.combo.id,
            if values.is_empty() {
                "(base)".into()
            } else {
                values
            },
            s.detected,
            s.items,
            s.ttd_median_s.map_or("-".into(), |v| format!("{v:.3}")),
            s.cpu_s_per_stream_min,
            if front.contains(&i) { "yes" } else { "" }
        );
    }
    if estimate_capacity {
        println!();
        print!("{}", output::capacity(&rows, &front));
    }
    eprintln!("[tune] results in {}", out.display());
    ExitCode::SUCCESS
}
