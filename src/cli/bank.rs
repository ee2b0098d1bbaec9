//! `streamguard bank stats` and `streamguard bank match`: a configuration's banks, their
//! sizes and costs, and images matched against them.

use super::{load, read_rgb};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use streamguard::analysis::bank::BankSet;
use streamguard::analysis::pdq::{PdqHasher, RgbImage};
use streamguard::config::Source;
use streamguard::telemetry;

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

pub fn stats(config: Option<PathBuf>) -> ExitCode {
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

pub fn match_images(config: Option<PathBuf>, images: &[PathBuf]) -> ExitCode {
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
