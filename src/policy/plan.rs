//! `Plan`: from a `Decision` and the policy's enforcement mode to what the proxy does (answer
//! locally, or forward and then treat the response's CORS headers one of four ways), and the
//! report-only comparison with the upstream's own answer. Pure, like `decide`: the proxy applies a
//! plan, `explain` prints it, and both get it from here.

use http::header::{HeaderMap, HeaderValue, ACCESS_CONTROL_ALLOW_ORIGIN};
use http::StatusCode;

use super::{AllowOrigin, Decision, DenialReason, Enforcement, Policy};

/// What to do with one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plan {
    /// An allowed preflight, answered locally with this status and the decision's headers.
    Preflight(StatusCode),
    /// 403 with no `Access-Control-*` header; the upstream is never contacted.
    Deny(DenialReason),
    /// Forward to the upstream, then fix up the response's CORS headers this way.
    Forward(Cors),
}

/// What the proxy does to the CORS headers of a forwarded response, and of its own 431/502/504.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cors {
    /// An allowed origin: drop every upstream `Access-Control-*`, write the policy's.
    Replace,
    /// headers-only denial: drop every upstream `Access-Control-*` so the browser blocks the read.
    Strip,
    /// Not CORS, or same-origin: treated like `Replace` (corsgate owns `Access-Control-*` on every
    /// routed response), kept as its own case for what `explain` and the tests name.
    Keep,
    /// report-only: nothing is touched; the upstream's own CORS answer is compared with ours.
    Report,
}

/// Map a decision and its route's policy to a plan.
///
/// A denied WebSocket handshake is answered 403 in headers-only mode too (see below), and so is a
/// denied preflight: forwarding it would let the
/// upstream's own CORS answer through, and a preflight answer without `Access-Control-*` headers is
/// exactly what "headers only" means for a preflight.
pub(crate) fn plan(decision: &Decision<'_>, policy: &Policy) -> Plan {
    let mode = policy.enforcement();
    if mode == Enforcement::ReportOnly {
        return Plan::Forward(Cors::Report);
    }
    match decision {
        Decision::NotCors { .. } | Decision::SameOrigin { .. } => Plan::Forward(Cors::Keep),
        Decision::PreflightAllowed { .. } => Plan::Preflight(policy.preflight_status()),
        Decision::PreflightDenied(d) => Plan::Deny(d.reason),
        Decision::Allowed { .. } => Plan::Forward(Cors::Replace),
        Decision::Denied(d) if mode == Enforcement::Block => Plan::Deny(d.reason),
        // A WebSocket has no response for the browser to withhold: once the upgrade goes through,
        // the page talks to the upstream. Stripping headers protects nothing here, so headers-only
        // blocks cross-site WebSocket handshakes like block does.
        Decision::Denied(d) if d.reason == DenialReason::WebsocketOrigin => Plan::Deny(d.reason),
        Decision::Denied(_) => Plan::Forward(Cors::Strip),
    }
}

/// report-only: describe how the upstream's `Access-Control-Allow-Origin` disagrees with what
/// corsgate would have sent, or `None` when they agree. Requests that are not cross-origin are never
/// a disagreement: the upstream may answer them as it likes.
pub(crate) fn mismatch(decision: &Decision<'_>, upstream: &HeaderMap) -> Option<String> {
    let ours: Option<&[u8]> = match decision {
        Decision::Allowed {
            response, origin, ..
        }
        | Decision::PreflightAllowed {
            response, origin, ..
        } => Some(match response.allow_origin {
            AllowOrigin::Any => b"*",
            AllowOrigin::Echo => origin.as_bytes(),
        }),
        Decision::Denied(_) | Decision::PreflightDenied(_) => None,
        Decision::NotCors { .. } | Decision::SameOrigin { .. } => return None,
    };
    let mut theirs = upstream.get_all(ACCESS_CONTROL_ALLOW_ORIGIN).iter();
    let (first, second) = (theirs.next(), theirs.next());
    if second.is_some() {
        return Some("upstream sent several Access-Control-Allow-Origin headers".to_owned());
    }
    let theirs = first.map(HeaderValue::as_bytes);
    if theirs == ours {
        return None;
    }
    let show = |v: Option<&[u8]>| match v {
        Some(v) => format!("{:?}", String::from_utf8_lossy(v)),
        None => "none".to_owned(),
    };
    Some(format!(
        "upstream Access-Control-Allow-Origin: {}, corsgate would send: {}",
        show(theirs),
        show(ours)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{
        decide, AllowedHeaders, AllowedMethods, AllowedOrigins, OriginPattern, PolicySpec,
        RequestView, Scheme,
    };
    use http::header::{ORIGIN, VARY};
    use http::Method;

    fn policy(mode: Enforcement) -> Policy {
        let mut origins = AllowedOrigins::default();
        let text = "https://app.example";
        origins.add(&OriginPattern::parse(text).unwrap(), text);
        Policy::new(PolicySpec {
            name: "p".into(),
            origins,
            origin_texts: vec![text.into()],
            methods: AllowedMethods::List(vec![Method::GET]),
            headers: AllowedHeaders {
                any: false,
                names: Default::default(),
            },
            expose_headers: vec![],
            allow_credentials: false,
            max_age: None,
            allow_private_network: false,
            preflight_status: StatusCode::OK,
            enforcement: mode,
            fetch_metadata: crate::policy::FetchMetadata::Off,
            allow_cross_site_navigation: true,
            allow_same_site: false,
        })
    }

    fn headers(origin: Option<&'static str>, acrm: bool) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(o) = origin {
            h.insert(ORIGIN, HeaderValue::from_static(o));
        }
        if acrm {
            h.insert(
                "access-control-request-method",
                HeaderValue::from_static("GET"),
            );
        }
        h
    }

    fn plan_for(mode: Enforcement, method: Method, h: &HeaderMap) -> Plan {
        let p = policy(mode);
        let view = RequestView {
            method: &method,
            scheme: Scheme::Http,
            host: crate::authority::Authority::parse("api.example").ok(),
            path: "/",
            headers: h,
        };
        plan(&decide(&p, &[], &view, &view.cors_headers()), &p)
    }

    #[test]
    fn block_denies_locally_and_headers_only_forwards_without_cors() {
        let evil = headers(Some("https://evil.example"), false);
        let deny = Plan::Deny(DenialReason::OriginNotAllowed);
        assert_eq!(plan_for(Enforcement::Block, Method::GET, &evil), deny);
        assert_eq!(
            plan_for(Enforcement::HeadersOnly, Method::GET, &evil),
            Plan::Forward(Cors::Strip)
        );
        assert_eq!(
            plan_for(Enforcement::ReportOnly, Method::GET, &evil),
            Plan::Forward(Cors::Report)
        );
    }

    #[test]
    fn preflights_are_answered_locally_except_in_report_only() {
        let ok = headers(Some("https://app.example"), true);
        let evil = headers(Some("https://evil.example"), true);
        for mode in [Enforcement::Block, Enforcement::HeadersOnly] {
            assert_eq!(
                plan_for(mode, Method::OPTIONS, &ok),
                Plan::Preflight(StatusCode::OK)
            );
            assert!(matches!(
                plan_for(mode, Method::OPTIONS, &evil),
                Plan::Deny(_)
            ));
        }
        assert_eq!(
            plan_for(Enforcement::ReportOnly, Method::OPTIONS, &ok),
            Plan::Forward(Cors::Report)
        );
        // An OPTIONS without Access-Control-Request-Method is not a preflight: it is forwarded.
        assert_eq!(
            plan_for(Enforcement::Block, Method::OPTIONS, &headers(None, false)),
            Plan::Forward(Cors::Keep)
        );
    }

    #[test]
    fn replace_drops_upstream_cors_and_strip_adds_only_vary() {
        let p = policy(Enforcement::Block);
        let h = headers(Some("https://app.example"), false);
        let view = RequestView {
            method: &Method::GET,
            scheme: Scheme::Http,
            host: crate::authority::Authority::parse("api.example").ok(),
            path: "/",
            headers: &h,
        };
        let d = decide(&p, &[], &view, &view.cors_headers());
        let mut res = HeaderMap::new();
        res.append(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
        res.append(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("x"));
        res.insert(
            "access-control-allow-credentials",
            HeaderValue::from_static("true"),
        );
        Cors::Replace.finish(&d, &mut res);
        assert_eq!(res.get_all(ACCESS_CONTROL_ALLOW_ORIGIN).iter().count(), 1);
        assert_eq!(res[ACCESS_CONTROL_ALLOW_ORIGIN], "https://app.example");
        assert!(!res.contains_key("access-control-allow-credentials"));

        let mut res = HeaderMap::new();
        res.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
        res.insert(VARY, HeaderValue::from_static("accept-encoding"));
        Cors::Strip.finish(&d, &mut res);
        assert!(!res.contains_key(ACCESS_CONTROL_ALLOW_ORIGIN));
        assert_eq!(res[VARY], "accept-encoding, Origin");
    }

    #[test]
    fn report_only_flags_an_upstream_that_disagrees() {
        let p = policy(Enforcement::ReportOnly);
        let allowed = headers(Some("https://app.example"), false);
        let denied = headers(Some("https://evil.example"), false);
        let view = |h| RequestView {
            method: &Method::GET,
            scheme: Scheme::Http,
            host: crate::authority::Authority::parse("api.example").ok(),
            path: "/",
            headers: h,
        };
        let mut star = HeaderMap::new();
        star.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
        let mut echo = HeaderMap::new();
        echo.insert(
            ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("https://app.example"),
        );
        let none = HeaderMap::new();

        let v = view(&allowed);
        let d = decide(&p, &[], &v, &v.cors_headers());
        assert_eq!(mismatch(&d, &echo), None);
        let m = mismatch(&d, &none).unwrap();
        assert!(
            m.contains("upstream Access-Control-Allow-Origin: none"),
            "{m}"
        );
        let v = view(&denied);
        let d = decide(&p, &[], &v, &v.cors_headers());
        assert_eq!(mismatch(&d, &none), None);
        assert!(mismatch(&d, &star).unwrap().contains("\"*\""));
        let v = view(&none);
        let d = decide(&p, &[], &v, &v.cors_headers());
        assert_eq!(mismatch(&d, &star), None);
    }
}
