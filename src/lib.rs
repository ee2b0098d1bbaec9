//! streamguard: watches live streams and raises alerts when known material appears.
//!
//! Modules in data-flow order (see README "Architecture"):
//! - [`config`]: typed configuration, validation that reports every problem at once;
//! - [`ingest`]: pipeline templates and per-stream GStreamer pipelines ending after the parser;
//! - [`sampler`]: which access units are decoded and which frames analysed;
//! - [`decode`]: decoding of the chosen units only;
//! - [`analysis`]: PDQ hashing (bit-exact with Meta's reference), hash banks, worker pool;
//! - [`classify`]: ONNX image classifiers (runtime, manifests, sessions);
//! - [`policy`]: findings to alerts;
//! - [`moderation`]: the SQLite alert store;
//! - [`replay`]: recorded files through the same code, scored against labels;
//! - [`tune`]: replay per combination of swept settings, the cost/latency frontier;
//! - [`app`]: wiring; [`telemetry`]: logs and counters.
pub mod analysis;
pub mod app;
pub mod classify;
pub mod config;
pub mod control;
pub mod decode;
pub mod delivery;
pub mod discovery;
pub mod domain;
pub mod frame_path;
pub mod http;
pub mod ingest;
pub mod moderation;
pub mod policy;
pub mod replay;
pub mod sampler;
pub mod supervisor;
pub mod telemetry;
pub mod tune;
