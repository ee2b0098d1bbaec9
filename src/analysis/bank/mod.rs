//! Hash banks: files of PDQ hashes of known material, indexed for exact radius search and
//! reloaded when their files change.
//!
//! Formats (see [`BankFormat`]): `hex` (one hash per line) and `csv` (`hash,id[,label]`).
//! Blank lines and lines starting with `#` are ignored. A bank keeps its entries in compact
//! arrays (the [`HashIndex`], one string arena for ids, interned labels): no per-entry heap
//! objects, so a 10-million-entry bank fits in about a gigabyte.
//!
//! [`BankSet`] holds the current version of every configured bank behind an `Arc` that is
//! swapped atomically: a reload parses and indexes the new files on the watcher thread while
//! matching goes on against the old version, and a file that fails to load leaves the old
//! version in place (the error, naming file and line, is logged and shown in `/readyz`).

use super::index::{HashIndex, Hit};
use super::pdq::{Dihedral, PdqHash};
use crate::config::{BankAction, BankConfig, BankFormat};
use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::time::Instant;

mod set;
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

/// Accumulates entries from a bank's files.
struct Parser<'a> {
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
    fn new(cfg: &'a BankConfig) -> Self {
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
    fn parse_block(
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
                    (id, label)
                }
            };
            self.push(hash, &id, label, (file_no, line_no as u32))?;
        }
        Ok(count)
    }

    /// Marks the end of a file, so that the same path given twice counts as two files.
    fn end_file(&mut self) {
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

    fn finish(
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

#[cfg(test)]
mod tests {
    use super::*;

    const H: &str = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22";

    fn cfg(format: BankFormat, threshold: u32) -> BankConfig {
        BankConfig {
            name: "b".into(),
            path: Some("b.txt".into()),
            format,
            threshold,
            ..BankConfig::default()
        }
    }

    fn err(c: &BankConfig, text: &str) -> String {
        match Bank::parse(c, Path::new("/banks/b.txt"), text) {
            Ok(_) => panic!("accepted {text:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn parses_csv_and_hex() {
        let text = format!("# demo\n\n{H},item-7\n{H}, item-8 , synthetic-demo\r\n");
        let bank = Bank::parse(&cfg(BankFormat::Csv, 31), Path::new("b.txt"), &text).unwrap();
        assert_eq!(bank.len(), 2);
        assert_eq!((bank.id(0), bank.id(1)), ("item-7", "item-8"));
        assert_eq!(
            (bank.label(0), bank.label(1)),
            (None, Some("synthetic-demo"))
        );
        let hex = Bank::parse(
            &cfg(BankFormat::Hex, 31),
            Path::new("/x/list.txt"),
            &format!("{H}\n\n{H}\n"),
        )
        .unwrap();
        assert_eq!((hex.id(0), hex.id(1)), ("/x/list.txt:1", "/x/list.txt:3"));
    }

    #[test]
    fn bad_lines_name_file_and_line() {
        let csv = cfg(BankFormat::Csv, 31);
        let cases = [
            (format!("{H},a\n# ok\nnot-a-hash,x\n"), "b.txt:3: bad hash"),
            (
                format!("{}0,a\n", H),
                "b.txt:1: bad hash: a PDQ hash has 64 hex digits, this has 65",
            ),
            (
                format!("{}g,a\n", &H[..63]),
                "b.txt:1: bad hash: 'g' is not a hex digit",
            ),
            (format!("{H},a,b,c\n"), "b.txt:1: too many fields"),
            (format!("{H}\n"), "b.txt:1: missing id"),
            (format!("{H},\n"), "b.txt:1: empty id"),
            (
                format!("{H},a\n{H},b\n{H},a\n"),
                "b.txt:3: duplicate id 'a' (first used at /banks/b.txt:1)",
            ),
            (
                "# only comments\n\n".to_string(),
                "/banks/b.txt: no entries",
            ),
        ];
        for (text, want) in cases {
            let msg = err(&csv, &text);
            assert!(
                msg.contains(want) && msg.contains("bank 'b'"),
                "{msg} / {want}"
            );
        }
        let msg = err(&cfg(BankFormat::Hex, 31), &format!("{H},x\n"));
        assert!(
            msg.contains("b.txt:1: a hex bank has one hash per line"),
            "{msg}"
        );
    }

    #[test]
    fn match_respects_threshold_picks_closest_and_reports_variant() {
        let base: PdqHash = H.parse().unwrap();
        let mut far = base;
        far.0[0] ^= (1u64 << 40) - 1; // 40 bits away
        let mut near = base;
        near.0[1] ^= 0b111; // 3 bits away
        let text = format!("{far},far\n{near},near\n");
        let path = Path::new("b");
        let bank = Bank::parse(&cfg(BankFormat::Csv, 31), path, &text).unwrap();
        let m = bank.best_match(&[base]).unwrap();
        assert_eq!(
            (m.id.as_str(), m.distance, m.variant),
            ("near", 3, Dihedral::Original)
        );
        let strict = Bank::parse(&cfg(BankFormat::Csv, 2), path, &text).unwrap();
        assert_eq!(strict.best_match(&[base]), None);
        // A mirrored copy: the bank entry equals the frame's third variant exactly.
        let other = synth_hash(5);
        let variants = [other, other, base, other, other, other, other, other];
        let m = bank.best_match(&variants).unwrap();
        assert_eq!((m.distance, m.variant), (3, Dihedral::Rotate180));
        let mut plain = cfg(BankFormat::Csv, 31);
        plain.dihedral = false;
        let plain = Bank::parse(&plain, path, &text).unwrap();
        assert_eq!(plain.best_match(&variants), None);
    }

    fn synth_hash(seed: u64) -> PdqHash {
        super::super::index::synth::SplitMix64(seed).hash()
    }

    #[test]
    fn hex_files_with_the_same_name_in_two_folders_load() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a/h.txt"), dir.path().join("b/h.txt"));
        for p in [&a, &b] {
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, format!("{H}\n")).unwrap();
        }
        let mut c = cfg(BankFormat::Hex, 31);
        c.path = Some(a.clone());
        c.paths = vec![b.clone()];
        let bank = Bank::load(&c).unwrap();
        assert_eq!(bank.len(), 2);
        assert_eq!(bank.id(1), format!("{}:1", b.display()));
    }

    #[test]
    fn missing_file_is_named() {
        let mut c = cfg(BankFormat::Csv, 31);
        c.name = "x".into();
        c.path = Some("/no/such/bank.txt".into());
        let msg = Bank::load(&c).err().unwrap().to_string();
        assert!(
            msg.contains("/no/such/bank.txt") && msg.contains("bank 'x'"),
            "{msg}"
        );
    }
}
