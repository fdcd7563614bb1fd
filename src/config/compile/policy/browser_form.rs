//! Whether a browser can ever send the origin a pattern names: the pattern's host is run through the
//! WHATWG host parser (the `url` crate, config side only) and compared with what was written.
//!
//! A pattern the parser rewrites (`127.1`, `0x7f.0.0.1`, an uncompressed IPv6, a Unicode name) names a
//! string no `Origin` header carries, because browsers send the serialisation
//! (<https://html.spec.whatwg.org/#ascii-serialisation-of-an-origin>); one it refuses (`xn--f`,
//! `foo.bar.255`) names no origin at all. Either way the entry could never match, so it is an error
//! that says what to write instead. Case is not such a rewrite: patterns are lowercased like the
//! requests they are compared with.

use crate::policy::OriginPattern;

/// `Err(why)` when no browser sends an origin the pattern as written would match.
pub(super) fn check(pattern: &OriginPattern) -> Result<(), String> {
    let OriginPattern::Host {
        scheme,
        host,
        wildcard,
        port,
    } = pattern
    else {
        return Ok(());
    };
    check_scheme(scheme)?;
    let parsed = url::Host::parse(host).map_err(|e| unparsable(host, &e))?;
    if *wildcard && !matches!(parsed, url::Host::Domain(_)) {
        return Err(format!(
            "a wildcard over the IP address {host} matches nothing: an IP address has no subdomains"
        ));
    }
    let serialised = parsed.to_string();
    if serialised == *host {
        return Ok(());
    }
    let sent = OriginPattern::Host {
        scheme: scheme.clone(),
        host: serialised,
        wildcard: *wildcard,
        port: *port,
    };
    Err(format!(
        "no browser sends this host as written; browsers send it as \"{sent}\""
    ))
}

/// For a pattern the strict parser refused: the form browsers send, when the only fault is a Unicode
/// host (IDNA maps it to its `xn--` form before anything is sent).
pub(super) fn hint(text: &str) -> Option<String> {
    if text.is_ascii() {
        return None;
    }
    let url = url::Url::parse(text).ok()?;
    let origin = url.origin();
    (origin.is_tuple() && url.path() == "/" && url.query().is_none())
        .then(|| format!("; browsers send it as \"{}\"", origin.ascii_serialization()))
}

fn check_scheme(scheme: &str) -> Result<(), String> {
    match scheme {
        "http" | "https" => Ok(()),
        "file" => Err(
            "file: pages send the origin \"null\", never file://…; list \"null\" if you \
                       mean them (any site can produce it)"
                .to_owned(),
        ),
        other => Err(format!(
            "no browser sends an origin with the scheme {other}: only http and https pages have an \
             origin other than \"null\" (a WebSocket sends the origin of its page)"
        )),
    }
}

fn unparsable(host: &str, e: &url::ParseError) -> String {
    let last = host.trim_end_matches('.').rsplit('.').next().unwrap_or("");
    let numeric =
        !last.is_empty() && (last.bytes().all(|b| b.is_ascii_digit()) || last.starts_with("0x"));
    if numeric {
        format!(
            "no browser can send this origin: a host whose last label is numeric is read as an IPv4 \
             address, and {host} is not one ({e})"
        )
    } else {
        format!("no browser can send this origin: the URL host parser refuses {host} ({e})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(p: &str) -> Result<(), String> {
        check(&OriginPattern::parse(p).unwrap())
    }

    #[test]
    fn hosts_browsers_rewrite_are_errors_naming_the_form_they_send() {
        for (p, sent) in [
            ("http://127.1:3999", "http://127.0.0.1:3999"),
            ("http://0x7f.0.0.1", "http://127.0.0.1"),
            ("http://[0:0:0:0:0:0:0:1]:8080", "http://[::1]:8080"),
            ("http://[::ffff:127.0.0.1]", "http://[::ffff:7f00:1]"),
            ("http://1:6060", "http://0.0.0.1:6060"),
            ("https://0177.0.0.1:*", "https://127.0.0.1:*"),
        ] {
            let e = verdict(p).unwrap_err();
            assert!(
                e.contains(&format!("browsers send it as \"{sent}\"")),
                "{p}: {e}"
            );
        }
    }

    #[test]
    fn hosts_no_browser_can_send_are_errors() {
        for p in [
            "http://foo.bar.255",
            "https://xn--f.example",
            "http://a.0x10",
        ] {
            let e = verdict(p).unwrap_err();
            assert!(e.contains("no browser can send"), "{p}: {e}");
        }
        assert!(verdict("http://foo.bar.255")
            .unwrap_err()
            .contains("numeric"));
    }

    #[test]
    fn wildcards_over_ip_addresses_and_other_schemes_are_errors() {
        assert!(verdict("http://*.127.0.0.1")
            .unwrap_err()
            .contains("IP address"));
        assert!(verdict("file://example.com")
            .unwrap_err()
            .contains("\"null\""));
        assert!(verdict("wss://example.com")
            .unwrap_err()
            .contains("scheme wss"));
        assert!(verdict("chrome-extension://abc").is_err());
    }

    #[test]
    fn origins_browsers_send_pass_including_trailing_dots_and_case() {
        for p in [
            "https://app.example.com",
            "HTTPS://App.Example.COM:443",
            "https://example.com.",
            "http://localhost.:3000",
            "https://*.example.com.",
            "http://127.0.0.1:*",
            "http://[::1]:3000",
            "http://[::ABCD]",
            "https://xn--bcher-kva.example",
            "https://a_b.example",
            "null",
            "*",
        ] {
            assert_eq!(verdict(p), Ok(()), "{p}");
        }
    }

    #[test]
    fn a_unicode_host_is_refused_with_its_punycode_form() {
        assert_eq!(
            hint("https://bücher.example").as_deref(),
            Some("; browsers send it as \"https://xn--bcher-kva.example\"")
        );
        assert_eq!(hint("https://a..example"), None);
    }
}
