//! `OriginPattern`: one `allowed_origins` entry, parsed with the same strict grammar as requests, plus
//! the public-suffix guard on wildcards.

use super::{parse_parts, OriginError};

/// One parsed config pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OriginPattern {
    /// `*`.
    Any,
    /// `null`.
    Null,
    /// scheme://host[:port] or with `*.` host and/or `:*` port.
    Host {
        /// Lowercase scheme.
        scheme: String,
        /// Lowercase host, or the suffix after `*.` when `wildcard`.
        host: String,
        /// `*.host`.
        wildcard: bool,
        /// Which ports.
        port: PortMatch,
    },
}

/// Which ports a pattern allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortMatch {
    /// Exactly this one (`None` = the scheme's default).
    Is(Option<u16>),
    /// `:*`: any port, the default included.
    Any,
}

impl OriginPattern {
    /// Parse a config pattern; wildcards over public suffixes are rejected here.
    pub fn parse(s: &str) -> Result<OriginPattern, OriginError> {
        if s == "*" {
            return Ok(OriginPattern::Any);
        }
        if s == "null" {
            return Ok(OriginPattern::Null);
        }
        let p = parse_parts(s, true)?;
        let (host, wildcard) = match p.host.strip_prefix("*.") {
            Some(suffix) => {
                // A wildcard over a public suffix (*.com, *.co.uk, *.github.io) allows unrelated
                // sites. Only suffixes the list knows are refused, so `*.localhost` stays usable.
                // `*.com.` is the same hole as `*.com`: check without the root dot.
                let bare = suffix.strip_suffix('.').unwrap_or(suffix);
                if psl::suffix(bare.as_bytes())
                    .is_some_and(|sfx| sfx.is_known() && sfx.as_bytes().len() == bare.len())
                {
                    return Err(OriginError::PublicSuffix(suffix.to_owned()));
                }
                (suffix.to_owned(), true)
            }
            None => (p.host.into_owned(), false),
        };
        Ok(OriginPattern::Host {
            scheme: p.scheme.into_owned(),
            host,
            wildcard,
            port: if p.any_port {
                PortMatch::Any
            } else {
                PortMatch::Is(p.port)
            },
        })
    }
}

impl std::fmt::Display for OriginPattern {
    /// The normalised pattern: `https://*.example.com:*`, `http://localhost:3000`, `*`, `null`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let OriginPattern::Host {
            scheme,
            host,
            wildcard,
            port,
        } = self
        else {
            return f.write_str(if *self == OriginPattern::Any {
                "*"
            } else {
                "null"
            });
        };
        let star = if *wildcard { "*." } else { "" };
        write!(f, "{scheme}://{star}{host}")?;
        match port {
            PortMatch::Any => f.write_str(":*"),
            PortMatch::Is(Some(p)) => write!(f, ":{p}"),
            PortMatch::Is(None) => Ok(()),
        }
    }
}
