//! Sockets: accept loops with their bounds and timeouts.

pub mod http;
