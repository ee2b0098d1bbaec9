//! The subcommands, one module per group, and what they share: loading a configuration
//! and reading an image. `main.rs` parses the command line and calls into these.

pub mod bank;
pub mod bank_build;
pub mod classify;
pub mod hash;
pub mod replay;
pub mod run;

use anyhow::Context;
use std::path::Path;
use std::process::ExitCode;
use streamguard::config::Source;

/// Loads a configuration, printing its problems; the error is the exit code to return.
pub fn load(source: &Source) -> Result<streamguard::config::Config, ExitCode> {
    source.load().map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(2)
    })
}

/// Reads an image file (PNG, JPEG, BMP) as 8-bit RGB, naming the file on failure.
pub fn read_rgb(file: &Path) -> anyhow::Result<image::RgbImage> {
    Ok(image::open(file)
        .with_context(|| format!("{}: cannot read image", file.display()))?
        .into_rgb8())
}
