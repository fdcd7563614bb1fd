//! Forwarding to an upstream: the upstream URI (base path, `strip_prefix`, the normalised path the
//! request was routed on, the query byte for byte), the header rewrite, the pooled client call
//! bounded by `timeout`, and fault classification.

use std::error::Error as StdError;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use http::header::{CONTENT_LENGTH, HOST, TRANSFER_ENCODING};
use http::request::Parts;
use http::uri::PathAndQuery;
use http::{Request, Response, Uri, Version};
use hyper::body::Incoming;

use super::headers::{host_value, request_headers, set_forwarded};
use crate::live::LiveUpstream;
use crate::observe::UpstreamErrorKind;
use crate::policy::Scheme;
use crate::pool::{Lease, PoolError};
use crate::routes::Route;

/// Where a request came from and how: what the rewrite needs besides the request itself.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Hop<'a> {
    /// The client's address (appended to `X-Forwarded-For`).
    pub(crate) peer: SocketAddr,
    /// The listener's scheme (`X-Forwarded-Proto`).
    pub(crate) scheme: Scheme,
    /// The request's authority (`X-Forwarded-Host`, and `Host` with `preserve_host`).
    pub(crate) host: Option<&'a str>,
    /// Forward the `Upgrade` handshake.
    pub(crate) upgrade: bool,
}

/// An upstream fault, before the response head arrived.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ForwardError {
    /// The forwarded URI could not be built (an upstream base and a request path that do not form a
    /// valid URI together).
    #[error("invalid upstream URI")]
    Uri,
    /// The client's own request body was malformed or cut off while it was being forwarded (a bad
    /// chunk size, say): the client's fault, answered 400 and never counted as an upstream error.
    #[error("the client's request body failed: {reason}")]
    ClientBody {
        /// The error and its causes, for the log line.
        reason: String,
    },
    /// The client call failed.
    #[error("upstream request failed ({kind:?}, timed out: {timed_out})")]
    Upstream {
        /// The metric label.
        kind: UpstreamErrorKind,
        /// No connection or no response head in time: answered 504 rather than 502.
        timed_out: bool,
        /// The error and its causes, for the log line (certificate errors name the reason here).
        reason: String,
    },
}

/// An upstream's response head, the time it took, and the connection it came on.
pub(crate) struct Forwarded {
    pub(crate) response: Response<Incoming>,
    pub(crate) latency: Duration,
    pub(crate) lease: Lease,
}

/// Forward `parts` + `body` to `up` and wait for the response head, at most `timeout`.
pub(crate) async fn forward(
    live: &LiveUpstream,
    route: &Route,
    parts: &Parts,
    body: Incoming,
    hop: Hop<'_>,
) -> Result<Forwarded, ForwardError> {
    let up = &live.config;
    let req = upstream_request(live, route, parts, body, hop)?;
    let start = Instant::now();
    // `timeout` bounds the whole wait for the response head, connecting included; the connect
    // itself is bounded separately by `connect_timeout` inside the connector.
    match live.pool.send(req, up.timeout).await {
        Ok((mut response, lease)) => {
            drop_length_beside_transfer_encoding(&mut response);
            Ok(Forwarded {
                response,
                latency: start.elapsed(),
                lease,
            })
        }
        Err(PoolError::TimedOut) => Err(ForwardError::Upstream {
            kind: UpstreamErrorKind::Timeout,
            timed_out: true,
            reason: format!("no response head within {:?}", up.timeout),
        }),
        Err(e) => Err(classify(&e)),
    }
}

/// Build the request the upstream receives.
fn upstream_request(
    live: &LiveUpstream,
    route: &Route,
    parts: &Parts,
    body: Incoming,
    hop: Hop<'_>,
) -> Result<Request<Incoming>, ForwardError> {
    let uri = upstream_uri(live, route, &parts.uri)?;
    let up = &live.config;
    let join_cookies = parts.version == Version::HTTP_2;
    let mut headers = request_headers(&parts.headers, hop.upgrade, join_cookies);
    // The request's authority as a value, built once for `X-Forwarded-Host` and a preserved Host.
    let forwarded_host = hop.host.and_then(|h| host_value(&parts.headers, h));
    let host = match &forwarded_host {
        Some(h) if up.preserve_host => h.clone(),
        _ => live.host.clone(),
    };
    headers.insert(HOST, host);
    set_forwarded(
        &mut headers,
        &parts.headers,
        hop.peer.ip(),
        hop.scheme,
        forwarded_host,
    );
    let mut req = Request::new(body);
    *req.method_mut() = parts.method.clone();
    *req.uri_mut() = uri;
    // The upstream client speaks HTTP/1.1 whatever the client spoke.
    *req.version_mut() = Version::HTTP_11;
    *req.headers_mut() = headers;
    Ok(req)
}

/// The origin-form target the upstream receives: the path to forward and the query byte for byte. When
/// the route forwards the path as it is (no `strip_prefix`, no base path in the upstream URL), the
/// request's own path-and-query is reused: a reference count, no copy and no second parse.
fn upstream_uri(live: &LiveUpstream, route: &Route, uri: &Uri) -> Result<Uri, ForwardError> {
    let up = &live.config;
    let path = route.forward_path(uri.path());
    let path_and_query = match uri.path_and_query() {
        Some(pq) if up.base_path.is_empty() && path.len() == uri.path().len() => pq.clone(),
        _ => {
            let query = uri.query();
            let mut target = String::with_capacity(
                up.base_path.len() + path.len() + query.map_or(0, |q| q.len() + 1),
            );
            target.push_str(&up.base_path);
            target.push_str(path);
            if let Some(q) = query {
                target.push('?');
                target.push_str(q);
            }
            PathAndQuery::try_from(target).map_err(|_| ForwardError::Uri)?
        }
    };
    Ok(Uri::from(path_and_query))
}

/// RFC 9112 §6.3 (<https://www.rfc-editor.org/rfc/rfc9112#section-6.3>): "If a message is received
/// with both a Transfer-Encoding and a Content-Length header field, the Transfer-Encoding overrides
/// the Content-Length. [...] An intermediary that chooses to forward the message MUST first remove
/// the received Content-Length field and process the Transfer-Encoding [...] prior to forwarding the
/// message downstream." hyper's client decodes such a body by its Transfer-Encoding but keeps the
/// header; relayed, it would frame the client's copy by the wrong length.
fn drop_length_beside_transfer_encoding(res: &mut Response<Incoming>) {
    if res.headers().contains_key(TRANSFER_ENCODING) {
        res.headers_mut().remove(CONTENT_LENGTH);
    }
}

/// Whether the client call failed because the request body, which streams from the client, did:
/// hyper reports a body error as a user error whose cause is the body's own error, and the only body
/// here is the client connection's `Incoming`, whose errors are `hyper::Error`s.
fn is_client_body_error(e: &PoolError) -> bool {
    let mut source: Option<&(dyn StdError + 'static)> = e.source();
    while let Some(s) = source {
        if let Some(h) = s.downcast_ref::<hyper::Error>() {
            if h.is_user() && h.source().is_some_and(|c| c.is::<hyper::Error>()) {
                return true;
            }
        }
        source = s.source();
    }
    false
}

/// Whether `e` is, or wraps, a rustls error. `io::Error::source()` skips a custom error's own value,
/// and hyper-rustls nests one `io::Error` in another, so each wrapper is opened with `get_ref`.
fn is_tls_error(e: &(dyn StdError + 'static)) -> bool {
    if e.downcast_ref::<rustls::Error>().is_some() {
        return true;
    }
    match e
        .downcast_ref::<std::io::Error>()
        .and_then(|io| io.get_ref())
    {
        Some(inner) => is_tls_error(inner),
        None => false,
    }
}

/// Sort a client error into the metric kinds, and decide 502 or 504.
fn classify(e: &PoolError) -> ForwardError {
    let mut timed_out = false;
    let mut tls = false;
    let mut source: Option<&(dyn StdError + 'static)> = e.source();
    let mut reason = e.to_string();
    let client_body = is_client_body_error(e);
    while let Some(s) = source {
        reason.push_str(": ");
        reason.push_str(&s.to_string());
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            timed_out |= io.kind() == std::io::ErrorKind::TimedOut;
        }
        tls |= is_tls_error(s);
        source = s.source();
    }
    if client_body {
        return ForwardError::ClientBody { reason };
    }
    let kind = if tls {
        UpstreamErrorKind::Tls
    } else if e.is_connect() {
        UpstreamErrorKind::Connect
    } else {
        UpstreamErrorKind::Reset
    };
    ForwardError::Upstream {
        kind,
        timed_out: timed_out && e.is_connect(),
        reason,
    }
}
