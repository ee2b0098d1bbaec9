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
    /// Classifier worker threads (each with its own session of every model). Default: 1.
    pub workers: usize,
    /// Frames waiting for a worker, per queue (urgent: streams that are dense or high-risk;
    /// normal: the rest). A live frame that finds its queue full is not classified (counted
    /// as `classify_dropped`); replay waits instead. Default: 8.
    pub queue: usize,
    /// A classifier label halts a stream when `halt_k` of the stream's last `halt_n`
    /// classified frames scored at least its halt threshold (one odd frame only raises a
    /// review alert). Defaults: 3 of 5.
    pub halt_k: usize,
    pub halt_n: usize,
}

impl Default for ClassifyConfig {
    fn default() -> Self {
        Self {
            runtime: PathBuf::from(crate::classify::DEFAULT_RUNTIME),
            threads: 1,
            models: Vec::new(),
            workers: 1,
            queue: 8,
            halt_k: 3,
            halt_n: 5,
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
        if self.workers == 0 || self.workers > 256 {
            problems.push(Problem::new(
                "classify.workers",
                "must be between 1 and 256",
            ));
        }
        if self.queue == 0 {
            problems.push(Problem::new("classify.queue", "must be at least 1"));
        }
        if self.halt_n == 0 || self.halt_n > 1000 {
            problems.push(Problem::new(
                "classify.halt_n",
                "must be between 1 and 1000",
            ));
        }
        if self.halt_k == 0 || self.halt_k > self.halt_n {
            problems.push(Problem::new(
                "classify.halt_k",
                format!("must be between 1 and halt_n ({})", self.halt_n),
            ));
        }
        // Whether each folder holds a model is checked when the models load
        // (`classify::stage::check`: check-config, start-up, replay), not here.
    }
}
