//! `check` and `explain`: rendering compiled configs and decisions for people and as JSON. Pure string
//! building over `Snapshot::evaluate`, the same engine the proxy runs.

use crate::authority::Authority;
use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use http::header::{HeaderMap, HeaderName, HeaderValue, ORIGIN};
use http::{Method, StatusCode};
use serde_json::{json, Map, Value};

use crate::cli::ExplainArgs;
use crate::config;
use crate::policy::{
    Decision, DenialReason, Enforcement, OriginRule, RequestView, Scheme, ACRH, ACRM, ACRPN,
    SEC_FETCH_DEST, SEC_FETCH_MODE, SEC_FETCH_SITE,
};
use crate::snapshot::{Evaluation, Snapshot};

/// `corsgate check`: summary on stdout and exit 0, or every error on stderr and exit 1.
pub fn check_command(path: &Path) -> ExitCode {
    match config::load(path) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                eprintln!("{w}");
            }
            print!("{}", summary(&loaded.snapshot));
            ExitCode::SUCCESS
        }
        Err(e) => {
            let errors = e.errors();
            for line in e.warnings().iter().chain(&errors) {
                eprintln!("{line}");
            }
            eprintln!(
                "{}: {} error(s); config rejected",
                path.display(),
                errors.len()
            );
            ExitCode::FAILURE
        }
    }
}

/// The `check` summary: routes, upstreams, policies with their origin counts.
pub(crate) fn summary(s: &Snapshot) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}: OK", s.source.display());
    let listen: Vec<String> = s.server.listen.iter().map(ToString::to_string).collect();
    let scheme = if s.server.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let _ = writeln!(out, "listen: {} ({scheme})", listen.join(", "));
    if let Some(a) = s.server.admin {
        let _ = writeln!(out, "admin: {a}");
    }
    let _ = writeln!(out, "routes ({}):", s.routes.len());
    for r in s.routes.iter() {
        let host = r.host.as_ref().map_or("*".to_owned(), ToString::to_string);
        let _ = writeln!(
            out,
            "  {:<20} host {host} prefix {}{} -> upstream {}, policy {}{}",
            r.name,
            r.path_prefix,
            if r.strip_prefix { " (stripped)" } else { "" },
            s.upstreams[r.upstream].name,
            s.policies[r.policy].name(),
            s.rate_limit(r)
                .map_or(String::new(), |l| format!(", rate limit {}", l.name))
        );
    }
    let _ = writeln!(out, "upstreams ({}):", s.upstreams.len());
    for u in &s.upstreams {
        let _ = writeln!(
            out,
            "  {:<20} {}://{}{} (connect {:?}, timeout {:?})",
            u.name, u.scheme, u.authority, u.base_path, u.connect_timeout, u.timeout
        );
    }
    let _ = writeln!(out, "policies ({}):", s.policies.len());
    for p in &s.policies {
        let spec = p.spec();
        let (exact, patterns, regexes) = spec.origins.counts();
        let any = if spec.origins.allows_any() {
            ", any origin"
        } else {
            ""
        };
        let null = if spec.origins.allows_null() {
            ", null"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "  {:<20} {exact} exact origin(s), {patterns} pattern(s), {regexes} regex(es){any}{null}; credentials {}; {}",
            p.name(),
            spec.allow_credentials,
            p.enforcement().as_str()
        );
    }
    if !s.rate_limits.is_empty() {
        let _ = writeln!(out, "rate limits ({}):", s.rate_limits.len());
    }
    for l in &s.rate_limits {
        let hops = match l.key {
            crate::snapshot::RateLimitKey::Forwarded { trusted_hops } => {
                format!(" (trusted_hops {trusted_hops})")
            }
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "  {:<20} {} requests/s, burst {} per {}{hops}; max_keys {} (per process)",
            l.name,
            l.requests_per_second,
            l.burst,
            l.key.as_str(),
            l.max_keys
        );
    }
    out
}

/// `corsgate explain`.
pub fn explain_command(path: &Path, args: &ExplainArgs) -> ExitCode {
    let loaded = match config::load(path) {
        Ok(l) => l,
        Err(e) => {
            for line in e.errors() {
                eprintln!("{line}");
            }
            return ExitCode::FAILURE;
        }
    };
    let request = match ExplainRequest::new(args, loaded.snapshot.server.tls.is_some()) {
        Ok(r) => r,
        Err(msg) => {
            eprintln!("corsgate explain: {msg}");
            return ExitCode::from(2);
        }
    };
    let view = request.view();
    let eval = loaded.snapshot.evaluate(&view);
    if args.json {
        println!("{}", explain_json(&eval, &view));
    } else {
        print!("{}", explain_text(&eval, &view));
    }
    ExitCode::SUCCESS
}

/// An owned request built from `explain`'s flags.
#[derive(Debug)]
pub(crate) struct ExplainRequest {
    method: Method,
    scheme: Scheme,
    host: Option<String>,
    path: String,
    headers: HeaderMap,
}

impl ExplainRequest {
    /// Build the request `explain` (and the demo) evaluates.
    pub(crate) fn new(args: &ExplainArgs, tls: bool) -> Result<Self, String> {
        let bad = |what: &str, v: &str| format!("invalid {what} {v:?}");
        let mut headers = HeaderMap::new();
        if let Some(o) = &args.origin {
            headers.insert(
                ORIGIN,
                HeaderValue::from_str(o).map_err(|_| bad("origin", o))?,
            );
        }
        for (name, value) in [
            (&SEC_FETCH_SITE, &args.sec_fetch_site),
            (&SEC_FETCH_MODE, &args.sec_fetch_mode),
            (&SEC_FETCH_DEST, &args.sec_fetch_dest),
        ] {
            if let Some(v) = value {
                let v = HeaderValue::from_str(v).map_err(|_| bad(name.as_str(), v))?;
                headers.insert(name.clone(), v);
            }
        }
        let method = if args.preflight {
            let m = HeaderValue::from_str(&args.method).map_err(|_| bad("method", &args.method))?;
            headers.insert(&ACRM, m);
            let names: Vec<&str> = args
                .headers
                .iter()
                .map(|h| h.split(':').next().unwrap_or(h).trim())
                .collect();
            if !names.is_empty() {
                let v = HeaderValue::from_str(&names.join(", "))
                    .map_err(|_| bad("header", &names.join(",")))?;
                headers.insert(&ACRH, v);
            }
            if args.private_network {
                headers.insert(&ACRPN, HeaderValue::from_static("true"));
            }
            Method::OPTIONS
        } else {
            for h in &args.headers {
                let (n, v) = h.split_once(':').unwrap_or((h, ""));
                let name =
                    HeaderName::from_bytes(n.trim().as_bytes()).map_err(|_| bad("header", n))?;
                let value = HeaderValue::from_str(v.trim()).map_err(|_| bad("header value", v))?;
                headers.append(name, value);
            }
            Method::from_bytes(args.method.as_bytes()).map_err(|_| bad("method", &args.method))?
        };
        let path = args.path.split(['?', '#']).next().unwrap_or("/");
        // The proxy routes on the normalised path; so does explain.
        let path = if path.starts_with('/') {
            crate::routes::normalize_path(path).into_owned()
        } else {
            path.to_owned()
        };
        Ok(Self {
            method,
            scheme: if args.https || tls {
                Scheme::Https
            } else {
                Scheme::Http
            },
            host: match &args.host {
                Some(h) if Authority::parse(h).is_err() => return Err(bad("host", h)),
                h => h.clone(),
            },
            path,
            headers,
        })
    }

    /// Borrow it as the policy engine's view.
    pub(crate) fn view(&self) -> RequestView<'_> {
        RequestView {
            method: &self.method,
            scheme: self.scheme,
            host: self.host.as_deref().and_then(|h| Authority::parse(h).ok()),
            path: &self.path,
            headers: &self.headers,
        }
    }
}

/// The status the proxy itself answers with (`None` = forwarded to the upstream). The proxy's own
/// plan decides it, so `explain` cannot drift from what `run` does.
pub(crate) fn local_status(eval: &Evaluation<'_>) -> Option<StatusCode> {
    use crate::policy::Plan;
    let routed = match eval {
        Evaluation::Rejected(_) => return Some(StatusCode::BAD_REQUEST),
        Evaluation::NoRoute => return Some(StatusCode::NOT_FOUND),
        Evaluation::RateLimited(..) => return Some(StatusCode::TOO_MANY_REQUESTS),
        Evaluation::Routed(routed) => routed,
    };
    match routed.plan() {
        Plan::Preflight(status) => Some(status),
        Plan::Deny(_) => Some(StatusCode::FORBIDDEN),
        Plan::Forward(_) => None,
    }
}

/// The headers corsgate adds to the response (report-only adds none).
pub(crate) fn response_headers(eval: &Evaluation<'_>) -> HeaderMap {
    let mut h = HeaderMap::new();
    // The proxy's own plan and header writer, applied to an empty response.
    match eval {
        Evaluation::Routed(routed) => {
            crate::policy::write_cors_headers(routed.plan(), &routed.decision, &mut h);
        }
        Evaluation::RateLimited(routed, _) => {
            crate::policy::write_refusal_headers(&routed.decision, &mut h);
        }
        Evaluation::Rejected(_) | Evaluation::NoRoute => {}
    }
    h
}

/// Why the decision was made, in one sentence that names the rule.
pub(crate) fn reason(eval: &Evaluation<'_>, view: &RequestView<'_>) -> String {
    let origin = view
        .headers
        .get(ORIGIN)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let rule = |r: &OriginRule<'_>| match r {
        OriginRule::Any => "allowed_origins contains \"*\"".to_owned(),
        OriginRule::Exact => format!("{origin} is listed in allowed_origins"),
        OriginRule::Null => "\"null\" is listed in allowed_origins".to_owned(),
        OriginRule::Pattern(p) => format!("{origin} matches the pattern {p}"),
        OriginRule::Regex(r) => format!("{origin} matches the regex {r}"),
    };
    let routed = match eval {
        Evaluation::Rejected(r) => return format!("refused before evaluation: {r:?}"),
        Evaluation::NoRoute => {
            return format!(
                "no route matches host {} and path {}",
                view.host.map_or("(none)", |a| a.as_str()),
                view.path
            )
        }
        Evaluation::Routed(routed) => routed,
        Evaluation::RateLimited(routed, limited) => {
            return format!(
                "over the rate limit {}: retry after {} s",
                routed.rate_limit.map_or("", |l| l.name.as_str()),
                limited.retry_after_secs
            )
        }
    };
    let mut s = match &routed.decision {
        Decision::NotCors { .. } => {
            "no Origin header: not a CORS request, forwarded untouched".to_owned()
        }
        Decision::SameOrigin { .. } => {
            format!("{origin} is the request's own origin: forwarded untouched")
        }
        Decision::PreflightAllowed { rule: r, .. } => {
            let method = view
                .request_method()
                .and_then(|m| m.to_str().ok())
                .unwrap_or("");
            format!(
                "{}; method {method} and the requested headers are allowed",
                rule(r)
            )
        }
        Decision::Allowed { rule: r, .. } => {
            format!("{}; method {} is allowed", rule(r), view.method)
        }
        Decision::Denied(d) if d.reason == DenialReason::CrossSiteRequest => format!(
            "{}: Sec-Fetch-Site {}, and neither Sec-Fetch-Mode cors nor an allowed navigation",
            d.reason, d.detail
        ),
        Decision::PreflightDenied(d) | Decision::Denied(d) => format!("{}: {}", d.reason, d.detail),
    };
    if let Some(site) = routed.cross_site_report {
        let _ = write!(
            s,
            "; reported as a cross-site request (Sec-Fetch-Site {site}, fetch_metadata report)"
        );
    }
    let mode = routed.policy.enforcement();
    if mode != Enforcement::Block {
        let _ = write!(s, " ({} mode)", mode.as_str());
    }
    s
}

/// The `explain --json` object (its shape is the CLI contract: tests/it/cli.rs pins it).
pub(crate) fn explain_json(eval: &Evaluation<'_>, view: &RequestView<'_>) -> Value {
    let mut headers = Map::new();
    let h = response_headers(eval);
    for name in h.keys() {
        let values: Vec<&str> = h
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        headers.insert(name.as_str().to_owned(), Value::String(values.join(", ")));
    }
    json!({
        "decision": eval.outcome().as_str(),
        "route": eval.routed().map(|r| r.route.name.as_str()),
        "policy": eval.routed().map(|r| r.policy.name()),
        "rate_limit": eval.routed().and_then(|r| r.rate_limit).map(|l| l.name.as_str()),
        "reason": reason(eval, view),
        "status": local_status(eval).map(|s| s.as_u16()),
        "headers": headers,
    })
}

/// The human-readable `explain` output.
pub(crate) fn explain_text(eval: &Evaluation<'_>, view: &RequestView<'_>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "decision: {}", eval.outcome().as_str());
    match eval.routed().map(|r| r.route) {
        Some(r) => {
            let host = r.host.as_ref().map_or("*".to_owned(), ToString::to_string);
            let _ = writeln!(
                out,
                "route:    {} (host {host}, path_prefix {})",
                r.name, r.path_prefix
            );
        }
        None => {
            let _ = writeln!(out, "route:    (none)");
        }
    }
    if let Some(p) = eval.routed().map(|r| r.policy) {
        let _ = writeln!(
            out,
            "policy:   {} (enforcement {})",
            p.name(),
            p.enforcement().as_str()
        );
    }
    if let Some(l) = eval.routed().and_then(|r| r.rate_limit) {
        // explain holds no buckets: it names the limit, it cannot say whether a request is over it.
        let _ = writeln!(
            out,
            "limit:    {} ({} requests/s per {}, burst {}; counted at run time, not by explain)",
            l.name,
            l.requests_per_second,
            l.key.as_str(),
            l.burst
        );
    }
    let _ = writeln!(out, "reason:   {}", reason(eval, view));
    let status = local_status(eval).map_or("forwarded to the upstream".to_owned(), |s| {
        format!("{} (answered by corsgate)", s.as_u16())
    });
    let _ = writeln!(out, "status:   {status}");
    let h = response_headers(eval);
    if h.is_empty() {
        let _ = writeln!(out, "headers:  (none added)");
    } else {
        let _ = writeln!(out, "headers:");
        for (name, value) in &h {
            let _ = writeln!(out, "  {}: {}", name, value.to_str().unwrap_or("<binary>"));
        }
    }
    out
}
