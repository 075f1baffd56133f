//! Delivery classes: what a route promises its events
//! (`docs/guides/delivery-classes.md`).
//!
//! - `log` (the default): durable before the ack, indexed and archived;
//!   the first to be refused when the gateway is overloaded.
//! - `metric`: refused after logs.
//! - `event`: never refused while the WAL has room, and ahead of every
//!   log batch on the way into it ([`crate::wal::Wal::submit_class`]).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Class {
    #[default]
    Log,
    Metric,
    Event,
}

impl Class {
    pub const ALL: [Class; 3] = [Class::Log, Class::Metric, Class::Event];

    /// For `skip_serializing_if`: the default class is not written.
    pub fn is_log(&self) -> bool {
        *self == Class::Log
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Class::Log => "log",
            Class::Metric => "metric",
            Class::Event => "event",
        }
    }
}
