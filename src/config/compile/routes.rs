//! `[[routes]]`: references to upstreams, policies and rate limits resolved by name, host patterns,
//! path prefixes, unique names; and the warnings for upstreams, policies and rate limits no route
//! uses.

use std::collections::{BTreeSet, HashMap};

use toml::Spanned;

use super::entry;
use crate::config::diagnostic::Diagnostics;
use crate::config::raw::{Entry, Lenient, RawConfig, RawRoute};
use crate::policy::Origin;
use crate::routes::{HostPattern, Route, RouteTable};

pub(super) struct Known<'r> {
    pub(super) upstreams: Vec<&'r str>,
    pub(super) policies: Vec<&'r str>,
    pub(super) rate_limits: Vec<&'r str>,
    pub(super) upstream_index: HashMap<&'r str, usize>,
    pub(super) policy_index: HashMap<&'r str, usize>,
    pub(super) rate_limit_index: HashMap<&'r str, usize>,
}

fn reference(
    v: &Spanned<String>,
    kind: &str,
    all: &[&str],
    index: &HashMap<&str, usize>,
    d: &mut Diagnostics<'_>,
) -> Option<usize> {
    let name = v.get_ref().as_str();
    if let Some(&i) = index.get(name) {
        return Some(i);
    }
    if !all.contains(&name) {
        let known = if all.is_empty() {
            "none are defined".to_owned()
        } else {
            format!("defined: {}", all.join(", "))
        };
        d.error(v.span(), format!("unknown {kind} {name:?} ({known})"));
    }
    None
}

pub(super) fn compile_routes(
    raw: &[Entry<RawRoute>],
    known: &Known<'_>,
    d: &mut Diagnostics<'_>,
) -> Option<RouteTable> {
    let mut table = RouteTable::default();
    let mut names: BTreeSet<String> = BTreeSet::new();
    let mut ok = true;
    if raw.is_empty() {
        d.warn(0..0, "no [[routes]]: every request will get 404");
    }
    for e in raw {
        let Some((r, span)) = entry(Some(e), d) else {
            ok = false;
            continue;
        };
        let errors = d.error_count();
        let upstream = reference(
            &r.upstream,
            "upstream",
            &known.upstreams,
            &known.upstream_index,
            d,
        );
        let policy = reference(&r.policy, "policy", &known.policies, &known.policy_index, d);
        let rate_limit = r.rate_limit.as_ref().map(|l| {
            reference(
                l,
                "rate limit",
                &known.rate_limits,
                &known.rate_limit_index,
                d,
            )
        });
        let host = r.host.as_ref().and_then(|h| host_pattern(h, d));
        let prefix = match &r.path_prefix {
            None => "/".to_owned(),
            Some(p) => {
                let v = p.get_ref();
                if !v.starts_with('/') || v.contains(['?', '#']) || v.contains("//") {
                    d.error(
                        p.span(),
                        format!("path_prefix {v:?} must start with / and hold no ?, # or //"),
                    );
                }
                let trimmed = v.trim_end_matches('/');
                if trimmed.is_empty() {
                    "/".to_owned()
                } else {
                    trimmed.to_owned()
                }
            }
        };
        let own_origins: Vec<Origin> = r
            .own_origins
            .iter()
            .filter_map(|o| match Origin::parse(o.get_ref()) {
                Ok(origin) => Some(origin),
                Err(err) => {
                    d.error(
                        o.span(),
                        format!("invalid own origin {:?}: {err}", o.get_ref()),
                    );
                    None
                }
            })
            .collect();
        let name = match &r.name {
            Some(n) => n.get_ref().clone(),
            None => format!(
                "{}{}",
                host.as_ref().map(ToString::to_string).unwrap_or_default(),
                prefix
            ),
        };
        if name == "unmatched" {
            d.error(
                r.name.as_ref().map_or(span.clone(), Spanned::span),
                "the route name \"unmatched\" is reserved: metrics label requests that match no route with it",
            );
        }
        if !names.insert(name.clone()) {
            d.error(r.name.as_ref().map_or(span.clone(), Spanned::span), format!("duplicate route name {name:?}: names label logs and metrics and must be unique"));
        }
        if d.error_count() > errors {
            ok = false;
            continue;
        }
        let (Some(upstream), Some(policy)) = (upstream, policy) else {
            ok = false;
            continue;
        };
        // A rate limit that is defined but failed to compile has its own errors in `d`.
        let rate_limit = match rate_limit {
            None => None,
            Some(None) => {
                ok = false;
                continue;
            }
            Some(Some(i)) => Some(i),
        };
        let route = Route {
            index: 0,
            name,
            host,
            path_prefix: prefix,
            strip_prefix: r.strip_prefix.unwrap_or(false),
            own_origins,
            upstream,
            policy,
            rate_limit,
        };
        if let Err(dup) = table.insert(route) {
            ok = false;
            d.error(span, format!("duplicate route: {dup}"));
        }
    }
    ok.then_some(table)
}

fn host_pattern(h: &Spanned<String>, d: &mut Diagnostics<'_>) -> Option<HostPattern> {
    let v = h.get_ref().to_ascii_lowercase();
    let (wild, body) = match v.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, v.as_str()),
    };
    let valid = !body.is_empty()
        && body.split('.').all(|l| {
            !l.is_empty()
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if !valid {
        d.error(
            h.span(),
            format!(
                "host {:?} must be a host name without port, optionally starting with \"*.\"",
                h.get_ref()
            ),
        );
        return None;
    }
    Some(if wild {
        HostPattern::Wildcard(body.to_owned())
    } else {
        HostPattern::Exact(body.to_owned())
    })
}

pub(super) fn warn_unused(raw: &RawConfig, d: &mut Diagnostics<'_>) {
    let used = |pick: fn(&RawRoute) -> Option<&str>, name: &str| {
        raw.routes
            .iter()
            .any(|e| matches!(e.get_ref(), Lenient::Ok(r) if pick(r) == Some(name)))
    };
    for (name, e) in &raw.upstreams {
        if !used(|r| Some(r.upstream.get_ref()), name.get_ref()) {
            d.warn(
                e.span(),
                format!("upstream {:?} is not used by any route", name.get_ref()),
            );
        }
    }
    for (name, e) in &raw.policies {
        if !used(|r| Some(r.policy.get_ref()), name.get_ref()) {
            d.warn(
                e.span(),
                format!("policy {:?} is not used by any route", name.get_ref()),
            );
        }
    }
    for (name, e) in &raw.rate_limits {
        if !used(
            |r| r.rate_limit.as_ref().map(|l| l.get_ref().as_str()),
            name.get_ref(),
        ) {
            d.warn(
                e.span(),
                format!("rate limit {:?} is not used by any route", name.get_ref()),
            );
        }
    }
}
