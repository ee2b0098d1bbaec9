//! `streamguard hash`: the PDQ hash and quality of image files, on every core, printed in
//! the order given.

use std::path::PathBuf;
use std::process::ExitCode;

pub fn hash(files: &[PathBuf]) -> ExitCode {
    let todo: Vec<(String, PathBuf)> = files.iter().map(|f| (String::new(), f.clone())).collect();
    let mut failed = false;
    for ((_, file), r) in todo.iter().zip(super::bank_build::hash_all(&todo, false)) {
        match r {
            Ok((hash, quality)) => println!("{hash} {quality} {}", file.display()),
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
