//! Header rewriting between client and upstream: hop-by-hop removal (RFC 9110 §7.6.1), the
//! `X-Forwarded-*` family and HTTP/2 cookie joining. The CORS response headers are written in one
//! place only, `policy::response`.

use http::header::{
    HeaderMap, HeaderName, HeaderValue, CONNECTION, COOKIE, HOST, TE, TRAILER, TRANSFER_ENCODING,
    UPGRADE,
};

use crate::policy::response::tokens;
use crate::policy::Scheme;

/// `X-Forwarded-For`.
pub(crate) static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
/// `X-Forwarded-Proto`.
pub(crate) static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
/// `X-Forwarded-Host`.
pub(crate) static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");

/// Whether `name` is hop-by-hop by definition (not counting names listed in `Connection`).
///
/// RFC 9110 §7.6.1: "Intermediaries MUST ... remove or replace ... Connection ... and other
/// connection-specific header fields" — Proxy-Connection, Keep-Alive, TE, Transfer-Encoding and
/// Upgrade (<https://www.rfc-editor.org/rfc/rfc9110#section-7.6.1>); Trailer is framing too. Every
/// `Proxy-*` field addresses this hop (Proxy-Authorization, Proxy-Authenticate, Proxy-Connection).
fn is_hop_by_hop(name: &HeaderName) -> bool {
    name == CONNECTION
        || name == KEEP_ALIVE
        || name == TE
        || name == TRAILER
        || name == TRANSFER_ENCODING
        || name == UPGRADE
        || name.as_str().starts_with("proxy-")
}

/// The tokens of every `Connection` value in `values`.
fn connection_tokens<'a>(
    values: impl IntoIterator<Item = &'a HeaderValue>,
) -> impl Iterator<Item = &'a [u8]> {
    values.into_iter().flat_map(|v| tokens(v.as_bytes()))
}

/// Whether the request asks for a protocol switch: `Upgrade` present and `Connection: upgrade`.
pub(crate) fn wants_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(UPGRADE)
        && connection_tokens(&headers.get_all(CONNECTION))
            .any(|t| t.eq_ignore_ascii_case(b"upgrade"))
}

/// Copy every end-to-end header of a client request into a fresh map for the upstream. `Host` is
/// left out (the caller sets it). With `upgrade`, `Connection: upgrade` and `Upgrade` are kept: the
/// handshake must reach the upstream for the tunnel to open.
pub(crate) fn request_headers(src: &HeaderMap, upgrade: bool, join_cookies: bool) -> HeaderMap {
    let mut dst = HeaderMap::with_capacity(src.keys_len() + 3);
    // Names that `Connection` lists are skipped as they are met (RFC 9110 §7.6.1: "a proxy ...
    // MUST parse a received Connection header field ... and remove any header field whose name
    // matches"), so the rest keep their order.
    // Looked up once. `keep-alive`, the usual token, names a field that is dropped anyway.
    let connection = src.get_all(CONNECTION);
    let listed = connection_tokens(&connection).any(|t| !t.eq_ignore_ascii_case(b"keep-alive"));
    let is_listed = |name: &HeaderName| {
        connection_tokens(&connection).any(|t| t.eq_ignore_ascii_case(name.as_ref()))
    };
    for (name, value) in src {
        if is_hop_by_hop(name)
            || name == HOST
            || (join_cookies && name == COOKIE)
            || (listed && is_listed(name))
        {
            continue;
        }
        dst.append(name.clone(), value.clone());
    }
    if join_cookies {
        if let Some(v) = joined_cookies(src) {
            dst.insert(COOKIE, v);
        }
    }
    if upgrade {
        dst.insert(CONNECTION, HeaderValue::from_static("upgrade"));
        for v in src.get_all(UPGRADE) {
            dst.append(UPGRADE, v.clone());
        }
    }
    dst
}

/// HTTP/2 may split `Cookie` into one field per pair; "these MUST be concatenated into a single
/// octet string using the two-octet delimiter of 0x3b, 0x20 (the ASCII string "; ") before being
/// passed into a non-HTTP/2 context" (<https://www.rfc-editor.org/rfc/rfc9113#section-8.2.3>).
fn joined_cookies(src: &HeaderMap) -> Option<HeaderValue> {
    let mut values = src.get_all(COOKIE).iter();
    let first = values.next()?;
    let mut joined = first.as_bytes().to_vec();
    for v in values {
        joined.extend_from_slice(b"; ");
        joined.extend_from_slice(v.as_bytes());
    }
    HeaderValue::from_bytes(&joined).ok()
}

/// Remove hop-by-hop headers from an upstream response in place. A `101` keeps `Connection` and
/// `Upgrade`, which are the switch itself.
pub(crate) fn strip_response_hop_by_hop(headers: &mut HeaderMap, switching: bool) {
    // One walk over the names (comparing a standard name is comparing two small integers) says
    // what is there, so a response pays a lookup only for what it carries: nearly always just
    // `Connection: keep-alive`. Eight blind removals cost 1,600 instructions per response.
    let fixed = [&KEEP_ALIVE, &TE, &TRAILER, &TRANSFER_ENCODING, &UPGRADE];
    let mut present = [false; 5];
    let (mut connection, mut proxy) = (false, false);
    for name in headers.keys() {
        if name == CONNECTION {
            connection = true;
        } else if let Some(i) = fixed.iter().position(|f| name == *f) {
            present[i] = true;
        } else if name.as_str().starts_with("proxy-") {
            proxy = true;
        }
    }
    if connection {
        strip_connection(headers, switching);
    }
    for (name, present) in fixed.into_iter().zip(present) {
        if present && !(switching && name == UPGRADE) {
            headers.remove(name);
        }
    }
    if proxy {
        let proxy: Vec<HeaderName> = headers
            .keys()
            .filter(|n| n.as_str().starts_with("proxy-"))
            .cloned()
            .collect();
        for name in proxy {
            headers.remove(name);
        }
    }
}

/// Take `Connection` out (a 101 keeps it) and every field it names. With a 101, `Upgrade` stays:
/// it is the switch itself. Names are looked up as they are written, which lower-cases them on
/// the stack: a token allocates nothing, whether it names a field (`x-foo`) or none (`close`).
fn strip_connection(headers: &mut HeaderMap, switching: bool) {
    // Nearly always one value: the rest is an empty Vec, which does not allocate.
    let rest: Vec<HeaderValue> = headers
        .get_all(CONNECTION)
        .iter()
        .skip(1)
        .cloned()
        .collect();
    let Some(first) = headers.remove(CONNECTION) else {
        return;
    };
    let listed = connection_tokens(std::iter::once(&first).chain(&rest))
        .filter_map(|t| std::str::from_utf8(t).ok());
    for token in listed {
        if !(switching && token.eq_ignore_ascii_case("upgrade")) {
            headers.remove(token);
        }
    }
    if switching {
        headers.insert(CONNECTION, first);
        for v in rest {
            headers.append(CONNECTION, v);
        }
    }
}

/// Set the `X-Forwarded-*` headers: append the peer to `X-Forwarded-For`, set `-Proto` to the
/// listener's scheme and `-Host` to the request's authority.
/// `host` is the request's authority as a value (see [`host_value`]).
pub(crate) fn set_forwarded(
    dst: &mut HeaderMap,
    src: &HeaderMap,
    peer: std::net::IpAddr,
    scheme: Scheme,
    host: Option<HeaderValue>,
) {
    let mut xff = Vec::with_capacity(64);
    for v in src.get_all(&X_FORWARDED_FOR) {
        xff.extend_from_slice(v.as_bytes());
        xff.extend_from_slice(b", ");
    }
    // Written straight into the header's buffer, which becomes the value without a copy.
    push_ip(&mut xff, peer);
    if let Ok(v) = HeaderValue::from_maybe_shared(bytes::Bytes::from(xff)) {
        dst.insert(&X_FORWARDED_FOR, v);
    }
    dst.insert(
        &X_FORWARDED_PROTO,
        HeaderValue::from_static(scheme.as_str()),
    );
    match host {
        Some(v) => dst.insert(&X_FORWARDED_HOST, v),
        None => dst.remove(&X_FORWARDED_HOST),
    };
}

/// `ip` as `Display` writes it. IPv4 by hand: `Display` goes through the formatter's padding
/// machinery, about 1,000 instructions a forwarded request (a sixth of building it), where four
/// `itoa` calls take 60.
fn push_ip(buf: &mut Vec<u8>, ip: std::net::IpAddr) {
    match ip {
        std::net::IpAddr::V4(v4) => {
            let mut digits = itoa::Buffer::new();
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    buf.push(b'.');
                }
                buf.extend_from_slice(digits.format(octet).as_bytes());
            }
        }
        std::net::IpAddr::V6(_) => {
            let _ = std::io::Write::write_fmt(buf, format_args!("{ip}"));
        }
    }
}

/// `host` as a header value: the request's own `Host` value when that is what `host` came from (a
/// reference count, no copy), else a copy.
pub(crate) fn host_value(src: &HeaderMap, host: &str) -> Option<HeaderValue> {
    match src.get(HOST) {
        Some(v) if v.as_bytes() == host.as_bytes() => Some(v.clone()),
        _ => HeaderValue::from_str(host).ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            h.append(*n, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn a_peer_address_is_written_as_display_writes_it() {
        for ip in [
            "0.0.0.0",
            "127.0.0.1",
            "10.20.255.9",
            "::1",
            "2001:db8::7",
            "::ffff:1.2.3.4",
        ] {
            let ip: std::net::IpAddr = ip.parse().unwrap();
            let mut buf = b"x, ".to_vec();
            push_ip(&mut buf, ip);
            assert_eq!(buf, format!("x, {ip}").into_bytes());
        }
    }

    #[test]
    fn hop_by_hop_and_connection_listed_headers_are_not_forwarded() {
        let src = map(&[
            ("connection", "keep-alive, X-Secret"),
            ("keep-alive", "timeout=5"),
            ("x-secret", "1"),
            ("te", "trailers"),
            ("proxy-authorization", "Basic x"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "h2c"),
            ("host", "a.example"),
            ("x-kept", "yes"),
            ("accept", "a"),
            ("accept", "b"),
        ]);
        let out = request_headers(&src, false, false);
        let names: Vec<_> = out.keys().map(HeaderName::as_str).collect();
        assert_eq!(names, ["x-kept", "accept"]);
        assert_eq!(out.get_all("accept").iter().count(), 2);
    }

    #[test]
    fn an_upgrade_keeps_its_handshake_headers() {
        let src = map(&[
            ("connection", "Upgrade"),
            ("upgrade", "websocket"),
            ("sec-websocket-key", "k"),
        ]);
        assert!(wants_upgrade(&src));
        let out = request_headers(&src, true, false);
        assert_eq!(out["connection"], "upgrade");
        assert_eq!(out["upgrade"], "websocket");
        assert_eq!(out["sec-websocket-key"], "k");
        assert!(!wants_upgrade(&map(&[("upgrade", "websocket")])));
    }

    #[test]
    fn http2_cookies_are_joined_for_http1() {
        let src = map(&[("cookie", "a=1"), ("cookie", "b=2")]);
        let out = request_headers(&src, false, true);
        assert_eq!(out.get_all("cookie").iter().count(), 1);
        assert_eq!(out["cookie"], "a=1; b=2");
    }

    #[test]
    fn forwarded_for_is_appended_and_proto_host_are_set() {
        let src = map(&[
            ("x-forwarded-for", "1.1.1.1"),
            ("x-forwarded-for", "2.2.2.2"),
        ]);
        let mut dst = src.clone();
        dst.insert(&X_FORWARDED_PROTO, HeaderValue::from_static("spoofed"));
        let peer = std::net::IpAddr::from([127, 0, 0, 1]);
        set_forwarded(
            &mut dst,
            &src,
            peer,
            Scheme::Http,
            host_value(&src, "api.example:8080"),
        );
        assert_eq!(dst["x-forwarded-for"], "1.1.1.1, 2.2.2.2, 127.0.0.1");
        assert_eq!(dst.get_all("x-forwarded-for").iter().count(), 1);
        assert_eq!(dst["x-forwarded-proto"], "http");
        assert_eq!(dst["x-forwarded-host"], "api.example:8080");
    }

    #[test]
    fn response_hop_by_hop_and_cors_headers_are_removed() {
        let mut h = map(&[
            ("connection", "close, x-hop"),
            ("x-hop", "1"),
            ("transfer-encoding", "chunked"),
            ("access-control-allow-origin", "*"),
            ("access-control-allow-origin", "https://evil.example"),
            ("Access-Control-Expose-Headers", "x"),
            ("content-type", "text/plain"),
        ]);
        strip_response_hop_by_hop(&mut h, false);
        crate::policy::response::strip_cors(&mut h);
        let names: Vec<_> = h.keys().map(HeaderName::as_str).collect();
        assert_eq!(names, ["content-type"]);

        let mut h = map(&[("connection", "upgrade"), ("upgrade", "websocket")]);
        strip_response_hop_by_hop(&mut h, true);
        assert_eq!(h["upgrade"], "websocket");
        assert_eq!(h["connection"], "upgrade");
    }
}
