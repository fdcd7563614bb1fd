//! corsgate: a standalone CORS-enforcing reverse proxy.
//!
//! # Layout
//! - [`config`]: the TOML schema (`raw`), diagnostics with FILE:LINE:COL, and the compile step that is
//!   the only way to a [`snapshot::Snapshot`].
//! - [`policy`]: origin matching and the pure `decide` function (no I/O).
//! - [`routes`]: host and path-prefix routing.
//! - [`snapshot`]: the compiled config, evaluated per request.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod config;
pub mod policy;
pub mod routes;
pub mod snapshot;
