use std::path::Path;

use http::header::{HeaderMap, HeaderValue, ORIGIN, UPGRADE, VARY};
use http::Method;

use super::*;
use crate::snapshot::Snapshot;

const CONFIG: &str = r#"
[upstreams.api]
url = "http://127.0.0.1:1"

[policies.creds]
allowed_origins = ["https://app.example.com", "https://*.example.org", "null"]
allowed_methods = ["GET", "POST", "PUT"]
allowed_headers = ["Content-Type", "X-Token"]
expose_headers = ["X-Request-Id"]
allow_credentials = true
max_age = 600

[policies.open]
allowed_origins = ["*"]
allowed_methods = ["*"]
allowed_headers = ["*"]
allow_private_network = true

[[routes]]
path_prefix = "/open"
upstream = "api"
policy = "open"

[[routes]]
name = "main"
upstream = "api"
policy = "creds"
own_origins = ["https://public.example.net"]
"#;

fn snapshot() -> Snapshot {
    crate::config::load_str(CONFIG, Path::new("test.toml"))
        .unwrap()
        .snapshot
}

struct Req {
    method: Method,
    path: &'static str,
    host: Option<&'static str>,
    scheme: Scheme,
    headers: HeaderMap,
}

impl Req {
    fn new(method: Method, path: &'static str) -> Self {
        Req {
            method,
            path,
            host: Some("api.internal:8080"),
            scheme: Scheme::Http,
            headers: HeaderMap::new(),
        }
    }
    fn origin(mut self, o: &'static str) -> Self {
        self.headers.append(ORIGIN, HeaderValue::from_static(o));
        self
    }
    fn header(mut self, n: &'static str, v: &'static str) -> Self {
        self.headers.append(n, HeaderValue::from_static(v));
        self
    }
    fn preflight(m: &'static str, path: &'static str) -> Self {
        Req::new(Method::OPTIONS, path).header("access-control-request-method", m)
    }
    fn view(&self) -> RequestView<'_> {
        RequestView {
            method: &self.method,
            scheme: self.scheme,
            host: self
                .host
                .map(|h| crate::authority::Authority::parse(h).unwrap()),
            path: self.path,
            headers: &self.headers,
        }
    }
}

fn decide_kind(s: &Snapshot, r: &Req) -> (&'static str, Option<DenialReason>, HeaderMap) {
    let view = r.view();
    let e = s.evaluate(&view);
    let mut h = HeaderMap::new();
    let denial = e.routed().and_then(|r| {
        r.decision.apply(&mut h);
        r.decision.denial().map(|d| d.reason)
    });
    (e.outcome().as_str(), denial, h)
}

#[test]
fn no_origin_is_not_cors_and_still_varies_on_origin() {
    let s = snapshot();
    let (kind, _, h) = decide_kind(&s, &Req::new(Method::GET, "/x"));
    assert_eq!(kind, "not-cors");
    assert_eq!(h.get(VARY).unwrap(), "Origin");
    // `*` without credentials does not depend on the origin: `*` on every response, and no Vary.
    let (kind, _, h) = decide_kind(&s, &Req::new(Method::GET, "/open"));
    assert_eq!(kind, "not-cors");
    assert_eq!(h.get("access-control-allow-origin").unwrap(), "*");
    assert!(h.get(VARY).is_none());
}

#[test]
fn same_origin_uses_listener_scheme_host_and_own_origins() {
    let s = snapshot();
    let r = Req::new(Method::POST, "/x").origin("http://api.internal:8080");
    assert_eq!(decide_kind(&s, &r).0, "same-origin");
    let mut r = Req::new(Method::POST, "/x").origin("https://api.internal");
    r.host = Some("api.internal:443");
    r.scheme = Scheme::Https;
    assert_eq!(decide_kind(&s, &r).0, "same-origin");
    let r = Req::new(Method::DELETE, "/x").origin("https://public.example.net");
    assert_eq!(decide_kind(&s, &r).0, "same-origin");
    // Same host, other scheme: cross-origin.
    let r = Req::new(Method::GET, "/x").origin("https://api.internal:8080");
    assert_eq!(decide_kind(&s, &r).1, Some(DenialReason::OriginNotAllowed));
}

#[test]
fn preflight_allowed_answers_with_precomputed_headers_and_echoes_origin() {
    let s = snapshot();
    let r = Req::preflight("PUT", "/x")
        .origin("https://app.example.com")
        .header("access-control-request-headers", "x-token, CONTENT-TYPE");
    let (kind, _, h) = decide_kind(&s, &r);
    assert_eq!(kind, "preflight-allowed");
    assert_eq!(h["access-control-allow-origin"], "https://app.example.com");
    assert_eq!(h["access-control-allow-credentials"], "true");
    assert_eq!(h["access-control-allow-methods"], "GET, POST, PUT");
    assert_eq!(h["access-control-allow-headers"], "content-type, x-token");
    assert_eq!(h["access-control-max-age"], "600");
    assert_eq!(
        h[VARY],
        "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"
    );
    assert!(!h.contains_key("access-control-expose-headers"));
}

#[test]
fn preflight_denials_name_the_rule() {
    let s = snapshot();
    let cases = [
        (
            Req::preflight("PUT", "/x").origin("https://evil.example.com"),
            DenialReason::OriginNotAllowed,
        ),
        (
            Req::preflight("DELETE", "/x").origin("https://app.example.com"),
            DenialReason::MethodNotAllowed,
        ),
        (
            Req::preflight("put", "/x").origin("https://app.example.com"),
            DenialReason::MethodNotAllowed,
        ),
        (
            Req::preflight("GET", "/x")
                .origin("https://app.example.com")
                .header("access-control-request-headers", "x-token")
                .header("access-control-request-headers", "authorization"),
            DenialReason::HeaderNotAllowed,
        ),
        (
            Req::preflight("GET", "/x")
                .origin("https://app.example.com")
                .header("access-control-request-private-network", "true"),
            DenialReason::PrivateNetworkNotAllowed,
        ),
        (
            Req::preflight("GET", "/x").origin("https://app.example.com:evil"),
            DenialReason::MalformedOrigin,
        ),
    ];
    for (r, reason) in cases {
        let (kind, got, h) = decide_kind(&s, &r);
        assert_eq!((kind, got), ("preflight-denied", Some(reason)));
        assert!(h.is_empty(), "a denied preflight carries no CORS header");
    }
}

#[test]
fn star_never_covers_authorization_and_never_goes_out_with_credentials() {
    let s = snapshot();
    let r = Req::preflight("PATCH", "/open")
        .origin("https://anyone.test")
        .header("access-control-request-headers", "x-anything")
        .header("access-control-request-private-network", "true");
    let (kind, _, h) = decide_kind(&s, &r);
    assert_eq!(kind, "preflight-allowed");
    assert_eq!(h["access-control-allow-origin"], "*");
    assert_eq!(h["access-control-allow-headers"], "*");
    assert_eq!(h["access-control-allow-private-network"], "true");
    let r = Req::preflight("GET", "/open")
        .origin("https://anyone.test")
        .header("access-control-request-headers", "Authorization");
    assert_eq!(decide_kind(&s, &r).1, Some(DenialReason::HeaderNotAllowed));
}

#[test]
fn actual_requests_check_origin_and_method_and_expose_headers() {
    let s = snapshot();
    let r = Req::new(Method::GET, "/x").origin("https://deep.sub.example.org");
    let (kind, _, h) = decide_kind(&s, &r);
    assert_eq!(kind, "allowed");
    assert_eq!(
        h["access-control-allow-origin"],
        "https://deep.sub.example.org"
    );
    assert_eq!(h["access-control-expose-headers"], "X-Request-Id");
    assert_eq!(h[VARY], "Origin");
    let r = Req::new(Method::DELETE, "/x").origin("https://app.example.com");
    assert_eq!(decide_kind(&s, &r).1, Some(DenialReason::MethodNotAllowed));
    let r = Req::new(Method::GET, "/x").origin("null");
    assert_eq!(decide_kind(&s, &r).0, "allowed");
    let r = Req::new(Method::GET, "/open").origin("null");
    assert_eq!(decide_kind(&s, &r).1, Some(DenialReason::NullOrigin));
    let r = Req::new(Method::GET, "/x")
        .origin("https://app.example.com")
        .origin("https://app.example.com");
    assert_eq!(decide_kind(&s, &r).1, Some(DenialReason::MalformedOrigin));
}

#[test]
fn websocket_handshakes_from_denied_origins_are_websocket_origin_denials() {
    let s = snapshot();
    let r = Req::new(Method::GET, "/x")
        .origin("https://evil.test")
        .header(UPGRADE.as_str(), "websocket");
    assert_eq!(decide_kind(&s, &r).1, Some(DenialReason::WebsocketOrigin));
    let r = Req::new(Method::GET, "/x")
        .origin("https://app.example.com")
        .header(UPGRADE.as_str(), "websocket");
    assert_eq!(decide_kind(&s, &r).0, "allowed");
}

#[test]
fn options_without_request_method_is_an_actual_request() {
    let s = snapshot();
    let r = Req::new(Method::OPTIONS, "/open").origin("https://x.test");
    assert_eq!(decide_kind(&s, &r).0, "allowed");
}

mod fetch_metadata;
