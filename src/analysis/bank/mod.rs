//! Hash banks: files of PDQ hashes of known material, indexed for exact radius search and
//! reloaded when their files change.
//!
//! Formats (see [`BankFormat`](crate::config::BankFormat)): `hex` (one hash per line) and
//! `csv` (`hash,id[,label]`). Blank lines and lines starting with `#` are ignored. A bank
//! keeps its entries in compact arrays (the [`HashIndex`], one string arena for ids, interned
//! labels): no per-entry heap objects, so a 10-million-entry bank fits in about a gigabyte.
//!
//! [`BankSet`] holds the current version of every configured bank behind an `Arc` that is
//! swapped atomically: a reload parses and indexes the new files on the watcher thread while
//! matching goes on against the old version, and a file that fails to load leaves the old
//! version in place (the error, naming file and line, is logged and shown in `/readyz`).

use super::index::{HashIndex, Hit};
use super::pdq::{Dihedral, PdqHash};
use crate::config::{BankAction, BankConfig};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::time::Instant;

mod parse;
mod set;
use parse::Parser;
pub use set::{BankSet, BankStatus};

#[derive(Debug, Clone, thiserror::Error)]
pub enum BankError {
    #[error("bank '{bank}': cannot read {}: {message}", path.display())]
    Read {
        bank: String,
        path: PathBuf,
        message: String,
    },
    #[error("bank '{bank}': {}:{line}: {message}", path.display())]
    Line {
        bank: String,
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("bank '{bank}': {files}: no entries (every line is blank or a comment)")]
    Empty { bank: String, files: String },
    #[error("bank '{bank}': more than {} entries or 4 GiB of ids", u32::MAX)]
    TooLarge { bank: String },
}

/// Which version of a bank is loaded: a fingerprint of its files' bytes and when it loaded.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BankVersion {
    /// SipHash of the bank's files, in order, as 16 hex digits.
    pub fingerprint: String,
    /// Seconds since the Unix epoch.
    pub loaded_at: u64,
}

/// Counts and costs of one loaded bank (never its contents).
#[derive(Debug, Clone, serde::Serialize)]
pub struct BankStats {
    pub name: String,
    pub entries: usize,
    pub files: usize,
    pub memory_bytes: usize,
    pub parse_ms: f64,
    pub build_ms: f64,
    pub layout: String,
    pub version: BankVersion,
}

/// One loaded bank version.
pub struct Bank {
    pub name: String,
    pub threshold: u32,
    pub action: BankAction,
    pub dihedral: bool,
    index: HashIndex,
    /// Entry `i`'s id is `id_text[id_ends[i - 1]..id_ends[i]]`.
    id_text: String,
    id_ends: Vec<u32>,
    /// Distinct labels, and each entry's label number (`NO_LABEL` for none); empty when no
    /// entry has a label.
    labels: Vec<String>,
    label_of: Vec<u32>,
    files: usize,
    parse_ms: f64,
    build_ms: f64,
    pub version: BankVersion,
}

const NO_LABEL: u32 = u32::MAX;

/// The closest entry of a bank within its threshold, over the variants checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BankMatch {
    pub bank: String,
    pub id: String,
    pub label: Option<String>,
    pub distance: u32,
    /// Which rotation or mirror of the frame matched.
    pub variant: Dihedral,
    pub action: BankAction,
}

impl Bank {
    /// Reads, parses and indexes every file of the bank named by `cfg`.
    pub fn load(cfg: &BankConfig) -> Result<Bank, BankError> {
        let started = Instant::now();
        let mut parser = Parser::new(cfg);
        let mut fingerprint = DefaultHasher::new();
        let files = cfg.files();
        for path in &files {
            let read_err = |e: std::io::Error| BankError::Read {
                bank: cfg.name.clone(),
                path: path.clone(),
                message: e.to_string(),
            };
            // Streamed in blocks of whole lines: a bank file can be larger than its index.
            let mut file = std::io::BufReader::with_capacity(
                1 << 20,
                std::fs::File::open(path).map_err(read_err)?,
            );
            let mut block: Vec<u8> = Vec::with_capacity(1 << 20);
            let mut first_line = 1;
            loop {
                block.clear();
                while block.len() < 1 << 20 {
                    if file.read_until(b'\n', &mut block).map_err(read_err)? == 0 {
                        break;
                    }
                }
                if block.is_empty() {
                    break;
                }
                block.hash(&mut fingerprint);
                let lines = parser.parse_block(path, &block, first_line)?;
                first_line += lines;
            }
            parser.end_file();
        }
        parser.finish(files, fingerprint.finish(), started)
    }

    /// Parses and indexes bank text held in memory; `path` only names it in errors.
    pub fn parse(cfg: &BankConfig, path: &Path, text: &str) -> Result<Bank, BankError> {
        Self::parse_bytes(cfg, path, text.as_bytes())
    }

    /// [`Bank::parse`] for bytes that may not be text (the fuzz target's entry point).
    pub fn parse_bytes(cfg: &BankConfig, path: &Path, bytes: &[u8]) -> Result<Bank, BankError> {
        let started = Instant::now();
        let mut parser = Parser::new(cfg);
        parser.parse_block(path, bytes, 1)?;
        parser.end_file();
        let mut fp = DefaultHasher::new();
        bytes.hash(&mut fp);
        parser.finish(vec![path.to_path_buf()], fp.finish(), started)
    }

    /// The id of entry `i` (entries are numbered in file order).
    pub fn entry_id(&self, i: usize) -> &str {
        self.id(i as u32)
    }

    /// The hash of entry `i`.
    pub fn entry_hash(&self, i: usize) -> PdqHash {
        self.index.hash(i as u32)
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    fn id(&self, i: u32) -> &str {
        let i = i as usize;
        let start = if i == 0 {
            0
        } else {
            self.id_ends[i - 1] as usize
        };
        &self.id_text[start..self.id_ends[i] as usize]
    }

    fn label(&self, i: u32) -> Option<&str> {
        match self.label_of.get(i as usize) {
            Some(&l) if l != NO_LABEL => Some(&self.labels[l as usize]),
            _ => None,
        }
    }

    /// The closest entry within the threshold to any of `variants` (`variants[k]` is the hash
    /// of [`Dihedral::ALL`]`[k]`; only the first is used unless the bank checks dihedral
    /// variants). Ties go to the earlier variant, then the earlier entry.
    pub fn best_match(&self, variants: &[PdqHash]) -> Option<BankMatch> {
        let checked = if self.dihedral { variants.len() } else { 1 };
        let mut best: Option<(u32, usize, u32)> = None;
        let mut hits: Vec<Hit> = Vec::new();
        for (k, v) in variants.iter().take(checked).enumerate() {
            hits.clear();
            self.index.search_into(v, self.threshold, &mut hits);
            for h in &hits {
                let key = (h.distance, k, h.entry);
                if best.is_none_or(|b| key < b) {
                    best = Some(key);
                }
            }
        }
        let (distance, k, entry) = best?;
        Some(BankMatch {
            bank: self.name.clone(),
            id: self.id(entry).to_string(),
            label: self.label(entry).map(str::to_string),
            distance,
            variant: Dihedral::ALL[k],
            action: self.action,
        })
    }

    /// The smallest distance from `hash` to an entry within the threshold plus `extra` bits
    /// (for near-miss detection; the plain hash only).
    pub fn nearest_within(&self, hash: &PdqHash, extra: u32) -> Option<u32> {
        let mut hits = Vec::new();
        self.index
            .search_into(hash, self.threshold.saturating_add(extra), &mut hits);
        hits.iter().map(|h| h.distance).min()
    }

    pub fn stats(&self) -> BankStats {
        BankStats {
            name: self.name.clone(),
            entries: self.len(),
            files: self.files,
            memory_bytes: self.index.memory_bytes()
                + self.id_text.capacity()
                + self.id_ends.capacity() * 4
                + self.label_of.capacity() * 4
                + self.labels.iter().map(String::capacity).sum::<usize>(),
            parse_ms: self.parse_ms,
            build_ms: self.build_ms,
            layout: format!("{:?}", self.index.layout()),
            version: self.version.clone(),
        }
    }
}

#[cfg(test)]
mod tests;
