//! Hash banks: files of PDQ hashes of known material, matched by Hamming distance.
//!
//! File format: one entry per line, `<64 hex>` or `<64 hex>,<id>[,<label>]`. Blank lines and
//! lines starting with `#` are ignored. An entry without an id gets its line number as id.

use super::pdq::PdqHash;
use crate::config::BankConfig;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum BankError {
    #[error("bank '{bank}': cannot read {}: {source}", path.display())]
    Read {
        bank: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("bank '{bank}': {}:{line}: {message}", path.display())]
    Line {
        bank: String,
        path: PathBuf,
        line: usize,
        message: String,
    },
}

/// One loaded bank. Entries are kept in compact parallel arrays.
#[derive(Debug, Clone)]
pub struct Bank {
    pub name: String,
    pub threshold: u32,
    hashes: Vec<PdqHash>,
    ids: Vec<String>,
    labels: Vec<Option<String>>,
}

/// The closest entry of a bank within its threshold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BankMatch {
    pub bank: String,
    pub id: String,
    pub label: Option<String>,
    pub distance: u32,
}

impl Bank {
    /// Reads and parses the bank file named by `cfg`.
    pub fn load(cfg: &BankConfig) -> Result<Bank, BankError> {
        let text = std::fs::read_to_string(&cfg.path).map_err(|source| BankError::Read {
            bank: cfg.name.clone(),
            path: cfg.path.clone(),
            source,
        })?;
        Self::parse(&cfg.name, &cfg.path, cfg.threshold, &text)
    }

    /// Parses bank text; `path` is only used in error messages.
    pub fn parse(name: &str, path: &Path, threshold: u32, text: &str) -> Result<Bank, BankError> {
        let mut bank = Bank {
            name: name.to_string(),
            threshold,
            hashes: Vec::new(),
            ids: Vec::new(),
            labels: Vec::new(),
        };
        for (i, raw) in text.lines().enumerate() {
            let line_no = i + 1;
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let err = |message: String| BankError::Line {
                bank: name.to_string(),
                path: path.to_path_buf(),
                line: line_no,
                message,
            };
            let mut fields = line.split(',').map(str::trim);
            let hex = fields.next().unwrap_or_default();
            let hash: PdqHash = hex
                .parse()
                .map_err(|e| err(format!("bad hash '{hex}': {e}")))?;
            let id = match fields.next() {
                Some("") => return Err(err("empty id".into())),
                Some(id) => id.to_string(),
                None => format!("line{line_no}"),
            };
            let label = fields.next().map(str::to_string);
            if fields.next().is_some() {
                return Err(err(
                    "too many fields (expected <hash>[,<id>[,<label>]])".into()
                ));
            }
            bank.hashes.push(hash);
            bank.ids.push(id);
            bank.labels.push(label);
        }
        Ok(bank)
    }

    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    /// The closest entry within the threshold (ties: the first in file order).
    pub fn best_match(&self, hash: &PdqHash) -> Option<BankMatch> {
        let (idx, distance) = self
            .hashes
            .iter()
            .enumerate()
            .map(|(i, h)| (i, h.distance(hash)))
            .filter(|&(_, d)| d <= self.threshold)
            .min_by_key(|&(i, d)| (d, i))?;
        Some(BankMatch {
            bank: self.name.clone(),
            id: self.ids[idx].clone(),
            label: self.labels[idx].clone(),
            distance,
        })
    }
}

/// Loads every configured bank, collecting every error rather than stopping at the first.
pub fn load_all(cfgs: &[BankConfig]) -> Result<Vec<Bank>, Vec<BankError>> {
    let mut banks = Vec::new();
    let mut errors = Vec::new();
    for cfg in cfgs {
        match Bank::load(cfg) {
            Ok(b) => banks.push(b),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(banks)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: &str = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22";

    #[test]
    fn parses_all_line_forms() {
        let text = format!("# demo\n\n{H}\n{H},item-7\n{H}, item-8 , synthetic-demo\n");
        let bank = Bank::parse("b", Path::new("b.txt"), 31, &text).unwrap();
        assert_eq!(bank.len(), 3);
        assert_eq!(bank.ids, vec!["line3", "item-7", "item-8"]);
        assert_eq!(bank.labels[2].as_deref(), Some("synthetic-demo"));
    }

    #[test]
    fn malformed_line_names_file_and_line() {
        let text = format!("{H}\n# ok\nnot-a-hash,x\n");
        let err = Bank::parse("demo", Path::new("/banks/demo.txt"), 31, &text).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("/banks/demo.txt:3"), "{msg}");
        assert!(msg.contains("not-a-hash"), "{msg}");
        let err = Bank::parse("demo", Path::new("d.txt"), 31, &format!("{H},a,b,c\n")).unwrap_err();
        assert!(
            err.to_string().contains("d.txt:1: too many fields"),
            "{err}"
        );
    }

    #[test]
    fn match_respects_threshold_and_picks_closest() {
        let base: PdqHash = H.parse().unwrap();
        let mut far = base;
        far.0[0] ^= (1u64 << 40) - 1; // 40 bits away
        let mut near = base;
        near.0[1] ^= 0b111; // 3 bits away
        let text = format!("{far},far\n{near},near\n");
        let bank = Bank::parse("b", Path::new("b"), 31, &text).unwrap();
        let m = bank.best_match(&base).unwrap();
        assert_eq!((m.id.as_str(), m.distance), ("near", 3));
        let strict = Bank::parse("b", Path::new("b"), 2, &text).unwrap();
        assert_eq!(strict.best_match(&base), None);
    }

    #[test]
    fn missing_file_is_named() {
        let cfg = BankConfig {
            name: "x".into(),
            path: "/no/such/bank.txt".into(),
            threshold: 31,
        };
        let msg = Bank::load(&cfg).unwrap_err().to_string();
        assert!(
            msg.contains("/no/such/bank.txt") && msg.contains("bank 'x'"),
            "{msg}"
        );
    }
}
