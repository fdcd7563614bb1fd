//! Fetch Metadata (`fetch_metadata`) rules: interface.md, "Cross-site protection".

use std::path::Path;

use http::header::{HeaderMap, HeaderName, HeaderValue, CONNECTION, ORIGIN, UPGRADE};
use http::Method;
use proptest::prelude::*;

use crate::policy::{DenialReason, RequestView, Scheme};
use crate::snapshot::Snapshot;

fn snapshot(extra: &str, enforcement: &str) -> Snapshot {
    let config = format!(
        r#"
[upstreams.api]
url = "http://127.0.0.1:1"

[policies.p]
allowed_origins = ["https://app.example.com"]
allowed_methods = ["GET", "POST"]
enforcement = "{enforcement}"
{extra}

[[routes]]
upstream = "api"
policy = "p"
"#
    );
    crate::config::load_str(&config, Path::new("test.toml"))
        .unwrap()
        .snapshot
}

fn enforce() -> Snapshot {
    snapshot("fetch_metadata = \"enforce\"", "block")
}

/// (outcome, denial reason, reported) for a request with these Sec-Fetch-* values.
fn eval(
    s: &Snapshot,
    method: Method,
    origin: Option<&str>,
    site: Option<&str>,
    mode: Option<&str>,
    dest: Option<&str>,
) -> (&'static str, Option<DenialReason>, bool) {
    eval_with(s, method, HeaderMap::new(), origin, site, mode, dest)
}

/// As [`eval`], starting from `headers` (e.g. a WebSocket handshake's `Upgrade`).
fn eval_with(
    s: &Snapshot,
    method: Method,
    mut headers: HeaderMap,
    origin: Option<&str>,
    site: Option<&str>,
    mode: Option<&str>,
    dest: Option<&str>,
) -> (&'static str, Option<DenialReason>, bool) {
    if let Some(o) = origin {
        headers.insert(ORIGIN, HeaderValue::from_str(o).unwrap());
    }
    for (name, v) in [
        ("sec-fetch-site", site),
        ("sec-fetch-mode", mode),
        ("sec-fetch-dest", dest),
    ] {
        if let Some(v) = v {
            headers.insert(
                HeaderName::from_static(name),
                HeaderValue::from_str(v).unwrap(),
            );
        }
    }
    let view = RequestView {
        method: &method,
        scheme: Scheme::Http,
        host: crate::authority::Authority::parse("api.internal:8080").ok(),
        path: "/x",
        headers: &headers,
    };
    let e = s.evaluate(&view);
    let routed = e.routed().unwrap();
    (
        e.outcome().as_str(),
        routed.decision.denial().map(|d| d.reason),
        routed.cross_site_report.is_some(),
    )
}

const CROSS: Option<&str> = Some("cross-site");

#[test]
fn off_by_default_ignores_sec_fetch() {
    let s = snapshot("", "block");
    let r = eval(
        &s,
        Method::POST,
        None,
        CROSS,
        Some("no-cors"),
        Some("empty"),
    );
    assert_eq!(r, ("not-cors", None, false));
}

#[test]
fn rule_1_no_sec_fetch_site_lets_the_cors_rules_decide() {
    let s = enforce();
    assert_eq!(eval(&s, Method::POST, None, None, None, None).0, "not-cors");
    let r = eval(
        &s,
        Method::POST,
        Some("https://evil.example"),
        None,
        None,
        None,
    );
    assert_eq!(r.1, Some(DenialReason::OriginNotAllowed));
}

#[test]
fn rule_2_same_origin_none_and_same_site_with_the_option() {
    let s = enforce();
    for site in ["same-origin", "none"] {
        let r = eval(&s, Method::POST, None, Some(site), Some("no-cors"), None);
        assert_eq!(r.0, "not-cors", "{site}");
    }
    let r = eval(
        &s,
        Method::POST,
        None,
        Some("same-site"),
        Some("no-cors"),
        None,
    );
    assert_eq!(r.1, Some(DenialReason::CrossSiteRequest));
    let s = snapshot(
        "fetch_metadata = \"enforce\"\nallow_same_site = true",
        "block",
    );
    let r = eval(
        &s,
        Method::POST,
        None,
        Some("same-site"),
        Some("no-cors"),
        None,
    );
    assert_eq!(r.0, "not-cors");
}

#[test]
fn rule_3_cors_mode_leaves_it_to_cors() {
    let s = enforce();
    let ok = Some("https://app.example.com");
    let r = eval(&s, Method::POST, ok, CROSS, Some("cors"), Some("empty"));
    assert_eq!(r.0, "allowed");
    let bad = Some("https://evil.example");
    let r = eval(&s, Method::POST, bad, CROSS, Some("cors"), Some("empty"));
    assert_eq!(r.1, Some(DenialReason::OriginNotAllowed));
}

/// The headers of a WebSocket handshake, less Origin and Sec-Fetch-*.
fn handshake() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    h
}

/// Firefox sends `Sec-Fetch-Site: cross-site`, `Sec-Fetch-Mode: websocket`, `Sec-Fetch-Dest:
/// empty` on a cross-site page's WebSocket handshake (the browser suite saw it; Chromium sends no
/// Sec-Fetch-* there). Refusing it refused an allowed origin's WebSocket in Firefox alone; the
/// Origin check decides instead, as it does for Chromium's handshake.
#[test]
fn rule_3_a_websocket_handshake_is_left_to_the_origin_check() {
    let s = enforce();
    let ws = |origin| {
        let dest = Some("empty");
        eval_with(
            &s,
            Method::GET,
            handshake(),
            origin,
            CROSS,
            Some("websocket"),
            dest,
        )
    };
    assert_eq!(ws(Some("https://app.example.com")).0, "allowed");
    let r = ws(Some("https://evil.example"));
    assert_eq!(r.1, Some(DenialReason::WebsocketOrigin));
    // The mode alone, on a request that is no handshake, is not enough.
    let r = eval(
        &s,
        Method::GET,
        None,
        CROSS,
        Some("websocket"),
        Some("empty"),
    );
    assert_eq!(r.1, Some(DenialReason::CrossSiteRequest));
    // Nor is a handshake in another mode.
    let r = eval_with(
        &s,
        Method::GET,
        handshake(),
        None,
        CROSS,
        Some("no-cors"),
        None,
    );
    assert_eq!(r.1, Some(DenialReason::CrossSiteRequest));
    // Under report, an allowed handshake is not reported either.
    let s = snapshot("fetch_metadata = \"report\"", "block");
    let ok = Some("https://app.example.com");
    let r = eval_with(
        &s,
        Method::GET,
        handshake(),
        ok,
        CROSS,
        Some("websocket"),
        None,
    );
    assert_eq!(r, ("allowed", None, false));
}

#[test]
fn rule_4_top_level_navigation_only() {
    let s = enforce();
    let nav = |m: Method, dest| eval(&s, m, None, CROSS, Some("navigate"), Some(dest));
    assert_eq!(nav(Method::GET, "document").0, "not-cors");
    assert_eq!(nav(Method::HEAD, "document").0, "not-cors");
    for dest in ["iframe", "frame", "object", "embed"] {
        assert_eq!(
            nav(Method::GET, dest).1,
            Some(DenialReason::CrossSiteRequest)
        );
    }
    assert_eq!(
        nav(Method::POST, "document").1,
        Some(DenialReason::CrossSiteRequest)
    );
    let s = snapshot(
        "fetch_metadata = \"enforce\"\nallow_cross_site_navigation = false",
        "block",
    );
    let r = eval(
        &s,
        Method::GET,
        None,
        CROSS,
        Some("navigate"),
        Some("document"),
    );
    assert_eq!(r.1, Some(DenialReason::CrossSiteRequest));
}

#[test]
fn cross_site_loads_without_origin_are_denied() {
    let s = enforce();
    for dest in ["image", "script"] {
        let r = eval(&s, Method::GET, None, CROSS, Some("no-cors"), Some(dest));
        assert_eq!(r, ("denied", Some(DenialReason::CrossSiteRequest), false));
    }
}

#[test]
fn sec_fetch_site_same_origin_is_same_origin_whatever_host_says() {
    for s in [snapshot("", "block"), enforce()] {
        let foreign = Some("https://lb.example.net");
        let r = eval(
            &s,
            Method::POST,
            foreign,
            Some("same-origin"),
            Some("cors"),
            None,
        );
        assert_eq!(r.0, "same-origin");
    }
}

#[test]
fn report_and_report_only_never_refuse_but_report() {
    for s in [
        snapshot("fetch_metadata = \"report\"", "block"),
        snapshot("fetch_metadata = \"enforce\"", "report-only"),
    ] {
        let r = eval(
            &s,
            Method::POST,
            None,
            CROSS,
            Some("no-cors"),
            Some("empty"),
        );
        assert_eq!(r, ("not-cors", None, true));
        let r = eval(
            &s,
            Method::GET,
            None,
            CROSS,
            Some("navigate"),
            Some("document"),
        );
        assert_eq!(r, ("not-cors", None, false));
    }
}

#[test]
fn a_bad_fetch_metadata_value_is_a_located_error() {
    let config = "[upstreams.api]\nurl = \"http://127.0.0.1:1\"\n[policies.p]\nallowed_origins = [\"*\"]\nfetch_metadata = \"on\"\n[[routes]]\nupstream = \"api\"\npolicy = \"p\"\n";
    let err = crate::config::load_str(config, Path::new("t.toml"))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("t.toml:5:"), "{err}");
    assert!(err.contains("fetch_metadata \"on\""), "{err}");
}

fn opt(values: &'static [&'static str]) -> impl Strategy<Value = Option<&'static str>> {
    prop_oneof![Just(None), proptest::sample::select(values).prop_map(Some)]
}

proptest! {
    #[test]
    fn cross_site_non_cors_non_navigation_is_never_allowed(
        site in opt(&["same-origin", "same-site", "cross-site", "none", "garbage"]),
        mode in opt(&["cors", "no-cors", "navigate", "same-origin", "websocket", "garbage"]),
        dest in opt(&["document", "iframe", "image", "script", "empty"]),
        post in any::<bool>(),
        upgrade in any::<bool>(),
        origin in opt(&["https://app.example.com", "https://evil.example"]),
    ) {
        let s = enforce();
        let method = if post { Method::POST } else { Method::GET };
        let navigation = !post && mode == Some("navigate") && dest == Some("document");
        // A WebSocket handshake in mode websocket is left to the Origin check (rule 3).
        let websocket = upgrade && mode == Some("websocket");
        let headers = if upgrade { handshake() } else { HeaderMap::new() };
        let (outcome, reason, _) = eval_with(&s, method, headers, origin, site, mode, dest);
        if site == Some("cross-site") && mode != Some("cors") && !navigation && !websocket {
            prop_assert_eq!(outcome, "denied");
            prop_assert_eq!(reason, Some(DenialReason::CrossSiteRequest));
        }
        if reason == Some(DenialReason::CrossSiteRequest) {
            prop_assert!(site.is_some() && mode != Some("cors") && !websocket);
        }
        // What rule 3 lets through for a handshake, the Origin check still judges.
        if websocket && site == Some("cross-site") && origin != Some("https://app.example.com") {
            prop_assert_ne!(outcome, "allowed");
        }
    }
}
