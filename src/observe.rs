//! The proxy's one door to logs and metrics: `Observer`. The data path calls these methods; the
//! telemetry module behind them owns the formats, the registry and the rate limits.
//!
//! Hot-path rule: per-route metric handles are created when a snapshot is installed
//! (`Observer::route_handles`), so recording a request never takes a lock or allocates a label.
//! Log field names are documented in docs/observability.md and are part of the interface.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;
use tracing::Level;

use crate::policy::{DenialReason, Outcome};
use crate::snapshot::Snapshot;
use crate::telemetry::events::{self, Names};
use crate::telemetry::metrics::{Metrics, RouteSeries, UNMATCHED};
use crate::telemetry::{Admit, LogLimiter, DENIAL_TARGET, MISMATCH_TARGET, UPSTREAM_TARGET};

/// Denial (and mismatch, and upstream-error) log lines per second per route or upstream, before
/// the rest are counted and summarised in one line.
pub(crate) const DEFAULT_LOG_LINES_PER_SECOND: u32 = 10;

/// One finished request, as the access log and the metrics see it. Borrowed; nothing is formatted
/// unless a log line is actually written.
#[derive(Clone, Copy, Debug)]
pub struct AccessRecord<'a> {
    /// Request method.
    pub method: &'a str,
    /// Host header / authority.
    pub host: Option<&'a str>,
    /// Path only: never the query string, which can carry secrets.
    pub path: &'a str,
    /// Origin header as sent.
    pub origin: Option<&'a str>,
    /// What became of the request (the access log's `decision`, the `outcome` label).
    pub outcome: Outcome,
    /// For denials: the reason and the offending value.
    pub denial: Option<(DenialReason, &'a str)>,
    /// For `rate-limited`: the name of the `[rate_limits.NAME]` that refused it.
    pub rate_limit: Option<&'a str>,
    /// The enforcement mode that applied (`block`, `headers-only`, `report-only`).
    pub enforcement: Option<&'static str>,
    /// Final status sent to the client.
    pub status: u16,
    /// Time until the upstream's response head, if forwarded.
    pub upstream_latency: Option<Duration>,
    /// Total time in the proxy (until the response head was sent).
    pub total: Duration,
    /// Request body bytes received (as far as known).
    pub bytes_in: u64,
    /// Response body bytes sent (as far as known).
    pub bytes_out: u64,
}

/// What went wrong talking to an upstream (metric label `kind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UpstreamErrorKind {
    /// Could not connect (refused, unreachable, connect timeout).
    Connect,
    /// No response head within `timeout`.
    Timeout,
    /// The connection broke mid-exchange.
    Reset,
    /// TLS handshake or certificate failure.
    Tls,
}

impl UpstreamErrorKind {
    /// Every kind, in discriminant order (the per-upstream counter arrays).
    pub const ALL: [UpstreamErrorKind; 4] = [
        UpstreamErrorKind::Connect,
        UpstreamErrorKind::Timeout,
        UpstreamErrorKind::Reset,
        UpstreamErrorKind::Tls,
    ];

    /// Position in [`UpstreamErrorKind::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            UpstreamErrorKind::Connect => "connect",
            UpstreamErrorKind::Timeout => "timeout",
            UpstreamErrorKind::Reset => "reset",
            UpstreamErrorKind::Tls => "tls",
        }
    }
}

/// Per-snapshot metric handles, built at install time: one per route, one for requests without a
/// route, one per upstream. `Live::build` hands each to the route or upstream it belongs to.
#[derive(Debug)]
pub struct Handles {
    /// By route index.
    pub(crate) routes: Vec<RouteMetrics>,
    /// Requests that matched no route (or were rejected before routing).
    pub(crate) unmatched: RouteMetrics,
    /// By upstream index.
    pub(crate) upstreams: Vec<UpstreamMetrics>,
}

/// One route's metric series, log budgets and names (for log lines). `unmatched` has no names.
#[derive(Debug)]
pub struct RouteMetrics {
    name: Box<str>,
    /// `false` for `unmatched`: its log lines name no route, policy or upstream.
    routed: bool,
    policy: Option<Box<str>>,
    upstream: Option<Box<str>>,
    series: RouteSeries,
    limits: Arc<RouteLimits>,
}

impl RouteMetrics {
    fn names(&self) -> Names<'_> {
        if !self.routed {
            return Names::default();
        }
        Names {
            route: Some(&self.name),
            policy: self.policy.as_deref(),
            upstream: self.upstream.as_deref(),
        }
    }
}

/// Log budgets that outlive a reload (found again by route name), so a reload does not reset them.
#[derive(Debug)]
struct RouteLimits {
    denial: LogLimiter,
    mismatch: LogLimiter,
}

/// One upstream's error counters (by `UpstreamErrorKind::index`) and log budget.
#[derive(Debug)]
pub struct UpstreamMetrics {
    name: Box<str>,
    errors: [Counter; 4],
    limit: Arc<LogLimiter>,
}

/// Logs, metrics and readiness.
#[derive(Debug)]
pub struct Observer {
    metrics: Metrics,
    ready: AtomicBool,
    /// The time the rate limiters' one-second windows are counted on.
    clock: Box<dyn Clock>,
    lines_per_second: u32,
    /// Install-time only (never locked per request): budgets by route and upstream name.
    limits: Mutex<Budgets>,
}

#[derive(Debug, Default)]
struct Budgets {
    routes: HashMap<Box<str>, Arc<RouteLimits>>,
    upstreams: HashMap<Box<str>, Arc<LogLimiter>>,
}

impl Default for Observer {
    fn default() -> Observer {
        Observer::with_log_rate(DEFAULT_LOG_LINES_PER_SECOND)
    }
}

impl Observer {
    /// A fresh observer with an empty registry.
    pub fn new() -> Arc<Observer> {
        Arc::new(Observer::default())
    }

    /// An observer writing at most `lines_per_second` denial lines per route (likewise mismatch
    /// lines per route and upstream-error lines per upstream); 0 turns those lines off.
    pub fn with_log_rate(lines_per_second: u32) -> Observer {
        Observer::with_clock(lines_per_second, Monotonic(Instant::now()))
    }

    /// As [`Observer::with_log_rate`], with the log-rate windows counted on `clock` (tests drive
    /// time by hand, so a window boundary never depends on how fast the machine is).
    pub fn with_clock(lines_per_second: u32, clock: impl Clock + 'static) -> Observer {
        Observer {
            metrics: Metrics::new(),
            ready: AtomicBool::new(false),
            clock: Box::new(clock),
            lines_per_second,
            limits: Mutex::new(Budgets::default()),
        }
    }

    /// Build the handles for a snapshot about to be installed (startup and every reload).
    pub fn handles(&self, snapshot: &Snapshot) -> Handles {
        let mut budgets = self.limits.lock().unwrap_or_else(|p| p.into_inner());
        let mut kept = Budgets::default();
        let upstreams = snapshot
            .upstreams
            .iter()
            .map(|u| {
                let name: Box<str> = u.name.as_str().into();
                let limit = budgets
                    .upstreams
                    .remove(&name)
                    .unwrap_or_else(|| Arc::new(LogLimiter::new(self.lines_per_second)));
                kept.upstreams.insert(name.clone(), Arc::clone(&limit));
                UpstreamMetrics {
                    errors: self.metrics.upstream(&name),
                    name,
                    limit,
                }
            })
            .collect();
        let routes = snapshot
            .routes
            .iter()
            .map(|r| {
                let name: Box<str> = r.name.as_str().into();
                let limits = budgets.routes.remove(&name).unwrap_or_else(|| {
                    Arc::new(RouteLimits {
                        denial: LogLimiter::new(self.lines_per_second),
                        mismatch: LogLimiter::new(self.lines_per_second),
                    })
                });
                kept.routes.insert(name.clone(), Arc::clone(&limits));
                RouteMetrics {
                    routed: true,
                    series: self.metrics.route(&name),
                    policy: snapshot.policies.get(r.policy).map(|p| p.name().into()),
                    upstream: snapshot
                        .upstreams
                        .get(r.upstream)
                        .map(|u| u.name.as_str().into()),
                    name,
                    limits,
                }
            })
            .collect();
        // Budgets of routes that are gone are dropped, so renames do not accumulate.
        *budgets = kept;
        Handles {
            routes,
            unmatched: RouteMetrics {
                routed: false,
                name: UNMATCHED.into(),
                policy: None,
                upstream: None,
                series: self.metrics.unmatched(),
                limits: Arc::new(RouteLimits {
                    denial: LogLimiter::new(self.lines_per_second),
                    mismatch: LogLimiter::new(self.lines_per_second),
                }),
            },
            upstreams,
        }
    }

    /// One finished request on `route` (the route's metrics, or the unmatched ones): counts it,
    /// times it, and writes the access log (when `access_log`) and the denial log.
    pub fn request(&self, route: &RouteMetrics, access_log: bool, rec: &AccessRecord<'_>) {
        self.count(route, rec.outcome, rec.total);
        if let Some((reason, _)) = rec.denial {
            route.series.denials[reason.index()].inc();
        }
        let names = route.names();
        if access_log {
            events::access(names, rec);
        }
        if let Some(denial) = rec.denial {
            if tracing::enabled!(target: DENIAL_TARGET, Level::WARN) {
                if let Admit::Log { suppressed } = route.limits.denial.admit(self.now_sec()) {
                    events::denial(names, rec, denial, suppressed);
                }
            }
        }
    }

    /// One finished request that is neither denied nor access-logged: only counted and timed, so
    /// the caller need not build an [`AccessRecord`]. [`Observer::request`] counts the same way.
    pub fn count(&self, route: &RouteMetrics, outcome: Outcome, total: Duration) {
        route.series.outcomes[outcome.index()].inc();
        if outcome == Outcome::RateLimited {
            route.series.rate_limited.inc();
        }
        route.series.duration.observe(total);
    }

    /// An upstream failure, without the error at hand.
    pub fn upstream_error(&self, upstream: &UpstreamMetrics, kind: UpstreamErrorKind) {
        self.upstream_failure(upstream, kind, None);
    }

    /// An upstream failure with the error that caused it, written in the (rate-limited) WARN line
    /// as `error`. Prefer this over `upstream_error` where the error is at hand.
    pub fn upstream_failure(
        &self,
        entry: &UpstreamMetrics,
        kind: UpstreamErrorKind,
        error: Option<&dyn std::error::Error>,
    ) {
        entry.errors[kind.index()].inc();
        if !tracing::enabled!(target: UPSTREAM_TARGET, Level::WARN) {
            return;
        }
        if let Admit::Log { suppressed } = entry.limit.admit(self.now_sec()) {
            events::upstream_error(&entry.name, kind, error, suppressed);
        }
    }

    /// report-only: the upstream's own CORS headers disagree with what corsgate would have sent.
    pub fn mismatch(&self, entry: &RouteMetrics, detail: &str) {
        entry.series.mismatch.inc();
        if !tracing::enabled!(target: MISMATCH_TARGET, Level::WARN) {
            return;
        }
        if let Admit::Log { suppressed } = entry.limits.mismatch.admit(self.now_sec()) {
            events::mismatch(entry.names(), detail, suppressed);
        }
    }

    /// `fetch_metadata` reporting: a cross-site request the rules would refuse was forwarded.
    pub fn cross_site_report(&self, entry: &RouteMetrics, detail: &str) {
        entry.series.cross_site_report.inc();
        if !tracing::enabled!(target: DENIAL_TARGET, Level::WARN) {
            return;
        }
        if let Admit::Log { suppressed } = entry.limits.denial.admit(self.now_sec()) {
            events::cross_site_report(entry.names(), detail, suppressed);
        }
    }

    /// A config reload finished (`ok` = applied).
    pub fn reload(&self, ok: bool) {
        self.metrics.reload(ok);
    }

    /// A client connection opened; the guard counts it closed when dropped.
    pub fn connection(self: &Arc<Self>) -> ConnectionGuard {
        self.metrics.active_connections.inc();
        ConnectionGuard {
            observer: Arc::clone(self),
        }
    }

    /// Ready = listening with a valid policy and not draining.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Release);
    }

    /// What `/readyz` answers.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// The `/metrics` body, OpenMetrics text (`telemetry::OPENMETRICS_CONTENT_TYPE`).
    pub fn encode_metrics(&self) -> Result<String, std::fmt::Error> {
        self.metrics.encode()
    }

    fn now_sec(&self) -> u64 {
        self.clock.elapsed().as_secs()
    }
}

// === impl Clock ===

/// Where the observer reads the time for its log-rate windows.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Time since the clock's start; never goes backwards.
    fn elapsed(&self) -> Duration;
}

/// The default clock: monotonic time since the observer was built.
#[derive(Debug)]
struct Monotonic(Instant);

impl Clock for Monotonic {
    fn elapsed(&self) -> Duration {
        self.0.elapsed()
    }
}

/// Decrements the active-connection gauge on drop.
#[derive(Debug)]
pub struct ConnectionGuard {
    observer: Arc<Observer>,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.observer.metrics.active_connections.dec();
    }
}
