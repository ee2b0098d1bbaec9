use super::Problem;
use serde::Deserialize;
use std::collections::HashSet;
use std::path::PathBuf;

/// `[analysis]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct AnalysisConfig {
    /// Analysis worker threads (each hashes frames and matches them against the banks).
    /// Default: 1.
    pub workers: usize,
    /// Decoded frames waiting for a worker, across all streams. A live stream whose frame finds
    /// the queue full has that frame dropped and counted. Default: 32.
    pub queue: usize,
    /// PDQ quality (0..=100) below which a frame's hash is not matched at all: such a hash says
    /// little about the image (flat or near-flat frames). Meta recommends 50. Default: 50.
    pub min_quality: u32,
}

impl Default for AnalysisConfig {
    fn default() -> Self {
        Self {
            workers: 1,
            queue: 32,
            min_quality: 50,
        }
    }
}

impl AnalysisConfig {
    pub(super) fn validate(&self, problems: &mut Vec<Problem>) {
        if self.workers == 0 || self.workers > 256 {
            problems.push(Problem::new(
                "analysis.workers",
                "must be between 1 and 256",
            ));
        }
        if self.queue == 0 || self.queue > 100_000 {
            problems.push(Problem::new(
                "analysis.queue",
                "must be between 1 and 100000",
            ));
        }
        if self.min_quality > 100 {
            problems.push(Problem::new(
                "analysis.min_quality",
                "must be between 0 and 100",
            ));
        }
    }
}

/// One `[[banks]]` entry: a file of PDQ hashes of known material.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct BankConfig {
    /// Name used in alerts and logs; unique. Letters, digits, `-`, `_` and `.`.
    pub name: String,
    /// The bank file: one hash per line, `<64 hex>` or `<64 hex>,<id>[,<label>]`; blank lines
    /// and lines starting with `#` are ignored.
    pub path: PathBuf,
    /// Largest Hamming distance (0..=256) that counts as a match. Meta recommends 31.
    /// Default: 31.
    pub threshold: u32,
}

impl Default for BankConfig {
    fn default() -> Self {
        Self {
            name: String::new(),
            path: PathBuf::new(),
            threshold: 31,
        }
    }
}

pub(super) fn validate_banks(banks: &[BankConfig], problems: &mut Vec<Problem>) {
    let mut seen = HashSet::new();
    for (i, bank) in banks.iter().enumerate() {
        let key = format!("banks[{i}]");
        if let Some(msg) = super::streams::name_problem(&bank.name) {
            problems.push(Problem::new(format!("{key}.name"), msg));
        } else if !seen.insert(bank.name.as_str()) {
            problems.push(Problem::new(
                format!("{key}.name"),
                format!("bank '{}' is declared twice", bank.name),
            ));
        }
        if bank.path.as_os_str().is_empty() {
            problems.push(Problem::new(format!("{key}.path"), "is required"));
        }
        if bank.threshold > 256 {
            problems.push(Problem::new(
                format!("{key}.threshold"),
                "must be between 0 and 256",
            ));
        }
    }
}
