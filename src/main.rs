//! The `streamguard` command line: parses the arguments and hands each subcommand to `cli`;
//! the work is in the library.
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

mod cli;

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
    /// Lists the alerts in the store of a configuration (default: the embedded one), oldest
    /// first; never creates a store (a missing one is an error naming its path).
    Alerts {
        #[arg(long)]
        config: Option<PathBuf>,
        /// Only alerts in this state: open, claimed, confirmed or dismissed.
        #[arg(long)]
        state: Option<String>,
        /// Only the alerts of this stream (a discovered stream's id is app/name).
        #[arg(long)]
        stream: Option<String>,
        /// Only the newest N (after the other filters).
        #[arg(long)]
        limit: Option<usize>,
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
    /// Builds a bank file (`<hash>,<id>[,<label>]`, format `csv`) from image files and folders
    /// (PNG, JPEG, BMP, searched recursively), on every core. Ids are the file names (the
    /// path under a folder given, without the extension) unless `--ids` gives them. Hashes
    /// below `--min-quality` are reported and left out. Written whole, then renamed over
    /// `--out`, so a daemon watching the file never reads half of it.
    Build(cli::bank_build::BuildArgs),
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
        Command::Hash { files } => cli::hash::hash(&files),
        Command::CheckConfig { file } => cli::run::check_config(file),
        Command::Run { config } => cli::run::run(config),
        Command::Alerts {
            config,
            state,
            stream,
            limit,
        } => cli::run::alerts(config, state.as_deref(), stream, limit),
        Command::Classify {
            model,
            threads,
            images,
        } => cli::classify::classify(&model, threads, &images),
        Command::Tune {
            config,
            labels,
            sweeps,
            out,
            jobs,
            estimate_capacity,
            files,
        } => cli::replay::tune(config, labels, &sweeps, out, jobs, estimate_capacity, files),
        Command::Replay {
            config,
            labels,
            json,
            compare,
            files,
        } => cli::replay::replay(config, &labels, json, &compare, &files),
        Command::Bank {
            command: BankCommand::Stats { config },
        } => cli::bank::stats(config),
        Command::Bank {
            command: BankCommand::Match { config, images },
        } => cli::bank::match_images(config, &images),
        Command::Bank {
            command: BankCommand::Build(args),
        } => cli::bank_build::build(&args),
    }
}
