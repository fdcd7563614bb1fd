//! `Live`: the runtime state that changes together on a reload (the compiled snapshot, and for each
//! route and each upstream one value holding its config, its connection pool and its metric handles,
//! and each rate limit's buckets), behind one `ArcSwap`.
//!
//! A request calls `load_full()` once and keeps that `Arc<Live>` until its response head is sent, so a
//! reload never mixes an old route with a new client. Old connection pools are dropped with the last
//! request that still holds the old `Live`.

use std::sync::Arc;

use http::header::HeaderValue;
use http::Uri;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;

use crate::observe::{Observer, RouteMetrics, UpstreamMetrics};
use crate::pool::Pool;
use crate::ratelimit::RateLimit;
use crate::routes::Route;
use crate::snapshot::{Evaluation, RateLimited, Snapshot, Upstream};

/// The swap point: readers `load_full()`, a reload `store(Arc::new(live))`.
pub(crate) type Shared = arc_swap::ArcSwap<Live>;

/// Why a snapshot could not be made live.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// The TLS client configuration for an upstream could not be built.
    #[error("upstream {upstream:?}: TLS client setup failed: {source}")]
    Tls {
        /// The upstream's table name.
        upstream: String,
        /// Why the TLS client config could not be built.
        source: Box<crate::tls::TlsError>,
    },
    /// The upstream's authority is not a valid `Host` header value.
    #[error("upstream {upstream:?}: authority {authority:?} is not a valid Host header")]
    Authority {
        /// The upstream's table name.
        upstream: String,
        /// The offending authority.
        authority: String,
    },
}

/// Everything a request needs, swapped as one unit.
#[derive(Debug)]
pub struct Live {
    /// The compiled config.
    pub snapshot: Arc<Snapshot>,
    /// By `Route::index`.
    routes: Box<[LiveRoute]>,
    /// By index into `Snapshot::rate_limits`: the buckets, shared by the routes that name them.
    limits: Box<[Arc<RateLimit>]>,
    /// Metrics of requests that matched no route.
    pub(crate) unmatched: RouteMetrics,
}

/// One route at run time: its upstream and its metric handles (its config is `Route` in the
/// snapshot, which routing returns).
#[derive(Debug)]
pub(crate) struct LiveRoute {
    pub(crate) upstream: Arc<LiveUpstream>,
    pub(crate) metrics: RouteMetrics,
}

/// One upstream at run time: its config, its connection pool, the values precomputed for forwarding
/// to it, and its metric handles.
#[derive(Debug)]
pub(crate) struct LiveUpstream {
    /// `[upstreams.NAME]`, compiled.
    pub(crate) config: Upstream,
    /// Its error counters and log budget.
    pub(crate) metrics: UpstreamMetrics,
    /// Its keep-alive connections.
    pub(crate) pool: Pool,
    /// The `Host` header sent unless `preserve_host`.
    pub(crate) host: HeaderValue,
}

impl Live {
    /// Build the clients, metric handles and rate limiters for `snapshot`. Used at startup
    /// (`previous` = `None`) and on every reload, where a rate limit whose name and settings are
    /// unchanged keeps its buckets: its limiter is taken over from `previous`.
    pub fn build(
        snapshot: Snapshot,
        observer: &Observer,
        previous: Option<&Live>,
    ) -> Result<Live, LiveError> {
        let handles = observer.handles(&snapshot);
        let limits: Box<[Arc<RateLimit>]> = snapshot
            .rate_limits
            .iter()
            .map(|settings| {
                previous
                    .and_then(|p| p.limits.iter().find(|l| l.settings() == settings))
                    .map_or_else(|| Arc::new(RateLimit::new(settings)), Arc::clone)
            })
            .collect();
        let upstreams = snapshot
            .upstreams
            .iter()
            .zip(handles.upstreams)
            .map(|(up, metrics)| LiveUpstream::build(up, metrics).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        // Compile guarantees every route's upstream index exists; `zip` and `get` keep that a
        // checked fact here rather than a panic.
        let routes = snapshot
            .routes
            .iter()
            .zip(handles.routes)
            .filter_map(|(r, metrics)| {
                let upstream = Arc::clone(upstreams.get(r.upstream)?);
                Some(LiveRoute { upstream, metrics })
            })
            .collect();
        Ok(Live {
            snapshot: Arc::new(snapshot),
            routes,
            limits,
            unmatched: handles.unmatched,
        })
    }

    /// The run-time half of a route that the snapshot's routing returned.
    pub(crate) fn route(&self, route: &Route) -> Option<&LiveRoute> {
        self.routes.get(route.index)
    }

    /// Every rate limit, by index into `Snapshot::rate_limits` (the sweeper walks them).
    pub(crate) fn limits(&self) -> &[Arc<RateLimit>] {
        &self.limits
    }

    /// Count a routed request against its route's rate limit, in the same pass as the policy
    /// decision: an evaluation over the limit becomes `RateLimited` (429), any other is returned
    /// as it is. Every routed request counts, whatever the policy decided (preflights and denied
    /// origins too): the limit protects the upstream and the proxy, and is checked before either
    /// does any work for the request.
    pub(crate) fn rate_limit<'a>(
        &self,
        eval: Evaluation<'a>,
        headers: &http::HeaderMap,
        peer: std::net::IpAddr,
    ) -> Evaluation<'a> {
        let Evaluation::Routed(routed) = eval else {
            return eval;
        };
        let Some(limit) = routed.route.rate_limit.and_then(|i| self.limits.get(i)) else {
            return Evaluation::Routed(routed);
        };
        match limit.check(&limit.key(headers, peer)) {
            Ok(()) => Evaluation::Routed(routed),
            Err(wait) => Evaluation::RateLimited(
                routed,
                RateLimited {
                    retry_after_secs: crate::ratelimit::retry_after_secs(wait),
                },
            ),
        }
    }
}

impl LiveUpstream {
    fn build(up: &Upstream, metrics: UpstreamMetrics) -> Result<LiveUpstream, LiveError> {
        let bad_authority = || LiveError::Authority {
            upstream: up.name.clone(),
            authority: up.authority.to_string(),
        };
        let dial = Uri::builder()
            .scheme(up.scheme.clone())
            .authority(up.authority.clone())
            .path_and_query("/")
            .build()
            .map_err(|_| bad_authority())?;
        let pool = Pool::new(connector(up)?, dial);
        let host = HeaderValue::from_str(up.authority.as_str()).map_err(|_| bad_authority())?;
        Ok(LiveUpstream {
            config: up.clone(),
            metrics,
            pool,
            host,
        })
    }
}

/// The connector for one upstream: plain TCP for `http`, rustls for `https` (webpki roots), with the
/// upstream's `connect_timeout`. `ca_file` adds the upstream's private CA to the trusted roots.
pub(crate) fn connector(up: &Upstream) -> Result<HttpsConnector<HttpConnector>, LiveError> {
    let mut http = HttpConnector::new();
    // The https connector passes https URIs down to this one, which must not refuse them.
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(up.connect_timeout));
    // Webpki roots plus the upstream's private CA; `tls::client_config` offers no way to skip
    // verification.
    let tls =
        crate::tls::client_config(up.ca_file.as_deref()).map_err(|source| LiveError::Tls {
            upstream: up.name.clone(),
            source: Box::new(source),
        })?;
    let builder = HttpsConnectorBuilder::new().with_tls_config(tls);
    Ok(builder.https_or_http().enable_http1().wrap_connector(http))
}
