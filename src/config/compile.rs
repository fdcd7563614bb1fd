//! raw → `Snapshot`: resolve references, validate every value, collect every error and warning with
//! its position. The only way to a `Snapshot`.

//!
//! By concern: `server` (`[server]`, `[log]`), `upstream`, `policy`, `rate_limit`, `routes`
//! (references and unused warnings), `duration` (bounded durations); the shared helpers (lenient entries, config-named
//! files) are below.

mod duration;
mod policy;
mod rate_limit;
mod regex_probe;
mod routes;
mod server;
mod upstream;

use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;

use toml::Spanned;

#[cfg(test)]
pub(crate) use duration::parse_duration;

use super::diagnostic::Diagnostics;
use super::file;
use super::raw::{Entry, Lenient, RawConfig};
use crate::snapshot::Snapshot;
use routes::{compile_routes, warn_unused, Known};
use server::{compile_log, compile_server, default_log, default_server};
use upstream::compile_upstream;

/// Compile a parsed file. `base` is the config file's directory for relative paths.
pub(super) fn compile(
    raw: RawConfig,
    source: &Path,
    base: &Path,
    d: &mut Diagnostics<'_>,
) -> Option<Snapshot> {
    let server = entry(raw.server.as_ref(), d).map_or_else(
        || Some(default_server()),
        |(s, _)| compile_server(s, base, d),
    );
    let log =
        entry(raw.log.as_ref(), d).map_or_else(|| Some(default_log()), |(l, _)| compile_log(l, d));

    let mut upstream_index = HashMap::new();
    let mut upstreams = Vec::new();
    for (name, e) in &raw.upstreams {
        if let Some((u, _)) = entry(Some(e), d) {
            if let Some(up) = compile_upstream(name.get_ref(), u, base, d) {
                upstream_index.insert(name.get_ref().as_str(), upstreams.len());
                upstreams.push(up);
            }
        }
    }
    let mut policy_index = HashMap::new();
    let mut policies = Vec::new();
    for (name, e) in &raw.policies {
        if let Some((p, span)) = entry(Some(e), d) {
            if let Some(p) = policy::compile_policy(name.get_ref(), p, span, d) {
                policy_index.insert(name.get_ref().as_str(), policies.len());
                policies.push(p);
            }
        }
    }
    let mut rate_limit_index = HashMap::new();
    let mut rate_limits = Vec::new();
    for (name, e) in &raw.rate_limits {
        if let Some((l, _)) = entry(Some(e), d) {
            if let Some(l) = rate_limit::compile_rate_limit(name.get_ref(), l, d) {
                rate_limit_index.insert(name.get_ref().as_str(), rate_limits.len());
                rate_limits.push(l);
            }
        }
    }
    let known = Known {
        upstreams: raw.upstreams.keys().map(|k| k.get_ref().as_str()).collect(),
        policies: raw.policies.keys().map(|k| k.get_ref().as_str()).collect(),
        rate_limits: raw
            .rate_limits
            .keys()
            .map(|k| k.get_ref().as_str())
            .collect(),
        upstream_index,
        policy_index,
        rate_limit_index,
    };
    let routes = compile_routes(&raw.routes, &known, d);
    warn_unused(&raw, d);
    if d.has_errors() {
        return None;
    }
    let server = server?;
    let tls = match &server.tls {
        None => None,
        Some(files) => match crate::tls::server_config(&files.cert, &files.key) {
            Ok(config) => Some(config),
            Err(e) => {
                let span = raw_tls_span(&raw).unwrap_or(0..0);
                d.error(span, e.to_string());
                return None;
            }
        },
    };
    Some(Snapshot {
        source: source.to_path_buf(),
        tls,
        server,
        log: log?,
        upstreams,
        policies,
        rate_limits,
        routes: routes?,
    })
}

fn raw_tls_span(raw: &RawConfig) -> Option<Range<usize>> {
    match raw.server.as_ref()?.get_ref() {
        Lenient::Ok(s) => s.tls.as_ref().map(Spanned::span),
        Lenient::Err(_) => None,
    }
}

/// Unwrap a lenient entry, recording its serde error.
fn entry<'r, T>(e: Option<&'r Entry<T>>, d: &mut Diagnostics<'_>) -> Option<(&'r T, Range<usize>)> {
    let e = e?;
    match e.get_ref() {
        Lenient::Ok(v) => Some((v, e.span())),
        Lenient::Err(msg) => {
            d.serde_error(e.span(), msg);
            None
        }
    }
}

/// A PEM file named by the config, resolved against the config's directory: it must be a regular
/// file within [`file::MAX_PEM_BYTES`]; otherwise the error points at the path's value.
fn resolve_file(p: &Spanned<String>, base: &Path, d: &mut Diagnostics<'_>) -> std::path::PathBuf {
    let path = base.join(p.get_ref());
    if let Err(e) = file::check(&path, file::MAX_PEM_BYTES) {
        d.error(p.span(), e.to_string());
    }
    path
}
