//! Moderation: the recorder (findings to committed alerts, halt verdicts), the durable alert
//! store, and the actuators that cut a halted stream's publisher off.
pub mod actuator;
pub mod recorder;
pub mod store;
