//! The log events and their field names (documented in docs/observability.md; a rename there is
//! an interface change). Request values are clipped and paths lose their query string here.

use crate::policy::Outcome;
use std::time::Duration;

use crate::observe::{AccessRecord, UpstreamErrorKind};
use crate::policy::DenialReason;
use crate::telemetry::{ACCESS_TARGET, DENIAL_TARGET, MISMATCH_TARGET, UPSTREAM_TARGET};

/// Request values (origin, offending header) longer than this are cut in log lines, so that one
/// request cannot write a line of unbounded size.
const MAX_LOGGED_VALUE: usize = 256;

/// Config names of the route a request matched (all `None` without a route).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Names<'a> {
    pub(crate) route: Option<&'a str>,
    pub(crate) policy: Option<&'a str>,
    pub(crate) upstream: Option<&'a str>,
}

/// The access event: INFO on `corsgate::access`, one per request. Optional fields are left out
/// when they do not apply.
pub(crate) fn access(names: Names<'_>, rec: &AccessRecord<'_>) {
    tracing::info!(
        target: ACCESS_TARGET,
        method = rec.method,
        host = rec.host.map(clip),
        path = clip_path(rec.path),
        origin = rec.origin.map(clip),
        route = names.route,
        policy = names.policy,
        decision = rec.outcome.as_str(),
        reason = rec.denial.map(|(r, _)| r.as_str()),
        denied_value = rec.denial.map(|(_, v)| clip(v)),
        rate_limit = rec.rate_limit,
        enforcement = rec.enforcement,
        status = rec.status,
        upstream = names.upstream,
        upstream_latency_ms = rec.upstream_latency.map(millis),
        total_latency_ms = millis(rec.total),
        bytes_in = rec.bytes_in,
        bytes_out = rec.bytes_out,
        "access"
    );
}

/// A denial line: WARN on `corsgate::denial`, after the rate limiter let it through; first the
/// summary of the lines it held back, if any.
pub(crate) fn denial(
    names: Names<'_>,
    rec: &AccessRecord<'_>,
    (reason, value): (DenialReason, &str),
    suppressed: u64,
) {
    if suppressed > 0 {
        tracing::warn!(target: DENIAL_TARGET, route = names.route, suppressed,
            "suppressed {suppressed} denial lines");
    }
    let message = if rec.outcome == Outcome::PreflightDenied {
        "CORS preflight denied"
    } else {
        "CORS request denied"
    };
    tracing::warn!(
        target: DENIAL_TARGET,
        route = names.route,
        policy = names.policy,
        decision = rec.outcome.as_str(),
        reason = reason.as_str(),
        denied_value = clip(value),
        origin = rec.origin.map(clip),
        method = rec.method,
        path = clip_path(rec.path),
        enforcement = rec.enforcement,
        status = rec.status,
        "{message}"
    );
}

/// A report-only disagreement: WARN on `corsgate::mismatch`, rate-limited by the caller.
pub(crate) fn mismatch(names: Names<'_>, detail: &str, suppressed: u64) {
    if suppressed > 0 {
        tracing::warn!(target: MISMATCH_TARGET, route = names.route, suppressed,
            "suppressed {suppressed} mismatch lines");
    }
    tracing::warn!(target: MISMATCH_TARGET, route = names.route, policy = names.policy,
        detail = clip(detail), "upstream CORS headers disagree with the policy (report-only)");
}

/// `fetch_metadata = "report"`: a cross-site request enforce would refuse, forwarded. WARN on
/// `corsgate::denial`, rate-limited by the caller with the route's denial budget.
pub(crate) fn cross_site_report(names: Names<'_>, detail: &str, suppressed: u64) {
    if suppressed > 0 {
        tracing::warn!(target: DENIAL_TARGET, route = names.route, suppressed,
            "suppressed {suppressed} cross-site report lines");
    }
    tracing::warn!(target: DENIAL_TARGET, route = names.route, policy = names.policy,
        reason = "cross_site_request", detail = clip(detail),
        "cross-site request would be refused by fetch_metadata (reported, forwarded)");
}

/// An upstream failure: WARN on `corsgate::upstream`, rate-limited by the caller; `error` is the
/// cause when the caller has it.
pub(crate) fn upstream_error(
    upstream: &str,
    kind: UpstreamErrorKind,
    error: Option<&dyn std::error::Error>,
    suppressed: u64,
) {
    if suppressed > 0 {
        tracing::warn!(target: UPSTREAM_TARGET, upstream, suppressed,
            "suppressed {suppressed} upstream error lines");
    }
    tracing::warn!(target: UPSTREAM_TARGET, upstream, kind = kind.as_str(),
        error = error.map(tracing::field::display),
        "upstream request failed");
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The path without any query string (which can carry secrets), even if the caller passed one.
fn clip_path(path: &str) -> &str {
    clip(path.split_once('?').map_or(path, |(p, _)| p))
}

/// At most `MAX_LOGGED_VALUE` bytes, cut on a character boundary; never allocates.
fn clip(s: &str) -> &str {
    if s.len() <= MAX_LOGGED_VALUE {
        return s;
    }
    let mut end = MAX_LOGGED_VALUE;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clipping_keeps_char_boundaries_and_drops_queries() {
        let long = "é".repeat(200); // 400 bytes, 2 per char
        let c = clip(&long);
        assert!(c.len() <= MAX_LOGGED_VALUE && c.len() >= MAX_LOGGED_VALUE - 1);
        assert_eq!(clip("short"), "short");
        assert_eq!(clip_path("/a/b?token=x"), "/a/b");
        assert_eq!(clip_path("/a/b"), "/a/b");
    }
}
