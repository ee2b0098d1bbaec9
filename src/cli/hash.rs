//! `streamguard hash`: the PDQ hash and quality of image files.

use super::read_rgb;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use streamguard::analysis::pdq::{PdqHasher, RgbImage};

pub fn hash(files: &[PathBuf]) -> ExitCode {
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

fn hash_one(hasher: &mut PdqHasher, file: &Path) -> anyhow::Result<String> {
    let img = read_rgb(file)?;
    let out = hasher.hash_rgb(RgbImage::packed(
        img.as_raw(),
        img.width() as usize,
        img.height() as usize,
    ));
    Ok(format!("{} {} {}", out.hash, out.quality, file.display()))
}
