//! Syslog for Logway's TCP listener: framing a byte stream into messages
//! ([`Framer`], RFC 6587 octet counting or newlines) and parsing a message
//! into the event model's parts ([`parse`], RFC 5424 and RFC 3164 through
//! `syslog_loose`, Vector's parser).
//!
//! Both take bytes from the network, so they live in this small crate that
//! the fuzz targets in `fuzz/` build on their own (`cargo fuzz run framer`,
//! `cargo fuzz run parse`), without the gateway's heavy dependencies.

mod framer;
mod message;

pub use framer::{Frame, Framer};
pub use message::{Fields, Parsed, parse};
