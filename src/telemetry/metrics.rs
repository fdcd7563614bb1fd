//! The Prometheus registry: every metric family corsgate exports (docs/observability.md), registered
//! once, and the per-route / per-upstream series that `Observer::handles` pre-creates at install
//! time.
//!
//! prometheus-client appends `_total` to counter names when encoding, so the counters are registered
//! without it (`corsgate_requests` is exposed as `corsgate_requests_total`).

use std::fmt::Write as _;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::histogram::{AtomicHistogram, LATENCY_BUCKETS};
use crate::observe::UpstreamErrorKind;
use crate::policy::{DenialReason, Outcome};

/// The `Content-Type` of [`Metrics::encode`]'s output (OpenMetrics text, which Prometheus scrapes).
pub(crate) const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The `route` label of requests that matched no route.
pub(crate) const UNMATCHED: &str = "unmatched";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteOutcome {
    route: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteReason {
    route: String,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UpstreamKind {
    upstream: String,
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabel {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

type HistogramFamily = Family<RouteLabel, AtomicHistogram, fn() -> AtomicHistogram>;

/// The registry and its families. Built once; afterwards only series are added (at install time).
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    requests: Family<RouteOutcome, Counter>,
    denials: Family<RouteReason, Counter>,
    upstream_errors: Family<UpstreamKind, Counter>,
    mismatches: Family<RouteLabel, Counter>,
    cross_site_reports: Family<RouteLabel, Counter>,
    rate_limited: Family<RouteLabel, Counter>,
    duration: HistogramFamily,
    reloads: [Counter; 2],
    pub(crate) active_connections: Gauge,
}

/// One route's series, cloned out of the families so that recording is an atomic add.
#[derive(Clone, Debug)]
pub(crate) struct RouteSeries {
    /// By `Outcome::index`.
    pub(crate) outcomes: [Counter; Outcome::ALL.len()],
    /// By `DenialReason::ALL` index.
    pub(crate) denials: [Counter; DenialReason::ALL.len()],
    pub(crate) mismatch: Counter,
    /// `fetch_metadata = "report"`: cross-site requests that enforce would refuse.
    pub(crate) cross_site_report: Counter,
    /// Requests refused with 429 by the route's rate limit.
    pub(crate) rate_limited: Counter,
    pub(crate) duration: AtomicHistogram,
}

fn new_histogram() -> AtomicHistogram {
    AtomicHistogram::new(LATENCY_BUCKETS)
}

impl Metrics {
    /// Register every family corsgate exports.
    pub(crate) fn new() -> Metrics {
        let mut registry = Registry::default();
        let requests = Family::<RouteOutcome, Counter>::default();
        let denials = Family::<RouteReason, Counter>::default();
        let upstream_errors = Family::<UpstreamKind, Counter>::default();
        let mismatches = Family::<RouteLabel, Counter>::default();
        let cross_site_reports = Family::<RouteLabel, Counter>::default();
        let rate_limited = Family::<RouteLabel, Counter>::default();
        let duration: HistogramFamily = Family::new_with_constructor(new_histogram);
        let reload_family = Family::<ResultLabel, Counter>::default();
        let active_connections = Gauge::default();
        // prometheus-client ends every HELP text with a period itself, so ours have none.
        registry.register(
            "corsgate_requests",
            "Requests by route and CORS outcome (the decision kind)",
            requests.clone(),
        );
        registry.register(
            "corsgate_cors_denials",
            "CORS denials by route and reason (counted in report-only mode too)",
            denials.clone(),
        );
        registry.register(
            "corsgate_upstream_errors",
            "Failed upstream exchanges by upstream and kind (connect, timeout, reset, tls)",
            upstream_errors.clone(),
        );
        registry.register(
            "corsgate_cors_upstream_mismatch",
            "report-only: responses whose upstream CORS headers disagree with the policy",
            mismatches.clone(),
        );
        registry.register(
            "corsgate_cross_site_reports",
            "fetch_metadata report: cross-site requests enforce would refuse, forwarded, by route",
            cross_site_reports.clone(),
        );
        registry.register(
            "corsgate_rate_limited",
            "Requests refused with 429 by the route's rate limit, by route",
            rate_limited.clone(),
        );
        registry.register(
            "corsgate_request_duration_seconds",
            "Time from request head to response head in the proxy, by route",
            duration.clone(),
        );
        registry.register(
            "corsgate_config_reloads",
            "Config reloads by result (success, failure)",
            reload_family.clone(),
        );
        registry.register(
            "corsgate_active_connections",
            "Open client connections on the data listeners",
            active_connections.clone(),
        );
        // Both results exist from the start, so `increase(...{result="failure"}[5m])` has a series.
        let reloads = ["success", "failure"]
            .map(|result| reload_family.get_or_create(&ResultLabel { result }).clone());
        Metrics {
            registry,
            requests,
            denials,
            upstream_errors,
            mismatches,
            cross_site_reports,
            rate_limited,
            duration,
            reloads,
            active_connections,
        }
    }

    /// Create (or find again, after a reload) every series of the route named `name`.
    pub(crate) fn route(&self, name: &str) -> RouteSeries {
        let route = escape_label_value(name);
        RouteSeries {
            // A routed request is never `rejected` (that happens before routing): its counter is
            // detached, so no zero series is exposed for it.
            outcomes: Outcome::ALL.map(|outcome| match outcome {
                Outcome::Rejected => Counter::default(),
                _ => {
                    let labels = RouteOutcome {
                        route: route.clone(),
                        outcome: outcome.as_str(),
                    };
                    self.requests.get_or_create(&labels).clone()
                }
            }),
            denials: DenialReason::ALL.map(|reason| {
                let labels = RouteReason {
                    route: route.clone(),
                    reason: reason.as_str(),
                };
                self.denials.get_or_create(&labels).clone()
            }),
            mismatch: self
                .mismatches
                .get_or_create(&RouteLabel {
                    route: route.clone(),
                })
                .clone(),
            cross_site_report: self
                .cross_site_reports
                .get_or_create(&RouteLabel {
                    route: route.clone(),
                })
                .clone(),
            rate_limited: self
                .rate_limited
                .get_or_create(&RouteLabel {
                    route: route.clone(),
                })
                .clone(),
            duration: self.duration.get_or_create(&RouteLabel { route }).clone(),
        }
    }

    /// The series of requests with no route: only the `no-route` and `rejected` outcomes and the
    /// duration are exposed. The other counters are detached, so an impossible combination (an
    /// `allowed` request without a route) adds no misleading zero series.
    pub(crate) fn unmatched(&self) -> RouteSeries {
        let route = UNMATCHED.to_owned();
        let outcomes = Outcome::ALL.map(|outcome| match outcome {
            Outcome::NoRoute | Outcome::Rejected => self
                .requests
                .get_or_create(&RouteOutcome {
                    route: route.clone(),
                    outcome: outcome.as_str(),
                })
                .clone(),
            _ => Counter::default(),
        });
        RouteSeries {
            outcomes,
            denials: Default::default(),
            mismatch: Counter::default(),
            cross_site_report: Counter::default(),
            rate_limited: Counter::default(),
            duration: self.duration.get_or_create(&RouteLabel { route }).clone(),
        }
    }

    /// The error counters of the upstream named `name`, by `UpstreamErrorKind::index`.
    pub(crate) fn upstream(&self, name: &str) -> [Counter; 4] {
        let upstream = escape_label_value(name);
        UpstreamErrorKind::ALL.map(|kind| {
            let labels = UpstreamKind {
                upstream: upstream.clone(),
                kind: kind.as_str(),
            };
            self.upstream_errors.get_or_create(&labels).clone()
        })
    }

    /// Count a reload.
    pub(crate) fn reload(&self, ok: bool) {
        self.reloads[usize::from(!ok)].inc();
    }

    /// The OpenMetrics text exposition of every family.
    pub(crate) fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::with_capacity(4096);
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

/// prometheus-client writes label values verbatim; route and upstream names come from the config
/// and may contain `"`, `\` or a newline, which would break the exposition. Escape them once here
/// as the text format requires (backslash, double quote, line feed).
fn escape_label_value(v: &str) -> String {
    if !v.contains(['\\', '"', '\n']) {
        return v.to_owned();
    }
    let mut out = String::with_capacity(v.len() + 8);
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => {
                let _ = out.write_char(c);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_from_the_config_are_escaped() {
        assert_eq!(escape_label_value("api"), "api");
        assert_eq!(escape_label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        let m = Metrics::new();
        m.route("we\"ird").outcomes[0].inc();
        let text = m.encode().unwrap();
        assert!(
            text.contains("corsgate_requests_total{route=\"we\\\"ird\",outcome=\"not-cors\"} 1\n"),
            "{text}"
        );
    }

    #[test]
    fn a_route_installed_twice_keeps_counting_on_the_same_series() {
        let m = Metrics::new();
        m.route("api").outcomes[4].inc();
        m.route("api").outcomes[4].inc();
        let text = m.encode().unwrap();
        assert!(
            text.contains("corsgate_requests_total{route=\"api\",outcome=\"allowed\"} 2\n"),
            "{text}"
        );
    }

    #[test]
    fn unmatched_exposes_only_the_no_route_outcome() {
        let m = Metrics::new();
        let u = m.unmatched();
        u.outcomes[4].inc();
        let text = m.encode().unwrap();
        assert!(
            text.contains("corsgate_requests_total{route=\"unmatched\",outcome=\"no-route\"} 0\n")
        );
        assert!(
            !text.contains("route=\"unmatched\",outcome=\"allowed\""),
            "{text}"
        );
    }
}
