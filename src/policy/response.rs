//! Every CORS response-header write, in one place: the precomputed `CorsHeaders` of a policy, what a
//! `Decision` adds to a response, the treatment (`Cors`) of a forwarded response's headers, the
//! headers of a local denial, and the `Vary` merge. Pure functions on a `HeaderMap`; the proxy calls
//! them on the wire response, `explain` on the response it prints, so the two cannot differ.

use http::header::{HeaderMap, HeaderName, HeaderValue, ACCESS_CONTROL_ALLOW_ORIGIN};

use super::{Cors, Decision, Plan};

/// The CORS headers of the response that `plan` describes, written into `headers`: a local
/// preflight answer, a local 403, or a forwarded response (the upstream's headers already in
/// `headers`). The proxy writes the wire response with this, and `explain` the one it prints.
pub(crate) fn write_cors_headers(plan: Plan, decision: &Decision<'_>, headers: &mut HeaderMap) {
    match plan {
        Plan::Preflight(_) => decision.apply(headers),
        Plan::Deny(_) => deny_headers(headers),
        Plan::Forward(cors) => cors.finish(decision, headers),
    }
}

/// The CORS headers of a local answer that refuses a request for a reason outside CORS (the 429 of
/// a rate limit), written into `headers`. The decision's own headers (for an allowed preflight, its
/// preflight headers) whatever the enforcement mode, so a page on an allowed origin can read the
/// status instead of seeing a CORS error; a denied origin gets none, only `Vary: Origin`, as on a
/// 403.
///
/// `Retry-After` is not a CORS-safelisted response header (Fetch, "CORS-safelisted response-header
/// name"), so it is added to `Access-Control-Expose-Headers` wherever `Access-Control-Allow-Origin`
/// is written: the page can read when to retry, not only that it must.
pub(crate) fn write_refusal_headers(decision: &Decision<'_>, headers: &mut HeaderMap) {
    // The precomputed headers of the decisions that write Access-Control-Allow-Origin.
    let written = match *decision {
        Decision::Denied(_) | Decision::PreflightDenied(_) => return deny_headers(headers),
        Decision::NotCors { headers: own } | Decision::SameOrigin { headers: own } => match own {
            NonCorsHeaders::Always(always) => Some(always),
            NonCorsHeaders::VaryOrigin => None,
        },
        Decision::PreflightAllowed { response, .. } | Decision::Allowed { response, .. } => {
            Some(response)
        }
    };
    decision.apply(headers);
    if let Some(list) = written.and_then(|c| c.refusal_expose.as_ref()) {
        headers.insert(http::header::ACCESS_CONTROL_EXPOSE_HEADERS, list.clone());
    }
}

/// The `Access-Control-Expose-Headers` a refusal carries in place of `fixed`'s, or `None` when
/// `fixed`'s list already covers `Retry-After`. Worked out once, when the policy is compiled.
fn refusal_expose(fixed: &[(HeaderName, HeaderValue)]) -> Option<HeaderValue> {
    let name = http::header::ACCESS_CONTROL_EXPOSE_HEADERS;
    let mut h = HeaderMap::new();
    for (n, v) in fixed {
        h.insert(n.clone(), v.clone());
    }
    let before = h.get(&name).cloned();
    expose_retry_after(&mut h);
    h.remove(&name)
        .filter(|after| Some(after) != before.as_ref())
}

/// Add `Retry-After` to `Access-Control-Expose-Headers`, unless the list already covers it (`*`
/// covers it without credentials; with credentials `*` is a literal name, so it is added).
fn expose_retry_after(headers: &mut HeaderMap) {
    static RETRY_AFTER: HeaderValue = HeaderValue::from_static("Retry-After");
    let name = http::header::ACCESS_CONTROL_EXPOSE_HEADERS;
    let credentials = headers.contains_key(http::header::ACCESS_CONTROL_ALLOW_CREDENTIALS);
    let merged = match headers.get(&name).map(|v| v.to_str()) {
        None => RETRY_AFTER.clone(),
        Some(Ok(list)) => {
            let covered = list
                .split(',')
                .map(str::trim)
                .any(|t| t.eq_ignore_ascii_case("retry-after") || (t == "*" && !credentials));
            if covered {
                return;
            }
            match HeaderValue::from_str(&format!("{list}, Retry-After")) {
                Ok(v) => v,
                Err(_) => return,
            }
        }
        // Precomputed by the policy compiler, always visible ASCII; left alone if it were not.
        Some(Err(_)) => return,
    };
    headers.insert(name, merged);
}

static VARY_ORIGIN: HeaderValue = HeaderValue::from_static("Origin");
/// What `CorsHeaders::write` echoes for a policy whose `Access-Control-Allow-Origin` is `*` (it
/// writes `*` and reads no origin).
static ANY: HeaderValue = HeaderValue::from_static("*");

/// What corsgate writes on a routed response to a request that is not cross-origin (no `Origin`,
/// or same-origin), in place of the upstream's own `Access-Control-*`.
#[derive(Clone, Debug)]
pub enum NonCorsHeaders {
    /// The policy answers `*` (no credentials): its headers go on every response, CORS or not, and
    /// no `Vary: Origin`, so a cached copy is right for every requester (Fetch, "CORS protocol and
    /// HTTP caches").
    Always(CorsHeaders),
    /// The answer depends on the origin: no `Access-Control-*`, and `Vary: Origin` so that a shared
    /// cache never hands this response to a cross-origin request.
    VaryOrigin,
}

impl Decision<'_> {
    /// Write the headers this decision adds to a response into `headers`. `Access-Control-*` headers
    /// already present are replaced, and `Vary` tokens are merged. Allocation-free except where a
    /// `Vary` from the upstream has to be merged with ours.
    pub fn apply(&self, headers: &mut HeaderMap) {
        match *self {
            Decision::NotCors { headers: own } | Decision::SameOrigin { headers: own } => match own
            {
                NonCorsHeaders::Always(always) => always.write(headers, &ANY),
                NonCorsHeaders::VaryOrigin => merge_vary(headers, &VARY_ORIGIN),
            },
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
    /// What a refusal (a 429) writes as `Access-Control-Expose-Headers` so the page can read
    /// `Retry-After`; `None` when `fixed` already exposes it.
    refusal_expose: Option<HeaderValue>,
}

impl CorsHeaders {
    /// The headers of one kind of answer: `fixed` and `vary` as the policy compiler built them.
    pub(crate) fn new(
        allow_origin: AllowOrigin,
        fixed: Vec<(HeaderName, HeaderValue)>,
        vary: Option<HeaderValue>,
    ) -> CorsHeaders {
        CorsHeaders {
            refusal_expose: refusal_expose(&fixed),
            allow_origin,
            fixed,
            vary,
        }
    }

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
pub(crate) fn merge_vary(headers: &mut HeaderMap, ours: &HeaderValue) {
    let vary = http::header::VARY;
    // One lookup; the token lists are walked again rather than collected: they are a handful of
    // short tokens, and the usual outcome (no Vary yet, or ours already there) allocates nothing.
    let present = headers.get_all(&vary);
    let has = |t: &[u8]| {
        present
            .iter()
            .flat_map(|v| tokens(v.as_bytes()))
            .any(|p| p.eq_ignore_ascii_case(t))
    };
    if present.iter().next().is_none() {
        headers.insert(vary, ours.clone());
        return;
    }
    if has(b"*") || tokens(ours.as_bytes()).all(has) {
        return;
    }
    let mut merged = Vec::with_capacity(64);
    let missing = tokens(ours.as_bytes()).filter(|t| !has(t));
    for t in present
        .iter()
        .flat_map(|v| tokens(v.as_bytes()))
        .chain(missing)
    {
        if !merged.is_empty() {
            merged.extend_from_slice(b", ");
        }
        merged.extend_from_slice(t);
    }
    if let Ok(v) = HeaderValue::from_maybe_shared(bytes::Bytes::from(merged)) {
        headers.insert(vary, v);
    }
}

/// The non-empty, trimmed tokens of a comma-separated list (`Vary`, `Connection`).
pub(crate) fn tokens(list: &[u8]) -> impl Iterator<Item = &[u8]> {
    list.split(|b| *b == b',')
        .map(<[u8]>::trim_ascii)
        .filter(|t| !t.is_empty())
}

/// Remove every `Access-Control-*` header (the upstream's), before the policy's are written.
pub(crate) fn strip_cors(headers: &mut HeaderMap) {
    // Collect first: a HeaderMap cannot be mutated while its keys are borrowed. Responses without
    // any Access-Control-* header (the common case) allocate nothing.
    let names: Vec<HeaderName> = headers
        .keys()
        .filter(|n| n.as_str().starts_with("access-control-"))
        .cloned()
        .collect();
    for name in names {
        headers.remove(name);
    }
}

impl Cors {
    /// Apply this treatment to a response's headers.
    pub fn finish(self, decision: &Decision<'_>, headers: &mut HeaderMap) {
        match self {
            // corsgate owns Access-Control-* on every routed response, CORS or not: an upstream's
            // own `Access-Control-Allow-Origin: https://evil.example` must never reach a cache.
            Cors::Replace | Cors::Keep => {
                strip_cors(headers);
                decision.apply(headers);
            }
            Cors::Strip => {
                strip_cors(headers);
                // Another origin would get a different answer, so caches must key on Origin.
                merge_vary(headers, &VARY_ORIGIN);
            }
            Cors::Report => {}
        }
    }
}

/// Headers for a local 403: never any `Access-Control-*`, but the answer depends on `Origin`.
pub(crate) fn deny_headers(headers: &mut HeaderMap) {
    merge_vary(headers, &VARY_ORIGIN);
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
    fn retry_after_is_exposed_unless_the_list_already_covers_it() {
        use http::header::{ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_EXPOSE_HEADERS};
        let exposed = |list: Option<&'static str>, credentials: bool| {
            let mut h = HeaderMap::new();
            if let Some(l) = list {
                h.insert(ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static(l));
            }
            if credentials {
                h.insert(
                    ACCESS_CONTROL_ALLOW_CREDENTIALS,
                    HeaderValue::from_static("true"),
                );
            }
            expose_retry_after(&mut h);
            h.get(ACCESS_CONTROL_EXPOSE_HEADERS)
                .map(|v| v.to_str().unwrap().to_owned())
        };
        assert_eq!(exposed(None, false).as_deref(), Some("Retry-After"));
        assert_eq!(
            exposed(Some("x-id"), false).as_deref(),
            Some("x-id, Retry-After")
        );
        assert_eq!(
            exposed(Some("retry-after"), false).as_deref(),
            Some("retry-after")
        );
        assert_eq!(exposed(Some("*"), false).as_deref(), Some("*"));
        // With credentials `*` is a header literally named "*".
        assert_eq!(exposed(Some("*"), true).as_deref(), Some("*, Retry-After"));
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
