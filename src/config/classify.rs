use super::Problem;
use serde::Deserialize;
use std::path::PathBuf;

/// `[classify]`: ONNX image classifiers (see `models/README.md`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClassifyConfig {
    /// The ONNX Runtime shared library (1.31 or newer). `ORT_DYLIB_PATH` overrides it.
    /// Default: `.onnxruntime/libonnxruntime.so.1.31.1`, where `scripts/setup.sh` puts it.
    pub runtime: PathBuf,
    /// Intra-op threads of each model session. Default: 1.
    pub threads: usize,
    /// Model folders (each with a `model.toml`). Every one is loaded, checked against its
    /// manifest and run once at start-up and by `check-config`. Default: none.
    pub models: Vec<PathBuf>,
}

impl Default for ClassifyConfig {
    fn default() -> Self {
        Self {
            runtime: PathBuf::from(crate::classify::DEFAULT_RUNTIME),
            threads: 1,
            models: Vec::new(),
        }
    }
}

impl ClassifyConfig {
    pub(super) fn validate(&self, problems: &mut Vec<Problem>) {
        if self.threads == 0 || self.threads > 256 {
            problems.push(Problem::new(
                "classify.threads",
                "must be between 1 and 256",
            ));
        }
        for (i, m) in self.models.iter().enumerate() {
            if !m.join("model.toml").is_file() {
                problems.push(Problem::new(
                    format!("classify.models[{i}]"),
                    format!("{}: no model.toml there", m.display()),
                ));
            }
        }
    }
}
