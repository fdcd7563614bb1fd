//! `[rate_limits.NAME]` → `RateLimitSettings`: the rate, the burst, the key and its trusted hops, the
//! key bound. Every value a GCRA cannot represent is an error with its position, so building the
//! limiter at run time never fails.

use std::time::Duration;

use toml::Spanned;

use crate::config::diagnostic::Diagnostics;
use crate::config::raw::RawRateLimit;
use crate::snapshot::{RateLimitKey, RateLimitSettings};

/// The fastest sustained rate: one request per nanosecond, the GCRA clock's resolution.
const MAX_REQUESTS_PER_SECOND: f64 = 1e9;
/// GCRA keeps a bucket's state as nanoseconds in a u64; a burst that takes longer than this to
/// refill could overflow it. A century is far beyond any useful limit.
const MAX_REFILL: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
const DEFAULT_MAX_KEYS: usize = 100_000;

/// Compile one limit; `None` when it has errors (they are in `d`).
pub(super) fn compile_rate_limit(
    name: &str,
    raw: &RawRateLimit,
    d: &mut Diagnostics<'_>,
) -> Option<RateLimitSettings> {
    let errors = d.error_count();
    let rps = *raw.requests_per_second.get_ref();
    let rps_span = raw.requests_per_second.span();
    if !(rps.is_finite() && rps > 0.0) {
        d.error(
            rps_span.clone(),
            format!("requests_per_second must be a number above 0 (got {rps})"),
        );
    } else if rps > MAX_REQUESTS_PER_SECOND {
        d.error(
            rps_span.clone(),
            "requests_per_second must be at most 1000000000 (one request per nanosecond)",
        );
    }
    let burst = match u32::try_from(*raw.burst.get_ref()) {
        Ok(b) if b >= 1 => Some(b),
        _ => {
            d.error(
                raw.burst.span(),
                format!(
                    "burst must be at least 1 and at most {} (got {})",
                    u32::MAX,
                    raw.burst.get_ref()
                ),
            );
            None
        }
    };
    if let Some(b) = burst {
        if d.error_count() == errors && f64::from(b) / rps > MAX_REFILL.as_secs_f64() {
            d.error(
                rps_span,
                format!("requests_per_second = {rps} with burst = {b}: the burst would take over a century to refill"),
            );
        }
    }
    let key = compile_key(raw.key.as_ref(), raw.trusted_hops.as_ref(), d);
    let max_keys = match &raw.max_keys {
        None => Some(DEFAULT_MAX_KEYS),
        Some(m) => match usize::try_from(*m.get_ref()) {
            Ok(n) if n >= 1 => Some(n),
            _ => {
                d.error(m.span(), "max_keys must be at least 1");
                None
            }
        },
    };
    if d.error_count() > errors {
        return None;
    }
    Some(RateLimitSettings {
        name: name.to_owned(),
        requests_per_second: rps,
        burst: burst?,
        key: key?,
        max_keys: max_keys?,
    })
}

fn compile_key(
    key: Option<&Spanned<String>>,
    hops: Option<&Spanned<i64>>,
    d: &mut Diagnostics<'_>,
) -> Option<RateLimitKey> {
    let kind = match key.map(|k| (k.get_ref().as_str(), k.span())) {
        None | Some(("client", _)) => RateLimitKey::Client,
        Some(("origin", _)) => RateLimitKey::Origin,
        Some(("forwarded", _)) => {
            let trusted_hops = match hops {
                None => 1,
                Some(h) => match u32::try_from(*h.get_ref()) {
                    Ok(n) if n >= 1 => n,
                    _ => {
                        // 0 would trust the entry the client itself wrote.
                        d.error(
                            h.span(),
                            "trusted_hops must be at least 1: the entries left of the proxies you trust are written by the client",
                        );
                        return None;
                    }
                },
            };
            return Some(RateLimitKey::Forwarded { trusted_hops });
        }
        Some((other, span)) => {
            d.error(
                span,
                format!("key {other:?}: expected \"client\", \"origin\" or \"forwarded\""),
            );
            return None;
        }
    };
    if let Some(h) = hops {
        d.error(
            h.span(),
            "trusted_hops only applies with key = \"forwarded\"",
        );
        return None;
    }
    Some(kind)
}
