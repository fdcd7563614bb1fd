//! corsgate's explanation for the demo page: evaluate a described request against the demo snapshot
//! with the same engine as the proxy, and render it in the `corsgate explain --json` shape:
//! `{decision, route, policy, reason, status, headers}`.

use http::header::{HeaderMap, HeaderName, HeaderValue, ORIGIN};
use http::Method;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::policy::{Decision, Enforcement, OriginRule, RequestView, Scheme, ACRH, ACRM};
use crate::snapshot::Snapshot;

/// The request the page asks about (POSTed as JSON to `/explain`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExplainQuery {
    /// The `Origin` the browser sends (the page's own origin), if any.
    pub origin: Option<String>,
    /// The method (for a preflight: the method it asks about).
    pub method: String,
    /// The path on the proxy.
    pub path: String,
    /// Header names the request carries (for a preflight: the ones it asks about).
    #[serde(default)]
    pub headers: Vec<String>,
    /// Evaluate the preflight instead of the request itself.
    #[serde(default)]
    pub preflight: bool,
}

/// Why a query cannot be evaluated.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ExplainError {
    /// Not an HTTP method token.
    #[error("invalid method {0:?}")]
    Method(String),
    /// A value that cannot be a header.
    #[error("invalid header {0:?}")]
    Header(String),
}

/// Evaluate `q` as a request to `host` (the proxy's authority) and render the decision.
pub(crate) fn explain(
    snapshot: &Snapshot,
    host: &str,
    q: &ExplainQuery,
) -> Result<Value, ExplainError> {
    let asked = Method::from_bytes(q.method.as_bytes())
        .map_err(|_| ExplainError::Method(q.method.clone()))?;
    let mut headers = HeaderMap::new();
    if let Some(o) = &q.origin {
        headers.insert(ORIGIN, value(o)?);
    }
    let method = if q.preflight {
        headers.insert(&ACRM, value(&q.method)?);
        if !q.headers.is_empty() {
            headers.insert(&ACRH, value(&q.headers.join(", "))?);
        }
        Method::OPTIONS
    } else {
        for name in &q.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| ExplainError::Header(name.clone()))?;
            headers.insert(name, HeaderValue::from_static("x"));
        }
        asked
    };
    let view = RequestView {
        method: &method,
        scheme: Scheme::Http,
        host: Some(host),
        path: &q.path,
        headers: &headers,
    };
    let eval = snapshot.evaluate(&view);
    let enforcement = eval.policy.map(|p| p.enforcement());
    let report_only = enforcement == Some(Enforcement::ReportOnly);
    let status = match eval.decision {
        Decision::PreflightAllowed { .. } if !report_only => {
            eval.policy.map(|p| p.preflight_status().as_u16())
        }
        Decision::PreflightDenied(_) | Decision::Denied(_)
            if enforcement == Some(Enforcement::Block) =>
        {
            Some(403)
        }
        Decision::NoRoute => Some(404),
        _ => None,
    };
    let mut added = HeaderMap::new();
    if !report_only {
        eval.decision.apply(&mut added);
    }
    let mut out = Map::new();
    for (k, v) in &added {
        out.insert(k.to_string(), Value::from(v.to_str().unwrap_or("")));
    }
    let mut reason = reason(&eval.decision, &q.method);
    if let Some(e) = enforcement.filter(|e| *e != Enforcement::Block) {
        reason.push_str(&format!(
            " (enforcement {}: nothing is blocked by corsgate)",
            e.as_str()
        ));
    }
    Ok(json!({
        "decision": eval.decision.kind(),
        "route": eval.route.map(|r| r.name.as_str()),
        "policy": eval.policy.map(|p| p.name()),
        "reason": reason,
        "status": status,
        "headers": out,
    }))
}

fn value(s: &str) -> Result<HeaderValue, ExplainError> {
    HeaderValue::from_str(s).map_err(|_| ExplainError::Header(s.to_owned()))
}

fn reason(d: &Decision<'_>, method: &str) -> String {
    match d {
        Decision::NotCors { .. } => "no Origin header: not a CORS request".into(),
        Decision::SameOrigin { .. } => "the Origin is the request's own origin: not cross-origin".into(),
        Decision::PreflightAllowed { rule, .. } => format!(
            "preflight allowed: the origin matches {}, and {method} and every requested header are allowed",
            rule_text(rule)
        ),
        Decision::Allowed { rule, .. } => format!("the origin matches {}", rule_text(rule)),
        Decision::PreflightDenied(x) | Decision::Denied(x) => {
            format!("{}: {}", x.reason.as_str(), x.detail)
        }
        Decision::NoRoute => "no route matches this host and path".into(),
    }
}

fn rule_text(rule: &OriginRule<'_>) -> String {
    match rule {
        OriginRule::Any => "\"*\"".into(),
        OriginRule::Exact => "an exact allowed_origins entry".into(),
        OriginRule::Null => "the explicit \"null\" entry".into(),
        OriginRule::Pattern(p) => format!("the pattern {p}"),
        OriginRule::Regex(r) => format!("the regex {r}"),
    }
}
