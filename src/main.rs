//! The `streamguard` command line: thin; the work is in the library.
use anyhow::Context;
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use streamguard::analysis::bank::BankSet;
use streamguard::analysis::pdq::{PdqHasher, RgbImage};
use streamguard::app::{self, App};
use streamguard::config::{IngestServer, Source};
use streamguard::moderation::store::AlertStore;
use streamguard::telemetry;

#[derive(Parser)]
#[command(
    name = "streamguard",
    version,
    about = "Watches live streams and raises alerts when known material appears"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Prints `<64 hex> <quality> <file>` for each image file (PNG, JPEG, BMP).
    Hash {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Validates a configuration file (default: the embedded one) and the banks it names;
    /// prints every problem and exits non-zero if there is any.
    CheckConfig { file: Option<PathBuf> },
    /// Runs the daemon on a configuration (default: the embedded demo one) until Ctrl-C
    /// (or SIGTERM), or, without stream discovery, until every stream has ended.
    Run {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Lists the alerts in the store of a configuration (default: the embedded one).
    Alerts {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Replays recorded H.264 files through the daemon's own ingest, sampling, analysis and
    /// policy code, as fast as the machine allows (stream time drives every clock; nothing is
    /// stored or halted), and scores the alerts against labelled intervals: per file and
    /// overall, items detected or missed, time to detect, frames decoded and analysed,
    /// CPU-seconds. Each `--compare` policy replays every file again, side by side.
    Replay {
        #[arg(long)]
        config: Option<PathBuf>,
        /// JSON file: file name -> list of [start_s, end_s] in which prohibited content (a
        /// synthetic stand-in) is visible; names relative to this file's folder.
        #[arg(long)]
        labels: PathBuf,
        /// Print the results as JSON instead of tables.
        #[arg(long)]
        json: bool,
        /// Another sampling policy to replay with: `adaptive` (the config's
        /// [sampler.adaptive]), `all:MS` (decode every frame, analyse one per MS ms, as
        /// fixed-interval tools do) or `keyframes:MS`. Repeatable.
        #[arg(long = "compare", value_name = "POLICY")]
        compare: Vec<String>,
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Replays the files once per combination of swept config values (any key, e.g.
    /// `sampler.adaptive.hold_ms=2000,6000`; `banks.0.threshold` for a bank), in parallel,
    /// and writes to OUT: results.csv, results.json, frontier.png/svg (time to detect against
    /// CPU, the Pareto frontier and the current config marked) and report.md (the frontier
    /// configurations with their config snippets). With --estimate-capacity, also prints how
    /// many such streams one core watches at each frontier point; with it and no --sweep,
    /// reads OUT/results.json of an earlier run.
    Tune {
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(long)]
        labels: Option<PathBuf>,
        /// KEY=V1,V2,...: one config key and its values. Repeatable: every combination runs.
        #[arg(long = "sweep", value_name = "KEY=V1,V2,...")]
        sweeps: Vec<String>,
        #[arg(long, default_value = "tune-out")]
        out: PathBuf,
        /// Replays at once (default: the number of cores).
        #[arg(long)]
        jobs: Option<usize>,
        #[arg(long)]
        estimate_capacity: bool,
        files: Vec<PathBuf>,
    },
    /// Runs an ONNX classifier (a folder with model.toml, see models/README.md) on images and
    /// prints one line per image with every label's score. Loads ONNX Runtime from
    /// ORT_DYLIB_PATH or .onnxruntime/ (scripts/setup.sh).
    Classify {
        /// The model's folder (holding model.toml).
        #[arg(long)]
        model: PathBuf,
        /// Intra-op threads.
        #[arg(long, default_value_t = 1)]
        threads: usize,
        #[arg(required = true)]
        images: Vec<PathBuf>,
    },
    /// Hash banks: sizes and costs, and matching images against them.
    Bank {
        #[command(subcommand)]
        command: BankCommand,
    },
}

#[derive(Subcommand)]
enum BankCommand {
    /// Loads every bank of a configuration (default: the embedded one) and prints, per bank,
    /// its entries, files, memory, parse and index build time, index layout and version.
    Stats {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Matches images against every bank of a configuration: one line per image and matching
    /// bank with the item id, label, distance, the rotation or mirror that matched, and the
    /// bank's action.
    Match {
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(required = true)]
        images: Vec<PathBuf>,
    },
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Hash { files } => hash(&files),
        Command::CheckConfig { file } => check_config(file),
        Command::Run { config } => run(config),
        Command::Alerts { config } => alerts(config),
        Command::Classify {
            model,
            threads,
            images,
        } => classify(&model, threads, &images),
        Command::Tune {
            config,
            labels,
            sweeps,
            out,
            jobs,
            estimate_capacity,
            files,
        } => tune(config, labels, &sweeps, out, jobs, estimate_capacity, files),
        Command::Replay {
            config,
            labels,
            json,
            compare,
            files,
        } => replay(config, &labels, json, &compare, &files),
        Command::Bank {
            command: BankCommand::Stats { config },
        } => bank_stats(config),
        Command::Bank {
            command: BankCommand::Match { config, images },
        } => bank_match(config, &images),
    }
}

fn load_banks(config: Option<PathBuf>) -> Result<Arc<BankSet>, ExitCode> {
    let source = config.map_or(Source::Embedded, Source::File);
    let cfg = load(&source)?;
    BankSet::load(&cfg.banks).map_err(|errs| {
        for e in errs {
            eprintln!("error: {e}");
        }
        ExitCode::from(2)
    })
}

fn bank_stats(config: Option<PathBuf>) -> ExitCode {
    let banks = match load_banks(config) {
        Ok(b) => b,
        Err(code) => return code,
    };
    println!("bank\tentries\tfiles\tmemory_mib\tparse_ms\tbuild_ms\tlayout\tversion");
    for b in banks.snapshot() {
        let s = b.stats();
        println!(
            "{}\t{}\t{}\t{:.1}\t{:.0}\t{:.0}\t{}\t{}",
            s.name,
            s.entries,
            s.files,
            s.memory_bytes as f64 / 1048576.0,
            s.parse_ms,
            s.build_ms,
            s.layout,
            s.version.fingerprint
        );
    }
    if let Some(peak) = telemetry::peak_rss_bytes() {
        println!("# process peak RSS {:.1} MiB", peak as f64 / 1048576.0);
    }
    ExitCode::SUCCESS
}

fn bank_match(config: Option<PathBuf>, images: &[PathBuf]) -> ExitCode {
    let banks = match load_banks(config) {
        Ok(b) => b,
        Err(code) => return code,
    };
    let banks = banks.snapshot();
    let mut hasher = PdqHasher::new();
    let mut failed = false;
    println!("image\tquality\tbank\tid\tlabel\tdistance\tvariant\taction");
    for file in images {
        let img = match read_rgb(file) {
            Ok(img) => img,
            Err(e) => {
                eprintln!("error: {e:#}");
                failed = true;
                continue;
            }
        };
        let d = hasher.hash_rgb_dihedral(RgbImage::packed(
            img.as_raw(),
            img.width() as usize,
            img.height() as usize,
        ));
        let mut any = false;
        for bank in &banks {
            if let Some(m) = bank.best_match(&d.hashes) {
                any = true;
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    file.display(),
                    d.quality,
                    m.bank,
                    m.id,
                    m.label.as_deref().unwrap_or("-"),
                    m.distance,
                    m.variant.name(),
                    m.action.as_str()
                );
            }
        }
        if !any {
            println!("{}\t{}\t-\t-\t-\t-\t-\tno match", file.display(), d.quality);
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn classify(model: &Path, threads: usize, images: &[PathBuf]) -> ExitCode {
    let mut c = match streamguard::classify::Classifier::load(model, None, threads) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let mut failed = false;
    for file in images {
        let scores = read_rgb(file).and_then(|img| {
            c.classify(RgbImage::packed(
                img.as_raw(),
                img.width() as usize,
                img.height() as usize,
            ))
            .map_err(anyhow::Error::from)
        });
        match scores {
            Ok(s) => {
                // One score per label: checked at every inference.
                let parts: Vec<String> = c
                    .manifest
                    .labels
                    .iter()
                    .zip(&s)
                    .map(|(l, v)| format!("{l}={v:.6}"))
                    .collect();
                println!("{}\t{}", file.display(), parts.join("\t"));
            }
            Err(e) => {
                eprintln!("error: {}: {e:#}", file.display());
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn hash(files: &[PathBuf]) -> ExitCode {
    let mut hasher = PdqHasher::new();
    let mut failed = false;
    for file in files {
        match hash_one(&mut hasher, file) {
            Ok(line) => println!("{line}"),
            Err(e) => {
                eprintln!("error: {e:#}");
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Reads an image file (PNG, JPEG, BMP) as 8-bit RGB, naming the file on failure.
fn read_rgb(file: &Path) -> anyhow::Result<image::RgbImage> {
    Ok(image::open(file)
        .with_context(|| format!("{}: cannot read image", file.display()))?
        .into_rgb8())
}

fn hash_one(hasher: &mut PdqHasher, file: &Path) -> anyhow::Result<String> {
    let img = read_rgb(file)?;
    let out = hasher.hash_rgb(RgbImage::packed(
        img.as_raw(),
        img.width() as usize,
        img.height() as usize,
    ));
    Ok(format!("{} {} {}", out.hash, out.quality, file.display()))
}

/// Loads a configuration, printing its problems; the error is the exit code to return.
fn load(source: &Source) -> Result<streamguard::config::Config, ExitCode> {
    source.load().map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(2)
    })
}

fn check_config(file: Option<PathBuf>) -> ExitCode {
    let source = file.map_or(Source::Embedded, Source::File);
    let cfg = match load(&source) {
        Ok(cfg) => cfg,
        Err(code) => return code,
    };
    match app::preflight(&cfg, true) {
        Ok(checked) => {
            let banks = checked.banks.snapshot();
            let entries: usize = banks.iter().map(|b| b.len()).sum();
            println!(
                "{source}: ok ({} stream(s), {} bank(s) with {entries} hash(es), {} model(s))",
                cfg.streams.len(),
                banks.len(),
                cfg.classify.models.len()
            );
            ExitCode::SUCCESS
        }
        Err(problems) => {
            eprintln!("error: config {source} has {} problem(s):", problems.len());
            for p in problems {
                eprintln!("  - {p}");
            }
            ExitCode::from(2)
        }
    }
}

fn run(config: Option<PathBuf>) -> ExitCode {
    let source = config.map_or(Source::Embedded, Source::File);
    let cfg = match load(&source) {
        Ok(cfg) => cfg,
        Err(code) => return code,
    };
    telemetry::init_logging(&cfg.daemon.log_level);
    let (stop_tx, stop_rx) = crossbeam_channel::bounded::<()>(1);
    if let Err(e) = ctrlc::set_handler(move || {
        let _ = stop_tx.try_send(());
    }) {
        eprintln!("error: cannot install signal handler: {e}");
        return ExitCode::FAILURE;
    }
    let app = match App::start(&cfg) {
        Ok(app) => app,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    tracing::info!(config = %source, store = %cfg.store.path.display(), "streamguard running; Ctrl-C stops");
    loop {
        if stop_rx.recv_timeout(Duration::from_millis(500)).is_ok() {
            tracing::info!("stopping");
            break;
        }
        if cfg.ingest.server == IngestServer::None && app.wait_streams_finished(Duration::ZERO) {
            tracing::info!("every stream has ended");
            break;
        }
    }
    app.shutdown();
    tracing::info!("stopped cleanly");
    ExitCode::SUCCESS
}

fn replay(
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
    telemetry::init_logging("warn");
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

fn tune(
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

fn alerts(config: Option<PathBuf>) -> ExitCode {
    let source = config.map_or(Source::Embedded, Source::File);
    let result = source.load().map_err(|e| e.to_string()).and_then(|cfg| {
        AlertStore::open(&cfg.store.path)
            .and_then(|s| s.alerts())
            .map_err(|e| e.to_string())
    });
    match result {
        Ok(rows) => {
            println!(
                "id\tstream\treason\tbank\titem\tdistance\tquality\tframe_ms\thits\tstate\taction\tvariant"
            );
            for a in rows {
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    a.id,
                    a.stream,
                    a.reason,
                    a.bank,
                    a.item_id,
                    a.distance,
                    a.quality,
                    a.frame_pts_ms,
                    a.hits,
                    a.state,
                    a.action,
                    a.variant
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
