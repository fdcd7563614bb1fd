//! corsgate: a standalone CORS-enforcing reverse proxy.
//!
//! # Layout
//! - [`config`]: the TOML schema (`raw`), diagnostics with FILE:LINE:COL, the bounded reader for every
//!   file a config names (`file`), and the compile step that is the only way to a
//!   [`snapshot::Snapshot`].
//! - [`policy`]: origin matching and the pure `decide` function (no I/O).
//! - [`routes`]: host and path-prefix routing.
//! - [`snapshot`]: the compiled config, evaluated per request.
//! - [`observe`]: the data path's door to logs and metrics.
//! - [`server`]: listeners and connections; [`proxy`] (issue 3) the per-request service.
//! - [`report`]: `check` and `explain` output; [`cli`]: the command line; [`demo`]: `corsgate demo`.
//! - [`editor`]: `schema`, `completions` and `manpage`, for editors and shells.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

/// The admin listener: `/healthz`, `/readyz`, `/metrics`.
pub mod admin;
pub mod authority;
pub mod cli;
pub mod config;
pub mod demo;
pub mod editor;
/// Runtime state swapped on reload: snapshot, upstream clients, metric handles.
pub mod live;
pub mod observe;
pub mod policy;
/// The per-request proxy service.
pub mod proxy;
pub mod reload;
pub mod report;
pub mod routes;
pub mod server;
pub mod snapshot;
/// Tracing subscriber setup, the metric registry, and log rate limits behind [`observe`].
pub mod telemetry;
pub mod tls;
