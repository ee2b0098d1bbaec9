//! Parsing a bank's files: lines to hashes, ids and labels, kept in compact arrays, with
//! every error naming file and line; then the checks on the whole bank and the index build.

use super::{Bank, BankError, BankVersion, NO_LABEL};
use crate::analysis::index::HashIndex;
use crate::analysis::pdq::PdqHash;
use crate::config::{BankConfig, BankFormat};
use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Accumulates entries from a bank's files.
pub(super) struct Parser<'a> {
    cfg: &'a BankConfig,
    hashes: Vec<PdqHash>,
    id_text: String,
    id_ends: Vec<u32>,
    labels: Vec<String>,
    label_numbers: HashMap<String, u32>,
    label_of: Vec<u32>,
    /// Where each entry came from (file number, line), to name duplicates.
    origins: Vec<(u32, u32)>,
    paths: Vec<PathBuf>,
    file_done: bool,
}

impl<'a> Parser<'a> {
    pub(super) fn new(cfg: &'a BankConfig) -> Self {
        Parser {
            cfg,
            hashes: Vec::new(),
            id_text: String::new(),
            id_ends: Vec::new(),
            labels: Vec::new(),
            label_numbers: HashMap::new(),
            label_of: Vec::new(),
            origins: Vec::new(),
            paths: Vec::new(),
            file_done: false,
        }
    }

    /// Parses whole lines of the current file, the first being line `first_line`; returns
    /// how many lines the block held.
    pub(super) fn parse_block(
        &mut self,
        path: &Path,
        bytes: &[u8],
        first_line: usize,
    ) -> Result<usize, BankError> {
        if self.paths.last().is_none_or(|p| p != path) || self.file_done {
            self.paths.push(path.to_path_buf());
            self.file_done = false;
        }
        let file_no = self.paths.len() as u32 - 1;
        // Hex entries are named by path and line: unique across a bank's files.
        let file_name = path.display().to_string();
        let bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
        let mut count = 0;
        for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
            count += 1;
            let line_no = first_line + i;
            let err = |message: String| BankError::Line {
                bank: self.cfg.name.clone(),
                path: path.to_path_buf(),
                line: line_no,
                message,
            };
            let line = std::str::from_utf8(raw)
                .map_err(|e| err(format!("not UTF-8 text ({e})")))?
                .trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut fields = line.split(',').map(str::trim);
            let hex = fields.next().unwrap_or_default();
            let hash: PdqHash = hex.parse().map_err(|e| err(format!("bad hash: {e}")))?;
            let (id, label) = match self.cfg.format {
                BankFormat::Hex => {
                    if fields.next().is_some() {
                        return Err(err(
                            "a hex bank has one hash per line; use format = \"csv\" for \
                             <hash>,<id>[,<label>] lines"
                                .into(),
                        ));
                    }
                    (format!("{file_name}:{line_no}"), None)
                }
                BankFormat::Csv => {
                    let id = match fields.next() {
                        None => {
                            return Err(err(
                                "missing id (expected <hash>,<id>[,<label>]; use format = \
                                 \"hex\" for hash-only lines)"
                                    .into(),
                            ));
                        }
                        Some("") => return Err(err("empty id".into())),
                        Some(id) => id.to_string(),
                    };
                    let label = fields.next().filter(|l| !l.is_empty());
                    if fields.next().is_some() {
                        return Err(err(
                            "too many fields (expected <hash>,<id>[,<label>])".into()
                        ));
                    }
                    check_field("id", &id, MAX_ID_BYTES).map_err(err)?;
                    if let Some(label) = label {
                        check_field("label", label, MAX_LABEL_BYTES).map_err(err)?;
                    }
                    (id, label)
                }
            };
            self.push(hash, &id, label, (file_no, line_no as u32))?;
        }
        Ok(count)
    }

    /// Marks the end of a file, so that the same path given twice counts as two files.
    pub(super) fn end_file(&mut self) {
        self.file_done = true;
    }

    fn push(
        &mut self,
        hash: PdqHash,
        id: &str,
        label: Option<&str>,
        origin: (u32, u32),
    ) -> Result<(), BankError> {
        let too_large = || BankError::TooLarge {
            bank: self.cfg.name.clone(),
        };
        if self.hashes.len() >= u32::MAX as usize - 1 {
            return Err(too_large());
        }
        self.id_text.push_str(id);
        let end = u32::try_from(self.id_text.len()).map_err(|_| too_large())?;
        self.id_ends.push(end);
        if let Some(label) = label {
            let next = self.labels.len() as u32;
            let n = *self.label_numbers.entry(label.to_string()).or_insert(next);
            if n == next {
                self.labels.push(label.to_string());
            }
            // Entries before the first label have none.
            self.label_of.resize(self.hashes.len(), NO_LABEL);
            self.label_of.push(n);
        } else if !self.label_of.is_empty() {
            self.label_of.push(NO_LABEL);
        }
        self.hashes.push(hash);
        self.origins.push(origin);
        Ok(())
    }

    fn id(&self, i: usize) -> &str {
        let start = if i == 0 {
            0
        } else {
            self.id_ends[i - 1] as usize
        };
        &self.id_text[start..self.id_ends[i] as usize]
    }

    /// Rejects duplicate ids: sorts 64-bit hashes of the ids and compares neighbours, which
    /// needs no per-entry allocation even for tens of millions of entries.
    fn check_duplicate_ids(&self) -> Result<(), BankError> {
        let mut keyed: Vec<(u64, u32)> = (0..self.hashes.len())
            .map(|i| {
                let mut h = DefaultHasher::new();
                self.id(i).hash(&mut h);
                (h.finish(), i as u32)
            })
            .collect();
        keyed.sort_unstable();
        // Within each run of equal id hashes (almost always one or two entries), compare every
        // pair, so that a 64-bit collision cannot hide a duplicate.
        let mut first_dup: Option<(u32, u32)> = None;
        for run in keyed.chunk_by(|x, y| x.0 == y.0).filter(|r| r.len() > 1) {
            for (k, &(_, a)) in run.iter().enumerate() {
                for &(_, b) in &run[k + 1..] {
                    if self.id(a as usize) == self.id(b as usize) {
                        // Report the later entry against the first use.
                        let cand = (a.min(b), a.max(b));
                        if first_dup.is_none_or(|d| cand.1 < d.1) {
                            first_dup = Some(cand);
                        }
                    }
                }
            }
        }
        if let Some((a, b)) = first_dup {
            let (fa, la) = self.origins[a as usize];
            let (fb, lb) = self.origins[b as usize];
            return Err(BankError::Line {
                bank: self.cfg.name.clone(),
                path: self.paths[fb as usize].clone(),
                line: lb as usize,
                message: format!(
                    "duplicate id '{}' (first used at {}:{la})",
                    self.id(b as usize),
                    self.paths[fa as usize].display()
                ),
            });
        }
        Ok(())
    }

    pub(super) fn finish(
        self,
        files: Vec<PathBuf>,
        fingerprint: u64,
        started: Instant,
    ) -> Result<Bank, BankError> {
        if self.hashes.is_empty() {
            return Err(BankError::Empty {
                bank: self.cfg.name.clone(),
                files: files
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        self.check_duplicate_ids()?;
        drop(self.origins);
        drop(self.label_numbers);
        let mut hashes = self.hashes;
        hashes.shrink_to_fit();
        let parse_ms = started.elapsed().as_secs_f64() * 1e3;
        let built = Instant::now();
        let mut label_of = self.label_of;
        if !label_of.is_empty() {
            label_of.resize(hashes.len(), NO_LABEL);
        }
        let index = HashIndex::build(hashes, self.cfg.threshold);
        let build_ms = built.elapsed().as_secs_f64() * 1e3;
        let mut id_text = self.id_text;
        id_text.shrink_to_fit();
        let mut id_ends = self.id_ends;
        id_ends.shrink_to_fit();
        label_of.shrink_to_fit();
        Ok(Bank {
            name: self.cfg.name.clone(),
            threshold: self.cfg.threshold,
            action: self.cfg.action,
            dihedral: self.cfg.dihedral,
            index,
            id_text,
            id_ends,
            labels: self.labels,
            label_of,
            files: files.len(),
            parse_ms,
            build_ms,
            version: BankVersion {
                fingerprint: format!("{fingerprint:016x}"),
                loaded_at: crate::telemetry::unix_ms() / 1000,
            },
        })
    }
}

/// Longest bank item id accepted (bytes). Ids travel in every alert, sink message and log
/// line: an unbounded one could make a message no sink takes.
pub const MAX_ID_BYTES: usize = 256;
/// Longest label accepted (bytes).
pub const MAX_LABEL_BYTES: usize = 256;

/// An id or label: at most `max` bytes, no control characters.
fn check_field(what: &str, value: &str, max: usize) -> Result<(), String> {
    if value.len() > max {
        return Err(format!(
            "{what} of {} bytes is longer than the {max} accepted",
            value.len()
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(format!("{what} contains a control character"));
    }
    Ok(())
}
