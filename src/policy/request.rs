//! `RequestView`: the borrowed parts of a request that a CORS decision reads, and the bounded,
//! tolerant parser for `Access-Control-Request-Headers`.

use crate::authority::Authority;
use http::header::{HeaderMap, HeaderName, HeaderValue, UPGRADE};
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
    /// The request headers the CORS and Fetch Metadata rules read, found in one walk.
    pub(crate) fn cors_headers(&self) -> CorsRequestHeaders<'a> {
        CorsRequestHeaders::scan(self.headers)
    }

    /// `Access-Control-Request-Method`, if present.
    pub fn request_method(&self) -> Option<&'a HeaderValue> {
        self.headers.get(&ACRM)
    }
}

/// The request headers the CORS and Fetch Metadata rules read, found in one walk over the header
/// map. Looked up one at a time they cost a hash and a probe each: six on a preflight, about 900
/// instructions of its 19,000; the walk compares names, most by their tag or their length. Where a
/// header appears more than once, each field holds its first value, as `HeaderMap::get` would.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CorsRequestHeaders<'a> {
    headers: &'a HeaderMap,
    origin: OriginHeader<'a>,
    request_method: Option<&'a HeaderValue>,
    /// The first `Access-Control-Request-Headers` line, and whether there are more.
    request_headers: Option<&'a HeaderValue>,
    several_request_headers: bool,
    private_network: Option<&'a HeaderValue>,
    upgrade: bool,
    pub(crate) sec_fetch_site: Option<&'a HeaderValue>,
    pub(crate) sec_fetch_mode: Option<&'a HeaderValue>,
    pub(crate) sec_fetch_dest: Option<&'a HeaderValue>,
}

impl<'a> CorsRequestHeaders<'a> {
    fn scan(headers: &'a HeaderMap) -> Self {
        let mut found = CorsRequestHeaders {
            headers,
            origin: OriginHeader::Absent,
            request_method: None,
            request_headers: None,
            several_request_headers: false,
            private_network: None,
            upgrade: false,
            sec_fetch_site: None,
            sec_fetch_mode: None,
            sec_fetch_dest: None,
        };
        for (name, value) in headers {
            // Dispatched on the length first: most names in a browser's request are none of these,
            // and their lengths already say so.
            let name = name.as_str();
            let slot = match name.len() {
                6 if name == "origin" => {
                    found.origin = match found.origin {
                        OriginHeader::Absent => OriginHeader::One(value),
                        _ => OriginHeader::Several,
                    };
                    continue;
                }
                7 if name == "upgrade" => {
                    found.upgrade = true;
                    continue;
                }
                14 => match name {
                    "sec-fetch-site" => &mut found.sec_fetch_site,
                    "sec-fetch-mode" => &mut found.sec_fetch_mode,
                    "sec-fetch-dest" => &mut found.sec_fetch_dest,
                    _ => continue,
                },
                29 if name == "access-control-request-method" => &mut found.request_method,
                30 if name == "access-control-request-headers" => {
                    found.several_request_headers |= found.request_headers.is_some();
                    &mut found.request_headers
                }
                38 if name == "access-control-request-private-network" => {
                    &mut found.private_network
                }
                _ => continue,
            };
            slot.get_or_insert(value);
        }
        found
    }

    /// The `Origin` header, if there is exactly one. Several `Origin` headers are treated as a
    /// malformed origin by the caller: a browser never sends two.
    pub(crate) fn origin(&self) -> OriginHeader<'a> {
        self.origin
    }

    /// `Access-Control-Request-Method`, if present.
    pub(crate) fn request_method(&self) -> Option<&'a HeaderValue> {
        self.request_method
    }

    /// Whether the request is a CORS preflight per Fetch: OPTIONS with Origin and
    /// Access-Control-Request-Method (<https://fetch.spec.whatwg.org/#cors-preflight-request>).
    pub(crate) fn is_preflight(&self, method: &Method) -> bool {
        *method == Method::OPTIONS
            && !matches!(self.origin, OriginHeader::Absent)
            && self.request_method.is_some()
    }

    /// Whether the preflight asks for private network access (`Access-Control-Request-Private-Network: true`).
    pub(crate) fn wants_private_network(&self) -> bool {
        self.private_network
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"))
    }

    /// Whether this is a WebSocket handshake (`Upgrade: websocket`).
    pub(crate) fn is_websocket(&self) -> bool {
        self.upgrade
            && self.headers.get_all(UPGRADE).iter().any(|v| {
                v.as_bytes()
                    .split(|b| *b == b',')
                    .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"websocket"))
            })
    }

    /// The names listed in `Access-Control-Request-Headers`, across every line of it.
    pub(crate) fn request_headers(&self) -> RequestHeaderNames<'a> {
        let lines = if self.several_request_headers {
            AcrhLines::All(self.headers.get_all(&ACRH).iter())
        } else {
            AcrhLines::One(self.request_headers)
        };
        RequestHeaderNames::new(lines)
    }
}

/// The lines of `Access-Control-Request-Headers`: the one the scan found, or (rarely) all of them.
enum AcrhLines<'a> {
    One(Option<&'a HeaderValue>),
    All(http::header::ValueIter<'a, HeaderValue>),
}

impl<'a> Iterator for AcrhLines<'a> {
    type Item = &'a HeaderValue;

    fn next(&mut self) -> Option<&'a HeaderValue> {
        match self {
            AcrhLines::One(line) => line.take(),
            AcrhLines::All(lines) => lines.next(),
        }
    }
}

/// How many `Origin` headers a request carries.
#[derive(Clone, Copy, Debug)]
pub(crate) enum OriginHeader<'a> {
    /// No `Origin`: not a CORS request.
    Absent,
    /// Exactly one.
    One(&'a HeaderValue),
    /// More than one: never sent by a browser, treated as malformed.
    Several,
}

/// Why `Access-Control-Request-Headers` could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum AcrhError {
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
pub(crate) struct RequestHeaderNames<'a> {
    lines: AcrhLines<'a>,
    current: &'a str,
    bytes: usize,
    names: usize,
    done: bool,
}

impl<'a> RequestHeaderNames<'a> {
    fn new(lines: AcrhLines<'a>) -> Self {
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
    use crate::policy::SEC_FETCH_SITE;
    use http::header::ORIGIN;

    /// What the walk finds in `h` on a request with method `m`.
    fn scan<'a>(m: &'a Method, h: &'a HeaderMap) -> CorsRequestHeaders<'a> {
        RequestView {
            method: m,
            scheme: Scheme::Http,
            host: None,
            path: "/",
            headers: h,
        }
        .cors_headers()
    }

    fn names(lines: &[&str]) -> Vec<Result<String, AcrhError>> {
        let mut h = HeaderMap::new();
        for l in lines {
            h.append(&ACRH, HeaderValue::from_str(l).unwrap());
        }
        scan(&Method::OPTIONS, &h)
            .request_headers()
            .map(|r| r.map(str::to_owned))
            .collect()
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
    fn the_one_walk_finds_what_lookups_by_name_find() {
        let mut h = HeaderMap::new();
        for (name, value) in [
            ("accept", "*/*"),
            ("sec-fetch-mode", "cors"),
            ("origin", "https://a.example"),
            ("access-control-request-method", "PUT"),
            ("sec-fetch-site", "cross-site"),
            ("access-control-request-method", "DELETE"),
            ("sec-fetch-dest", "empty"),
            ("access-control-request-private-network", "true"),
            ("sec-ch-ua-mobile", "?0"),
            ("upgrade", "h2c, WebSocket"),
        ] {
            h.append(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        let m = Method::OPTIONS;
        let found = scan(&m, &h);
        assert!(matches!(found.origin(), OriginHeader::One(v) if v == "https://a.example"));
        // The first of several, as `HeaderMap::get` answers.
        assert_eq!(found.request_method(), h.get(&ACRM));
        assert_eq!(found.request_method().unwrap(), "PUT");
        assert_eq!(found.sec_fetch_site, h.get(&SEC_FETCH_SITE));
        assert_eq!(found.sec_fetch_mode.unwrap(), "cors");
        assert_eq!(found.sec_fetch_dest.unwrap(), "empty");
        assert!(found.wants_private_network() && found.is_websocket() && found.is_preflight(&m));
        assert_eq!(found.request_headers().count(), 0);
        h.append(ORIGIN, HeaderValue::from_static("https://b.example"));
        h.remove(UPGRADE);
        let found = scan(&m, &h);
        assert!(matches!(found.origin(), OriginHeader::Several));
        assert!(!found.is_websocket());
    }

    #[test]
    fn preflight_needs_options_origin_and_acrm() {
        let mut h = HeaderMap::new();
        h.insert(ORIGIN, HeaderValue::from_static("https://a.example"));
        let opt = Method::OPTIONS;
        let get = Method::GET;
        fn preflight(m: &Method, h: &HeaderMap) -> bool {
            scan(m, h).is_preflight(m)
        }
        assert!(!preflight(&opt, &h));
        h.insert(&ACRM, HeaderValue::from_static("PUT"));
        assert!(preflight(&opt, &h));
        assert!(!preflight(&get, &h));
    }
}
