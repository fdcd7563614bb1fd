//! corsgate: a standalone CORS-enforcing reverse proxy.
//!
//! # Layout
//!
//! A request walks down this list; `docs/architecture.md` has the map in full.
//! - `server`: listeners, connections and their deadlines; `proxy`: the per-request service,
//!   which only applies what the modules below decide.
//! - `target`: the request target, checked first (normalised path, one `Authority`, or `Rejected`).
//! - `snapshot`: the compiled config; `Snapshot::evaluate` routes (`routes`) and lets the route's
//!   policy decide (`policy`: origin matching, `decide`, the `Plan` and every CORS response-header
//!   write: pure, no I/O).
//! - `live`: the snapshot made live (each route and upstream with its client and metric handles,
//!   each rate limit with its buckets: `ratelimit`), behind the one swap point that `reload`
//!   stores into.
//! - `observe`: the data path's door to logs and metrics (`telemetry` behind it).
//! - `gateway`: the front door that starts all of the above; `admin`, `tls`.
//! - `config`: the TOML schema, diagnostics with FILE:LINE:COL, the bounded reader for every file a
//!   config names (`file`), and the compile step that is the
//!   only way to a `Snapshot`.
//! - `report`: `check` and `explain`; `cli`, `demo`, `editor` (`schema`, `completions`, `manpage`).
//!
//! The public API is what is re-exported here; everything else is `pub(crate)`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![deny(unreachable_pub)]

mod admin;
mod authority;
mod cli;
mod config;
mod demo;
mod editor;
mod gateway;
mod live;
mod observe;
mod policy;
mod pool;
mod proxy;
mod ratelimit;
mod reload;
mod report;
mod routes;
mod server;
mod snapshot;
mod target;
mod telemetry;
mod tls;

pub use authority::Authority;
pub use cli::{Cli, Command};
pub use config::{load, load_str, ConfigError, Diagnostic, Loaded, Severity};
pub use gateway::Gateway;
pub use observe::{Clock, Observer};
pub use policy::{
    Decision, DenialReason, OriginPattern, Outcome, RequestOrigin, RequestView, Scheme,
};
pub use reload::Reloader;
pub use snapshot::{
    Evaluation, LogFormat, LogSettings, RateLimitKey, RateLimitSettings, RateLimited, Routed,
    Snapshot,
};

/// What `main` runs for each subcommand.
pub mod commands {
    pub use crate::demo::run as demo;
    pub use crate::editor::schema_command as schema;
    pub use crate::editor::{completions_command as completions, manpage_command as manpage};
    pub use crate::report::{check_command as check, explain_command as explain};
    pub use crate::server::run;
}

/// For tests that drive the proxy's own TLS and log setup, and benches of the rate limiter.
pub mod testing {
    pub use crate::ratelimit::{Key as RateLimitKeyValue, RateLimit};
    pub use crate::telemetry::dispatch;
    pub use crate::tls::{provider, server_config};
}
