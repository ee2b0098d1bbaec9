//! Moderation: the durable alert store.
pub mod store;
