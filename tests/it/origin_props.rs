//! Property tests: no mutation of an allowed origin is ever allowed, and the parsers never panic on
//! arbitrary input.

use std::path::Path;

use http::header::{HeaderMap, HeaderValue, ORIGIN};
use http::Method;
use proptest::prelude::*;

use corsgate::Snapshot;
use corsgate::{OriginPattern, RequestOrigin, RequestView, Scheme};

const ALLOWED: [&str; 4] = [
    "https://app.example.com",
    "https://admin.example.com:8443",
    "http://localhost:3000",
    "https://xn--bcher-kva.example",
];

fn snapshot() -> Snapshot {
    let origins: Vec<String> = ALLOWED.iter().map(|o| format!("{o:?}")).collect();
    let toml = format!(
        r#"
[upstreams.u]
url = "http://127.0.0.1:1"
[policies.p]
allowed_origins = [{}, "https://*.wild.example.org"]
allow_credentials = true
[[routes]]
upstream = "u"
policy = "p"
"#,
        origins.join(", ")
    );
    corsgate::load_str(&toml, Path::new("props.toml"))
        .unwrap()
        .snapshot
}

fn decision(s: &Snapshot, origin: &str) -> Option<&'static str> {
    let value = HeaderValue::from_str(origin).ok()?;
    let mut headers = HeaderMap::new();
    headers.insert(ORIGIN, value);
    let view = RequestView {
        method: &Method::GET,
        scheme: Scheme::Https,
        host: corsgate::Authority::parse("api.internal").ok(),
        path: "/",
        headers: &headers,
    };
    Some(s.evaluate(&view).outcome().as_str())
}

/// Mutations an attacker would try on an allowed origin, none of which is the same origin.
fn mutate(origin: &str, kind: u8, junk: &str) -> String {
    let (scheme, rest) = origin.split_once("://").unwrap();
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (rest, None),
    };
    let port_s = port.map(|p| format!(":{p}")).unwrap_or_default();
    let junk = if junk.is_empty() { "x" } else { junk };
    match kind % 12 {
        0 => format!("{origin}{junk}"), // suffix on the port or host
        1 => format!("{scheme}://{junk}{host}{port_s}"), // prefix on the host
        2 => format!("{scheme}://{host}.{junk}{port_s}"), // the allowed host as a subdomain
        3 => format!("{scheme}://{junk}@{host}{port_s}"), // userinfo
        4 => format!("{origin}/{junk}"), // path
        5 => format!(
            "{scheme}://{host}:{}",
            port.map_or(1, |p| p.len() as u16 + 1000)
        ), // port
        6 => {
            let other = if scheme == "https" { "http" } else { "https" };
            format!("{other}://{rest}")
        }
        7 => format!("{scheme}://{host}{junk}{port_s}"), // host with appended label chars
        8 => format!("{origin}.{junk}"),
        9 => format!(
            "{scheme}://{}{port_s}",
            host.replace("xn--bcher-kva", "bücher")
        ), // IDN
        10 => format!("{scheme}://{junk}.{host}{port_s}"), // subdomain of an exact origin
        _ => format!("{scheme}:/{rest}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn no_mutated_origin_is_ever_allowed(
        which in 0usize..ALLOWED.len(),
        kind in any::<u8>(),
        junk in "[a-z0-9.-]{0,8}",
    ) {
        let s = snapshot();
        let original = ALLOWED[which];
        let mutated = mutate(original, kind, &junk);
        // A mutation that normalises back to the original (e.g. an explicit default port) is the
        // same origin; everything else must be refused.
        let same = RequestOrigin::parse(&mutated)
            .ok()
            .zip(RequestOrigin::parse(original).ok())
            .is_some_and(|(a, b)| a.serialized == b.serialized);
        prop_assume!(!same);
        prop_assert_ne!(decision(&s, &mutated), Some("allowed"), "{} from {}", mutated, original);
    }

    #[test]
    fn case_variants_of_allowed_origins_are_the_same_origin(which in 0usize..ALLOWED.len(), mask in any::<u64>()) {
        let s = snapshot();
        let varied: String = ALLOWED[which]
            .chars()
            .enumerate()
            .map(|(i, c)| if mask >> (i % 64) & 1 == 1 { c.to_ascii_uppercase() } else { c })
            .collect();
        prop_assert_eq!(decision(&s, &varied), Some("allowed"));
    }

    #[test]
    fn wildcard_never_matches_lookalikes(prefix in "[a-z]{1,10}") {
        let s = snapshot();
        let lookalike = format!("https://{prefix}wild.example.org");
        prop_assert_ne!(decision(&s, &lookalike), Some("allowed"));
        let apex = "https://wild.example.org";
        prop_assert_ne!(decision(&s, apex), Some("allowed"));
        let sub = format!("https://{prefix}.wild.example.org");
        prop_assert_eq!(decision(&s, &sub), Some("allowed"));
    }

    #[test]
    fn parsers_never_panic_on_arbitrary_input(input in "\\PC{0,80}", bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
        let _ = OriginPattern::parse(&input);
        let _ = RequestOrigin::parse(&input);
        let s = snapshot();
        let _ = decision(&s, &input);
        if let Ok(v) = HeaderValue::from_bytes(&bytes) {
            let mut headers = HeaderMap::new();
            headers.insert(ORIGIN, v.clone());
            headers.insert("access-control-request-method", v.clone());
            headers.insert("access-control-request-headers", v);
            let view = RequestView { method: &Method::OPTIONS, scheme: Scheme::Http, host: corsgate::Authority::parse(&input).ok(), path: "/", headers: &headers };
            let _ = s.evaluate(&view);
        }
    }

    #[test]
    fn config_parser_never_panics(text in "\\PC{0,200}") {
        let _ = corsgate::load_str(&text, Path::new("fuzz.toml"));
    }
}

fn snapshot_of(origins: &str) -> Snapshot {
    let toml = format!(
        "[upstreams.u]\nurl = \"http://127.0.0.1:1\"\n[policies.p]\nallowed_origins = [{origins}]\n\
         [[routes]]\nupstream = \"u\"\npolicy = \"p\"\n"
    );
    corsgate::load_str(&toml, Path::new("dots.toml"))
        .unwrap()
        .snapshot
}

#[test]
fn a_trailing_dot_origin_is_allowed_by_its_pattern_and_is_not_malformed_under_any() {
    let any = snapshot_of(r#""*""#);
    assert_eq!(decision(&any, "https://example.com."), Some("allowed"));
    assert_eq!(decision(&any, "http://localhost.:3000"), Some("allowed"));
    let dotted = snapshot_of(r#""https://example.com.", "https://*.example.org.""#);
    assert_eq!(decision(&dotted, "https://example.com."), Some("allowed"));
    assert_eq!(decision(&dotted, "https://a.example.org."), Some("allowed"));
    assert_ne!(decision(&dotted, "https://example.com"), Some("allowed"));
    assert_ne!(decision(&dotted, "https://a.example.org"), Some("allowed"));
    let plain = snapshot_of(r#""https://example.com", "https://*.example.org""#);
    assert_ne!(decision(&plain, "https://example.com."), Some("allowed"));
    assert_ne!(decision(&plain, "https://a.example.org."), Some("allowed"));
}
