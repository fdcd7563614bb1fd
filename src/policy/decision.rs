//! `Decision`: what the policy engine concluded about one request, with the reason and the exact
//! response headers. The HTTP layer only applies it; `explain` only renders it.

use http::header::{HeaderMap, HeaderName, HeaderValue, ACCESS_CONTROL_ALLOW_ORIGIN};

/// The outcome for one request. Borrows the compiled policy (`'a`) and the request.
#[derive(Clone, Copy, Debug)]
pub enum Decision<'a> {
    /// No `Origin`: forward untouched; add `Vary: Origin` when the policy's answer depends on it.
    NotCors {
        /// `Some("Origin")` when the response must carry `Vary: Origin`.
        vary: Option<&'a HeaderValue>,
    },
    /// The Origin is the request's own origin (or one of the route's `own_origins`): forward untouched.
    SameOrigin {
        /// As for `NotCors`: a shared cache must not serve this response to a cross-origin request.
        vary: Option<&'a HeaderValue>,
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
    /// No route matches the request's host and path.
    NoRoute,
}

impl Decision<'_> {
    /// The stable name used in `explain --json`, logs and the `outcome` metric label.
    pub fn kind(&self) -> &'static str {
        match self {
            Decision::NotCors { .. } => "not-cors",
            Decision::SameOrigin { .. } => "same-origin",
            Decision::PreflightAllowed { .. } => "preflight-allowed",
            Decision::PreflightDenied(_) => "preflight-denied",
            Decision::Allowed { .. } => "allowed",
            Decision::Denied(_) => "denied",
            Decision::NoRoute => "no-route",
        }
    }

    /// The denial, for the two denying outcomes.
    pub fn denial(&self) -> Option<&Denial<'_>> {
        match self {
            Decision::PreflightDenied(d) | Decision::Denied(d) => Some(d),
            _ => None,
        }
    }

    /// Write the headers this decision adds to a response into `headers`. `Access-Control-*` headers
    /// already present are replaced, and `Vary` tokens are merged. Allocation-free except where a
    /// `Vary` from the upstream has to be merged with ours.
    pub fn apply(&self, headers: &mut HeaderMap) {
        match *self {
            Decision::NotCors { vary: Some(v) } | Decision::SameOrigin { vary: Some(v) } => {
                merge_vary(headers, v)
            }
            Decision::PreflightAllowed {
                response,
                origin,
                private_network,
                ..
            } => {
                response.write(headers, origin);
                if private_network {
                    headers.insert(
                        HeaderName::from_static("access-control-allow-private-network"),
                        HeaderValue::from_static("true"),
                    );
                }
            }
            Decision::Allowed {
                response, origin, ..
            } => response.write(headers, origin),
            _ => {}
        }
    }
}

/// How `Access-Control-Allow-Origin` is filled in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AllowOrigin {
    /// `*`: only for policies without credentials that allow any origin.
    Any,
    /// The request's own `Origin` value, byte for byte.
    Echo,
}

/// Response headers precomputed when the policy is compiled. A request only clones values.
#[derive(Clone, Debug)]
pub struct CorsHeaders {
    /// How `Access-Control-Allow-Origin` is set.
    pub allow_origin: AllowOrigin,
    /// Every other header, already built: credentials, methods, headers, max-age, expose.
    pub fixed: Vec<(HeaderName, HeaderValue)>,
    /// The `Vary` tokens this response must carry.
    pub vary: Option<HeaderValue>,
}

impl CorsHeaders {
    /// Write these headers into `headers`, replacing any that are already there.
    pub fn write(&self, headers: &mut HeaderMap, origin: &HeaderValue) {
        let acao = match self.allow_origin {
            AllowOrigin::Any => HeaderValue::from_static("*"),
            AllowOrigin::Echo => origin.clone(),
        };
        headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, acao);
        for (name, value) in &self.fixed {
            headers.insert(name.clone(), value.clone());
        }
        if let Some(v) = &self.vary {
            merge_vary(headers, v);
        }
    }
}

/// Merge the comma-separated tokens of `ours` into the response's `Vary`, without duplicates and
/// keeping `Vary: *` as it is (RFC 9110 §12.5.5: `*` already means "varies on everything").
pub fn merge_vary(headers: &mut HeaderMap, ours: &HeaderValue) {
    let vary = http::header::VARY;
    if !headers.contains_key(&vary) {
        headers.insert(vary, ours.clone());
        return;
    }
    let present: Vec<&[u8]> = headers
        .get_all(&vary)
        .iter()
        .flat_map(|v| v.as_bytes().split(|b| *b == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|t| !t.is_empty())
        .collect();
    if present.iter().any(|t| *t == b"*") {
        return;
    }
    let missing: Vec<&[u8]> = ours
        .as_bytes()
        .split(|b| *b == b',')
        .map(<[u8]>::trim_ascii)
        .filter(|t| !t.is_empty() && !present.iter().any(|p| p.eq_ignore_ascii_case(t)))
        .collect();
    if missing.is_empty() {
        return;
    }
    let mut merged = present.join(&b", "[..]);
    for t in missing {
        merged.extend_from_slice(b", ");
        merged.extend_from_slice(t);
    }
    if let Ok(v) = HeaderValue::from_bytes(&merged) {
        headers.insert(vary, v);
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
}

impl DenialReason {
    /// Every reason, in a stable order.
    pub const ALL: [DenialReason; 7] = [
        DenialReason::OriginNotAllowed,
        DenialReason::NullOrigin,
        DenialReason::MalformedOrigin,
        DenialReason::MethodNotAllowed,
        DenialReason::HeaderNotAllowed,
        DenialReason::PrivateNetworkNotAllowed,
        DenialReason::WebsocketOrigin,
    ];

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
    use http::header::VARY;

    fn vary_of(h: &HeaderMap) -> Vec<&str> {
        h.get_all(VARY)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect()
    }

    #[test]
    fn vary_is_merged_without_duplicates_and_star_is_kept() {
        let ours = HeaderValue::from_static("Origin, Access-Control-Request-Method");
        let mut h = HeaderMap::new();
        merge_vary(&mut h, &ours);
        assert_eq!(vary_of(&h), ["Origin, Access-Control-Request-Method"]);

        let mut h = HeaderMap::new();
        h.append(VARY, HeaderValue::from_static("accept-encoding"));
        h.append(VARY, HeaderValue::from_static("origin"));
        merge_vary(&mut h, &ours);
        assert_eq!(
            vary_of(&h),
            ["accept-encoding, origin, Access-Control-Request-Method"]
        );

        let mut h = HeaderMap::new();
        h.insert(VARY, HeaderValue::from_static("*"));
        merge_vary(&mut h, &ours);
        assert_eq!(vary_of(&h), ["*"]);
    }
}
