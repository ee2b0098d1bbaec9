//! The `streamguard` command line: thin; the work is in the library.
use anyhow::Context;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use streamguard::analysis::pdq::{PdqHasher, RgbImage};
use streamguard::app::{self, App};
use streamguard::config::Source;
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
    /// (or SIGTERM), or until every stream has ended.
    Run {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Lists the alerts in the store of a configuration (default: the embedded one).
    Alerts {
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Hash { files } => hash(&files),
        Command::CheckConfig { file } => check_config(file),
        Command::Run { config } => run(config),
        Command::Alerts { config } => alerts(config),
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

fn hash_one(hasher: &mut PdqHasher, file: &PathBuf) -> anyhow::Result<String> {
    let img = image::open(file)
        .with_context(|| format!("{}: cannot read image", file.display()))?
        .into_rgb8();
    let (w, h) = (img.width() as usize, img.height() as usize);
    let out = hasher.hash_rgb(RgbImage {
        data: img.as_raw(),
        width: w,
        height: h,
        stride: 3 * w,
    });
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
    match app::preflight(&cfg) {
        Ok(checked) => {
            let banks = checked.banks;
            let entries: usize = banks.iter().map(|b| b.len()).sum();
            println!(
                "{source}: ok ({} stream(s), {} bank(s) with {entries} hash(es))",
                cfg.streams.len(),
                banks.len()
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
        if app.wait_streams_finished(Duration::ZERO) {
            tracing::info!("every stream has ended");
            break;
        }
    }
    app.shutdown();
    tracing::info!("stopped cleanly");
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
            println!("id\tstream\treason\tbank\titem\tdistance\tquality\tframe_ms\thits\tstate");
            for a in rows {
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    a.id,
                    a.stream,
                    a.reason,
                    a.bank,
                    a.item_id,
                    a.distance,
                    a.quality,
                    a.frame_pts_ms,
                    a.hits,
                    a.state
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
