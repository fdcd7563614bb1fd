//! The path a request is routed on, and forwarded with: RFC 3986 §6.2.2 normalised.
//!
//! Upstreams read a path in many ways: Go's net/http and nginx resolve dot-segments, Spring and most
//! frameworks decode `%61` to `a`, nginx merges `//`. If corsgate routed on the raw bytes, `/%61dmin`,
//! `/./admin` or `//admin` would be matched against the `/` route while the upstream serves `/admin`,
//! and a stricter route's policy would be escaped. So the path is normalised once, routing uses it,
//! and the upstream receives exactly it: no two parties read one request differently.
//!
//! What changes: percent-escapes of unreserved characters (`A-Z a-z 0-9 - . _ ~`) are decoded, the
//! hex digits of the remaining escapes are upper-cased, dot-segments are removed (RFC 3986 §5.2.4),
//! and runs of `/` become one. Reserved escapes such as `%2F` stay encoded: decoding them would
//! change which segments the path has. Hand-written because no maintained crate does exactly this on
//! a path alone (the `url` crate's parser also does it, but only on a whole URL with a base, and
//! allocates for every request); the fast path below returns the input untouched.

use std::borrow::Cow;

/// The normalised form of `path` (which starts with `/`). Borrowed when already normal, which is
/// every path a well-behaved client sends.
pub(crate) fn normalize(path: &str) -> Cow<'_, str> {
    if is_normal(path) {
        return Cow::Borrowed(path);
    }
    let decoded = decode_unreserved(path);
    Cow::Owned(remove_dot_segments(&decoded))
}

/// No `%`, no `//`, and no segment that is `.` or `..`.
fn is_normal(path: &str) -> bool {
    let b = path.as_bytes();
    if b.contains(&b'%') {
        return false;
    }
    let mut prev = 0u8;
    for (i, &c) in b.iter().enumerate() {
        if prev == b'/' {
            if c == b'/' {
                return false;
            }
            if c == b'.' {
                let rest = &b[i..];
                if matches!(
                    rest,
                    [b'.'] | [b'.', b'/', ..] | [b'.', b'.'] | [b'.', b'.', b'/', ..]
                ) {
                    return false;
                }
            }
        }
        prev = c;
    }
    true
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

fn is_unreserved(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~')
}

/// Decode the escapes of unreserved characters; upper-case the hex of the others. A `%` not followed
/// by two hex digits is left as it is (the upstream sees it as it was sent).
fn decode_unreserved(path: &str) -> String {
    let b = path.as_bytes();
    let mut out = String::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                let v = h * 16 + l;
                if is_unreserved(v) {
                    out.push(char::from(v));
                } else {
                    out.push('%');
                    out.push(char::from(b[i + 1].to_ascii_uppercase()));
                    out.push(char::from(b[i + 2].to_ascii_uppercase()));
                }
                i += 3;
                continue;
            }
        }
        // A URI path is ASCII (hyper rejects anything else), so bytes are chars; a stray non-ASCII
        // byte would only come from a caller that passed a non-URI string, and is kept as U+FFFD.
        out.push(if b[i].is_ascii() {
            char::from(b[i])
        } else {
            '\u{fffd}'
        });
        i += 1;
    }
    out
}

/// RFC 3986 §5.2.4 on an absolute path, with empty segments dropped (`//` merged). A path that
/// ends in `/`, `/.` or `/..` keeps a trailing `/`; `..` never climbs above the root.
fn remove_dot_segments(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    let mut trailing = false;
    for segment in path.split('/') {
        trailing = false;
        match segment {
            "" => trailing = true,
            "." => trailing = true,
            ".." => {
                segments.pop();
                trailing = true;
            }
            s => segments.push(s),
        }
    }
    let mut out = String::with_capacity(path.len());
    for s in &segments {
        out.push('/');
        out.push_str(s);
    }
    if trailing || segments.is_empty() {
        out.push('/');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equivalent_forms_of_one_path_normalise_to_it() {
        for form in [
            "/admin/secret",
            "/%61dmin/secret",
            "/adm%69n/secret",
            "/%61%64%6D%69%6E/secret",
            "/./admin/secret",
            "/x/../admin/secret",
            "/x/%2e%2e/admin/secret",
            "/x/%2E./admin/secret",
            "//admin//secret",
            "/../../admin/secret",
            "/admin/./secret",
            "/admin/secret/x/..",
        ] {
            let want = if form.ends_with("..") {
                "/admin/secret/"
            } else {
                "/admin/secret"
            };
            assert_eq!(normalize(form), want, "{form}");
        }
    }

    #[test]
    fn reserved_escapes_stay_encoded_with_upper_case_hex() {
        assert_eq!(normalize("/a%2fb"), "/a%2Fb");
        assert_eq!(normalize("/a%2Fb/%3f"), "/a%2Fb/%3F");
        assert_eq!(normalize("/a%zz/%4"), "/a%zz/%4");
        assert_eq!(normalize("/%"), "/%");
    }

    #[test]
    fn normal_paths_are_borrowed_and_kept() {
        for p in [
            "/",
            "/v1",
            "/v1/",
            "/.well-known/x",
            "/a..b/c.",
            "/a/.hidden",
            "/~u/x-y_z",
        ] {
            assert!(matches!(normalize(p), Cow::Borrowed(_)), "{p}");
            assert_eq!(normalize(p), p);
        }
    }

    #[test]
    fn dot_segments_resolve_as_rfc_3986_says() {
        assert_eq!(normalize("/a/b/c/./../../g"), "/a/g");
        assert_eq!(normalize("/."), "/");
        assert_eq!(normalize("/.."), "/");
        assert_eq!(normalize("/a/.."), "/");
        assert_eq!(normalize("/a/b/"), "/a/b/");
        assert_eq!(normalize("//"), "/");
    }
}
