//! Deciding what an `allowed_origin_regex` entry can match, before it reaches production.
//!
//! Exact, not sampled: the regex and a few reference languages are compiled to anchored dense DFAs
//! (regex-automata) and a breadth-first search over tuples of their states, one step per byte class,
//! looks for the shortest string in a combination of them: in the regex but not in the language of
//! serialised origins (a path, userinfo, an upper-case host, a default port), or in the regex and in
//! "a host label extended to the left of a literal domain the regex names" (`https://evilexample.com`
//! for `https://.*example\.com`). A hit is a proof with a concrete string to print; a miss is a proof
//! too. The search is bounded: past [`MAX_STATES`] state tuples the answer is "cannot decide", which
//! the caller reports as an error asking for a simpler regex.

use std::collections::{HashMap, VecDeque};

use regex_automata::dfa::{dense, Automaton, StartKind};
use regex_automata::util::primitives::StateID;
use regex_automata::util::start;
use regex_automata::{Anchored, MatchKind};
use regex_syntax::hir::{Hir, HirKind};

/// State tuples the search may visit before it gives up.
const MAX_STATES: usize = 50_000;
/// Bytes one DFA may take (the user's regex included).
const DFA_BYTES: usize = 8 << 20;

/// The strings `RequestOrigin::parse` hands to regexes: lowercase http(s), a host of label bytes with
/// an optional trailing dot or a bracketed IPv6 address, an optional port of 1 to 65535 without
/// leading zeros. The default port is taken out separately ([`DEFAULT_PORT`]).
const ORIGIN: &str = r"https?://(?:[a-z0-9_-]+(?:\.[a-z0-9_-]+)*\.?|\[[0-9a-f:.]+\])(?::(?:[1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?";
/// An explicit default port, which the serialisation drops.
const DEFAULT_PORT: &str = r"http://[^/]*:80|https://[^/]*:443";
/// Strings with a path, query, fragment or userinfo: preferred as witnesses, being the dangerous
/// kind (`https://evil.test/.example.com`).
const HOSTILE: &str = r"[^/]*://[^/?#@\\]+[/?#@\\].*";

/// Byte order in which the search tries edges, so that witnesses read naturally.
const PREFERRED: &[u8] = b"aevilxyz0123456789.-/:@?#";

/// What the regex can match that it should not.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Finding {
    /// A string that is not a serialised origin.
    NotOrigin(String),
    /// An origin whose host extends a label of the literal domain on its left.
    LabelExtended { domain: String, example: String },
    /// The search ran past its bound, or the regex cannot be made a DFA.
    Undecided(String),
}

/// Everything wrong with `anchored` (the user's regex already wrapped in `^(?:…)$`), whose parsed
/// form is `hir`; an empty list when the regex matches only serialised origins and extends no label.
pub(super) fn audit(anchored: &str, hir: &Hir) -> Vec<Finding> {
    let (user, origin, default_port, hostile) =
        match (dfa(anchored), dfa(ORIGIN), dfa(DEFAULT_PORT), dfa(HOSTILE)) {
            (Ok(u), Ok(o), Ok(d), Ok(h)) => (u, o, d, h),
            (Err(e), ..) => return vec![Finding::Undecided(e)],
            _ => return vec![Finding::Undecided("reference language".into())],
        };
    let not_origin = |m: &[bool]| m[0] && (!m[1] || m[2]);
    // The hostile kind first, for the better example; then any string at all.
    let first = search(&[&user, &origin, &default_port, &hostile], |m| {
        not_origin(m) && m[3]
    });
    let witness = match first {
        Ok(None) => search(&[&user, &origin, &default_port], not_origin),
        other => other,
    };
    match witness {
        Err(e) => return vec![Finding::Undecided(e)],
        Ok(Some(w)) => return vec![Finding::NotOrigin(w)],
        Ok(None) => {}
    }
    let mut found = Vec::new();
    for domain in literal_domains(hir) {
        let extended = format!(
            r"https?://[^/]*[a-z0-9_-]{}(?::[0-9]+)?",
            regex_syntax::escape(&domain)
        );
        let found_here = match dfa(&extended) {
            Ok(ext) => search(&[&user, &ext], |m| m[0] && m[1]),
            Err(e) => Err(e),
        };
        match found_here {
            Ok(Some(example)) => found.push(Finding::LabelExtended { domain, example }),
            Ok(None) => {}
            Err(e) => found.push(Finding::Undecided(e)),
        }
    }
    found
}

type Dfa = dense::DFA<Vec<u32>>;

fn dfa(pattern: &str) -> Result<(Dfa, StateID), String> {
    let dfa = dense::Builder::new()
        .configure(
            dense::Config::new()
                .start_kind(StartKind::Anchored)
                .match_kind(MatchKind::All)
                .dfa_size_limit(Some(DFA_BYTES))
                .determinize_size_limit(Some(DFA_BYTES)),
        )
        .build(pattern)
        .map_err(|e| e.to_string())?;
    let start = dfa
        .start_state(&start::Config::new().anchored(Anchored::Yes))
        .map_err(|e| e.to_string())?;
    Ok((dfa, start))
}

/// The shortest string (bytes in [`PREFERRED`] order among equals) for which `wanted` holds of the
/// DFAs' full-match results, or `None` when there is none. The first DFA must match it, so tuples
/// where it is dead are pruned.
fn search(
    dfas: &[&(Dfa, StateID)],
    wanted: impl Fn(&[bool]) -> bool,
) -> Result<Option<String>, String> {
    let alphabet = joint_classes(dfas);
    let start: Vec<StateID> = dfas.iter().map(|(_, s)| *s).collect();
    // Each visited tuple, with the tuple it was reached from and the byte taken.
    let mut seen: HashMap<Vec<StateID>, usize> = HashMap::new();
    let mut trail: Vec<(usize, u8)> = vec![(usize::MAX, 0)];
    let mut queue = VecDeque::from([(start.clone(), 0usize)]);
    seen.insert(start, 0);
    let mut matched = Vec::with_capacity(dfas.len());
    while let Some((states, at)) = queue.pop_front() {
        matched.clear();
        for ((d, _), s) in dfas.iter().zip(&states) {
            if d.is_quit_state(*s) {
                return Err("the regex needs look-around a DFA cannot decide".into());
            }
            matched.push(d.is_match_state(d.next_eoi_state(*s)));
        }
        if wanted(&matched) {
            return Ok(Some(spell(&trail, at)));
        }
        for &b in &alphabet {
            let next: Vec<StateID> = dfas
                .iter()
                .zip(&states)
                .map(|((d, _), s)| d.next_state(*s, b))
                .collect();
            if dfas[0].0.is_dead_state(next[0]) || seen.contains_key(&next) {
                continue;
            }
            if seen.len() >= MAX_STATES {
                return Err(format!("more than {MAX_STATES} states to explore"));
            }
            trail.push((at, b));
            seen.insert(next.clone(), trail.len() - 1);
            queue.push_back((next, trail.len() - 1));
        }
    }
    Ok(None)
}

/// One byte per combination of the DFAs' byte classes, preferred bytes first.
fn joint_classes(dfas: &[&(Dfa, StateID)]) -> Vec<u8> {
    let mut seen = std::collections::HashSet::new();
    PREFERRED
        .iter()
        .copied()
        .chain(0..=255u8)
        .filter(|&b| {
            let key: Vec<u8> = dfas.iter().map(|(d, _)| d.byte_classes().get(b)).collect();
            seen.insert(key)
        })
        .collect()
}

fn spell(trail: &[(usize, u8)], mut at: usize) -> String {
    let mut bytes = Vec::new();
    while at != 0 {
        let (parent, b) = trail[at];
        bytes.push(b);
        at = parent;
    }
    bytes.reverse();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The literal domains a regex names (`example.com` in `https://.*\.example\.com`): every literal's
/// text after `://` and before a port, without a leading dot, that still holds a dot between labels.
fn literal_domains(hir: &Hir) -> Vec<String> {
    let mut out = Vec::new();
    collect(hir, &mut out, 0);
    out.sort();
    out.dedup();
    out
}

/// Whether growing the first label of `domain` changes the site: only when `domain` is at most a
/// registrable domain (`example.com`, `-example.com`), not a name inside one (`-preview.example.com`
/// stays under example.com whatever precedes it).
fn extends_registrable(domain: &str) -> bool {
    psl::domain(domain.as_bytes()).is_none_or(|r| r.as_bytes().len() == domain.len())
}

fn collect(hir: &Hir, out: &mut Vec<String>, depth: usize) {
    if depth > 256 {
        return;
    }
    match hir.kind() {
        HirKind::Literal(lit) => {
            let text = String::from_utf8_lossy(&lit.0);
            let host = text.rsplit("://").next().unwrap_or("");
            let host = host.split([':', '/']).next().unwrap_or("");
            let host = host.trim_start_matches('.');
            let labels = host.trim_end_matches('.');
            if labels.contains('.') && !labels.contains("..") && extends_registrable(labels) {
                out.push(host.to_owned());
            }
        }
        HirKind::Repetition(rep) => collect(&rep.sub, out, depth + 1),
        HirKind::Capture(cap) => collect(&cap.sub, out, depth + 1),
        HirKind::Concat(parts) | HirKind::Alternation(parts) => {
            for p in parts {
                collect(p, out, depth + 1);
            }
        }
        HirKind::Empty | HirKind::Look(_) | HirKind::Class(_) => {}
    }
}

#[cfg(test)]
mod tests;
