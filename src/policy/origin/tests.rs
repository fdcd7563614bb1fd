use super::*;
use crate::policy::decision::OriginRule;

fn allowed(patterns: &[&str]) -> AllowedOrigins {
    let mut a = AllowedOrigins::default();
    for p in patterns {
        a.add(&OriginPattern::parse(p).unwrap(), p);
    }
    a
}

fn allows(a: &AllowedOrigins, origin: &str) -> bool {
    RequestOrigin::parse(origin)
        .ok()
        .and_then(|o| a.find(&o))
        .is_some()
}

#[test]
fn origins_are_normalised_lowercase_without_default_port() {
    let o = Origin::parse("HTTPS://App.Example.COM:443").unwrap();
    assert_eq!(o.to_string(), "https://app.example.com");
    let o = Origin::parse("http://localhost:8080").unwrap();
    assert_eq!(o.port(), Some(8080));
    let r = RequestOrigin::parse("https://a.example:443").unwrap();
    assert_eq!(r.serialized, "https://a.example");
    let r = RequestOrigin::parse("https://a.example").unwrap();
    assert!(matches!(r.serialized, Cow::Borrowed(_)));
    assert_eq!(
        Origin::parse("http://[::1]:3000").unwrap().to_string(),
        "http://[::1]:3000"
    );
}

#[test]
fn patterns_with_path_query_userinfo_slash_or_bad_port_are_rejected() {
    use OriginError::*;
    let cases = [
        ("https://a.example/", TrailingSlash),
        ("https://a.example/x", HasPath),
        ("https://a.example?q", HasPath),
        ("https://a.example#f", HasPath),
        ("https://u@a.example", Userinfo),
        ("https://a.example:", BadPort),
        ("https://a.example:0", BadPort),
        ("https://a.example:65536", BadPort),
        ("https://a.example:+80", BadPort),
        ("https://", EmptyHost),
        ("https://:80", EmptyHost),
        ("a.example", BadScheme),
        ("1http://a.example", BadScheme),
        ("https://a*.example.com", WildcardPlacement),
        ("https://x.*.example.com", WildcardPlacement),
        ("https://bücher.example", BadHost),
        ("https://a..example", BadHost),
        ("https://a example", BadHost),
    ];
    for (p, e) in cases {
        assert_eq!(OriginPattern::parse(p), Err(e), "{p}");
    }
}

#[test]
fn wildcards_over_public_suffixes_are_rejected() {
    for p in ["https://*.com", "https://*.co.uk", "https://*.github.io"] {
        assert!(
            matches!(OriginPattern::parse(p), Err(OriginError::PublicSuffix(_))),
            "{p}"
        );
    }
    assert!(OriginPattern::parse("https://*.example.co.uk").is_ok());
    assert!(OriginPattern::parse("http://*.localhost:*").is_ok());
}

#[test]
fn exact_origins_match_only_after_normalisation_never_by_substring() {
    let a = allowed(&["https://app.example.com"]);
    assert!(allows(&a, "https://app.example.com"));
    assert!(allows(&a, "https://APP.example.com:443"));
    for bad in [
        "https://app.example.com.evil.com",
        "https://evilapp.example.com",
        "http://app.example.com",
        "https://app.example.com:8443",
        "https://app.example.co",
        "https://app.example.com/",
        "https://user@app.example.com",
        "null",
    ] {
        assert!(!allows(&a, bad), "{bad}");
    }
}

#[test]
fn wildcards_match_any_depth_but_never_the_apex_or_a_lookalike() {
    let a = allowed(&["https://*.example.com"]);
    assert!(allows(&a, "https://a.example.com"));
    assert!(allows(&a, "https://a.b.c.example.com"));
    assert!(!allows(&a, "https://example.com"));
    assert!(!allows(&a, "https://evilexample.com"));
    assert!(!allows(&a, "https://a.example.com.evil.net"));
    assert!(!allows(&a, "https://a.example.com:8443"));
    assert!(!allows(&a, "http://a.example.com"));
}

#[test]
fn any_port_patterns_include_the_default_port() {
    let a = allowed(&["http://localhost:*", "https://*.dev.example:*"]);
    assert!(allows(&a, "http://localhost"));
    assert!(allows(&a, "http://localhost:3000"));
    assert!(!allows(&a, "https://localhost:3000"));
    assert!(!allows(&a, "http://localhost.evil:3000"));
    assert!(allows(&a, "https://x.dev.example:9"));
    assert!(!allows(&a, "https://dev.example:9"));
}

#[test]
fn any_origin_and_regexes_match_through_the_same_find() {
    let a = allowed(&["*"]);
    assert_eq!(
        RequestOrigin::parse("https://x.y")
            .ok()
            .and_then(|o| a.find(&o)),
        Some(OriginRule::Any)
    );
    let mut a = AllowedOrigins::default();
    let set = regex::RegexSet::new([r"^(?:https://pr-[0-9]+\.preview\.example)$"]).unwrap();
    a.set_regexes(set, vec![r"https://pr-[0-9]+\.preview\.example".into()]);
    assert!(allows(&a, "https://pr-12.preview.example"));
    assert!(!allows(&a, "https://pr-12.preview.example.evil"));
    assert_eq!(a.counts(), (0, 0, 1));
}

#[test]
fn trailing_dot_hosts_are_distinct_origins_matched_only_with_the_dot() {
    let r = RequestOrigin::parse("https://example.com.").unwrap();
    assert_eq!(
        (&*r.host, &*r.serialized),
        ("example.com.", "https://example.com.")
    );
    assert_eq!(
        RequestOrigin::parse("http://LOCALHOST.:3000")
            .unwrap()
            .serialized,
        "http://localhost.:3000"
    );
    let a = allowed(&["https://example.com.", "http://localhost.:3000"]);
    assert!(allows(&a, "https://example.com."));
    assert!(allows(&a, "http://localhost.:3000"));
    assert!(!allows(&a, "https://example.com"));
    assert!(!allows(&a, "http://localhost:3000"));
    let a = allowed(&["https://example.com"]);
    assert!(!allows(&a, "https://example.com."));
    assert!(allows(&allowed(&["*"]), "https://example.com."));
}

#[test]
fn a_wildcard_matches_trailing_dot_hosts_only_when_it_has_the_dot() {
    let plain = allowed(&["https://*.example.com"]);
    assert!(!allows(&plain, "https://a.example.com."));
    let dotted = allowed(&["https://*.example.com."]);
    assert!(allows(&dotted, "https://a.example.com."));
    assert!(!allows(&dotted, "https://a.example.com"));
    assert!(!allows(&dotted, "https://example.com."));
    assert!(matches!(
        OriginPattern::parse("https://*.com."),
        Err(OriginError::PublicSuffix(_))
    ));
}

#[test]
fn empty_labels_and_oversized_hosts_are_still_refused() {
    use OriginError::*;
    let long_label = format!("https://{}.example", "a".repeat(64));
    let long_host = format!("https://{}example", "ab.".repeat(90));
    for (p, e) in [
        ("https://example.com..", BadHost),
        ("https://.", BadHost),
        ("https://.example.com", BadHost),
        (long_label.as_str(), LabelTooLong),
        (long_host.as_str(), HostTooLong),
    ] {
        assert_eq!(OriginPattern::parse(p), Err(e.clone()), "{p}");
        assert_eq!(RequestOrigin::parse(p), Err(e), "{p}");
    }
}

#[test]
fn the_exact_fast_path_agrees_with_parse_and_find() {
    let lists: [&[&str]; 4] = [
        &[
            "https://app.example.com",
            "http://localhost:3000",
            "https://example.com.",
        ],
        // An any-port entry first: `find` answers with it, so the fast path must step aside.
        &[
            "https://a.example:*",
            "https://a.example",
            "https://b.example:8443",
        ],
        &[
            "https://*.example.com",
            "https://x.example.com",
            "http://[::1]:8080",
        ],
        &["*", "https://app.example.com"],
    ];
    let requests = [
        "https://app.example.com",
        "HTTPS://app.example.com",
        "https://app.example.com:443",
        "http://localhost:3000",
        "http://localhost:3001",
        "https://example.com.",
        "https://a.example",
        "https://b.example:8443",
        "https://b.example",
        "https://x.example.com",
        "http://[::1]:8080",
        "https://evil.example",
        "https://app.example.com.evil.example",
    ];
    for list in lists {
        let a = allowed(list);
        for text in requests {
            let slow = RequestOrigin::parse(text).ok();
            let rule = slow.as_ref().and_then(|o| a.find(o));
            match a.exact(text) {
                Some(fast) => {
                    assert_eq!(Some(&fast), slow.as_ref(), "{list:?} {text}");
                    assert_eq!(rule, Some(OriginRule::Exact), "{list:?} {text}");
                }
                // Only canonical text can take the fast path; everything else must still work.
                None => assert!(
                    rule != Some(OriginRule::Exact)
                        || slow.as_ref().is_some_and(|o| o.serialized != text),
                    "{list:?} {text}: an exact, canonical origin missed the fast path"
                ),
            }
        }
    }
}
