//! `AllowedOrigins`: the compiled allow-list of one policy (exact hosts, label-suffix wildcards,
//! any-port entries, anchored regexes), indexed per scheme so that a lookup is a few hash probes
//! whatever the size of the list.

// FxHash for the allow-list tables: built from the config, so an attacker's origins only probe
// them; SipHash was the largest single cost of a decision.
use rustc_hash::FxHashMap as HashMap;
use std::borrow::Cow;

use super::{Origin, OriginPattern, PortMatch, RequestOrigin};
use crate::authority::position;
use crate::policy::decision::OriginRule;

#[derive(Clone, Debug, Default)]
struct PortEntries(Vec<(PortMatch, Option<Box<str>>)>);

impl PortEntries {
    /// The rule that lets `port` in: `None` in the tuple's second place means an exact entry.
    fn find(&self, port: Option<u16>) -> Option<OriginRule<'_>> {
        self.0.iter().find_map(|(m, pattern)| {
            let hit = match m {
                PortMatch::Any => true,
                PortMatch::Is(p) => *p == port,
            };
            hit.then_some(match pattern {
                Some(p) => OriginRule::Pattern(p),
                None => OriginRule::Exact,
            })
        })
    }
}

#[derive(Clone, Debug, Default)]
struct SchemeIndex {
    hosts: HashMap<Box<str>, PortEntries>,
    wildcards: HashMap<Box<str>, PortEntries>,
}

/// The compiled allow-list of one policy.
#[derive(Clone, Debug, Default)]
pub struct AllowedOrigins {
    any: bool,
    /// Exact entries by their canonical serialization (`https://app.example.com`, no default
    /// port), where `find` would answer `OriginRule::Exact`. Browsers send origins in exactly that
    /// form, so most CORS requests are decided by one hash lookup instead of parse + `find`.
    exact: HashMap<Box<str>, Origin>,
    null: bool,
    schemes: Vec<(Box<str>, SchemeIndex)>,
    regexes: Option<(regex::RegexSet, Vec<Box<str>>)>,
    exact_count: usize,
    pattern_count: usize,
}

impl AllowedOrigins {
    /// Add a parsed pattern; `text` is the pattern as written, kept for `explain`.
    pub fn add(&mut self, pattern: &OriginPattern, text: &str) {
        let OriginPattern::Host {
            scheme,
            host,
            wildcard,
            port,
        } = pattern
        else {
            match pattern {
                OriginPattern::Any => self.any = true,
                _ => self.null = true,
            }
            return;
        };
        let exact = !*wildcard && matches!(port, PortMatch::Is(_));
        let idx = match self.schemes.iter().position(|(s, _)| **s == **scheme) {
            Some(i) => i,
            None => {
                self.schemes
                    .push((scheme.as_str().into(), SchemeIndex::default()));
                self.schemes.len() - 1
            }
        };
        let index = &mut self.schemes[idx].1;
        let map = if *wildcard {
            &mut index.wildcards
        } else {
            &mut index.hosts
        };
        let label = (!exact).then(|| Box::<str>::from(text));
        let entries = &mut map.entry(host.as_str().into()).or_default().0;
        if let PortMatch::Is(p) = port {
            // Only while no earlier entry for this host takes the port: `find` answers with the
            // first one, and the fast path must give the same rule.
            let shadowed = entries.iter().any(|(m, _)| match m {
                PortMatch::Any => true,
                PortMatch::Is(q) => q == p,
            });
            if exact && !shadowed {
                let origin = Origin {
                    scheme: scheme.clone(),
                    host: host.clone(),
                    port: *p,
                };
                self.exact.insert(origin.to_string().into(), origin);
            }
        }
        entries.push((*port, label));
        if exact {
            self.exact_count += 1;
        } else {
            self.pattern_count += 1;
        }
    }

    /// Set the anchored regexes (already validated); `texts` are the regexes as written.
    pub fn set_regexes(&mut self, set: regex::RegexSet, texts: Vec<Box<str>>) {
        self.regexes = (!texts.is_empty()).then_some((set, texts));
    }

    /// Whether `"*"` is in the list.
    pub fn allows_any(&self) -> bool {
        self.any
    }

    /// Whether `"null"` is in the list.
    pub fn allows_null(&self) -> bool {
        self.null
    }

    /// (exact origins, wildcard/any-port patterns, regexes), for `check`'s summary.
    pub fn counts(&self) -> (usize, usize, usize) {
        let regexes = self.regexes.as_ref().map_or(0, |(_, t)| t.len());
        (self.exact_count, self.pattern_count, regexes)
    }

    /// `text` as an origin, when it is an exact entry written canonically: then it needs no
    /// parsing, and `find` on it would answer `OriginRule::Exact`. `None` says nothing: parse and
    /// `find` decide. Never used with `"*"` in the list, where `find` answers `Any`.
    pub(crate) fn exact(&self, text: &str) -> Option<RequestOrigin<'_>> {
        if self.any {
            return None;
        }
        let (serialized, o) = self.exact.get_key_value(text)?;
        Some(RequestOrigin {
            scheme: Cow::Borrowed(&o.scheme),
            host: Cow::Borrowed(&o.host),
            port: o.port,
            serialized: Cow::Borrowed(serialized),
        })
    }

    /// The rule that allows `origin`, if any. `null` never reaches here (see `decide`).
    pub fn find(&self, origin: &RequestOrigin<'_>) -> Option<OriginRule<'_>> {
        if self.any {
            return Some(OriginRule::Any);
        }
        if let Some((_, index)) = self.schemes.iter().find(|(s, _)| **s == *origin.scheme) {
            let host: &str = &origin.host;
            if let Some(rule) = index.hosts.get(host).and_then(|p| p.find(origin.port)) {
                return Some(rule);
            }
            if !index.wildcards.is_empty() && !host.starts_with('[') {
                let mut rest = host;
                while let Some(dot) = position(rest, b'.') {
                    rest = &rest[dot + 1..];
                    if let Some(rule) = index.wildcards.get(rest).and_then(|p| p.find(origin.port))
                    {
                        return Some(rule);
                    }
                }
            }
        }
        let (set, texts) = self.regexes.as_ref()?;
        let i = set.matches(&origin.serialized).into_iter().next()?;
        Some(OriginRule::Regex(&texts[i]))
    }
}
