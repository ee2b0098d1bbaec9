//! The `streamguard` command line: thin; the work is in the library.
use anyhow::Context;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use streamguard::analysis::bank;
use streamguard::analysis::pdq::{PdqHasher, RgbImage};
use streamguard::config::Source;

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
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Hash { files } => hash(&files),
        Command::CheckConfig { file } => check_config(file),
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

fn check_config(file: Option<PathBuf>) -> ExitCode {
    let source = file.map_or(Source::Embedded, Source::File);
    let cfg = match source.load() {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    match bank::load_all(&cfg.banks) {
        Ok(banks) => {
            let entries: usize = banks.iter().map(|b| b.len()).sum();
            println!(
                "{source}: ok ({} stream(s), {} bank(s) with {entries} hash(es))",
                cfg.streams.len(),
                banks.len()
            );
            ExitCode::SUCCESS
        }
        Err(errors) => {
            eprintln!("error: config {source} has {} problem(s):", errors.len());
            for e in errors {
                eprintln!("  - {e}");
            }
            ExitCode::from(2)
        }
    }
}
