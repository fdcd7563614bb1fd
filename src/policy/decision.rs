//! `Decision`: what the policy engine concluded about one request, with the reason and the exact
//! response headers. The HTTP layer only applies it (`response.rs`); `explain` only renders it.

use http::header::HeaderValue;

use super::{CorsHeaders, NonCorsHeaders};

/// The outcome for one request. Borrows the compiled policy (`'a`) and the request.
#[derive(Clone, Copy, Debug)]
pub enum Decision<'a> {
    /// No `Origin`: forwarded; corsgate still owns the response's `Access-Control-*` headers.
    NotCors {
        /// What the response carries instead of the upstream's `Access-Control-*`.
        headers: &'a NonCorsHeaders,
    },
    /// The Origin is the request's own origin (or one of the route's `own_origins`, or the browser
    /// said `Sec-Fetch-Site: same-origin`): forwarded, with the same headers as `NotCors`.
    SameOrigin {
        /// What the response carries instead of the upstream's `Access-Control-*`.
        headers: &'a NonCorsHeaders,
    },
    /// A preflight the proxy answers itself with `status` and `headers`.
    PreflightAllowed {
        /// The precomputed preflight answer.
        response: &'a CorsHeaders,
        /// The request's `Origin`, echoed when `response.allow_origin` is `Echo`.
        origin: &'a HeaderValue,
        /// Add `Access-Control-Allow-Private-Network: true`.
        private_network: bool,
        /// Which rule let the origin in.
        rule: OriginRule<'a>,
    },
    /// A preflight that fails: answered with 403 and no `Access-Control-*` header.
    PreflightDenied(Denial<'a>),
    /// An actual cross-origin request (or WebSocket handshake) to forward, with headers to inject.
    Allowed {
        /// The precomputed headers for responses to actual requests.
        response: &'a CorsHeaders,
        /// The request's `Origin`, echoed when `response.allow_origin` is `Echo`.
        origin: &'a HeaderValue,
        /// Which rule let the origin in.
        rule: OriginRule<'a>,
    },
    /// An actual cross-origin request that the policy does not allow.
    Denied(Denial<'a>),
}

impl Decision<'_> {
    /// What became of the request, as logs, metrics and `explain --json` name it.
    pub fn outcome(&self) -> Outcome {
        match self {
            Decision::NotCors { .. } => Outcome::NotCors,
            Decision::SameOrigin { .. } => Outcome::SameOrigin,
            Decision::PreflightAllowed { .. } => Outcome::PreflightAllowed,
            Decision::PreflightDenied(_) => Outcome::PreflightDenied,
            Decision::Allowed { .. } => Outcome::Allowed,
            Decision::Denied(_) => Outcome::Denied,
        }
    }

    /// The denial, for the two denying outcomes.
    pub fn denial(&self) -> Option<&Denial<'_>> {
        match self {
            Decision::PreflightDenied(d) | Decision::Denied(d) => Some(d),
            _ => None,
        }
    }
}

/// What became of one request: the `outcome` label of `corsgate_requests_total`, the access log's
/// `decision` field and `explain --json`'s `decision`. The discriminant indexes the per-route
/// counters, so recording one is an array access, never a string comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// No `Origin`: forwarded.
    NotCors,
    /// Same-origin: forwarded.
    SameOrigin,
    /// A preflight answered by the proxy.
    PreflightAllowed,
    /// A preflight refused by the proxy.
    PreflightDenied,
    /// An allowed cross-origin request: forwarded with CORS headers.
    Allowed,
    /// A cross-origin request the policy refuses.
    Denied,
    /// No route matches the host and path: 404.
    NoRoute,
    /// Refused before evaluation, as no valid request for a route (CONNECT, a target that is not a
    /// path, no or several or an invalid `Host`): 400 or 405.
    Rejected,
    /// Over the route's rate limit: 429 from the proxy, never forwarded. Decided from run-time
    /// state (the limit's buckets), never by the pure policy engine.
    RateLimited,
}

impl Outcome {
    /// Every outcome, in discriminant order.
    pub const ALL: [Outcome; 9] = [
        Outcome::NotCors,
        Outcome::SameOrigin,
        Outcome::PreflightAllowed,
        Outcome::PreflightDenied,
        Outcome::Allowed,
        Outcome::Denied,
        Outcome::NoRoute,
        Outcome::Rejected,
        Outcome::RateLimited,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::NotCors => "not-cors",
            Outcome::SameOrigin => "same-origin",
            Outcome::PreflightAllowed => "preflight-allowed",
            Outcome::PreflightDenied => "preflight-denied",
            Outcome::Allowed => "allowed",
            Outcome::Denied => "denied",
            Outcome::NoRoute => "no-route",
            Outcome::Rejected => "rejected",
            Outcome::RateLimited => "rate-limited",
        }
    }

    /// Position in [`Outcome::ALL`] (and in the per-route counter arrays).
    pub fn index(self) -> usize {
        self as usize
    }
}

/// Which configured rule matched the origin; `explain` prints it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OriginRule<'a> {
    /// `"*"`.
    Any,
    /// An exact origin entry.
    Exact,
    /// The explicit `"null"` entry.
    Null,
    /// A port or host wildcard pattern, as written in the config.
    Pattern(&'a str),
    /// An `allowed_origin_regex` entry, as written in the config.
    Regex(&'a str),
}

/// Why a request was denied. `detail` borrows the offending value from the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Denial<'a> {
    /// The reason, a bounded set that doubles as a metric label.
    pub reason: DenialReason,
    /// The offending origin, method or header name, as the request sent it (for logs and explain).
    pub detail: &'a str,
}

/// The bounded set of denial reasons (metric label `reason`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DenialReason {
    /// The origin matches no rule.
    OriginNotAllowed,
    /// `Origin: null` without an explicit `"null"` entry.
    NullOrigin,
    /// An `Origin` that is not a serialized origin (or several `Origin` headers).
    MalformedOrigin,
    /// The (requested) method is not allowed.
    MethodNotAllowed,
    /// A requested header is not allowed, or the header list is malformed or too long.
    HeaderNotAllowed,
    /// The preflight asked for private network access and the policy does not allow it.
    PrivateNetworkNotAllowed,
    /// A WebSocket handshake from an origin that is not allowed.
    WebsocketOrigin,
    /// `fetch_metadata = "enforce"`: the browser said the request comes from another site
    /// (`Sec-Fetch-Site`) and it is neither a CORS request nor an allowed navigation.
    CrossSiteRequest,
}

impl DenialReason {
    /// Every reason, in a stable order.
    pub const ALL: [DenialReason; 8] = [
        DenialReason::OriginNotAllowed,
        DenialReason::NullOrigin,
        DenialReason::MalformedOrigin,
        DenialReason::MethodNotAllowed,
        DenialReason::HeaderNotAllowed,
        DenialReason::PrivateNetworkNotAllowed,
        DenialReason::WebsocketOrigin,
        DenialReason::CrossSiteRequest,
    ];

    /// Position in [`DenialReason::ALL`] (and in the per-route counter arrays).
    pub fn index(self) -> usize {
        self as usize
    }

    /// The metric label and log value.
    pub fn as_str(self) -> &'static str {
        match self {
            DenialReason::OriginNotAllowed => "origin_not_allowed",
            DenialReason::NullOrigin => "null_origin",
            DenialReason::MalformedOrigin => "malformed_origin",
            DenialReason::MethodNotAllowed => "method_not_allowed",
            DenialReason::HeaderNotAllowed => "header_not_allowed",
            DenialReason::PrivateNetworkNotAllowed => "private_network_not_allowed",
            DenialReason::WebsocketOrigin => "websocket_origin",
            DenialReason::CrossSiteRequest => "cross_site_request",
        }
    }
}

impl std::fmt::Display for DenialReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_follow_the_all_arrays() {
        for (i, o) in Outcome::ALL.iter().enumerate() {
            assert_eq!(o.index(), i, "{}", o.as_str());
        }
        for (i, r) in DenialReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i, "{r}");
        }
    }
}
