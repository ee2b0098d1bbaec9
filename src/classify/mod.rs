//! ONNX image classifiers: the runtime (ONNX Runtime, loaded at run time from a shared
//! library), model manifests, and one classifier session per worker.
//!
//! The library is the one `scripts/setup.sh` unpacks from the PyPI wheel
//! `onnxruntime==1.31.1` into `.onnxruntime/`; `ORT_DYLIB_PATH` overrides the path given.
//! A missing or too old library is an error naming the path, never a panic.

pub mod manifest;
pub mod model;
pub mod pool;
pub mod stage;

pub use manifest::Manifest;
pub use model::Classifier;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

/// Where `scripts/setup.sh` puts the library.
pub const DEFAULT_RUNTIME: &str = ".onnxruntime/libonnxruntime.so.1.31.1";

#[derive(Debug, Clone, thiserror::Error)]
pub enum ClassifyError {
    #[error(
        "ONNX Runtime library {path}: {message} (scripts/setup.sh installs version 1.31.1 at {DEFAULT_RUNTIME}; ORT_DYLIB_PATH overrides)"
    )]
    Runtime { path: String, message: String },
    #[error("model {model}: {message}")]
    Model { model: String, message: String },
}

static ENV: OnceLock<ort::environment::Environment> = OnceLock::new();
static INIT: Mutex<()> = Mutex::new(());

/// The library to load, made absolute (so that the file checked is the file loaded):
/// `ORT_DYLIB_PATH` if set and not empty, else `configured`, else [`DEFAULT_RUNTIME`];
/// with where it came from.
pub fn runtime_path(configured: Option<&Path>) -> (PathBuf, &'static str) {
    let (p, from) = match std::env::var_os("ORT_DYLIB_PATH").filter(|v| !v.is_empty()) {
        Some(v) => (PathBuf::from(v), "ORT_DYLIB_PATH"),
        None => match configured {
            Some(c) => (c.to_path_buf(), "classify.runtime"),
            None => (PathBuf::from(DEFAULT_RUNTIME), "default"),
        },
    };
    (std::path::absolute(&p).unwrap_or(p), from)
}

/// Loads ONNX Runtime once per process; later calls return the same environment (whatever
/// path they name: a process has one ONNX Runtime, and a library ort loaded stays loaded
/// even if building the environment failed).
pub fn environment(
    configured: Option<&Path>,
) -> Result<&'static ort::environment::Environment, ClassifyError> {
    if let Some(env) = ENV.get() {
        return Ok(env);
    }
    let _guard = INIT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(env) = ENV.get() {
        return Ok(env);
    }
    let (path, from) = runtime_path(configured);
    let fail = |message: String| ClassifyError::Runtime {
        path: format!("{} (from {from})", path.display()),
        message,
    };
    if !path.is_file() {
        return Err(fail("not found".into()));
    }
    let env = ort::init_from(&path)
        .map_err(|e| fail(e.to_string()))?
        .with_name("streamguard")
        .build()
        .map_err(|e| fail(e.to_string()))?;
    Ok(ENV.get_or_init(|| env))
}
