//! Moderation: the durable alert store.
pub mod actuator;
pub mod recorder;
pub mod store;
