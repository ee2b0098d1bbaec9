//! streamguard: watches live streams and raises alerts when known material appears.
//!
//! docs/ARCHITECTURE.md (in this repository) draws the data flow, the threads and channels,
//! where state lives, and one frame's route to an alert and a halt.
//!
//! Modules in data-flow order:
//! - [`config`]: typed configuration, validation that reports every problem at once;
//! - [`discovery`]: which streams are live at the ingest server (callbacks, `rtmp_stat`);
//! - [`supervisor`]: one thread per stream that runs its session and restarts it;
//! - [`ingest`]: pipeline templates and per-stream GStreamer pipelines ending after the parser;
//! - [`sampler`]: which access units are decoded and which frames analysed (fixed, adaptive);
//! - [`decode`]: decoding of the chosen units only;
//! - [`frame_path`]: decoded frames through the analysis pool and the classifier stage;
//! - [`analysis`]: PDQ hashing (bit-exact with Meta's reference), hash banks, worker pool;
//! - [`classify`]: ONNX image classifiers (runtime, manifests, sessions, pool, stage);
//! - [`policy`]: findings to verdicts (bank actions, the classifiers' k-of-n halts);
//! - [`moderation`]: the recorder, the SQLite alert store, the halt actuators;
//! - [`control`]: publish callbacks, halts and reinstatements, reconciliation;
//! - [`delivery`]: the store's outbox to NATS JetStream and webhooks, at least once;
//! - [`http`]: the API, the console, ingest callbacks, `/metrics`, server-sent events;
//! - [`telemetry`]: logs, per-stream counters, latency histograms, the Prometheus text;
//! - [`domain`]: the domain's words (states, actions, reasons, events), one enum each;
//! - [`app`]: wiring: starts the stages in data-flow order, stops them in reverse;
//! - [`replay`]: recorded files through the same code, scored against labels;
//! - [`tune`]: replay per combination of swept settings, the cost/latency frontier.
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
