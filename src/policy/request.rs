//! `RequestView`: the borrowed parts of a request that a CORS decision reads, and the bounded,
//! tolerant parser for `Access-Control-Request-Headers`.

use crate::authority::Authority;
use http::header::{HeaderMap, HeaderName, HeaderValue, ORIGIN, UPGRADE};
use http::Method;

/// At most this many bytes of `Access-Control-Request-Headers` (all lines together) are read.
/// Browsers send a handful of names; anything far larger is hostile or broken.
pub(crate) const MAX_ACRH_BYTES: usize = 8 * 1024;
/// At most this many names in `Access-Control-Request-Headers`.
pub(crate) const MAX_ACRH_NAMES: usize = 128;

/// `Access-Control-Request-Method`.
pub(crate) static ACRM: HeaderName = HeaderName::from_static("access-control-request-method");
/// `Access-Control-Request-Headers`.
pub(crate) static ACRH: HeaderName = HeaderName::from_static("access-control-request-headers");
/// `Access-Control-Request-Private-Network` (the legacy Private Network Access preflight).
pub(crate) static ACRPN: HeaderName =
    HeaderName::from_static("access-control-request-private-network");

/// The scheme of the listener a request arrived on; it decides what the request's own origin is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// A plain TCP listener.
    Http,
    /// A TLS listener.
    Https,
}

impl Scheme {
    /// The scheme as it appears in a serialized origin.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    /// The port an origin of this scheme has when it names none.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

/// What the policy engine sees of a request. Everything is borrowed, so building one is free.
#[derive(Clone, Copy, Debug)]
pub struct RequestView<'a> {
    /// The request method, compared case-sensitively as Fetch does.
    pub method: &'a Method,
    /// The scheme of the listener the request came in on.
    pub scheme: Scheme,
    /// The request's authority: the `Host` header, or the URI authority for HTTP/2, parsed once.
    pub host: Option<Authority<'a>>,
    /// The request path, without the query.
    pub path: &'a str,
    /// All request headers.
    pub headers: &'a HeaderMap,
}

impl<'a> RequestView<'a> {
    /// The `Origin` header, if there is exactly one. Several `Origin` headers are treated as a
    /// malformed origin by the caller: a browser never sends two.
    pub fn origin(&self) -> OriginHeader<'a> {
        let mut values = self.headers.get_all(ORIGIN).iter();
        match (values.next(), values.next()) {
            (None, _) => OriginHeader::Absent,
            (Some(v), None) => OriginHeader::One(v),
            (Some(_), Some(_)) => OriginHeader::Several,
        }
    }

    /// `Access-Control-Request-Method`, if present.
    pub fn request_method(&self) -> Option<&'a HeaderValue> {
        self.headers.get(&ACRM)
    }

    /// Whether the request is a CORS preflight per Fetch: OPTIONS with Origin and
    /// Access-Control-Request-Method (<https://fetch.spec.whatwg.org/#cors-preflight-request>).
    pub fn is_preflight(&self) -> bool {
        self.method == Method::OPTIONS
            && self.headers.contains_key(ORIGIN)
            && self.headers.contains_key(&ACRM)
    }

    /// Whether the preflight asks for private network access (`Access-Control-Request-Private-Network: true`).
    pub fn wants_private_network(&self) -> bool {
        self.headers
            .get(&ACRPN)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"))
    }

    /// Whether this is a WebSocket handshake (`Upgrade: websocket`).
    pub fn is_websocket(&self) -> bool {
        self.headers.get_all(UPGRADE).iter().any(|v| {
            v.as_bytes()
                .split(|b| *b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"websocket"))
        })
    }

    /// The names listed in `Access-Control-Request-Headers`, across every line of it.
    pub fn request_headers(&self) -> RequestHeaderNames<'a> {
        RequestHeaderNames::new(self.headers.get_all(&ACRH).iter())
    }
}

/// How many `Origin` headers a request carries.
#[derive(Clone, Copy, Debug)]
pub enum OriginHeader<'a> {
    /// No `Origin`: not a CORS request.
    Absent,
    /// Exactly one.
    One(&'a HeaderValue),
    /// More than one: never sent by a browser, treated as malformed.
    Several,
}

/// Why `Access-Control-Request-Headers` could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AcrhError {
    /// More than [`MAX_ACRH_BYTES`] bytes.
    #[error("access-control-request-headers is longer than {MAX_ACRH_BYTES} bytes")]
    TooLong,
    /// More than [`MAX_ACRH_NAMES`] names.
    #[error("access-control-request-headers lists more than {MAX_ACRH_NAMES} names")]
    TooMany,
    /// An element that is not a header name token.
    #[error("access-control-request-headers holds an invalid header name")]
    Invalid,
}

/// Iterator over the names in `Access-Control-Request-Headers`.
///
/// Tolerant as RFC 9110 §5.6.1 asks of list recipients: optional whitespace, empty elements and a list
/// split over several header lines are all accepted. Bounded: it yields an error once the total
/// length or the element count passes the limits, and stops.
pub struct RequestHeaderNames<'a> {
    lines: http::header::ValueIter<'a, HeaderValue>,
    current: &'a str,
    bytes: usize,
    names: usize,
    done: bool,
}

impl<'a> RequestHeaderNames<'a> {
    fn new(lines: http::header::ValueIter<'a, HeaderValue>) -> Self {
        Self {
            lines,
            current: "",
            bytes: 0,
            names: 0,
            done: false,
        }
    }

    fn fail(&mut self, e: AcrhError) -> Option<Result<&'a str, AcrhError>> {
        self.done = true;
        Some(Err(e))
    }
}

impl<'a> Iterator for RequestHeaderNames<'a> {
    type Item = Result<&'a str, AcrhError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.done {
                return None;
            }
            if self.current.is_empty() {
                let line = self.lines.next()?;
                self.bytes += line.len();
                if self.bytes > MAX_ACRH_BYTES {
                    return self.fail(AcrhError::TooLong);
                }
                // One UTF-8/visible-ASCII check per line; elements are then sliced from it.
                let Ok(line) = line.to_str() else {
                    return self.fail(AcrhError::Invalid);
                };
                self.current = line;
                continue;
            }
            // One pass over the element: find the comma and check every byte is a tchar or OWS.
            let bytes = self.current.as_bytes();
            let mut end = bytes.len();
            let mut valid = true;
            let (mut started, mut gap) = (false, false);
            for (i, b) in bytes.iter().enumerate() {
                match *b {
                    b',' => {
                        end = i;
                        break;
                    }
                    b' ' | b'\t' => gap |= started,
                    b => {
                        // Whitespace inside a name ("x b") is as invalid as any other non-tchar.
                        valid &= TCHAR[usize::from(b)] && !gap;
                        started = true;
                    }
                }
            }
            let element = self.current[..end].trim_matches([' ', '\t']);
            self.current = self.current.get(end + 1..).unwrap_or("");
            if element.is_empty() {
                continue;
            }
            self.names += 1;
            if self.names > MAX_ACRH_NAMES {
                return self.fail(AcrhError::TooMany);
            }
            if !valid {
                return self.fail(AcrhError::Invalid);
            }
            return Some(Ok(element));
        }
    }
}

/// `tchar` as a lookup table, for the per-byte check above.
static TCHAR: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = is_tchar(i as u8);
        i += 1;
    }
    t
};

/// RFC 9110 §5.6.2 `tchar`.
pub(crate) const fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(lines: &[&str]) -> Vec<Result<String, AcrhError>> {
        let mut h = HeaderMap::new();
        for l in lines {
            h.append(&ACRH, HeaderValue::from_str(l).unwrap());
        }
        let m = Method::OPTIONS;
        let v = RequestView {
            method: &m,
            scheme: Scheme::Http,
            host: None,
            path: "/",
            headers: &h,
        };
        v.request_headers().map(|r| r.map(str::to_owned)).collect()
    }

    #[test]
    fn acrh_tolerates_whitespace_case_empty_elements_and_split_lines() {
        let got = names(&[" X-Foo ,, content-TYPE", "", ", x-bar"]);
        let got: Vec<_> = got.into_iter().map(Result::unwrap).collect();
        assert_eq!(got, ["X-Foo", "content-TYPE", "x-bar"]);
    }

    #[test]
    fn acrh_rejects_too_many_names_and_invalid_tokens() {
        let many = vec!["x"; MAX_ACRH_NAMES + 1].join(",");
        assert_eq!(names(&[&many]).last(), Some(&Err(AcrhError::TooMany)));
        assert_eq!(names(&["x-a, x b"]).last(), Some(&Err(AcrhError::Invalid)));
        let long = "a".repeat(MAX_ACRH_BYTES + 1);
        assert_eq!(names(&[&long]), vec![Err(AcrhError::TooLong)]);
    }

    #[test]
    fn preflight_needs_options_origin_and_acrm() {
        let mut h = HeaderMap::new();
        h.insert(ORIGIN, HeaderValue::from_static("https://a.example"));
        let opt = Method::OPTIONS;
        let get = Method::GET;
        fn mk<'a>(m: &'a Method, h: &'a HeaderMap) -> RequestView<'a> {
            RequestView {
                method: m,
                scheme: Scheme::Http,
                host: None,
                path: "/",
                headers: h,
            }
        }
        assert!(!mk(&opt, &h).is_preflight());
        h.insert(&ACRM, HeaderValue::from_static("PUT"));
        assert!(mk(&opt, &h).is_preflight());
        assert!(!mk(&get, &h).is_preflight());
    }
}
