//! `RouteTable`: host and path-prefix routing without scanning every route.
//!
//! Specificity (docs/configuration.md, "Routes"): a route with a matching host beats one without;
//! an exact host beats a wildcard host, a longer wildcard suffix beats a shorter one; then the
//! longest `path_prefix` wins.
//! Prefixes match on segment boundaries: `/v1` matches `/v1` and `/v1/x`, never `/v10`.

// Lookups use FxHash: the tables are built from the config, so request-chosen keys can only probe,
// never grow or skew them, and SipHash would cost more than the rest of the lookup.
use rustc_hash::FxHashMap as HashMap;

use crate::authority::{position, rposition, Authority};
use crate::policy::Origin;

mod path;
pub(crate) use path::normalize as normalize_path;

/// One compiled `[[routes]]` entry.
#[derive(Clone, Debug)]
pub struct Route {
    /// Position in config order; `RouteTable::insert` sets it. Metric handles are indexed by it.
    pub index: usize,
    /// `name`, or `<host><path_prefix>` when not given.
    pub name: String,
    /// The host pattern, if any.
    pub host: Option<HostPattern>,
    /// Normalised prefix: starts with `/`, no trailing `/` unless it is `/`.
    pub path_prefix: String,
    /// Remove `path_prefix` before forwarding.
    pub strip_prefix: bool,
    /// Origins this route is publicly served at, treated as same-origin.
    pub own_origins: Vec<Origin>,
    /// Index into `Snapshot::upstreams`.
    pub upstream: usize,
    /// Index into `Snapshot::policies`.
    pub policy: usize,
    /// Index into `Snapshot::rate_limits`, when the route has a `rate_limit`.
    pub rate_limit: Option<usize>,
}

impl Route {
    /// The path to forward: with `strip_prefix`, the prefix removed (an emptied path becomes `/`).
    pub fn forward_path<'p>(&self, path: &'p str) -> &'p str {
        if !self.strip_prefix || self.path_prefix == "/" {
            return path;
        }
        match path.get(self.path_prefix.len()..) {
            Some("") | None => "/",
            Some(rest) => rest,
        }
    }
}

/// A route's host: exact (`api.example.com`) or a wildcard over subdomains (`*.example.com`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum HostPattern {
    /// Lowercase host, no port.
    Exact(String),
    /// The lowercase suffix after `*.`; matches any depth of subdomain, never the suffix itself.
    Wildcard(String),
}

impl std::fmt::Display for HostPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HostPattern::Exact(h) => f.write_str(h),
            HostPattern::Wildcard(s) => write!(f, "*.{s}"),
        }
    }
}

/// Path prefix → route index, for one host tier.
#[derive(Clone, Debug, Default)]
struct Prefixes(HashMap<Box<str>, usize>);

impl Prefixes {
    /// Longest prefix of `path` on a segment boundary that has a route. Walks the path's segment
    /// boundaries from the right: one hash lookup per segment, whatever the number of routes.
    fn longest(&self, path: &str) -> Option<usize> {
        if self.0.is_empty() {
            return None;
        }
        let mut candidate = path.strip_suffix('/').unwrap_or(path);
        loop {
            if candidate.is_empty() {
                return self.0.get("/").copied();
            }
            if let Some(&i) = self.0.get(candidate) {
                return Some(i);
            }
            match rposition(candidate, b'/') {
                Some(i) => candidate = &candidate[..i],
                None => return self.0.get("/").copied(),
            }
        }
    }
}

/// Why two routes cannot both be in one table.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("route has the same host and path_prefix as route {existing:?}")]
pub struct DuplicateRoute {
    /// The name of the route already there.
    pub existing: String,
}

/// All routes, indexed by host tier and prefix.
#[derive(Clone, Debug, Default)]
pub struct RouteTable {
    routes: Vec<Route>,
    exact: HashMap<Box<str>, Prefixes>,
    wildcard: HashMap<Box<str>, Prefixes>,
    any_host: Prefixes,
}

impl RouteTable {
    /// Add a route; a second route with the same host and prefix is an error.
    pub fn insert(&mut self, mut route: Route) -> Result<(), DuplicateRoute> {
        route.index = self.routes.len();
        let tier = match &route.host {
            None => &mut self.any_host,
            Some(HostPattern::Exact(h)) => self.exact.entry(h.as_str().into()).or_default(),
            Some(HostPattern::Wildcard(s)) => self.wildcard.entry(s.as_str().into()).or_default(),
        };
        if let Some(&i) = tier.0.get(route.path_prefix.as_str()) {
            return Err(DuplicateRoute {
                existing: self.routes[i].name.clone(),
            });
        }
        tier.0
            .insert(route.path_prefix.as_str().into(), self.routes.len());
        self.routes.push(route);
        Ok(())
    }

    /// Every route, in config order.
    pub fn iter(&self) -> impl Iterator<Item = &Route> {
        self.routes.iter()
    }

    /// How many routes there are.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// Whether there are no routes.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// The most specific route for a request's authority (`Host`, port allowed) and path.
    pub fn find(&self, authority: Option<Authority<'_>>, path: &str) -> Option<&Route> {
        let path = if path.is_empty() { "/" } else { path };
        let host = authority.map(|a| a.host()).filter(|h| !h.is_empty());
        let mut lowered = String::new();
        let host = host.map(|h| {
            if h.bytes().any(|b| b.is_ascii_uppercase()) {
                lowered = h.to_ascii_lowercase();
                lowered.as_str()
            } else {
                h
            }
        });
        if let Some(host) = host {
            let host = host.strip_suffix('.').unwrap_or(host);
            if let Some(i) = self.exact.get(host).and_then(|p| p.longest(path)) {
                return Some(&self.routes[i]);
            }
            if !self.wildcard.is_empty() {
                // Longest suffix first: `a.b.example.com` tries `b.example.com`, then `example.com`, ...
                let mut rest = host;
                while let Some(dot) = position(rest, b'.') {
                    rest = &rest[dot + 1..];
                    if let Some(i) = self.wildcard.get(rest).and_then(|p| p.longest(path)) {
                        return Some(&self.routes[i]);
                    }
                }
            }
        }
        self.any_host.longest(path).map(|i| &self.routes[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(name: &str, host: Option<HostPattern>, prefix: &str) -> Route {
        Route {
            index: 0,
            name: name.into(),
            host,
            path_prefix: prefix.into(),
            strip_prefix: false,
            own_origins: vec![],
            upstream: 0,
            policy: 0,
            rate_limit: None,
        }
    }

    fn table() -> RouteTable {
        let mut t = RouteTable::default();
        t.insert(route("root", None, "/")).unwrap();
        t.insert(route("v1", None, "/v1")).unwrap();
        t.insert(route("v1-users", None, "/v1/users")).unwrap();
        let exact = Some(HostPattern::Exact("api.example.com".into()));
        t.insert(route("api", exact.clone(), "/")).unwrap();
        t.insert(route("api-v2", exact, "/v2")).unwrap();
        let wild = Some(HostPattern::Wildcard("example.com".into()));
        t.insert(route("wild", wild, "/v1")).unwrap();
        let wild2 = Some(HostPattern::Wildcard("eu.example.com".into()));
        t.insert(route("wild-eu", wild2, "/v1")).unwrap();
        t
    }

    fn name(t: &RouteTable, host: Option<&str>, path: &str) -> Option<String> {
        let host = host.map(|h| Authority::parse(h).unwrap());
        t.find(host, path).map(|r| r.name.clone())
    }

    #[test]
    fn prefixes_match_on_segment_boundaries_only() {
        let t = table();
        assert_eq!(name(&t, None, "/v1").as_deref(), Some("v1"));
        assert_eq!(name(&t, None, "/v1/").as_deref(), Some("v1"));
        assert_eq!(name(&t, None, "/v1/x").as_deref(), Some("v1"));
        assert_eq!(name(&t, None, "/v10").as_deref(), Some("root"));
        assert_eq!(name(&t, None, "/v1/users/7").as_deref(), Some("v1-users"));
        assert_eq!(name(&t, None, "/v1/usersx").as_deref(), Some("v1"));
        assert_eq!(name(&t, None, "").as_deref(), Some("root"));
    }

    #[test]
    fn a_matching_host_beats_a_longer_prefix_without_host() {
        let t = table();
        assert_eq!(
            name(&t, Some("api.example.com"), "/v1/users").as_deref(),
            Some("api")
        );
        assert_eq!(
            name(&t, Some("API.Example.com:8443"), "/v2/x").as_deref(),
            Some("api-v2")
        );
        assert_eq!(
            name(&t, Some("x.eu.example.com"), "/v1").as_deref(),
            Some("wild-eu")
        );
        assert_eq!(
            name(&t, Some("x.us.example.com"), "/v1").as_deref(),
            Some("wild")
        );
        // The wildcard never matches the apex, and a wildcard route without a matching prefix
        // falls through to the host-less routes.
        assert_eq!(name(&t, Some("example.com"), "/v1").as_deref(), Some("v1"));
        assert_eq!(
            name(&t, Some("x.example.com"), "/other").as_deref(),
            Some("root")
        );
        assert_eq!(
            name(&t, Some("evilexample.com"), "/v1").as_deref(),
            Some("v1")
        );
    }

    #[test]
    fn duplicate_host_and_prefix_is_rejected() {
        let mut t = table();
        let err = t.insert(route("again", None, "/v1")).unwrap_err();
        assert_eq!(err.existing, "v1");
    }

    #[test]
    fn strip_prefix_keeps_a_leading_slash() {
        let mut r = route("r", None, "/v1");
        r.strip_prefix = true;
        assert_eq!(r.forward_path("/v1"), "/");
        assert_eq!(r.forward_path("/v1/users"), "/users");
        assert_eq!(r.forward_path("/v1/"), "/");
    }
}
