//! The per-request hyper `Service`: one screen of phases. Load the live state once, check the
//! request is routable, evaluate it (route + policy decision), then answer locally (no route,
//! preflight, denial) or forward, fix the response's CORS headers per enforcement mode, and record
//! the request with the observer when the response head is ready.

mod body;
mod forward;
mod headers;
mod record;
mod respond;
mod upgrade;

pub use body::ProxyBody;

use std::any::Any;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use http::request::Parts;
use http::{Method, Request, Response, StatusCode, Version};
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;

use crate::authority::Authority;
use crate::live::{Live, Shared};
use crate::observe::Observer;
use crate::policy::{Cors, Plan};
use crate::policy::{Decision, RequestView, Scheme};
use crate::routes::Route;
use crate::server::Activity;
use forward::{ForwardError, Hop};
use record::Record;

/// The largest request header section (names, values and line overhead) the proxy forwards; larger
/// ones get a 431 that still carries the policy's CORS headers, so a page can read the error.
pub const MAX_REQUEST_HEADER_BYTES: usize = 32 * 1024;

/// One client connection's service. Cloned per request: one reference-count increment.
#[derive(Clone)]
pub struct Proxy {
    conn: Arc<Conn>,
}

struct Conn {
    shared: Arc<Shared>,
    observer: Arc<Observer>,
    peer: SocketAddr,
    scheme: Scheme,
    /// Marked by every request, read by the connection's deadlines.
    activity: Arc<Activity>,
    /// The connection's resources (its `max_connections` slot, its gauge count). An upgrade tunnel
    /// keeps the whole `Conn` alive, so an upgraded connection stays counted until it closes.
    _hold: Box<dyn Any + Send + Sync>,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("peer", &self.conn.peer)
            .field("scheme", &self.conn.scheme)
            .finish_non_exhaustive()
    }
}

impl Proxy {
    /// The service for one connection from `peer` on a listener of `scheme`. `hold` is dropped when
    /// the connection and any tunnel it became are gone.
    pub(crate) fn new(
        shared: Arc<Shared>,
        observer: Arc<Observer>,
        peer: SocketAddr,
        scheme: Scheme,
        activity: Arc<Activity>,
        hold: Box<dyn Any + Send + Sync>,
    ) -> Proxy {
        Proxy {
            conn: Arc::new(Conn {
                shared,
                observer,
                peer,
                scheme,
                activity,
                _hold: hold,
            }),
        }
    }

    /// Handle one request. Never fails: every fault becomes a response.
    pub async fn handle(self, req: Request<Incoming>) -> Response<ProxyBody> {
        let start = Instant::now();
        let live = self.conn.shared.load_full();
        let (mut parts, body) = req.into_parts();
        let on_upgrade = parts.extensions.remove::<OnUpgrade>();
        let observer = &self.conn.observer;
        // From here on the request's path is its normalised form: routed on, logged and forwarded
        // alike, so the upstream can never read it as a path that another route governs.
        if let Err(reject) = normalize_target(&mut parts) {
            let rec = Record::new(&parts, None, start);
            return rec.finish(observer, &live, &Decision::NoRoute, None, reject.response());
        }
        let host = match check_request(&parts) {
            Ok(host) => host,
            Err(reject) => {
                let rec = Record::new(&parts, None, start);
                let res = reject.response();
                return rec.finish(observer, &live, &Decision::NoRoute, None, res);
            }
        };
        let view = RequestView {
            method: &parts.method,
            scheme: self.conn.scheme,
            host,
            path: parts.uri.path(),
            headers: &parts.headers,
        };
        let eval = live.snapshot.evaluate(&view);
        let mut rec = Record::new(&parts, host.map(|a| a.as_str()), start);
        rec.route = eval.route.map(|r| r.index);
        let mode = eval.policy.map(|p| p.enforcement());
        let decision = &eval.decision;
        let plan = crate::policy::plan(decision, eval.policy);
        let res = match (plan, eval.route) {
            _ if record::header_bytes(&parts.headers) > MAX_REQUEST_HEADER_BYTES => {
                let mut res = respond::headers_too_large();
                if let Plan::Forward(cors) = plan {
                    cors.finish(decision, res.headers_mut());
                }
                res
            }
            (Plan::Forward(cors), Some(route)) => {
                let fwd = Forwarding {
                    live: &live,
                    parts: &parts,
                    route,
                    decision,
                    cors,
                    host: host.map(|a| a.as_str()),
                };
                self.forward(fwd, body, on_upgrade, &mut rec).await
            }
            (plan, _) => answer_locally(plan, decision),
        };
        rec.finish(observer, &live, decision, mode, res)
    }

    /// Forward to the route's upstream and fix up its response; upstream faults become 502/504.
    async fn forward(
        &self,
        fwd: Forwarding<'_>,
        body: Incoming,
        on_upgrade: Option<OnUpgrade>,
        rec: &mut Record<'_>,
    ) -> Response<ProxyBody> {
        let Forwarding {
            live,
            parts,
            route,
            decision,
            cors,
            host,
        } = fwd;
        let local_error = |mut res: Response<ProxyBody>| {
            cors.finish(decision, res.headers_mut());
            res
        };
        let (Some(up), Some(live_up)) = (
            live.snapshot.upstreams.get(route.upstream),
            live.upstream(route.upstream),
        ) else {
            return local_error(respond::bad_gateway());
        };
        let upgrade = on_upgrade.is_some()
            && parts.version == Version::HTTP_11
            && headers::wants_upgrade(&parts.headers);
        let hop = Hop {
            peer: self.conn.peer,
            scheme: self.conn.scheme,
            host,
            upgrade,
        };
        let (mut res, latency) = match forward::forward(live_up, up, route, parts, body, hop).await
        {
            Ok(ok) => ok,
            Err(e) => {
                if let ForwardError::Upstream { kind, reason, .. } = &e {
                    let why = std::io::Error::other(reason.as_str());
                    self.conn.observer.upstream_failure(
                        &live.handles,
                        route.upstream,
                        *kind,
                        Some(&why),
                    );
                }
                return local_error(match e {
                    ForwardError::ClientBody { reason } => {
                        tracing::info!(peer = %self.conn.peer, %reason, "malformed request body");
                        respond::bad_request("malformed request body\n")
                    }
                    ForwardError::Upstream {
                        timed_out: true, ..
                    } => respond::gateway_timeout(),
                    _ => respond::bad_gateway(),
                });
            }
        };
        rec.upstream_latency = Some(latency);
        let switching = res.status() == StatusCode::SWITCHING_PROTOCOLS;
        let tunnel = match on_upgrade {
            Some(client) if switching && upgrade => Some(client),
            // A 101 the client did not ask for cannot be relayed.
            _ if switching => return local_error(respond::bad_gateway()),
            _ => None,
        };
        if cors == Cors::Report {
            if let (Some(m), Some(i)) =
                (crate::policy::mismatch(decision, res.headers()), rec.route)
            {
                self.conn.observer.mismatch(&live.handles, i, &m);
            }
        }
        headers::strip_response_hop_by_hop(res.headers_mut(), switching);
        cors.finish(decision, res.headers_mut());
        if let Some(client) = tunnel {
            let upstream = hyper::upgrade::on(&mut res);
            upgrade::spawn_tunnel(client, upstream, Arc::clone(&self.conn));
        }
        let (head, body) = res.into_parts();
        let fault = body::Fault {
            observer: Arc::clone(&self.conn.observer),
            live: Arc::clone(live),
            upstream: route.upstream,
        };
        Response::from_parts(head, ProxyBody::upstream(body, fault))
    }
}

/// What a forwarded request needs from the evaluation.
struct Forwarding<'a> {
    live: &'a Arc<Live>,
    parts: &'a Parts,
    route: &'a Route,
    decision: &'a Decision<'a>,
    cors: Cors,
    host: Option<&'a str>,
}

/// The answers that never reach the upstream: preflights, denials, no route.
fn answer_locally(plan: Plan, decision: &Decision<'_>) -> Response<ProxyBody> {
    match plan {
        Plan::Preflight(status) => {
            let mut res = respond::preflight(status);
            crate::policy::write_cors_headers(plan, decision, res.headers_mut());
            res
        }
        Plan::Deny(reason) => {
            let mut res = respond::denied(reason);
            crate::policy::write_cors_headers(plan, decision, res.headers_mut());
            res
        }
        // `Forward` reaches here only without a route, which `plan` never produces.
        Plan::NoRoute | Plan::Forward(_) => respond::no_route(),
    }
}

/// Why a request is answered before it is evaluated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reject {
    Connect,
    Target,
    MissingHost,
    InvalidHost,
    SeveralHosts,
}

impl Reject {
    fn response(self) -> Response<ProxyBody> {
        match self {
            Reject::Connect => respond::connect_not_supported(),
            Reject::Target => respond::bad_request("unsupported request target\n"),
            Reject::MissingHost => respond::bad_request("missing Host header\n"),
            Reject::InvalidHost => respond::bad_request("invalid Host header\n"),
            Reject::SeveralHosts => respond::bad_request("several Host headers\n"),
        }
    }
}

/// Replace the target's path with its normalised form (a no-op, without allocating, for a path that
/// is already normal). The query is kept byte for byte.
fn normalize_target(parts: &mut Parts) -> Result<(), Reject> {
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
    uri.path_and_query = Some(target.parse().map_err(|_| Reject::Target)?);
    parts.uri = http::Uri::from_parts(uri).map_err(|_| Reject::Target)?;
    Ok(())
}

/// Reject what the proxy cannot route: CONNECT, a target that is not a path, no or several `Host`
/// headers on HTTP/1.1, a `Host` that is not an authority. Returns the request's authority: the URI's
/// (HTTP/2 `:authority`, or an absolute-form target, which RFC 9112 §3.2.2 says wins over `Host`),
/// else the `Host` header.
fn check_request(parts: &Parts) -> Result<Option<Authority<'_>>, Reject> {
    if parts.method == Method::CONNECT {
        return Err(Reject::Connect);
    }
    if !parts.uri.path().starts_with('/') {
        return Err(Reject::Target);
    }
    if let Some(a) = parts.uri.authority() {
        // Userinfo is refused here as in `Host`: `http://evil@internal.example/` must not be
        // routed as a host of its own.
        return Authority::parse(a.as_str())
            .map(Some)
            .map_err(|_| Reject::InvalidHost);
    }
    let mut hosts = parts.headers.get_all(http::header::HOST).iter();
    match (hosts.next(), hosts.next()) {
        // RFC 9112 §3.2: "A server MUST respond with a 400 (Bad Request) status code to any
        // HTTP/1.1 request message that lacks a Host header field and to any request message that
        // contains more than one Host header field line or a Host header field with an invalid
        // field value."
        (None, _) if parts.version == Version::HTTP_11 => Err(Reject::MissingHost),
        (None, _) => Ok(None),
        (Some(h), None) => h
            .to_str()
            .ok()
            .and_then(|h| Authority::parse(h).ok())
            .map(Some)
            .ok_or(Reject::InvalidHost),
        (Some(_), Some(_)) => Err(Reject::SeveralHosts),
    }
}

impl hyper::service::Service<Request<Incoming>> for Proxy {
    type Response = Response<ProxyBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<ProxyBody>, Infallible>> + Send>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        // Marked here, not when the future first runs: the head is complete now.
        let in_flight = self.conn.activity.request();
        let this = self.clone();
        Box::pin(async move {
            let res = this.handle(req).await;
            drop(in_flight);
            Ok(res)
        })
    }
}
