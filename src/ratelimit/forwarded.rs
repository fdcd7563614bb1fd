//! The client address in `X-Forwarded-For` behind `trusted_hops` proxies.
//!
//! Each proxy appends the address it received the request from, so the list reads
//! `client-written..., client, proxy1, ..., proxyN-1` by the time it reaches corsgate, and only the
//! last `trusted_hops` entries were written by proxies the operator trusts. The entry `trusted_hops`
//! from the right is the address the outermost trusted proxy saw: the client. Everything left of it
//! is whatever the client chose to send, so it is never read (MDN, "X-Forwarded-For: Security and
//! privacy concerns": "only the rightmost IP address is trustworthy ... when using a trusted proxy").
//!
//! Several `X-Forwarded-For` lines are one list in order (RFC 9110 §5.3). The walk goes from the
//! right and stops at the entry it needs, so a long header costs no more than its tail.

use std::net::{IpAddr, SocketAddr};

use http::header::HeaderMap;

use crate::proxy::X_FORWARDED_FOR;

/// The address `trusted_hops` entries from the right of the request's `X-Forwarded-For`, or `None`
/// when the list is shorter or that entry is not an IP address (with or without a port): the caller
/// then keys by the TCP peer, the one address the client cannot forge.
pub(crate) fn client_address(headers: &HeaderMap, trusted_hops: u32) -> Option<IpAddr> {
    let nth = usize::try_from(trusted_hops).ok()?.checked_sub(1)?;
    let entry = headers
        .get_all(&X_FORWARDED_FOR)
        .iter()
        .rev()
        .flat_map(|line| line.as_bytes().rsplit(|b| *b == b','))
        .nth(nth)?;
    parse_entry(entry)
}

/// One list entry: an IPv4 or IPv6 address, optionally `IPv4:port` or `[IPv6]:port` (some proxies
/// append the port), surrounded by optional whitespace.
fn parse_entry(entry: &[u8]) -> Option<IpAddr> {
    let text = std::str::from_utf8(entry).ok()?.trim_matches([' ', '\t']);
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Some(inner) = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
        return inner.parse().ok();
    }
    text.parse::<SocketAddr>().ok().map(|s| s.ip())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::HeaderValue;
    use proptest::prelude::*;

    fn xff(lines: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for l in lines {
            h.append(&X_FORWARDED_FOR, HeaderValue::from_str(l).unwrap());
        }
        h
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn one_trusted_hop_takes_the_rightmost_entry() {
        let h = xff(&["6.6.6.6, 203.0.113.7"]);
        assert_eq!(client_address(&h, 1), ip("203.0.113.7"));
    }

    #[test]
    fn two_trusted_hops_skip_the_inner_proxy() {
        let h = xff(&["6.6.6.6, 203.0.113.7, 10.0.0.2"]);
        assert_eq!(client_address(&h, 2), ip("203.0.113.7"));
    }

    #[test]
    fn several_lines_are_one_list_in_order() {
        let h = xff(&["6.6.6.6, 203.0.113.7", "10.0.0.2"]);
        assert_eq!(client_address(&h, 1), ip("10.0.0.2"));
        assert_eq!(client_address(&h, 2), ip("203.0.113.7"));
        assert_eq!(client_address(&h, 3), ip("6.6.6.6"));
    }

    #[test]
    fn fewer_entries_than_trusted_hops_or_no_header_gives_none() {
        assert_eq!(client_address(&xff(&["203.0.113.7"]), 2), None);
        assert_eq!(client_address(&HeaderMap::new(), 1), None);
        assert_eq!(client_address(&xff(&["203.0.113.7"]), 0), None);
    }

    #[test]
    fn an_unparsable_entry_gives_none_and_never_a_neighbour() {
        assert_eq!(client_address(&xff(&["1.2.3.4, unknown"]), 1), None);
        assert_eq!(client_address(&xff(&["1.2.3.4,,"]), 1), None);
        assert_eq!(client_address(&xff(&["1.2.3.4, _hidden"]), 1), None);
    }

    #[test]
    fn ports_brackets_and_whitespace_are_accepted() {
        assert_eq!(client_address(&xff(&[" 1.2.3.4:80 "]), 1), ip("1.2.3.4"));
        assert_eq!(
            client_address(&xff(&["[2001:db8::1]:443"]), 1),
            ip("2001:db8::1")
        );
        assert_eq!(
            client_address(&xff(&["[2001:db8::1]"]), 1),
            ip("2001:db8::1")
        );
        assert_eq!(
            client_address(&xff(&["\t2001:db8::1"]), 1),
            ip("2001:db8::1")
        );
    }

    proptest! {
        /// Whatever a client puts in front, the trusted proxies' entries decide: the key is the
        /// entry `hops` from the right, never one the client wrote.
        #[test]
        fn spoofed_left_entries_never_change_the_key(
            spoofed in prop::collection::vec("[ -+\\--~]{0,20}", 0..8),
            client in any::<std::net::Ipv4Addr>(),
            proxies in prop::collection::vec(any::<std::net::Ipv4Addr>(), 0..4),
        ) {
            let mut entries: Vec<String> = spoofed;
            entries.push(client.to_string());
            entries.extend(proxies.iter().map(ToString::to_string));
            let Ok(line) = HeaderValue::from_str(&entries.join(",")) else {
                return Ok(());
            };
            let mut h = HeaderMap::new();
            h.insert(&X_FORWARDED_FOR, line);
            let hops = u32::try_from(proxies.len() + 1).unwrap();
            prop_assert_eq!(client_address(&h, hops), Some(IpAddr::V4(client)));
        }

        /// Arbitrary bytes never panic the parser.
        #[test]
        fn arbitrary_headers_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200), hops in 0u32..6) {
            if let Ok(v) = HeaderValue::from_bytes(&bytes) {
                let mut h = HeaderMap::new();
                h.insert(&X_FORWARDED_FOR, v);
                let _ = client_address(&h, hops);
            }
        }
    }
}
