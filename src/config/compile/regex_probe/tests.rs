use super::*;

fn findings(re: &str) -> Vec<Finding> {
    let anchored = format!("^(?:{re})$");
    audit(&anchored, &regex_syntax::parse(&anchored).unwrap())
}

fn not_origin(re: &str) -> Option<String> {
    findings(re).into_iter().find_map(|f| match f {
        Finding::NotOrigin(w) => Some(w),
        _ => None,
    })
}

#[test]
fn a_dot_star_before_the_domain_is_caught_with_a_path_example() {
    let w = not_origin(r"https://.*\.example\.com").unwrap();
    assert!(
        w.contains('/')
            && regex::Regex::new(r"^https://.*\.example\.com$")
                .unwrap()
                .is_match(&w),
        "{w}"
    );
}

#[test]
fn a_later_branch_of_an_alternation_is_not_missed() {
    // The sampler this replaced followed only the first branch and let this through.
    let f = findings(r"https://a\.example\.com|https://[a-z]*example\.com");
    assert_eq!(
        f,
        vec![Finding::LabelExtended {
            domain: "example.com".into(),
            example: "https://aexample.com".into()
        }]
    );
    assert!(not_origin(r"https://a\.example\.com|https://.*example\.com").is_some());
}

#[test]
fn strings_a_browser_never_serialises_are_found() {
    for (re, witness) in [
        (
            r"https://[a-z]+\.example\.com(:443)?",
            "https://a.example.com:443",
        ),
        (r"http://localhost:[0-9]+", "http://localhost:0"),
        (r"(?i)https://app\.example\.com", "https://App.example.com"),
        (r"[a-z]+://example\.com", "a://example.com"),
        (r"https://example\.com|", ""),
    ] {
        let w = not_origin(re);
        assert!(w.is_some(), "{re}");
        if re.starts_with("(?i)") {
            assert!(w.unwrap().bytes().any(|b| b.is_ascii_uppercase()));
        } else {
            assert_eq!(w.as_deref(), Some(witness), "{re}");
        }
    }
}

#[test]
fn tight_regexes_pass() {
    for re in [
        r"https://pr-[0-9]+\.preview\.example\.com",
        r"https://pr-[0-9]+-preview\.example\.com",
        r"https?://(www\.)?example\.com",
        r"https://[a-z0-9-]+\.example\.com(:8443)?",
        r"http://localhost(:3[0-9]{3})?",
        r"http://\[::1\]:3000",
        r"https://example\.com\.",
    ] {
        assert_eq!(findings(re), vec![], "{re}");
    }
}

#[test]
fn a_label_extended_left_of_a_registrable_domain_is_reported() {
    for (re, domain) in [
        (r"https://[a-z]*example\.com", "example.com"),
        (r"https://[a-z]+-example\.com", "-example.com"),
        (r"https://([a-z]+\.)?[a-z]*corp\.co\.uk", "corp.co.uk"),
    ] {
        let f = findings(re);
        assert!(
            f.iter()
                .any(|f| matches!(f, Finding::LabelExtended { domain: d, .. } if d == domain)),
            "{re}: {f:?}"
        );
    }
}

#[test]
fn an_automaton_too_large_is_undecided_not_accepted() {
    let f = findings(r"https://[a-z]{0,40}x[a-z]{30}\.example\.com");
    assert!(matches!(f.as_slice(), [Finding::Undecided(_)]), "{f:?}");
}
