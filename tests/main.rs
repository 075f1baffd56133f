//! The integration tests: one binary (one link of wasmtime, tantivy and the
//! AWS SDK), a module per area, shared helpers in [`common`]. Each drives
//! the real gateway on 127.0.0.1:0 (in process, or the `logway` binary as
//! a child) with real clients, files and an S3-protocol server.

mod common;

mod alerts;
mod archive;
mod beats;
mod classes;
mod cli;
mod cluster;
mod datadog;
mod derived;
mod durability;
mod elastic;
mod elastic_clients;
mod filter_sandbox;
mod filters;
mod gelf;
mod hec;
mod http;
mod ingest;
mod limits;
mod loghub;
mod loki;
mod object_store;
mod otlp;
mod otlp_logs;
mod remote_write;
mod replay;
mod statsd;
mod statsd_http;
mod syslog;
mod tls;
mod ui_admin;
mod ui_browser;
mod ui_search;
mod ui_session;
mod ui_tail;
mod webhooks;
