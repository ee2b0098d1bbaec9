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
    /// How often bank files are checked for changes, in milliseconds. A changed file is
    /// reloaded once it has stayed unchanged for one more interval; the new index is built
    /// off the hot path and swapped in atomically, and a file that fails to load leaves the
    /// previous index in place. 0 disables reloading. Default: 2000.
    pub bank_poll_ms: u64,
    /// Analysed frames per second the whole daemon can afford, shared by the adaptive streams
    /// by risk (`src/sampler/budget.rs`): every stream first gets one frame per `max_gap`,
    /// then dense streams their rate (high risk first), then calm streams up to their base
    /// interval. 0 means no limit: every stream gets what it asks for. Default: 0.
    pub capacity_fps: f64,
}

impl Default for AnalysisConfig {
    fn default() -> Self {
        Self {
            workers: 1,
            queue: 32,
            min_quality: 50,
            bank_poll_ms: 2000,
            capacity_fps: 0.0,
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
        if !(self.capacity_fps >= 0.0 && self.capacity_fps.is_finite()) {
            problems.push(Problem::new(
                "analysis.capacity_fps",
                "must be 0 (no limit) or a positive number of frames per second",
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

/// What a match in a bank leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BankAction {
    /// Raise an alert and halt the stream (halting itself comes with the ingest actuators;
    /// until then the alert records that a halt was called for).
    Halt,
    /// Raise an alert for a moderator to review.
    Review,
    /// Known-benign content (a broadcaster's own overlay, say): a frame matching an allow bank
    /// raises nothing from any other bank.
    Allow,
}

impl BankAction {
    pub fn as_str(self) -> &'static str {
        match self {
            BankAction::Halt => "halt",
            BankAction::Review => "review",
            BankAction::Allow => "allow",
        }
    }
}

/// How a bank file is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BankFormat {
    /// One 64-digit hex hash per line; each entry's id is `<path>:<line>` (the path as
    /// configured).
    Hex,
    /// `<64 hex>,<id>[,<label>]` per line; ids must be unique within the bank.
    Csv,
}

/// One `[[banks]]` entry: files of PDQ hashes of known material. In every format, blank lines
/// and lines starting with `#` are ignored.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct BankConfig {
    /// Name used in alerts and logs; unique. Letters, digits, `-`, `_` and `.`.
    pub name: String,
    /// The bank file. Use `paths` for a bank spread over several files; both may be given.
    pub path: Option<PathBuf>,
    /// More bank files, all in the same format. Default: none.
    pub paths: Vec<PathBuf>,
    /// `hex` or `csv` (see [`BankFormat`]). Default: `csv`.
    pub format: BankFormat,
    /// Largest Hamming distance (0..=256) that counts as a match. Meta recommends 31.
    /// Default: 31.
    pub threshold: u32,
    /// `halt`, `review` or `allow` (see [`BankAction`]). Default: `review`.
    pub action: BankAction,
    /// Also match the frame's 7 rotations and mirrors, so that flipped or rotated copies of a
    /// known item match too. Costs about 10% more hashing and 8 lookups instead of 1.
    /// Default: true.
    pub dihedral: bool,
}

impl Default for BankConfig {
    fn default() -> Self {
        Self {
            name: String::new(),
            path: None,
            paths: Vec::new(),
            format: BankFormat::Csv,
            threshold: 31,
            action: BankAction::Review,
            dihedral: true,
        }
    }
}

impl BankConfig {
    /// Every file of the bank: `path` first, then `paths`.
    pub fn files(&self) -> Vec<PathBuf> {
        self.path.iter().chain(&self.paths).cloned().collect()
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
        let files = bank.files();
        if files.is_empty() {
            problems.push(Problem::new(
                format!("{key}.path"),
                "is required (or give `paths`)",
            ));
        }
        if bank.path.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
            problems.push(Problem::new(format!("{key}.path"), "must not be empty"));
        }
        if let Some(i) = bank.paths.iter().position(|p| p.as_os_str().is_empty()) {
            problems.push(Problem::new(
                format!("{key}.paths[{i}]"),
                "must not be empty",
            ));
        }
        if bank.threshold > 256 {
            problems.push(Problem::new(
                format!("{key}.threshold"),
                "must be between 0 and 256",
            ));
        }
    }
}
