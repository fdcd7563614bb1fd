//! `[policies.NAME]` → `Policy`: every security rule of the product is enforced here, as an error with
//! its position, never merely documented.

use rustc_hash::FxHashSet;

use http::header::HeaderName;
use http::{Method, StatusCode};
use toml::Spanned;

mod browser_form;
mod warnings;

use super::regex_probe;
use crate::config::diagnostic::Diagnostics;
use crate::config::raw::RawPolicy;
use crate::policy::{
    AllowedHeaders, AllowedMethods, AllowedOrigins, Enforcement, FetchMetadata, OriginPattern,
    Policy, PolicySpec,
};
use warnings::{is_potentially_trustworthy, no_op_header};

/// Chromium caps Access-Control-Max-Age at two hours; Firefox at a day.
const CHROMIUM_MAX_AGE: i64 = 7200;
const MAX_MAX_AGE: i64 = 86400;

/// Compile one policy; `None` when it has errors (they are in `d`).
pub(super) fn compile_policy(
    name: &str,
    raw: &RawPolicy,
    span: std::ops::Range<usize>,
    d: &mut Diagnostics<'_>,
) -> Option<Policy> {
    let errors_before = d.error_count();
    let creds = raw.allow_credentials.as_ref().is_some_and(|c| *c.get_ref());
    let mut origins = AllowedOrigins::default();
    for entry in &raw.allowed_origins {
        let text = entry.get_ref().as_str();
        match OriginPattern::parse(text) {
            Ok(OriginPattern::Any) if creds => {
                d.error(
                    entry.span(),
                    "\"*\" cannot be used with allow_credentials = true: browsers reject it, and \
                     echoing any origin with credentials lets every site read user data; list the origins",
                );
            }
            Ok(pattern) => {
                if let Err(why) = browser_form::check(&pattern) {
                    d.error(entry.span(), format!("invalid origin {text:?}: {why}"));
                    continue;
                }
                if pattern == OriginPattern::Null {
                    d.warn(
                        entry.span(),
                        "\"null\" is the origin of sandboxed iframes, file: pages and redirects; any \
                         site can produce it",
                    );
                }
                if creds {
                    if let OriginPattern::Host { scheme, host, .. } = &pattern {
                        if scheme == "http" && !is_potentially_trustworthy(host) {
                            d.warn(
                                entry.span(),
                                "a plain-http origin with credentials: anyone on the network path can \
                                 act as it",
                            );
                        }
                    }
                }
                origins.add(&pattern, text);
            }
            Err(e) => {
                let hint = browser_form::hint(text).unwrap_or_default();
                d.error(entry.span(), format!("invalid origin {text:?}: {e}{hint}"));
            }
        }
    }
    compile_regexes(&raw.allowed_origin_regex, creds, &mut origins, d);
    if raw.allowed_origins.is_empty() && raw.allowed_origin_regex.is_empty() {
        d.warn(
            span,
            format!("policy {name:?} allows no origin: every cross-origin request will be denied"),
        );
    }
    let methods = compile_methods(raw.allowed_methods.as_deref(), creds, d);
    let headers = compile_headers(&raw.allowed_headers, creds, true, d);
    let expose = compile_headers(&raw.expose_headers, creds, false, d);
    let max_age = raw.max_age.as_ref().and_then(|m| {
        let v = *m.get_ref();
        if !(0..=MAX_MAX_AGE).contains(&v) {
            d.error(
                m.span(),
                format!("max_age must be 0 to {MAX_MAX_AGE} seconds"),
            );
            None
        } else {
            if v > CHROMIUM_MAX_AGE {
                d.warn(
                    m.span(),
                    format!(
                        "max_age above {CHROMIUM_MAX_AGE}: Chromium caps it at {CHROMIUM_MAX_AGE}"
                    ),
                );
            }
            u32::try_from(v).ok()
        }
    });
    let preflight_status = match raw.preflight_status.as_ref() {
        None => StatusCode::NO_CONTENT,
        Some(s) => match *s.get_ref() {
            200 => StatusCode::OK,
            204 => StatusCode::NO_CONTENT,
            _ => {
                d.error(s.span(), "preflight_status must be 200 or 204");
                StatusCode::NO_CONTENT
            }
        },
    };
    let enforcement = match raw.enforcement.as_ref() {
        None => Enforcement::Block,
        Some(e) => match e.get_ref().as_str() {
            "block" => Enforcement::Block,
            "headers-only" => Enforcement::HeadersOnly,
            "report-only" => Enforcement::ReportOnly,
            other => {
                d.error(
                    e.span(),
                    format!("enforcement {other:?}: expected \"block\", \"headers-only\" or \"report-only\""),
                );
                Enforcement::Block
            }
        },
    };
    let fetch_metadata = match raw.fetch_metadata.as_ref() {
        None => FetchMetadata::Off,
        Some(f) => match f.get_ref().as_str() {
            "off" => FetchMetadata::Off,
            "enforce" => FetchMetadata::Enforce,
            "report" => FetchMetadata::Report,
            other => {
                d.error(
                    f.span(),
                    format!(
                        "fetch_metadata {other:?}: expected \"off\", \"enforce\" or \"report\""
                    ),
                );
                FetchMetadata::Off
            }
        },
    };
    if d.error_count() > errors_before {
        return None;
    }
    let (methods, headers, expose) = (methods?, headers?, expose?);
    Some(Policy::new(PolicySpec {
        name: name.to_owned(),
        origins,
        origin_texts: raw
            .allowed_origins
            .iter()
            .chain(&raw.allowed_origin_regex)
            .map(|o| o.get_ref().clone())
            .collect(),
        methods,
        headers: AllowedHeaders {
            any: headers.0,
            names: headers.1,
        },
        expose_headers: expose.2,
        allow_credentials: creds,
        max_age,
        allow_private_network: raw.allow_private_network.unwrap_or(false),
        preflight_status,
        enforcement,
        fetch_metadata,
        allow_cross_site_navigation: raw.allow_cross_site_navigation.unwrap_or(true),
        allow_same_site: raw.allow_same_site.unwrap_or(false),
    }))
}

fn compile_regexes(
    entries: &[Spanned<String>],
    creds: bool,
    origins: &mut AllowedOrigins,
    d: &mut Diagnostics<'_>,
) {
    let mut ok = true;
    let mut anchored = Vec::new();
    let mut texts = Vec::new();
    for entry in entries {
        let text = entry.get_ref();
        let full = format!("^(?:{text})$");
        let (re, hir) = match (regex::Regex::new(&full), regex_syntax::parse(&full)) {
            (Ok(re), Ok(hir)) => (re, hir),
            (Err(e), _) => {
                ok = false;
                // regex's message draws a caret under the pattern over several lines; keep the last.
                let msg = e.to_string();
                let last = msg
                    .lines()
                    .last()
                    .unwrap_or("")
                    .trim_start_matches("error: ");
                d.error(entry.span(), format!("invalid regex: {last}"));
                continue;
            }
            (_, Err(e)) => {
                ok = false;
                d.error(entry.span(), format!("invalid regex: {e}"));
                continue;
            }
        };
        if re.is_match("null") {
            ok = false;
            d.error(
                entry.span(),
                "this regex matches the origin \"null\"; list \"null\" explicitly if you mean it",
            );
        } else if !audit_regex(entry, &full, &hir, creds, d) {
            ok = false;
        }
        if creds {
            if let Some(ex) = ["https://attacker.invalid", "http://attacker.invalid"]
                .into_iter()
                .find(|p| re.is_match(p))
            {
                ok = false;
                d.error(
                    entry.span(),
                    format!(
                        "with allow_credentials this regex lets in unrelated sites such as {ex:?}"
                    ),
                );
            }
        }
        anchored.push(full);
        texts.push(text.as_str().into());
    }
    if ok && !anchored.is_empty() {
        match regex::RegexSet::new(&anchored) {
            Ok(set) => origins.set_regexes(set, texts),
            Err(e) => {
                if let Some(first) = entries.first() {
                    d.error(first.span(), format!("invalid regex set: {e}"));
                }
            }
        }
    }
}

/// Report what [`regex_probe::audit`] proves about one regex; `false` when any of it is an error.
fn audit_regex(
    entry: &Spanned<String>,
    full: &str,
    hir: &regex_syntax::hir::Hir,
    creds: bool,
    d: &mut Diagnostics<'_>,
) -> bool {
    let mut ok = true;
    for finding in regex_probe::audit(full, hir) {
        match finding {
            regex_probe::Finding::NotOrigin(ex) => {
                ok = false;
                let why = if ex.bytes().any(|b| b.is_ascii_uppercase()) {
                    "regexes see the lowercase serialisation"
                } else if ex.ends_with(":80") || ex.ends_with(":443") {
                    "browsers leave the default port out"
                } else {
                    "an origin is http(s)://host[:port] with no path, userinfo or query"
                };
                d.error(
                    entry.span(),
                    format!("this regex matches {ex:?}, which is not an origin as browsers send it ({why}); escape dots and keep / ? # @ out of classes"),
                );
            }
            regex_probe::Finding::LabelExtended { domain, example } => {
                let msg = format!(
                    "this regex lets a host label be extended to the left of {domain:?}: it matches \
                     {example:?}, a different site; put \\. or :// before the domain"
                );
                if creds {
                    ok = false;
                    d.error(entry.span(), format!("with allow_credentials {msg}"));
                } else {
                    d.warn(entry.span(), msg);
                }
            }
            regex_probe::Finding::Undecided(why) => {
                ok = false;
                d.error(
                    entry.span(),
                    format!("cannot decide which origins this regex matches ({why}); simplify it, or list the origins"),
                );
            }
        }
    }
    ok
}

fn compile_methods(
    entries: Option<&[Spanned<String>]>,
    creds: bool,
    d: &mut Diagnostics<'_>,
) -> Option<AllowedMethods> {
    let Some(entries) = entries else {
        return Some(AllowedMethods::List(vec![
            Method::GET,
            Method::HEAD,
            Method::POST,
        ]));
    };
    let mut ok = true;
    let mut list = Vec::new();
    let mut any = false;
    for e in entries {
        let m = e.get_ref().as_str();
        if m == "*" {
            if creds {
                ok = false;
                d.error(e.span(), "\"*\" in allowed_methods cannot be used with allow_credentials = true (browsers treat it as a literal method name); list the methods");
            }
            any = true;
            continue;
        }
        if ["CONNECT", "TRACE", "TRACK"]
            .iter()
            .any(|f| f.eq_ignore_ascii_case(m))
        {
            ok = false;
            d.error(e.span(), format!("{m} is a forbidden method: browsers never send it, and allowing it only helps attacks"));
            continue;
        }
        match Method::from_bytes(m.as_bytes()) {
            Ok(method) if !m.is_empty() && m.bytes().all(crate::policy::is_tchar) => {
                let upper = m.to_ascii_uppercase();
                if m != upper
                    && ["DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH"]
                        .contains(&upper.as_str())
                {
                    d.warn(e.span(), format!("methods compare case-sensitively and browsers send {upper:?}; {m:?} will not match it"));
                }
                list.push(method);
            }
            _ => {
                ok = false;
                d.error(e.span(), format!("{m:?} is not a valid method name"));
            }
        }
    }
    ok.then_some(if any {
        AllowedMethods::Any
    } else {
        AllowedMethods::List(list)
    })
}

/// (had `*`, lowercase names, names as written) or `None` on error.
type HeaderList = (bool, FxHashSet<Box<str>>, Vec<String>);

fn compile_headers(
    entries: &[Spanned<String>],
    creds: bool,
    request_side: bool,
    d: &mut Diagnostics<'_>,
) -> Option<HeaderList> {
    let key = if request_side {
        "allowed_headers"
    } else {
        "expose_headers"
    };
    let mut ok = true;
    let mut out: HeaderList = (false, FxHashSet::default(), Vec::new());
    for e in entries {
        let h = e.get_ref().as_str();
        if h == "*" {
            if creds {
                ok = false;
                d.error(e.span(), format!("\"*\" in {key} cannot be used with allow_credentials = true (browsers treat it as a literal name); list the headers"));
            }
            out.0 = true;
            out.2.push("*".into());
            continue;
        }
        match HeaderName::from_bytes(h.as_bytes()) {
            Ok(name) => {
                if let Some(why) = no_op_header(name.as_str(), request_side) {
                    d.warn(e.span(), format!("{h:?} in {key} has no effect: {why}"));
                }
                out.1.insert(name.as_str().into());
                out.2.push(h.to_owned());
            }
            Err(_) => {
                ok = false;
                d.error(e.span(), format!("{h:?} is not a valid header name"));
            }
        }
    }
    ok.then_some(out)
}
