//! What `check` warns about in a policy without failing it: plain-http origins with credentials
//! that are not potentially trustworthy, and header names a browser can never act on.

/// Whether an `http` origin's host is potentially trustworthy (W3C Secure Contexts §3.1): loopback
/// by name or address, where no one on the network path can act as the origin. `host` is the
/// pattern's lowercase host, or the suffix after `*.` for a wildcard.
pub(super) fn is_potentially_trustworthy(host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host);
    if host == "localhost" || host.ends_with(".localhost") {
        return true;
    }
    if host == "[::1]" {
        return true;
    }
    host.parse::<std::net::Ipv4Addr>()
        .is_ok_and(|ip| ip.is_loopback())
}

/// Why a header name listed in `allowed_headers` (`request_side`) or `expose_headers` can never
/// take effect in a browser, or `None` when it can. Fetch's forbidden request-header names are set
/// by the browser alone, so a page can never send them and listing them allows nothing; a
/// response's `Set-Cookie` is never exposed to script; request-only names never appear on a
/// response. Names are lowercase.
pub(super) fn no_op_header(name: &str, request_side: bool) -> Option<&'static str> {
    const FORBIDDEN_REQUEST: [&str; 21] = [
        "accept-charset",
        "accept-encoding",
        "access-control-request-headers",
        "access-control-request-method",
        "access-control-request-private-network",
        "connection",
        "content-length",
        "cookie",
        "cookie2",
        "date",
        "dnt",
        "expect",
        "host",
        "keep-alive",
        "origin",
        "referer",
        "set-cookie",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    ];
    const REQUEST_ONLY: [&str; 14] = [
        "accept",
        "accept-language",
        "authorization",
        "cookie",
        "host",
        "if-match",
        "if-modified-since",
        "if-none-match",
        "if-range",
        "if-unmodified-since",
        "origin",
        "range",
        "referer",
        "user-agent",
    ];
    if request_side {
        if FORBIDDEN_REQUEST.contains(&name)
            || name == "via"
            || name.starts_with("proxy-")
            || name.starts_with("sec-")
        {
            return Some("it is a forbidden request header: browsers set it themselves and never let a page send it");
        }
        if name.starts_with("access-control-") {
            return Some(
                "Access-Control-* headers are the CORS protocol's own; a page cannot send them",
            );
        }
        return None;
    }
    if name == "set-cookie" || name == "set-cookie2" {
        return Some("browsers never expose Set-Cookie to script");
    }
    if REQUEST_ONLY.contains(&name)
        || name.starts_with("sec-")
        || name.starts_with("access-control-request-")
    {
        return Some("it is a request header, which never appears on a response");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::{is_potentially_trustworthy, no_op_header};

    #[test]
    fn loopback_hosts_are_potentially_trustworthy_and_others_are_not() {
        for host in [
            "localhost",
            "localhost.",
            "app.localhost",
            "127.0.0.1",
            "127.9.9.9",
            "[::1]",
        ] {
            assert!(is_potentially_trustworthy(host), "{host}");
        }
        for host in [
            "example.com",
            "localhost.example.com",
            "10.0.0.1",
            "[::2]",
            "128.0.0.1",
        ] {
            assert!(!is_potentially_trustworthy(host), "{host}");
        }
    }

    #[test]
    fn forbidden_and_request_only_names_are_no_ops_where_listed() {
        for name in [
            "connection",
            "proxy-authorization",
            "sec-fetch-mode",
            "access-control-allow-origin",
            "cookie",
            "origin",
        ] {
            assert!(no_op_header(name, true).is_some(), "{name}");
        }
        for name in ["authorization", "content-type", "x-token"] {
            assert!(no_op_header(name, true).is_none(), "{name}");
        }
        for name in [
            "set-cookie",
            "authorization",
            "sec-fetch-site",
            "user-agent",
        ] {
            assert!(no_op_header(name, false).is_some(), "{name}");
        }
        for name in ["x-request-id", "content-length", "etag"] {
            assert!(no_op_header(name, false).is_none(), "{name}");
        }
    }
}
