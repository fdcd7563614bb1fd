//! Origins: the strict parser for request `Origin` values and config patterns. `AllowedOrigins`, the
//! compiled allow-list built from the patterns, is in `allowed.rs`.
//!
//! Written by hand rather than with the `url` crate on purpose: an origin is the tiny grammar
//! `scheme "://" host [":" port]` (<https://html.spec.whatwg.org/#ascii-serialisation-of-an-origin>),
//! and a URL parser is lenient exactly where an allow-list must not be (paths, userinfo, IDNA mapping,
//! percent-decoding). Everything that is not that grammar is rejected, and nothing here allocates
//! unless the input needs lowercasing. Whether a config pattern names a host browsers actually send
//! (`127.1`, Unicode, bad punycode) is checked on the config side, with the `url` crate's host
//! parser (`config/compile/policy/browser_form.rs`), never here on the request path.

use std::borrow::Cow;

use crate::authority::position;

mod allowed;
mod pattern;
pub(crate) use allowed::AllowedOrigins;
pub use pattern::OriginPattern;
pub(super) use pattern::PortMatch;

/// A normalised origin: lowercase scheme and host, default port dropped.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Origin {
    scheme: String,
    host: String,
    port: Option<u16>,
}

impl Origin {
    /// Parse and normalise a serialized origin such as `https://App.example.com:443`.
    pub fn parse(s: &str) -> Result<Origin, OriginError> {
        let p = parse_parts(s, false)?;
        if p.any_port {
            return Err(OriginError::BadPort);
        }
        Ok(Origin {
            scheme: p.scheme.into_owned(),
            host: p.host.into_owned(),
            port: p.port,
        })
    }

    /// The normalised scheme.
    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    /// The normalised host (IPv6 in brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port, `None` for the scheme's default.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    pub(crate) fn same_as(&self, o: &RequestOrigin<'_>) -> bool {
        self.scheme == o.scheme && self.host == o.host && self.port == o.port
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}", self.scheme, self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        Ok(())
    }
}

/// Why a string is not an origin or origin pattern.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OriginError {
    /// No `scheme://`.
    #[error("an origin is scheme://host[:port]; this has no valid scheme")]
    BadScheme,
    /// `user@` before the host.
    #[error("an origin has no userinfo (user@)")]
    Userinfo,
    /// Anything after the authority.
    #[error("an origin has no path, query or fragment")]
    HasPath,
    /// A trailing slash.
    #[error("an origin has no trailing slash")]
    TrailingSlash,
    /// Nothing between `://` and the port.
    #[error("the host is empty")]
    EmptyHost,
    /// Characters a host cannot have.
    #[error("the host holds characters a host cannot have (write IDNs in their xn-- form)")]
    BadHost,
    /// More than 253 bytes (without a trailing dot).
    #[error("the host is longer than 253 bytes, which DNS cannot carry")]
    HostTooLong,
    /// A label of more than 63 bytes.
    #[error("a host label is longer than 63 bytes, which DNS cannot carry")]
    LabelTooLong,
    /// Port not 1-65535, or empty.
    #[error("the port must be a number from 1 to 65535, or * in a pattern")]
    BadPort,
    /// `*` anywhere but as the whole leftmost label.
    #[error("a wildcard is only allowed as the whole leftmost label: https://*.example.com")]
    WildcardPlacement,
    /// `*.` directly over a public suffix.
    #[error("*.{0} would allow every site under the public suffix {0}")]
    PublicSuffix(String),
}

/// A request's `Origin`, parsed and normalised, borrowing when it is already canonical.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestOrigin<'a> {
    /// Lowercase scheme.
    pub scheme: Cow<'a, str>,
    /// Lowercase host.
    pub host: Cow<'a, str>,
    /// Port, `None` for the default.
    pub port: Option<u16>,
    /// The canonical serialization (what regexes see).
    pub serialized: Cow<'a, str>,
}

impl<'a> RequestOrigin<'a> {
    /// Parse an `Origin` header value. `null` is not an origin here; callers check it first.
    pub fn parse(s: &'a str) -> Result<Self, OriginError> {
        let p = parse_parts(s, false)?;
        if p.any_port {
            return Err(OriginError::BadPort);
        }
        let canonical = matches!(p.scheme, Cow::Borrowed(_))
            && matches!(p.host, Cow::Borrowed(_))
            && !p.explicit_default_port;
        let serialized = if canonical {
            Cow::Borrowed(s)
        } else {
            let mut o = format!("{}://{}", p.scheme, p.host);
            if let Some(port) = p.port {
                o.push_str(&format!(":{port}"));
            }
            Cow::Owned(o)
        };
        Ok(RequestOrigin {
            scheme: p.scheme,
            host: p.host,
            port: p.port,
            serialized,
        })
    }
}

struct Parts<'a> {
    scheme: Cow<'a, str>,
    host: Cow<'a, str>,
    port: Option<u16>,
    any_port: bool,
    explicit_default_port: bool,
}

fn lower(s: &str) -> Cow<'_, str> {
    if s.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(s.to_ascii_lowercase())
    } else {
        Cow::Borrowed(s)
    }
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" | "ws" => Some(80),
        "https" | "wss" => Some(443),
        _ => None,
    }
}

fn parse_parts(s: &str, pattern: bool) -> Result<Parts<'_>, OriginError> {
    // Byte loops rather than `split_once("://")` and char-set `find`: this runs on every CORS
    // request, and the generic searchers cost more than the whole origin is long.
    let bytes = s.as_bytes();
    let colon = bytes
        .iter()
        .position(|b| *b == b':')
        .ok_or(OriginError::BadScheme)?;
    if bytes.get(colon + 1..colon + 3) != Some(b"//") {
        return Err(OriginError::BadScheme);
    }
    let (scheme, rest) = (&s[..colon], &s[colon + 3..]);
    let scheme_ok = scheme
        .as_bytes()
        .first()
        .is_some_and(u8::is_ascii_alphabetic)
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    if !scheme_ok {
        return Err(OriginError::BadScheme);
    }
    for (i, b) in rest.bytes().enumerate() {
        match b {
            b'@' => return Err(OriginError::Userinfo),
            b'/' | b'?' | b'#' | b'\\' => {
                return Err(if &rest[i..] == "/" && !rest.contains('@') {
                    OriginError::TrailingSlash
                } else if rest.contains('@') {
                    OriginError::Userinfo
                } else {
                    OriginError::HasPath
                });
            }
            _ => {}
        }
    }
    let (host, port_str) = split_host_port(rest)?;
    if host.is_empty() {
        return Err(OriginError::EmptyHost);
    }
    check_host(host, pattern)?;
    let scheme = lower(scheme);
    let (port, any_port, explicit_default_port) = match port_str {
        None => (None, false, false),
        Some("*") if pattern => (None, true, false),
        Some(p) => {
            let valid = !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit());
            let n: u16 = match p.parse() {
                Ok(n) if valid && n != 0 => n,
                _ => return Err(OriginError::BadPort),
            };
            if default_port(&scheme) == Some(n) {
                (None, false, true)
            } else {
                (Some(n), false, false)
            }
        }
    };
    Ok(Parts {
        scheme,
        host: lower(host),
        port,
        any_port,
        explicit_default_port,
    })
}

fn split_host_port(rest: &str) -> Result<(&str, Option<&str>), OriginError> {
    if rest.starts_with('[') {
        let end = rest.find(']').ok_or(OriginError::BadHost)?;
        let (host, after) = rest.split_at(end + 1);
        return match after {
            "" => Ok((host, None)),
            _ => match after.strip_prefix(':') {
                Some(p) => Ok((host, Some(p))),
                None => Err(OriginError::BadHost),
            },
        };
    }
    Ok(match position(rest, b':') {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    })
}

/// Bytes allowed in a host label: letters, digits, `-` and `_`.
static LABEL_BYTE: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
        i += 1;
    }
    t
};

fn check_host(host: &str, pattern: bool) -> Result<(), OriginError> {
    if let Some(inner) = host.strip_prefix('[') {
        let inner = inner.strip_suffix(']').ok_or(OriginError::BadHost)?;
        return match inner.parse::<std::net::Ipv6Addr>() {
            Ok(_) => Ok(()),
            Err(_) => Err(OriginError::BadHost),
        };
    }
    let body = match host.strip_prefix("*.") {
        Some(b) if pattern => b,
        _ => host,
    };
    if body.is_empty() {
        return Err(OriginError::EmptyHost);
    }
    // A fully qualified host keeps its trailing dot: `https://example.com.` is a distinct origin
    // that browsers send as written (URL Standard, host parsing keeps the empty last label), so it
    // is accepted here and matched only by a pattern that has the dot too.
    let body = match body.strip_suffix('.') {
        Some(b) if !b.is_empty() => b,
        _ => body,
    };
    // RFC 1035 §2.3.4: 255 octets on the wire, 253 as text without the root dot.
    if body.len() > 253 {
        return Err(OriginError::HostTooLong);
    }
    // One pass: label characters, no empty label, labels of at most 63 bytes.
    let mut label = 0usize;
    let mut bad = None;
    for b in body.bytes() {
        match b {
            b'.' if label == 0 => bad = bad.or(Some(OriginError::BadHost)),
            b'.' => label = 0,
            b'*' => return Err(OriginError::WildcardPlacement),
            b if LABEL_BYTE[usize::from(b)] => {
                label += 1;
                if label > 63 {
                    bad = bad.or(Some(OriginError::LabelTooLong));
                }
            }
            _ => bad = bad.or(Some(OriginError::BadHost)),
        }
    }
    match bad {
        Some(e) => Err(e),
        None if label == 0 => Err(OriginError::BadHost),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests;
