//! The request target: what a request is addressed to, checked before it is evaluated. The path is
//! replaced by its normalised form (`routes::normalize_path`), and the authority is parsed once
//! (`Authority`). A request that fails here is `Rejected`: it never reaches routing or the policy.

use http::request::Parts;
use http::{Method, Version};

use crate::authority::Authority;

/// Why a request is refused before it is evaluated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// CONNECT: corsgate is a reverse proxy, not a tunnel (405).
    Connect,
    /// A target that is not a path (`*`, or one that cannot be rebuilt once normalised).
    Target,
    /// HTTP/1.1 without `Host`.
    MissingHost,
    /// A `Host` or URI authority that is not `host[:port]` (userinfo included).
    InvalidHost,
    /// More than one `Host`.
    SeveralHosts,
}

/// Replace the target's path with its normalised form (a no-op, without allocating, for a path that
/// is already normal). The query is kept byte for byte.
pub(crate) fn normalize(parts: &mut Parts) -> Result<(), Rejection> {
    let path = parts.uri.path();
    if !path.starts_with('/') {
        return Ok(());
    }
    let std::borrow::Cow::Owned(normal) = crate::routes::normalize_path(path) else {
        return Ok(());
    };
    let target = match parts.uri.query() {
        Some(q) => format!("{normal}?{q}"),
        None => normal,
    };
    let mut uri = parts.uri.clone().into_parts();
    uri.path_and_query = Some(target.parse().map_err(|_| Rejection::Target)?);
    parts.uri = http::Uri::from_parts(uri).map_err(|_| Rejection::Target)?;
    Ok(())
}

/// Reject what the proxy cannot route: CONNECT, a target that is not a path, no or several `Host`
/// headers on HTTP/1.1, a `Host` that is not an authority. Returns the request's authority: the URI's
/// (HTTP/2 `:authority`, or an absolute-form target, which RFC 9112 §3.2.2 says wins over `Host`),
/// else the `Host` header.
pub(crate) fn authority(parts: &Parts) -> Result<Option<Authority<'_>>, Rejection> {
    if parts.method == Method::CONNECT {
        return Err(Rejection::Connect);
    }
    if !parts.uri.path().starts_with('/') {
        return Err(Rejection::Target);
    }
    if let Some(a) = parts.uri.authority() {
        // Userinfo is refused here as in `Host`: `http://evil@internal.example/` must not be
        // routed as a host of its own.
        return Authority::parse(a.as_str())
            .map(Some)
            .map_err(|_| Rejection::InvalidHost);
    }
    let mut hosts = parts.headers.get_all(http::header::HOST).iter();
    match (hosts.next(), hosts.next()) {
        // RFC 9112 §3.2: "A server MUST respond with a 400 (Bad Request) status code to any
        // HTTP/1.1 request message that lacks a Host header field and to any request message that
        // contains more than one Host header field line or a Host header field with an invalid
        // field value."
        (None, _) if parts.version == Version::HTTP_11 => Err(Rejection::MissingHost),
        (None, _) => Ok(None),
        (Some(h), None) => h
            .to_str()
            .ok()
            .and_then(|h| Authority::parse(h).ok())
            .map(Some)
            .ok_or(Rejection::InvalidHost),
        (Some(_), Some(_)) => Err(Rejection::SeveralHosts),
    }
}
