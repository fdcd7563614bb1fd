//! `Authority`: the request's `Host` (or h2 `:authority`, or absolute-form target), parsed once per
//! request and then read by routing, the same-origin check and the access log alike, so that no two
//! of them can disagree about which host a request is for.

/// A syntactically valid `uri-host [ ":" port ]` (RFC 9110 §7.2): a reg-name, an IPv4 address or a
/// bracketed IPv6 literal. No userinfo (RFC 9113 §8.3.1 and RFC 9110 §4.2.4 forbid it in a request's
/// authority; accepting it would route `evil@internal.example` as a host of its own), no path, no
/// whitespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Authority<'a> {
    text: &'a str,
    /// Length of the host part (brackets included).
    host_len: usize,
    /// The port, when one is given and not empty.
    port: Option<u16>,
}

/// Why a `Host` value is not an authority.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not a valid authority (host[:port], no userinfo)")]
pub struct InvalidAuthority;

impl<'a> Authority<'a> {
    /// Parse and validate `s`.
    pub fn parse(s: &'a str) -> Result<Authority<'a>, InvalidAuthority> {
        let (host, port) = match s.strip_prefix('[') {
            Some(rest) => {
                let close = position(rest, b']').ok_or(InvalidAuthority)?;
                let ip = &rest[..close];
                let ok = !ip.is_empty()
                    && ip
                        .bytes()
                        .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
                if !ok {
                    return Err(InvalidAuthority);
                }
                let tail = &rest[close + 1..];
                let port = match tail {
                    "" => None,
                    t => Some(t.strip_prefix(':').ok_or(InvalidAuthority)?),
                };
                (&s[..close + 2], port)
            }
            None => match rposition(s, b':') {
                Some(i) => (&s[..i], Some(&s[i + 1..])),
                None => (s, None),
            },
        };
        let reg_name_ok = host.starts_with('[')
            || (!host.is_empty() && host.bytes().all(|b| REG_NAME_BYTE[usize::from(b)]));
        if !reg_name_ok {
            return Err(InvalidAuthority);
        }
        let port = match port {
            // `host:` is allowed (RFC 3986 §3.2.3: an empty port means the default).
            None | Some("") => None,
            Some(p) if p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => {
                Some(p.parse::<u16>().map_err(|_| InvalidAuthority)?)
            }
            Some(_) => return Err(InvalidAuthority),
        };
        Ok(Authority {
            text: s,
            host_len: host.len(),
            port,
        })
    }

    /// The whole value as sent (for `X-Forwarded-Host`, `preserve_host` and the access log).
    pub fn as_str(&self) -> &'a str {
        self.text
    }

    /// The host without the port; IPv6 brackets kept. Case as sent.
    pub fn host(&self) -> &'a str {
        &self.text[..self.host_len]
    }

    /// The port, if one was given.
    pub fn port(&self) -> Option<u16> {
        self.port
    }
}

impl std::fmt::Display for Authority<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.text)
    }
}

/// Bytes of an RFC 3986 reg-name: unreserved, sub-delims and `%` (of pct-encoded). A table, as
/// this runs on every request's `Host`.
static REG_NAME_BYTE: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
                    | b'%'
            );
        i += 1;
    }
    t
};

/// `str::rfind` for one ASCII byte. A plain loop: the strings here are a few dozen bytes, where
/// the generic searcher's setup costs more than the scan.
#[inline]
pub(crate) fn rposition(s: &str, b: u8) -> Option<usize> {
    s.as_bytes().iter().rposition(|x| *x == b)
}

/// `str::find` for one ASCII byte; see [`rposition`].
#[inline]
pub(crate) fn position(s: &str, b: u8) -> Option<usize> {
    s.as_bytes().iter().position(|x| *x == b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_values_are_checked_as_authorities() {
        for (ok, host, port) in [
            ("a.example", "a.example", None),
            ("a.example:8080", "a.example", Some(8080)),
            ("127.0.0.1:1", "127.0.0.1", Some(1)),
            ("[::1]", "[::1]", None),
            ("[::1]:80", "[::1]", Some(80)),
            ("x:", "x", None),
        ] {
            let a = Authority::parse(ok).unwrap_or_else(|_| panic!("{ok}"));
            assert_eq!((a.host(), a.port(), a.as_str()), (host, port, ok));
        }
        for bad in [
            "",
            "a b",
            "a/b",
            "u@a.example",
            "evil@internal.example:80",
            "a:80:80",
            "[::1",
            "[zz]",
            "[::1]x",
            "a:123456",
            "a:99999",
            ":80",
        ] {
            assert_eq!(Authority::parse(bad), Err(InvalidAuthority), "{bad}");
        }
    }
}
