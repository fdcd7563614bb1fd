//! The integration tests: one binary, one module per concern, all on loopback port 0.
//!
//! One crate instead of a binary per file, so an edit of `src/` relinks one test binary, not a
//! dozen (house rule 11). Run one module with `cargo test --test it proxy_faults::`.
//!
//! # Layout
//!
//! - `support`: the harness: `Gate` (the proxy in-process, optionally with its admin listener), the
//!   recording `Upstream` (plain or TLS), `Binary`/`Logged` (the real binary as a child), raw clients.
//! - `cli`: `check` and `explain` over tests/fixtures.
//! - `origin_props`: property tests of the origin matcher and parsers.
//! - `proxy`: CORS behaviour (preflights, denials never forwarded, Vary, enforcement modes).
//! - `proxy_forwarding`: header rewrite, routing to upstreams, streamed bodies, h2c, WebSocket.
//! - `proxy_faults`: 502/504, resets, malformed and slow clients, connection limits, drains.
//! - `proxy_process`: the real binary: signals, multiple listeners, flat memory while streaming.
//! - `rate_limit`: `[rate_limits]`: 429s a page can read, the three keys, metrics and logs, buckets
//!   kept across a reload of the real binary, `explain`.
//! - `reload`: SIGHUP and watch-mode reloads under load.
//! - `tls`: TLS listener with h2 by ALPN, https upstreams, certificate rotation.
//! - `observability`: access and denial logs, metrics and the admin listener, through the proxy.
//! - `hardening`: raw-byte attacks that must keep holding (smuggling, bounds, h2 floods), bounded
//!   files and durations, and bounded proptests over request heads and config text.
//! - `editor`: `corsgate schema`, completions, the man page, and the Grafana dashboard against a
//!   real `/metrics`.

mod support;

mod cli;
mod editor;
mod hardening;
mod observability;
mod origin_props;
mod proxy;
mod proxy_faults;
mod proxy_forwarding;
mod proxy_process;
mod rate_limit;
mod reload;
mod tls;
