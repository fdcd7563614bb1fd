//! Probing `allowed_origin_regex` entries for the classic mistakes before they reach production: a
//! regex that matches `null`, an origin with a path or userinfo (`https://evil.test/.example.com`), or,
//! with credentials, an arbitrary origin.
//!
//! Regex intersection is not something the regex crate offers, so this samples: it walks the regex's
//! HIR and builds strings that the regex matches, choosing hostile characters (`/`, `@`, `?`) wherever a
//! class or `.` admits them. A hit is a definite problem with a concrete example to print; a miss is
//! not a proof, which is why the docs still ask for tight regexes.

use regex_syntax::hir::{Class, Hir, HirKind};

/// Characters tried, in order, wherever the regex leaves a choice.
const HOSTILE: [char; 4] = ['/', '@', '?', '#'];
const PLAIN: [char; 3] = ['a', 'x', '0'];

/// An example string the regex matches that is not a plain origin, if the sampler finds one.
pub(super) fn non_origin_example(re: &regex::Regex, hir: &Hir) -> Option<String> {
    for hostile in HOSTILE {
        let mut out = String::new();
        sample(hir, &mut out, Some(hostile), 0);
        if re.is_match(&out) && !is_plain_origin(&out) {
            return Some(out);
        }
    }
    None
}

/// Whether the regex lets in unrelated sites: tried with a few attacker-controlled origins.
pub(super) fn arbitrary_origin_example(re: &regex::Regex, hir: &Hir) -> Option<String> {
    let mut probes = vec![
        "https://attacker.invalid".to_owned(),
        "http://attacker.invalid".to_owned(),
    ];
    let mut out = String::new();
    sample(hir, &mut out, None, 0);
    // The plain sample with a different host prefix: catches `https://.*example\.com`.
    if let Some(rest) = out.strip_prefix("https://") {
        probes.push(format!("https://attacker{rest}"));
    }
    probes.into_iter().find(|p| re.is_match(p))
}

fn is_plain_origin(s: &str) -> bool {
    s == "null" || crate::policy::Origin::parse(s).is_ok()
}

/// Append one string the HIR matches, preferring `hostile` where a class allows it.
fn sample(hir: &Hir, out: &mut String, hostile: Option<char>, depth: usize) {
    if depth > 64 {
        return;
    }
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => {}
        HirKind::Literal(lit) => out.push_str(&String::from_utf8_lossy(&lit.0)),
        HirKind::Class(class) => {
            if let Some(c) = pick(class, hostile) {
                out.push(c);
            }
        }
        HirKind::Repetition(rep) => {
            // At least once when allowed, so that `.*` gets a chance to hold a hostile character.
            let n = if rep.max == Some(0) {
                0
            } else {
                rep.min.max(1)
            };
            for _ in 0..n.min(4) {
                sample(&rep.sub, out, hostile, depth + 1);
            }
        }
        HirKind::Capture(cap) => sample(&cap.sub, out, hostile, depth + 1),
        HirKind::Concat(parts) => {
            for p in parts {
                sample(p, out, hostile, depth + 1);
            }
        }
        HirKind::Alternation(alts) => {
            if let Some(first) = alts.first() {
                sample(first, out, hostile, depth + 1);
            }
        }
    }
}

fn pick(class: &Class, hostile: Option<char>) -> Option<char> {
    let contains = |c: char| match class {
        Class::Unicode(u) => u.ranges().iter().any(|r| r.start() <= c && c <= r.end()),
        Class::Bytes(b) => {
            c.is_ascii()
                && b.ranges()
                    .iter()
                    .any(|r| r.start() <= c as u8 && c as u8 <= r.end())
        }
    };
    if let Some(h) = hostile.filter(|h| contains(*h)) {
        return Some(h);
    }
    if let Some(c) = PLAIN.into_iter().find(|c| contains(*c)) {
        return Some(c);
    }
    match class {
        Class::Unicode(u) => u.ranges().first().map(|r| r.start()),
        Class::Bytes(b) => b.ranges().first().map(|r| r.start() as char),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compile(re: &str) -> (regex::Regex, Hir) {
        let anchored = format!("^(?:{re})$");
        (
            regex::Regex::new(&anchored).unwrap(),
            regex_syntax::parse(&anchored).unwrap(),
        )
    }

    #[test]
    fn a_dot_star_before_the_domain_is_caught_with_an_example() {
        let (re, hir) = compile(r"https://.*\.example\.com");
        let ex = non_origin_example(&re, &hir).unwrap();
        assert!(re.is_match(&ex) && ex.contains('/'), "{ex}");
        assert!(arbitrary_origin_example(&re, &hir).is_some());
    }

    #[test]
    fn a_tight_regex_passes() {
        let (re, hir) = compile(r"https://pr-[0-9]+\.preview\.example\.com");
        assert_eq!(non_origin_example(&re, &hir), None);
        assert_eq!(arbitrary_origin_example(&re, &hir), None);
    }
}
