//! The proxy's one door to logs and metrics: `Observer`. The data path calls these methods; the
//! telemetry module behind them owns the formats, the registry and the rate limits.
//!
//! Hot-path rule: per-route metric handles are created when a snapshot is installed
//! (`Observer::route_handles`), so recording a request never takes a lock or allocates a label.

use std::sync::Arc;
use std::time::Duration;

use crate::policy::DenialReason;
use crate::snapshot::Snapshot;

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
    /// Index of the matched route in the snapshot, `None` for no route.
    pub route: Option<usize>,
    /// Decision kind: not-cors, same-origin, preflight-allowed, preflight-denied, allowed, denied,
    /// no-route.
    pub decision: &'static str,
    /// For denials: the reason and the offending value.
    pub denial: Option<(DenialReason, &'a str)>,
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

/// Per-snapshot handles (one entry per route and per upstream), built at install time.
#[derive(Debug, Default)]
pub struct RouteHandles {
    _private: (),
}

/// Logs, metrics and readiness.
#[derive(Debug, Default)]
pub struct Observer {
    _private: (),
}

impl Observer {
    /// A fresh observer with an empty registry.
    pub fn new() -> Arc<Observer> {
        Arc::new(Observer::default())
    }

    /// Build the handles for a snapshot about to be installed (startup and every reload).
    pub fn route_handles(&self, snapshot: &Snapshot) -> RouteHandles {
        let _ = snapshot;
        RouteHandles::default()
    }

    /// One finished request: counts it, times it, and writes the access and denial logs.
    pub fn request(&self, handles: &RouteHandles, snapshot: &Snapshot, rec: &AccessRecord<'_>) {
        let _ = (handles, snapshot, rec);
    }

    /// An upstream failure, by upstream index.
    pub fn upstream_error(&self, handles: &RouteHandles, upstream: usize, kind: UpstreamErrorKind) {
        let _ = (handles, upstream, kind);
    }

    /// report-only: the upstream's own CORS headers disagree with what corsgate would have sent.
    pub fn mismatch(&self, handles: &RouteHandles, route: usize, detail: &str) {
        let _ = (handles, route, detail);
    }

    /// A config reload finished (`ok` = applied).
    pub fn reload(&self, ok: bool) {
        let _ = ok;
    }

    /// A client connection opened; the guard counts it closed when dropped.
    pub fn connection(self: &Arc<Self>) -> ConnectionGuard {
        ConnectionGuard {
            _observer: Arc::clone(self),
        }
    }

    /// Ready = listening with a valid policy and not draining.
    pub fn set_ready(&self, ready: bool) {
        let _ = ready;
    }
}

/// Decrements the active-connection gauge on drop.
#[derive(Debug)]
pub struct ConnectionGuard {
    _observer: Arc<Observer>,
}
