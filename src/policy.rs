//! The policy engine: a compiled, immutable `Policy` and the pure `decide` function, from a
//! `RequestView` to a `Decision` with its reason. No I/O, no async, no logging.
//!
//! The rules follow the WHATWG Fetch standard's CORS protocol
//! (<https://fetch.spec.whatwg.org/#http-cors-protocol>).

mod decision;
mod fetch_metadata;
mod origin;
mod plan;
mod request;
pub(crate) mod response;

pub use decision::{Decision, DenialReason, Outcome};
pub(crate) use decision::{Denial, OriginRule};
pub(crate) use fetch_metadata::FetchMetadata;
pub(crate) use fetch_metadata::{
    cross_site_refusal, cross_site_report, SEC_FETCH_DEST, SEC_FETCH_MODE, SEC_FETCH_SITE,
};
pub(crate) use origin::{AllowedOrigins, Origin};
pub use origin::{OriginPattern, RequestOrigin};
pub(crate) use plan::{mismatch, plan, Cors, Plan};
pub(crate) use request::is_tchar;
pub(crate) use request::{AcrhError, CorsRequestHeaders, OriginHeader, ACRH, ACRM, ACRPN};
pub use request::{RequestView, Scheme};
pub(crate) use response::{
    write_cors_headers, write_refusal_headers, AllowOrigin, CorsHeaders, NonCorsHeaders,
};

use rustc_hash::FxHashSet;

use http::header::{self, HeaderName, HeaderValue};
use http::{Method, StatusCode};

/// `enforcement`: what the proxy does with a denial.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Enforcement {
    /// Denied requests get 403 and never reach the upstream.
    Block,
    /// Denied requests are forwarded without CORS headers; the browser blocks the read.
    HeadersOnly,
    /// Everything is forwarded untouched; decisions are only logged and counted.
    ReportOnly,
}

impl Enforcement {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Enforcement::Block => "block",
            Enforcement::HeadersOnly => "headers-only",
            Enforcement::ReportOnly => "report-only",
        }
    }
}

/// `allowed_methods`, compared case-sensitively as Fetch does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AllowedMethods {
    /// `"*"` (only without credentials).
    Any,
    /// These methods exactly.
    List(Vec<Method>),
}

impl AllowedMethods {
    fn allows(&self, method: &str) -> bool {
        match self {
            AllowedMethods::Any => true,
            AllowedMethods::List(l) => l.iter().any(|m| m.as_str() == method),
        }
    }
}

/// `allowed_headers`, compared case-insensitively.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllowedHeaders {
    /// `"*"` was listed (only without credentials); it never covers `authorization`.
    pub any: bool,
    /// The names listed, lowercase.
    pub names: FxHashSet<Box<str>>,
}

impl AllowedHeaders {
    fn allows(&self, name: &str) -> bool {
        if self.any && !name.eq_ignore_ascii_case("authorization") {
            return true;
        }
        if !name.bytes().any(|b| b.is_ascii_uppercase()) {
            return self.names.contains(name);
        }
        // Lowercase on the stack: header names in a preflight are short, and the hot path should
        // not allocate for a client that sends `X-Token` instead of `x-token`.
        let mut buf = [0u8; 64];
        match buf.get_mut(..name.len()) {
            Some(dst) => {
                for (d, s) in dst.iter_mut().zip(name.bytes()) {
                    *d = s.to_ascii_lowercase();
                }
                std::str::from_utf8(dst).is_ok_and(|n| self.names.contains(n))
            }
            None => self.names.contains(name.to_ascii_lowercase().as_str()),
        }
    }
}

/// The validated inputs of a policy; `config::compile` builds it, `Policy::new` precomputes.
#[derive(Clone, Debug)]
pub struct PolicySpec {
    /// The table name.
    pub name: String,
    /// Compiled origin allow-list.
    pub origins: AllowedOrigins,
    /// `allowed_origins` and `allowed_origin_regex` as written (for reload summaries).
    pub origin_texts: Vec<String>,
    /// Methods.
    pub methods: AllowedMethods,
    /// Request headers.
    pub headers: AllowedHeaders,
    /// `expose_headers` as written (`"*"` allowed only without credentials).
    pub expose_headers: Vec<String>,
    /// Credentials.
    pub allow_credentials: bool,
    /// `Access-Control-Max-Age` seconds.
    pub max_age: Option<u32>,
    /// Answer Private Network Access preflights.
    pub allow_private_network: bool,
    /// 200 or 204.
    pub preflight_status: StatusCode,
    /// Enforcement mode.
    pub enforcement: Enforcement,
    /// Cross-site protection from the `Sec-Fetch-*` request headers.
    pub fetch_metadata: FetchMetadata,
    /// With `fetch_metadata`: let other sites link here (GET/HEAD top-level navigations).
    pub allow_cross_site_navigation: bool,
    /// With `fetch_metadata`: treat `Sec-Fetch-Site: same-site` like same-origin.
    pub allow_same_site: bool,
}

/// A compiled policy: the rules plus every response header value, built once.
#[derive(Clone, Debug)]
pub struct Policy {
    spec: PolicySpec,
    preflight: CorsHeaders,
    actual: CorsHeaders,
    non_cors: NonCorsHeaders,
    /// `fetch_metadata` as it acts: `enforce` under `enforcement = "report-only"` reports, since
    /// that mode never refuses. Resolved once here, so `decide` and the report check read one value.
    cross_site: FetchMetadata,
}

const ACAC: HeaderName = header::ACCESS_CONTROL_ALLOW_CREDENTIALS;

impl Policy {
    /// Precompute every header value. The spec is already validated, so header values built from
    /// tokens and numbers cannot fail; a failure would be a bug in validation and is skipped.
    pub fn new(spec: PolicySpec) -> Policy {
        let allow_origin = if spec.origins.allows_any() && !spec.allow_credentials {
            AllowOrigin::Any
        } else {
            AllowOrigin::Echo
        };
        let vary_origin =
            (allow_origin == AllowOrigin::Echo).then(|| HeaderValue::from_static("Origin"));
        let mut common = Vec::new();
        if spec.allow_credentials {
            common.push((ACAC, HeaderValue::from_static("true")));
        }
        let mut preflight = common.clone();
        let methods = match &spec.methods {
            AllowedMethods::Any => "*".to_owned(),
            AllowedMethods::List(l) => join(l.iter().map(Method::as_str)),
        };
        push(
            &mut preflight,
            header::ACCESS_CONTROL_ALLOW_METHODS,
            &methods,
        );
        let mut names: Vec<&str> = spec.headers.names.iter().map(AsRef::as_ref).collect();
        names.sort_unstable();
        if spec.headers.any {
            // `*` never covers Authorization, so it stays listed by name next to `*`.
            names.retain(|n| *n == "authorization");
            names.insert(0, "*");
        }
        if !names.is_empty() {
            push(
                &mut preflight,
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                &join(names.into_iter()),
            );
        }
        if let Some(age) = spec.max_age {
            push(
                &mut preflight,
                header::ACCESS_CONTROL_MAX_AGE,
                &age.to_string(),
            );
        }
        let mut actual = common;
        if !spec.expose_headers.is_empty() {
            push(
                &mut actual,
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                &join(spec.expose_headers.iter().map(String::as_str)),
            );
        }
        let mut preflight_vary =
            String::from("Origin, Access-Control-Request-Method, Access-Control-Request-Headers");
        if spec.allow_private_network {
            preflight_vary.push_str(", Access-Control-Request-Private-Network");
        }
        let actual = CorsHeaders::new(allow_origin, actual, vary_origin);
        let non_cors = match allow_origin {
            AllowOrigin::Any => NonCorsHeaders::Always(actual.clone()),
            AllowOrigin::Echo => NonCorsHeaders::VaryOrigin,
        };
        Policy {
            preflight: CorsHeaders::new(
                allow_origin,
                preflight,
                HeaderValue::from_str(&preflight_vary).ok(),
            ),
            actual,
            non_cors,
            cross_site: match (spec.fetch_metadata, spec.enforcement) {
                (FetchMetadata::Enforce, Enforcement::ReportOnly) => FetchMetadata::Report,
                (mode, _) => mode,
            },
            spec,
        }
    }

    /// The table name.
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// The validated inputs.
    pub fn spec(&self) -> &PolicySpec {
        &self.spec
    }

    /// The enforcement mode.
    pub fn enforcement(&self) -> Enforcement {
        self.spec.enforcement
    }

    /// The status of an allowed preflight answer.
    pub fn preflight_status(&self) -> StatusCode {
        self.spec.preflight_status
    }
}

fn join<'a>(items: impl Iterator<Item = &'a str>) -> String {
    items.collect::<Vec<_>>().join(", ")
}

fn push(list: &mut Vec<(HeaderName, HeaderValue)>, name: HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        list.push((name, v));
    }
}

/// Decide what to do with one request under `policy`; `own_origins` are the route's extra
/// same-origin origins.
pub(crate) fn decide<'a>(
    policy: &'a Policy,
    own_origins: &[Origin],
    req: &RequestView<'a>,
    found: &CorsRequestHeaders<'a>,
) -> Decision<'a> {
    let own = &policy.non_cors;
    // Fetch Metadata comes first: a cross-site `<img>` or `<script>` load sends no Origin.
    if policy.cross_site == FetchMetadata::Enforce {
        if let Some(site) = cross_site_refusal(policy, req, found) {
            return Decision::Denied(Denial {
                reason: DenialReason::CrossSiteRequest,
                detail: site.to_str().unwrap_or("cross-site"),
            });
        }
    }
    let origin = found.origin();
    if let OriginHeader::Absent = origin {
        return Decision::NotCors { headers: own };
    }
    // The browser's own verdict, which survives a load balancer that rewrites Host.
    if found.sec_fetch_site.map(HeaderValue::as_bytes) == Some(b"same-origin") {
        return Decision::SameOrigin { headers: own };
    }
    let preflight = found.is_preflight(req.method);
    let deny = |reason, detail| {
        let d = Denial { reason, detail };
        if preflight {
            Decision::PreflightDenied(d)
        } else {
            Decision::Denied(d)
        }
    };
    let value = match origin {
        OriginHeader::Absent => return Decision::NotCors { headers: own },
        OriginHeader::Several => {
            return deny(DenialReason::MalformedOrigin, "several Origin headers")
        }
        OriginHeader::One(v) => v,
    };
    let Ok(text) = value.to_str() else {
        return deny(DenialReason::MalformedOrigin, "non-ASCII Origin");
    };
    let websocket = !preflight && found.is_websocket();
    let rule = if text == "null" {
        if !policy.spec.origins.allows_null() {
            return deny(DenialReason::NullOrigin, "null");
        }
        OriginRule::Null
    } else {
        // An exact allowed origin, written as browsers write it: one lookup for parse + find.
        let (origin, exact) = match policy.spec.origins.exact(text) {
            Some(origin) => (origin, true),
            None => match RequestOrigin::parse(text) {
                Ok(origin) => (origin, false),
                Err(_) => return deny(DenialReason::MalformedOrigin, text),
            },
        };
        if is_same_origin(&origin, req) || own_origins.iter().any(|o| o.same_as(&origin)) {
            return Decision::SameOrigin { headers: own };
        }
        match exact
            .then_some(OriginRule::Exact)
            .or_else(|| policy.spec.origins.find(&origin))
        {
            Some(rule) => rule,
            None if websocket => return deny(DenialReason::WebsocketOrigin, text),
            None => return deny(DenialReason::OriginNotAllowed, text),
        }
    };
    if preflight {
        return decide_preflight(policy, found, value, rule);
    }
    if !websocket && !policy.spec.methods.allows(req.method.as_str()) {
        return deny(DenialReason::MethodNotAllowed, req.method.as_str());
    }
    Decision::Allowed {
        response: &policy.actual,
        origin: value,
        rule,
    }
}

fn decide_preflight<'a>(
    policy: &'a Policy,
    req: &CorsRequestHeaders<'a>,
    origin: &'a HeaderValue,
    rule: OriginRule<'a>,
) -> Decision<'a> {
    let deny = |reason, detail| Decision::PreflightDenied(Denial { reason, detail });
    let method = req
        .request_method()
        .and_then(|m| m.to_str().ok())
        .unwrap_or("");
    let method_ok = Method::from_bytes(method.as_bytes()).is_ok();
    if !method_ok || !policy.spec.methods.allows(method) {
        return deny(DenialReason::MethodNotAllowed, method);
    }
    for name in req.request_headers() {
        match name {
            Ok(name) if policy.spec.headers.allows(name) => {}
            Ok(name) => return deny(DenialReason::HeaderNotAllowed, name),
            Err(AcrhError::TooLong) => {
                return deny(DenialReason::HeaderNotAllowed, "header list too long")
            }
            Err(AcrhError::TooMany) => {
                return deny(DenialReason::HeaderNotAllowed, "too many header names")
            }
            Err(AcrhError::Invalid) => {
                return deny(DenialReason::HeaderNotAllowed, "invalid header name")
            }
        }
    }
    let private_network = req.wants_private_network();
    if private_network && !policy.spec.allow_private_network {
        return deny(
            DenialReason::PrivateNetworkNotAllowed,
            "access-control-request-private-network",
        );
    }
    Decision::PreflightAllowed {
        response: &policy.preflight,
        origin,
        private_network,
        rule,
    }
}

/// Same-origin per Fetch: the Origin equals the origin the request was addressed to, i.e. the
/// listener's scheme plus the Host (<https://html.spec.whatwg.org/#same-origin>).
fn is_same_origin(origin: &RequestOrigin<'_>, req: &RequestView<'_>) -> bool {
    let Some(authority) = req.host else {
        return false;
    };
    if *origin.scheme != *req.scheme.as_str() {
        return false;
    }
    let port = authority.port().filter(|p| *p != req.scheme.default_port());
    port == origin.port && authority.host().eq_ignore_ascii_case(&origin.host)
}

#[cfg(test)]
mod tests;
