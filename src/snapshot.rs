//! `Snapshot`: everything one config file compiles to (settings, upstreams, policies, routes), immutable
//! and evaluated without I/O. The proxy holds one `Arc<Snapshot>` per request through arc-swap.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::policy::{
    cross_site_report, decide, plan, Decision, Outcome, Plan, Policy, RequestView,
};
use crate::routes::{Route, RouteTable};
use crate::target::Rejection;

/// The compiled form of one config file.
#[derive(Debug)]
pub struct Snapshot {
    /// The file it was compiled from.
    pub source: PathBuf,
    /// `[server]`.
    pub server: ServerSettings,
    /// `[log]`.
    pub log: LogSettings,
    /// `[upstreams.NAME]`, sorted by name; routes refer to them by index.
    pub upstreams: Vec<Upstream>,
    /// `[policies.NAME]`, sorted by name; routes refer to them by index.
    pub policies: Vec<Policy>,
    /// `[rate_limits.NAME]`, sorted by name; routes refer to them by index. Only the settings: the
    /// buckets are run-time state (`Live`), never part of the pure snapshot.
    pub rate_limits: Vec<RateLimitSettings>,
    /// `[[routes]]`, indexed for lookup.
    pub routes: RouteTable,
    /// The listener's TLS config, built from `server.tls` when the file was compiled (so a reload
    /// rotates the certificate for new handshakes).
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

/// The result of evaluating one request against a snapshot.
#[derive(Debug)]
pub enum Evaluation<'a> {
    /// Refused before evaluation: no valid target or authority (the proxy builds this; `evaluate`
    /// never does).
    Rejected(Rejection),
    /// No route matches the host and path.
    NoRoute,
    /// A route matched and its policy decided.
    Routed(Routed<'a>),
    /// A route matched, its policy decided, and the route's rate limit refused the request: 429.
    /// Never built by `evaluate` (the buckets are run-time state); the proxy turns a `Routed` into
    /// this after checking the route's limiter.
    RateLimited(Routed<'a>, RateLimited),
}

/// A request over its route's rate limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimited {
    /// `Retry-After`: whole seconds until the key's next request would conform, rounded up, at
    /// least 1.
    pub retry_after_secs: u64,
}

/// A request that matched a route: the route, its policy and the policy's decision.
#[derive(Debug)]
pub struct Routed<'a> {
    /// The route that matched.
    pub route: &'a Route,
    /// The route's policy.
    pub policy: &'a Policy,
    /// What the policy decided.
    pub decision: Decision<'a>,
    /// The request fails the policy's Fetch Metadata rules and is only reported (`fetch_metadata
    /// = "report"`, or `"enforce"` under `enforcement = "report-only"`), not refused: its
    /// `Sec-Fetch-Site` value.
    pub cross_site_report: Option<&'a str>,
    /// The route's `rate_limit` settings (its buckets are run-time state, checked by the proxy).
    pub rate_limit: Option<&'a RateLimitSettings>,
}

impl Evaluation<'_> {
    /// What became of the request.
    pub fn outcome(&self) -> Outcome {
        match self {
            Evaluation::Rejected(_) => Outcome::Rejected,
            Evaluation::NoRoute => Outcome::NoRoute,
            Evaluation::Routed(r) => r.decision.outcome(),
            Evaluation::RateLimited(..) => Outcome::RateLimited,
        }
    }

    /// The routed part, when a route matched.
    pub fn routed(&self) -> Option<&Routed<'_>> {
        match self {
            Evaluation::Routed(r) | Evaluation::RateLimited(r, _) => Some(r),
            Evaluation::Rejected(_) | Evaluation::NoRoute => None,
        }
    }
}

impl Routed<'_> {
    /// What the proxy does with the request: the policy core's plan for this decision.
    pub fn plan(&self) -> Plan {
        plan(&self.decision, self.policy)
    }
}

impl Snapshot {
    /// Route the request, then let the route's policy decide. Pure: this is what the proxy, `explain`
    /// and the tests all call.
    pub fn evaluate<'a>(&'a self, req: &RequestView<'a>) -> Evaluation<'a> {
        let Some(route) = self.routes.find(req.host, req.path) else {
            return Evaluation::NoRoute;
        };
        let policy = &self.policies[route.policy];
        // One walk over the request's headers for both rules.
        let found = req.cors_headers();
        Evaluation::Routed(Routed {
            route,
            policy,
            decision: decide(policy, &route.own_origins, req, &found),
            cross_site_report: cross_site_report(policy, req, &found),
            rate_limit: self.rate_limit(route),
        })
    }

    /// The rate limit a route refers to, if any.
    pub fn rate_limit(&self, route: &Route) -> Option<&RateLimitSettings> {
        self.rate_limits.get(route.rate_limit?)
    }

    /// The upstream a route forwards to.
    pub fn upstream(&self, route: &Route) -> &Upstream {
        &self.upstreams[route.upstream]
    }
}

/// `[server]`, with defaults applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerSettings {
    /// Data-plane listen addresses.
    pub listen: Vec<SocketAddr>,
    /// Admin listen address.
    pub admin: Option<SocketAddr>,
    /// TLS on the data listeners; paths already resolved against the config file's directory.
    pub tls: Option<TlsFiles>,
    /// How long a client may take to send a request head.
    pub header_read_timeout: Duration,
    /// Open connections at most; more wait for a free slot.
    pub max_connections: usize,
    /// Connections one client address may hold open at once; 0 = no per-client cap.
    pub max_connections_per_ip: usize,
    /// A keep-alive (HTTP/1.1) or h2 connection with no request in flight this long is closed.
    pub idle_timeout: Duration,
    /// Threads serving connections; 0 = the CPUs available to the process.
    pub worker_threads: usize,
    /// How long in-flight requests may run after SIGTERM.
    pub shutdown_grace: Duration,
    /// Reload when the file changes.
    pub watch_config: bool,
}

/// A certificate chain and key, as paths.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, RSA or EC).
    pub key: PathBuf,
}

/// `[log]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogSettings {
    /// Output format.
    pub format: LogFormat,
    /// Default level filter (RUST_LOG overrides).
    pub level: String,
    /// One access event per request.
    pub access_log: bool,
}

/// `log.format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object a line.
    Json,
}

/// `[rate_limits.NAME]`, validated. Equal settings across a reload keep the limit's buckets.
#[derive(Clone, Debug, PartialEq)]
pub struct RateLimitSettings {
    /// The table name.
    pub name: String,
    /// Sustained requests per second per key: a finite number above zero.
    pub requests_per_second: f64,
    /// Requests let through at once (the GCRA burst), at least 1.
    pub burst: u32,
    /// What a request's bucket is chosen by.
    pub key: RateLimitKey,
    /// Distinct keys held at most; beyond it new keys share one overflow bucket.
    pub max_keys: usize,
}

/// `key` (and `trusted_hops` for `"forwarded"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RateLimitKey {
    /// The TCP peer's IP address.
    Client,
    /// The `Origin` header's value; requests without one share one bucket.
    Origin,
    /// The address `trusted_hops` entries from the right of `X-Forwarded-For`; the TCP peer when
    /// the header has fewer entries or that entry is not an IP address.
    Forwarded {
        /// Proxies in front of corsgate that append to `X-Forwarded-For`, at least 1.
        trusted_hops: u32,
    },
}

impl RateLimitKey {
    /// The config value.
    pub fn as_str(self) -> &'static str {
        match self {
            RateLimitKey::Client => "client",
            RateLimitKey::Origin => "origin",
            RateLimitKey::Forwarded { .. } => "forwarded",
        }
    }
}

/// `[upstreams.NAME]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Upstream {
    /// The table name.
    pub name: String,
    /// `http` or `https`.
    pub scheme: http::uri::Scheme,
    /// host[:port] to connect to, and the Host header unless `preserve_host`.
    pub authority: http::uri::Authority,
    /// A path the upstream URL carried (no trailing slash; empty for none), prepended to forwarded paths.
    pub base_path: String,
    /// TCP connect timeout.
    pub connect_timeout: Duration,
    /// Time allowed for the whole response head.
    pub timeout: Duration,
    /// A private CA for an https upstream, resolved against the config's directory.
    pub ca_file: Option<PathBuf>,
    /// Keep the client's Host header.
    pub preserve_host: bool,
}
