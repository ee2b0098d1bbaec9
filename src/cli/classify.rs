//! `streamguard classify`: an ONNX classifier's scores on image files.

use super::read_rgb;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use streamguard::analysis::pdq::RgbImage;

pub fn classify(model: &Path, threads: usize, images: &[PathBuf]) -> ExitCode {
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
