//! streamguard: watches live streams and raises alerts when known material appears.
//!
//! Modules in data-flow order (see README "Architecture"):
//! - [`config`]: typed configuration, validation that reports every problem at once;
//! - [`analysis`]: PDQ hashing (bit-exact with Meta's reference) and hash banks.
//!
//! Ingest, sampling, decoding, policy and the alert store follow the same layout as they land.
pub mod analysis;
pub mod config;
