//! `Changes`: what a reload changed (routes, upstreams, policies, origins), for the one summary line.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::policy::{Policy, PolicySpec};
use crate::routes::Route;
use crate::snapshot::{RateLimitSettings, Snapshot};

/// Added, removed and changed names per kind, plus origin patterns added and removed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// Route names: (added, removed, changed).
    pub routes: (Vec<String>, Vec<String>, Vec<String>),
    /// Upstream names.
    pub upstreams: (Vec<String>, Vec<String>, Vec<String>),
    /// Policy names.
    pub policies: (Vec<String>, Vec<String>, Vec<String>),
    /// Rate limit names; a changed limit starts with fresh buckets, an unchanged one keeps them.
    pub rate_limits: (Vec<String>, Vec<String>, Vec<String>),
    /// Origin patterns, as `policy:pattern`, added.
    pub origins_added: Vec<String>,
    /// Origin patterns, as `policy:pattern`, removed.
    pub origins_removed: Vec<String>,
}

impl Changes {
    /// Compare two snapshots by name.
    pub fn between(old: &Snapshot, new: &Snapshot) -> Changes {
        // Destructured without `..`: a new route key is a compile error here until the diff
        // compares it.
        let route_key = |s: &Snapshot, r: &Route| {
            let Route {
                index: _,
                name: _,
                host,
                path_prefix,
                strip_prefix,
                own_origins,
                upstream,
                policy,
                rate_limit: _,
            } = r;
            format!(
                "{host:?}|{path_prefix}|{strip_prefix}|{own_origins:?}|{}|{}|{:?}",
                s.upstreams[*upstream].name,
                s.policies[*policy].name(),
                s.rate_limit(r).map(|l| &l.name)
            )
        };
        let routes = |s: &Snapshot| -> BTreeMap<String, String> {
            s.routes
                .iter()
                .map(|r| (r.name.clone(), route_key(s, r)))
                .collect()
        };
        let upstreams = |s: &Snapshot| -> BTreeMap<String, String> {
            s.upstreams
                .iter()
                .map(|u| (u.name.clone(), format!("{u:?}")))
                .collect()
        };
        let policies = |s: &Snapshot| -> BTreeMap<String, String> {
            s.policies
                .iter()
                .map(|p| (p.name().to_owned(), fingerprint(p)))
                .collect()
        };
        let rate_limits = |s: &Snapshot| -> BTreeMap<String, String> {
            s.rate_limits
                .iter()
                .map(|l| (l.name.clone(), limit_key(l)))
                .collect()
        };
        let origins = |s: &Snapshot| -> BTreeSet<String> {
            s.policies
                .iter()
                .flat_map(|p| {
                    p.spec()
                        .origin_texts
                        .iter()
                        .map(move |o| format!("{}:{o}", p.name()))
                })
                .collect()
        };
        let (old_o, new_o) = (origins(old), origins(new));
        Changes {
            routes: compare(&routes(old), &routes(new)),
            upstreams: compare(&upstreams(old), &upstreams(new)),
            policies: compare(&policies(old), &policies(new)),
            rate_limits: compare(&rate_limits(old), &rate_limits(new)),
            origins_added: new_o.difference(&old_o).cloned().collect(),
            origins_removed: old_o.difference(&new_o).cloned().collect(),
        }
    }

    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        *self == Changes::default()
    }
}

/// Everything that shapes a policy's answers, in a stable order.
/// Everything a policy decides with, as one comparable string. Destructured without `..`, so a new
/// policy key is a compile error here until it is part of the fingerprint.
fn fingerprint(p: &Policy) -> String {
    let PolicySpec {
        name: _,
        // Compiled from `origin_texts`, which are compared instead.
        origins: _,
        origin_texts,
        methods,
        headers,
        expose_headers,
        allow_credentials,
        max_age,
        allow_private_network,
        preflight_status,
        enforcement,
        fetch_metadata,
        allow_cross_site_navigation,
        allow_same_site,
    } = p.spec();
    let mut texts = origin_texts.clone();
    texts.sort();
    let mut names: Vec<&str> = headers.names.iter().map(AsRef::as_ref).collect();
    names.sort_unstable();
    format!(
        "{texts:?}|{methods:?}|{}|{names:?}|{expose_headers:?}|{allow_credentials}|{max_age:?}|{allow_private_network}|{preflight_status}|{}|{}|{allow_cross_site_navigation}|{allow_same_site}",
        headers.any,
        enforcement.as_str(),
        fetch_metadata.as_str()
    )
}

/// A rate limit's settings as one comparable string. Destructured without `..`, so a new key is a
/// compile error here until the diff compares it. (Whether the buckets survive is decided by
/// `Live::build` comparing the settings themselves.)
fn limit_key(l: &RateLimitSettings) -> String {
    let RateLimitSettings {
        name: _,
        requests_per_second,
        burst,
        key,
        max_keys,
    } = l;
    format!("{requests_per_second}|{burst}|{key:?}|{max_keys}")
}

fn compare(
    old: &BTreeMap<String, String>,
    new: &BTreeMap<String, String>,
) -> (Vec<String>, Vec<String>, Vec<String>) {
    let added = new
        .keys()
        .filter(|k| !old.contains_key(*k))
        .cloned()
        .collect();
    let removed = old
        .keys()
        .filter(|k| !new.contains_key(*k))
        .cloned()
        .collect();
    let changed = new
        .iter()
        .filter(|(k, v)| old.get(*k).is_some_and(|o| o != *v))
        .map(|(k, _)| k.clone())
        .collect();
    (added, removed, changed)
}

impl fmt::Display for Changes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("no changes");
        }
        let mut parts = Vec::new();
        for (kind, (a, r, c)) in [
            ("routes", &self.routes),
            ("upstreams", &self.upstreams),
            ("policies", &self.policies),
            ("rate limits", &self.rate_limits),
        ] {
            for (verb, list) in [("added", a), ("removed", r), ("changed", c)] {
                if !list.is_empty() {
                    parts.push(format!("{kind} {verb}: {}", list.join(", ")));
                }
            }
        }
        if !self.origins_added.is_empty() {
            parts.push(format!("origins added: {}", self.origins_added.join(", ")));
        }
        if !self.origins_removed.is_empty() {
            parts.push(format!(
                "origins removed: {}",
                self.origins_removed.join(", ")
            ));
        }
        f.write_str(&parts.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn snap(origins: &str, prefix: &str) -> Snapshot {
        let toml = format!(
            "[upstreams.u]\nurl = \"http://127.0.0.1:1\"\n[policies.p]\nallowed_origins = [{origins}]\n\
             [[routes]]\nname = \"r\"\npath_prefix = \"{prefix}\"\nupstream = \"u\"\npolicy = \"p\"\n"
        );
        crate::config::load_str(&toml, Path::new("t.toml"))
            .unwrap()
            .snapshot
    }

    #[test]
    fn a_changed_origin_list_shows_as_changed_policy_and_origin_delta() {
        let a = snap("\"https://a.example\"", "/");
        let b = snap("\"https://b.example\"", "/v1");
        let c = Changes::between(&a, &b);
        assert_eq!(c.policies.2, ["p"]);
        assert_eq!(c.routes.2, ["r"]);
        assert_eq!(c.origins_added, ["p:https://b.example"]);
        assert_eq!(c.origins_removed, ["p:https://a.example"]);
        assert!(Changes::between(&a, &a).is_empty());
        assert!(c.to_string().contains("origins added: p:https://b.example"));
    }
}
