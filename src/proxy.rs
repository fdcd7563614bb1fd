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

pub(crate) use body::ProxyBody;
pub(crate) use headers::X_FORWARDED_FOR;

use std::any::Any;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use http::request::Parts;
use http::{Request, Response, StatusCode, Version};
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;

use crate::live::{LiveRoute, Shared};
use crate::observe::Observer;
use crate::policy::{write_cors_headers, Cors, Plan};
use crate::policy::{Decision, RequestView, Scheme};
use crate::routes::Route;
use crate::server::Activity;
use crate::snapshot::Evaluation;
use crate::target;
use forward::{ForwardError, Hop};
use record::Record;

/// The largest request header section (names, values and line overhead) the proxy forwards; larger
/// ones get a 431 that still carries the policy's CORS headers, so a page can read the error.
pub(crate) const MAX_REQUEST_HEADER_BYTES: usize = 32 * 1024;

/// One client connection's service. Cloned per request: one reference-count increment.
#[derive(Clone)]
pub(crate) struct Proxy {
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
    ///
    /// A function returning a future rather than an `async fn`, here and in `forward`: rustc keeps
    /// an `async fn`'s arguments twice in its state, and this state is allocated, and copied into
    /// its allocation, once per request.
    pub(crate) fn handle(
        self,
        req: Request<Incoming>,
    ) -> impl Future<Output = Response<ProxyBody>> + Send {
        let start = Instant::now();
        let (mut parts, body) = req.into_parts();
        let on_upgrade = parts.extensions.remove::<OnUpgrade>();
        async move {
            let live = self.conn.shared.load_full();
            let observer = &self.conn.observer;
            // From here on the request's path is its normalised form: routed on, logged and forwarded
            // alike, so the upstream can never read it as a path that another route governs.
            let admitted = target::normalize(&mut parts).and_then(|()| target::authority(&parts));
            let host = admitted.ok().flatten();
            let view = RequestView {
                method: &parts.method,
                scheme: self.conn.scheme,
                host,
                path: parts.uri.path(),
                headers: &parts.headers,
            };
            let eval = match admitted {
                Err(rejection) => Evaluation::Rejected(rejection),
                Ok(_) => {
                    let eval = live.snapshot.evaluate(&view);
                    live.rate_limit(eval, &parts.headers, self.conn.peer.ip())
                }
            };
            let mut rec = Record::new(&parts, host.map(|a| a.as_str()), start);
            let too_large = || record::header_bytes(&parts.headers) > MAX_REQUEST_HEADER_BYTES;
            let res = match &eval {
                Evaluation::Rejected(rejection) => respond::rejected(*rejection),
                Evaluation::NoRoute if too_large() => respond::headers_too_large(),
                Evaluation::NoRoute => respond::no_route(),
                Evaluation::RateLimited(routed, limited) => {
                    respond::rate_limited(&routed.decision, *limited)
                }
                Evaluation::Routed(routed) => {
                    let plan = routed.plan();
                    let decision = &routed.decision;
                    match plan {
                        // A page can read the 431 when its origin is allowed.
                        _ if too_large() => {
                            let mut res = respond::headers_too_large();
                            if let Plan::Forward(cors) = plan {
                                cors.finish(decision, res.headers_mut());
                            }
                            res
                        }
                        Plan::Forward(cors) => match live.route(routed.route) {
                            // Every compiled route has its run-time half; a 502 rather than a panic
                            // keeps it that way should that ever break.
                            None => respond::bad_gateway(),
                            Some(live_route) => {
                                if let Some(site) = routed.cross_site_report {
                                    observer.cross_site_report(&live_route.metrics, site);
                                }
                                let fwd = Forwarding {
                                    live_route,
                                    parts: &parts,
                                    route: routed.route,
                                    decision,
                                    cors,
                                    host: host.map(|a| a.as_str()),
                                };
                                self.forward(fwd, body, on_upgrade, &mut rec).await
                            }
                        },
                        Plan::Preflight(status) => {
                            let mut res = respond::preflight(status);
                            write_cors_headers(plan, decision, res.headers_mut());
                            res
                        }
                        Plan::Deny(reason) => {
                            let mut res = respond::denied(reason);
                            write_cors_headers(plan, decision, res.headers_mut());
                            res
                        }
                    }
                }
            };
            rec.finish(observer, &live, &eval, res)
        }
    }

    /// Forward to the route's upstream and fix up its response; upstream faults become 502/504.
    #[allow(clippy::manual_async_fn)]
    fn forward<'a, 'r: 'a>(
        &'a self,
        fwd: Forwarding<'a>,
        body: Incoming,
        on_upgrade: Option<OnUpgrade>,
        rec: &'a mut Record<'r>,
    ) -> impl Future<Output = Response<ProxyBody>> + Send + use<'a, 'r> {
        async move {
            let Forwarding {
                parts,
                route,
                live_route,
                decision,
                cors,
                host,
            } = fwd;
            let local_error = |mut res: Response<ProxyBody>| {
                cors.finish(decision, res.headers_mut());
                res
            };
            let upstream = &live_route.upstream;
            let upgrade = on_upgrade.is_some()
                && parts.version == Version::HTTP_11
                && headers::wants_upgrade(&parts.headers);
            let hop = Hop {
                peer: self.conn.peer,
                scheme: self.conn.scheme,
                host,
                upgrade,
            };
            let fwd = match forward::forward(upstream, route, parts, body, hop).await {
                Ok(fwd) => fwd,
                Err(e) => {
                    if let ForwardError::Upstream { kind, reason, .. } = &e {
                        let why = std::io::Error::other(reason.as_str());
                        self.conn
                            .observer
                            .upstream_failure(&upstream.metrics, *kind, Some(&why));
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
            let forward::Forwarded {
                response: mut res,
                latency,
                lease,
            } = fwd;
            rec.upstream_latency = Some(latency);
            let switching = res.status() == StatusCode::SWITCHING_PROTOCOLS;
            let tunnel = match on_upgrade {
                Some(client) if switching && upgrade => Some(client),
                // A 101 the client did not ask for cannot be relayed.
                _ if switching => return local_error(respond::bad_gateway()),
                _ => None,
            };
            if cors == Cors::Report {
                if let Some(m) = crate::policy::mismatch(decision, res.headers()) {
                    self.conn.observer.mismatch(&live_route.metrics, &m);
                }
            }
            headers::strip_response_hop_by_hop(res.headers_mut(), switching);
            cors.finish(decision, res.headers_mut());
            if let Some(client) = tunnel {
                let upstream = hyper::upgrade::on(&mut res);
                upgrade::spawn_tunnel(client, upstream, Arc::clone(&self.conn));
                // The connection is the tunnel now: never back to the pool.
                drop(lease);
                return res.map(|_| ProxyBody::empty());
            }
            let (head, body) = res.into_parts();
            let exchange = body::Exchange {
                lease,
                observer: Arc::clone(&self.conn.observer),
                upstream: Arc::clone(upstream),
            };
            Response::from_parts(head, ProxyBody::upstream(body, exchange))
        }
    }
}

/// What a forwarded request needs from the evaluation.
struct Forwarding<'a> {
    live_route: &'a LiveRoute,
    parts: &'a Parts,
    route: &'a Route,
    decision: &'a Decision<'a>,
    cors: Cors,
    host: Option<&'a str>,
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
