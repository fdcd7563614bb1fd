//! Responses the proxy builds itself: the preflight answer, 403 denials, 429 over a rate limit, 404
//! no route, 400/431 for hostile requests, 502/504 for upstream faults. Bodies are short static text.

use http::header::{HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use http::{Response, StatusCode};

use super::body::ProxyBody;
use crate::policy::{write_refusal_headers, Decision, DenialReason};
use crate::snapshot::RateLimited;
use crate::target::Rejection;

static TEXT_PLAIN: HeaderValue = HeaderValue::from_static("text/plain; charset=utf-8");

/// A local response with a short text body.
pub(crate) fn text(status: StatusCode, body: &'static str) -> Response<ProxyBody> {
    let mut res = Response::new(ProxyBody::text(body));
    *res.status_mut() = status;
    res.headers_mut().insert(CONTENT_TYPE, TEXT_PLAIN.clone());
    res
}

/// The answer to an allowed preflight: `status` (200 or 204), no body. The caller applies the
/// decision's headers.
pub(crate) fn preflight(status: StatusCode) -> Response<ProxyBody> {
    let mut res = Response::new(ProxyBody::empty());
    *res.status_mut() = status;
    res
}

/// 403 for a denied request or preflight; the body names the reason, never the request's values.
pub(crate) fn denied(reason: DenialReason) -> Response<ProxyBody> {
    text(StatusCode::FORBIDDEN, denial_body(reason))
}

fn denial_body(reason: DenialReason) -> &'static str {
    match reason {
        DenialReason::OriginNotAllowed => "forbidden by CORS policy: origin_not_allowed\n",
        DenialReason::NullOrigin => "forbidden by CORS policy: null_origin\n",
        DenialReason::MalformedOrigin => "forbidden by CORS policy: malformed_origin\n",
        DenialReason::MethodNotAllowed => "forbidden by CORS policy: method_not_allowed\n",
        DenialReason::HeaderNotAllowed => "forbidden by CORS policy: header_not_allowed\n",
        DenialReason::PrivateNetworkNotAllowed => {
            "forbidden by CORS policy: private_network_not_allowed\n"
        }
        DenialReason::WebsocketOrigin => "forbidden by CORS policy: websocket_origin\n",
        DenialReason::CrossSiteRequest => {
            "forbidden by cross-site protection (Sec-Fetch-Site): cross_site_request\n"
        }
    }
}

/// 429 over a rate limit, with `Retry-After` (RFC 9110 §10.2.3, whole seconds) and, for an allowed
/// origin, the policy's CORS headers so the page can read it.
pub(crate) fn rate_limited(decision: &Decision<'_>, limited: RateLimited) -> Response<ProxyBody> {
    let mut res = text(StatusCode::TOO_MANY_REQUESTS, "too many requests\n");
    res.headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(limited.retry_after_secs));
    write_refusal_headers(decision, res.headers_mut());
    res
}

/// The answer to a request refused before evaluation.
pub(crate) fn rejected(rejection: Rejection) -> Response<ProxyBody> {
    match rejection {
        Rejection::Connect => connect_not_supported(),
        Rejection::Target => bad_request("unsupported request target\n"),
        Rejection::MissingHost => bad_request("missing Host header\n"),
        Rejection::InvalidHost => bad_request("invalid Host header\n"),
        Rejection::SeveralHosts => bad_request("several Host headers\n"),
    }
}

/// 404: no route matches the host and path.
pub(crate) fn no_route() -> Response<ProxyBody> {
    text(StatusCode::NOT_FOUND, "no route\n")
}

/// 502: the upstream could not be reached or broke before its response head.
pub(crate) fn bad_gateway() -> Response<ProxyBody> {
    text(StatusCode::BAD_GATEWAY, "bad gateway: upstream failed\n")
}

/// 504: no response head from the upstream in time (or no connection within `connect_timeout`).
pub(crate) fn gateway_timeout() -> Response<ProxyBody> {
    text(
        StatusCode::GATEWAY_TIMEOUT,
        "gateway timeout: upstream too slow\n",
    )
}

/// 400 for a request the proxy will not route (no or several Host headers, an unusable target).
pub(crate) fn bad_request(why: &'static str) -> Response<ProxyBody> {
    text(StatusCode::BAD_REQUEST, why)
}

/// 431: the request's header section is larger than the proxy forwards.
pub(crate) fn headers_too_large() -> Response<ProxyBody> {
    text(
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        "request header fields too large\n",
    )
}

/// 405 for CONNECT: corsgate is a reverse proxy, not a tunnel.
pub(crate) fn connect_not_supported() -> Response<ProxyBody> {
    text(StatusCode::METHOD_NOT_ALLOWED, "CONNECT is not supported\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_denial_body_names_its_reason() {
        for r in DenialReason::ALL {
            assert!(denial_body(r).contains(r.as_str()), "{r}");
        }
    }
}
