//! Ground truth for replay: a JSON object mapping each recorded file to the intervals (in
//! seconds of stream time) in which prohibited content, i.e. one of its synthetic stand-ins
//! (a demo-bank image), is visible:
//!
//! ```json
//! { "stream-01.mp4": [[12.0, 15.5], [40.2, 41.0]], "stream-02.mp4": [] }
//! ```
//!
//! Relative file names are resolved against the labels file's folder. A file with nothing
//! prohibited in it is listed with `[]`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum LabelsError {
    #[error("{path}: cannot read labels: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "{path}: not a labels file ({source}); expected a JSON object mapping file names to lists of [start_s, end_s]"
    )]
    Parse {
        path: String,
        source: serde_json::Error,
    },
    #[error("{path}: '{file}': {message}")]
    Entry {
        path: String,
        file: String,
        message: String,
    },
    #[error("{file}: cannot read: {source}")]
    Missing {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}: no entry in {path} (list it with [] if nothing prohibited is visible in it)")]
    Unlabelled { path: String, file: String },
}

/// The labels file's entries in file order, duplicates kept (a map would drop them).
struct Entries(Vec<(String, Vec<[f64; 2]>)>);

impl<'de> serde::Deserialize<'de> for Entries {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Entries;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object mapping file names to lists of [start_s, end_s]")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<Entries, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = m.next_entry()? {
                    out.push(entry);
                }
                Ok(Entries(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// One labelled interval: prohibited content visible from `start_s` to `end_s` (the end of
/// its last frame: a frame starting at `end_s` no longer shows it).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    pub start_s: f64,
    pub end_s: f64,
}

/// A parsed labels file: canonical file path → its intervals, sorted.
#[derive(Debug, Clone)]
pub struct Labels {
    path: PathBuf,
    files: BTreeMap<PathBuf, Vec<Interval>>,
}

impl Labels {
    /// Reads and checks a labels file: every file it names exists, every interval has
    /// `0 <= start <= end`, finite, and intervals of one file do not overlap.
    pub fn load(path: &Path) -> Result<Labels, LabelsError> {
        let text = std::fs::read_to_string(path).map_err(|source| LabelsError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Labels::parse(path, &text)
    }

    /// [`Labels::load`] on text already read from `path`.
    pub fn parse(path: &Path, text: &str) -> Result<Labels, LabelsError> {
        let shown = path.display().to_string();
        let Entries(raw) = serde_json::from_str(text).map_err(|source| LabelsError::Parse {
            path: shown.clone(),
            source,
        })?;
        let mut names = std::collections::BTreeSet::new();
        if let Some((dup, _)) = raw.iter().find(|(n, _)| !names.insert(n.clone())) {
            return Err(LabelsError::Entry {
                path: shown,
                file: dup.clone(),
                message: "listed twice".into(),
            });
        }
        let dir = path.parent().unwrap_or(Path::new("."));
        let mut files = BTreeMap::new();
        for (name, list) in raw {
            let entry = |message: String| LabelsError::Entry {
                path: shown.clone(),
                file: name.clone(),
                message,
            };
            let full = dir.join(&name);
            let canonical = full.canonicalize().map_err(|e| {
                entry(format!(
                    "no such file ({}: {e})",
                    full.display().to_string().trim_start_matches("./")
                ))
            })?;
            let mut intervals = Vec::with_capacity(list.len());
            for (i, [start_s, end_s]) in list.into_iter().enumerate() {
                let n = i + 1;
                if !start_s.is_finite() || !end_s.is_finite() || start_s < 0.0 {
                    return Err(entry(format!(
                        "interval {n} [{start_s}, {end_s}]: times must be finite seconds >= 0"
                    )));
                }
                if start_s > end_s {
                    return Err(entry(format!(
                        "interval {n} [{start_s}, {end_s}]: inverted (starts after it ends)"
                    )));
                }
                intervals.push(Interval { start_s, end_s });
            }
            intervals.sort_by(|a, b| a.start_s.total_cmp(&b.start_s));
            if let Some(w) = intervals.windows(2).find(|w| w[1].start_s < w[0].end_s) {
                return Err(entry(format!(
                    "intervals [{}, {}] and [{}, {}] overlap",
                    w[0].start_s, w[0].end_s, w[1].start_s, w[1].end_s
                )));
            }
            if files.insert(canonical, intervals).is_some() {
                return Err(entry("listed twice (under two names)".into()));
            }
        }
        Ok(Labels {
            path: path.to_path_buf(),
            files,
        })
    }

    /// The intervals of a file given on the command line.
    pub fn intervals(&self, file: &Path) -> Result<&[Interval], LabelsError> {
        let unlabelled = || LabelsError::Unlabelled {
            path: self.path.display().to_string(),
            file: file.display().to_string(),
        };
        let canonical = file.canonicalize().map_err(|e| LabelsError::Missing {
            file: file.display().to_string(),
            source: e,
        })?;
        self.files
            .get(&canonical)
            .map(Vec::as_slice)
            .ok_or_else(unlabelled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup(text: &str) -> (tempfile::TempDir, Result<Labels, LabelsError>) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.mp4"), b"x").unwrap();
        std::fs::write(dir.path().join("b.mp4"), b"x").unwrap();
        let path = dir.path().join("labels.json");
        std::fs::write(&path, text).unwrap();
        let l = Labels::load(&path);
        (dir, l)
    }

    #[test]
    fn reads_files_relative_to_the_labels_file() {
        let (dir, l) = setup(r#"{"a.mp4": [[5, 6.5], [1, 2]], "b.mp4": []}"#);
        let l = l.unwrap();
        let a = l.intervals(&dir.path().join("a.mp4")).unwrap();
        assert_eq!(
            a[0],
            Interval {
                start_s: 1.0,
                end_s: 2.0
            }
        ); // sorted
        assert_eq!(a.len(), 2);
        assert!(l.intervals(&dir.path().join("b.mp4")).unwrap().is_empty());
        let other = dir.path().join("c.mp4");
        let e = l.intervals(&other).unwrap_err().to_string();
        assert!(e.contains("c.mp4: cannot read"), "{e}");
        // The same file by another path.
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        assert_eq!(l.intervals(&sub.join("../a.mp4")).unwrap().len(), 2);
        std::fs::write(&other, b"x").unwrap();
        let e = l.intervals(&other).unwrap_err().to_string();
        assert!(
            e.contains("c.mp4: no entry in") && e.contains("labels.json"),
            "{e}"
        );
    }

    #[test]
    fn bad_labels_are_named() {
        for (text, want) in [
            (r#"{"gone.mp4": []}"#, "'gone.mp4': no such file"),
            (
                r#"{"a.mp4": [[8, 3]]}"#,
                "'a.mp4': interval 1 [8, 3]: inverted",
            ),
            (r#"{"a.mp4": [[1, 3], [2, 4]]}"#, "overlap"),
            (r#"{"a.mp4": [[-1, 3]]}"#, "finite seconds >= 0"),
            (r#"{"a.mp4": [[1]]}"#, "not a labels file"),
            (
                r#"{"a.mp4": [[1, 2]], "a.mp4": []}"#,
                "'a.mp4': listed twice",
            ),
            (r#"["a.mp4"]"#, "not a labels file"),
        ] {
            let (_d, l) = setup(text);
            let e = l.unwrap_err().to_string();
            assert!(e.contains(want), "{text}: {e}");
            assert!(e.contains("labels.json"), "{e}");
        }
    }
}
