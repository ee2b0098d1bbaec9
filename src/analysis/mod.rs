//! Analysis: perceptual hashing (PDQ) and matching against hash banks.
pub mod bank;
pub mod pdq;
