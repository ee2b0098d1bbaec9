//! Tuning: replay the same recordings once per combination of swept config values, and find
//! the configurations where time to detect cannot improve without paying more CPU.
//!
//! Each combination's config is the base config file with the swept keys set, written to
//! `OUT/configs/` (so any row can be replayed again by hand); each runs as one
//! `streamguard replay --json` child process (its CPU time is its own), up to `jobs` at once.
//! Every combination is loaded and checked before the first replay starts.

pub mod frontier;
pub mod output;
mod runner;

pub use runner::{RunError, run};

use crate::config::{DEFAULT_TOML, Source};
use crate::replay::report::Summary;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum TuneError {
    #[error("--sweep '{spec}': {message}")]
    Sweep { spec: String, message: String },
    #[error("{0}")]
    Config(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Replay(String),
    /// The replay of configuration `combo` failed.
    #[error("{combo}: {source}")]
    Run { combo: String, source: RunError },
    /// A frontier picture could not be drawn or written.
    #[error("{}: {source}", path.display())]
    Draw {
        path: PathBuf,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Why a dotted key cannot be set in a config table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum KeyError {
    #[error("{seg} is a list: give an index, like {seg}.0")]
    NoIndex { seg: String },
    #[error("{seg}.{index}: the config has {len} {seg}")]
    NoItem {
        seg: String,
        index: usize,
        len: usize,
    },
    #[error("{key}: give a key inside {seg}.{index}")]
    NoKey {
        key: String,
        seg: String,
        index: usize,
    },
    #[error("{seg}.{index} is not a table")]
    ItemNotTable { seg: String, index: usize },
    #[error("{path}: not a table")]
    NotTable { path: String },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TuneError + '_ {
    move |source| TuneError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// One `--sweep KEY=V1,V2,...`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sweep {
    pub key: String,
    pub values: Vec<String>,
}

impl Sweep {
    pub fn parse(spec: &str) -> Result<Sweep, TuneError> {
        let bad = |message: &str| TuneError::Sweep {
            spec: spec.to_string(),
            message: message.to_string(),
        };
        let (key, list) = spec
            .split_once('=')
            .ok_or_else(|| bad("expected KEY=V1,V2,..."))?;
        let key = key.trim();
        if key.is_empty() || key.split('.').any(str::is_empty) {
            return Err(bad(
                "the key must be a dotted config path, e.g. sampler.adaptive.hold_ms",
            ));
        }
        let values: Vec<String> = list.split(',').map(|v| v.trim().to_string()).collect();
        if list.trim().is_empty() {
            return Err(bad("empty value list"));
        }
        if values.iter().any(String::is_empty) {
            return Err(bad("an empty value in the list"));
        }
        Ok(Sweep {
            key: key.to_string(),
            values,
        })
    }
}

/// A value as TOML: a number or boolean when it parses as one (or anything else TOML without
/// a comma), else a string (`adaptive`).
fn toml_value(v: &str) -> toml::Value {
    format!("v = {v}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(v.to_string()))
}

/// Sets `key` (dotted; numbers index arrays of tables: `banks.0.threshold`) in `table`,
/// creating tables on the way.
fn set_path(table: &mut toml::Table, key: &str, value: toml::Value) -> Result<(), KeyError> {
    let segs: Vec<&str> = key.split('.').collect();
    let mut cur = table;
    for (i, seg) in segs.iter().enumerate() {
        let last = i + 1 == segs.len();
        if last {
            cur.insert(seg.to_string(), value);
            return Ok(());
        }
        let next = cur
            .entry(seg.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        cur = match next {
            toml::Value::Table(t) => t,
            toml::Value::Array(a) => {
                let n: usize = segs[i + 1].parse().map_err(|_| KeyError::NoIndex {
                    seg: seg.to_string(),
                })?;
                let len = a.len();
                let item = a.get_mut(n).ok_or_else(|| KeyError::NoItem {
                    seg: seg.to_string(),
                    index: n,
                    len,
                })?;
                if i + 2 == segs.len() {
                    return Err(KeyError::NoKey {
                        key: key.to_string(),
                        seg: seg.to_string(),
                        index: n,
                    });
                }
                // Skip the index segment.
                match item {
                    toml::Value::Table(t) => {
                        return set_path(t, &segs[i + 2..].join("."), value);
                    }
                    _ => {
                        return Err(KeyError::ItemNotTable {
                            seg: seg.to_string(),
                            index: n,
                        });
                    }
                }
            }
            _ => {
                return Err(KeyError::NotTable {
                    path: segs[..=i].join("."),
                });
            }
        };
    }
    Ok(())
}

/// One configuration to replay: `current` (the base config) or a combination.
#[derive(Debug, Clone)]
pub struct Combo {
    /// `current` or `combo-NNN`.
    pub id: String,
    /// The swept keys' values (empty for `current`).
    pub values: Vec<(String, String)>,
    /// Its full config file.
    pub config: PathBuf,
}

impl Combo {
    /// The value this configuration gives a swept key (None: the base config's).
    pub fn value(&self, key: &str) -> Option<&str> {
        self.values
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// `key=value` for each swept key, joined by `sep` (empty for `current`).
    pub fn settings(&self, sep: &str) -> String {
        self.values
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(sep)
    }
}

/// `base` with each `(key, value)` set; a key that cannot be set names its `--sweep`.
fn with_values(base: &toml::Table, values: &[(String, String)]) -> Result<toml::Table, TuneError> {
    let mut t = base.clone();
    for (k, v) in values {
        set_path(&mut t, k, toml_value(v)).map_err(|e| TuneError::Sweep {
            spec: format!("{k}={v}"),
            message: e.to_string(),
        })?;
    }
    Ok(t)
}

/// What `tune` was asked to do.
#[derive(Debug, Clone)]
pub struct Plan {
    pub base: Source,
    pub labels: PathBuf,
    pub sweeps: Vec<Sweep>,
    pub out: PathBuf,
    pub files: Vec<PathBuf>,
    pub jobs: usize,
}

/// Every combination of the swept values, in order (the last sweep varies fastest).
pub fn combinations(sweeps: &[Sweep]) -> Vec<Vec<(String, String)>> {
    let mut out = vec![Vec::new()];
    for s in sweeps {
        out = out
            .into_iter()
            .flat_map(|prefix: Vec<(String, String)>| {
                s.values.iter().map(move |v| {
                    let mut p = prefix.clone();
                    p.push((s.key.clone(), v.clone()));
                    p
                })
            })
            .collect();
    }
    out
}

fn base_table(base: &Source) -> Result<toml::Table, TuneError> {
    let text = match base {
        Source::Embedded => DEFAULT_TOML.to_string(),
        Source::File(p) => std::fs::read_to_string(p).map_err(io(p))?,
    };
    text.parse::<toml::Table>()
        .map_err(|e| TuneError::Config(format!("{base}: {e}")))
}

/// Writes and checks every combination's config (and the base one as `current`): a key that
/// is not a config key, a value of the wrong type or a combination that fails validation is
/// an error here, before anything runs.
pub fn prepare(plan: &Plan) -> Result<Vec<Combo>, TuneError> {
    let base = base_table(&plan.base)?;
    let dir = plan.out.join("configs");
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    let mut seen = std::collections::BTreeSet::new();
    for s in &plan.sweeps {
        if !seen.insert(s.key.as_str()) {
            return Err(TuneError::Sweep {
                spec: s.key.clone(),
                message: "swept twice".into(),
            });
        }
    }
    // The base config must load as it is; then each value alone, so that an error names
    // the one --sweep value it comes from.
    let check = dir.join("check.toml");
    let load = |t: &toml::Table| -> Result<(), TuneError> {
        write_toml(&check, t, "")?;
        let loaded = Source::File(check.clone()).load();
        let _ = std::fs::remove_file(&check);
        loaded
            .map(|_| ())
            .map_err(|e| TuneError::Config(describe(&e)))
    };
    load(&base).map_err(|e| TuneError::Config(format!("{}: {e}", plan.base)))?;
    for s in &plan.sweeps {
        for v in &s.values {
            let t = with_values(&base, &[(s.key.clone(), v.clone())])?;
            load(&t).map_err(|e| TuneError::Sweep {
                spec: format!("{}={v}", s.key),
                message: e.to_string(),
            })?;
        }
    }
    let mut combos = vec![Combo {
        id: "current".into(),
        values: Vec::new(),
        config: dir.join("current.toml"),
    }];
    write_toml(&combos[0].config, &base, "the base config, unchanged")?;
    for (i, values) in combinations(&plan.sweeps).into_iter().enumerate() {
        let t = with_values(&base, &values)?;
        let id = format!("combo-{:03}", i + 1);
        let combo = Combo {
            config: dir.join(format!("{id}.toml")),
            id,
            values,
        };
        write_toml(&combo.config, &t, &combo.settings(" "))?;
        combos.push(combo);
    }
    // The combinations as wholes (the base config loaded above).
    for c in &combos[1..] {
        if let Err(e) = Source::File(c.config.clone()).load() {
            return Err(TuneError::Config(format!(
                "combination {}: {}",
                c.settings(", "),
                describe(&e)
            )));
        }
    }
    Ok(combos)
}

/// A config error without the name of the scratch file it was read from.
fn describe(e: &crate::config::ConfigError) -> String {
    use crate::config::ConfigError;
    match e {
        ConfigError::Invalid { problems, .. } => problems
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; "),
        ConfigError::Parse { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

fn write_toml(path: &Path, t: &toml::Table, note: &str) -> Result<(), TuneError> {
    let body = toml::to_string(t).map_err(|e| TuneError::Config(e.to_string()))?;
    let head = if note.is_empty() {
        String::new()
    } else {
        format!("# streamguard tune: {note}\n")
    };
    std::fs::write(path, head + &body).map_err(io(path))
}

/// One replayed combination.
#[derive(Debug, Clone)]
pub struct Row {
    pub combo: Combo,
    pub summary: Summary,
}

/// Reads the rows and frontier of an earlier run's `results.json`.
pub fn load_results(path: &Path) -> Result<(Vec<Row>, Vec<usize>), TuneError> {
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    let bad = |m: String| TuneError::Config(format!("{}: {m}", path.display()));
    let v: Vec<serde_json::Value> = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    let mut rows = Vec::new();
    let mut front = Vec::new();
    for (i, r) in v.into_iter().enumerate() {
        let summary: Summary =
            serde_json::from_value(r.clone()).map_err(|e| bad(format!("row {}: {e}", i + 1)))?;
        let values = r["values"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect()
            })
            .unwrap_or_default();
        if r["frontier"].as_bool() == Some(true) {
            front.push(i);
        }
        rows.push(Row {
            combo: Combo {
                id: r["id"].as_str().unwrap_or_default().to_string(),
                values,
                config: PathBuf::from(r["config"].as_str().unwrap_or_default()),
            },
            summary,
        });
    }
    Ok((rows, front))
}

#[cfg(test)]
mod tests;
