//! Cross-site protection from Fetch Metadata: the `fetch_metadata` setting and the pure rules that
//! decide, from `Sec-Fetch-Site`, `-Mode` and `-Dest`, whether a request another site made the
//! browser send may pass. `decide` calls them before anything else.

use http::header::{HeaderName, HeaderValue};
use http::Method;

use super::{CorsRequestHeaders, Policy, RequestView};

/// `fetch_metadata`: what the policy does with cross-site requests that `Sec-Fetch-*` reveal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FetchMetadata {
    /// The `Sec-Fetch-*` headers are ignored (default).
    Off,
    /// Cross-site requests that are neither CORS nor an allowed navigation are refused.
    Enforce,
    /// They are forwarded, logged and counted (`corsgate_cross_site_reports_total`).
    Report,
}

impl FetchMetadata {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            FetchMetadata::Off => "off",
            FetchMetadata::Enforce => "enforce",
            FetchMetadata::Report => "report",
        }
    }
}

/// `Sec-Fetch-Site`.
pub(crate) static SEC_FETCH_SITE: HeaderName = HeaderName::from_static("sec-fetch-site");
/// `Sec-Fetch-Mode`.
pub(crate) static SEC_FETCH_MODE: HeaderName = HeaderName::from_static("sec-fetch-mode");
/// `Sec-Fetch-Dest`.
pub(crate) static SEC_FETCH_DEST: HeaderName = HeaderName::from_static("sec-fetch-dest");

/// The Fetch Metadata rules (docs/cross-site-protection.md), whatever `fetch_metadata`
/// says: the request's `Sec-Fetch-Site` when they refuse it, `None` when it passes (read once, so
/// the callers can name it without a second lookup). A request passes when any holds: no
/// `Sec-Fetch-Site`; it is `same-origin` or `none`, or `same-site` with `allow_same_site`;
/// `Sec-Fetch-Mode: cors` (the CORS rules then decide); `Sec-Fetch-Mode: websocket` on a
/// WebSocket handshake (the WebSocket Origin check then decides); or, with
/// `allow_cross_site_navigation`, a GET/HEAD top-level navigation (mode `navigate`, dest
/// `document`).
///
/// The WebSocket case: Firefox labels a handshake `Sec-Fetch-Mode: websocket` (and cross-site when
/// the page is), Chromium sends no `Sec-Fetch-*` on it at all. Without the case, `enforce` refused
/// an allowed origin's WebSocket in Firefox only. A handshake always carries `Origin` from a
/// browser and is judged on it like a CORS request (`websocket_origin`), so nothing is let through
/// that the CORS rules would not refuse.
pub(crate) fn cross_site_refusal<'a>(
    policy: &Policy,
    req: &RequestView<'a>,
    found: &CorsRequestHeaders<'a>,
) -> Option<&'a HeaderValue> {
    let site = found.sec_fetch_site?;
    match site.as_bytes() {
        b"same-origin" | b"none" => return None,
        b"same-site" if policy.spec.allow_same_site => return None,
        _ => {}
    }
    let mode = found.sec_fetch_mode.map(HeaderValue::as_bytes);
    if mode == Some(b"cors") || (mode == Some(b"websocket") && found.is_websocket()) {
        return None;
    }
    let dest = found.sec_fetch_dest.map(HeaderValue::as_bytes);
    let navigation = policy.spec.allow_cross_site_navigation
        && (*req.method == Method::GET || *req.method == Method::HEAD)
        && mode == Some(b"navigate")
        && dest == Some(b"document");
    (!navigation).then_some(site)
}

/// The request's `Sec-Fetch-Site` when it is one to report (log and count in
/// `corsgate_cross_site_reports_total`) rather than refuse: it fails the Fetch Metadata rules under
/// `fetch_metadata = "report"`, or under `"enforce"` with `enforcement = "report-only"` (which
/// never refuses). Carried in the evaluation, so that the proxy and `explain` name the value
/// without looking it up again.
pub(crate) fn cross_site_report<'a>(
    policy: &Policy,
    req: &RequestView<'a>,
    found: &CorsRequestHeaders<'a>,
) -> Option<&'a str> {
    if policy.cross_site != FetchMetadata::Report {
        return None;
    }
    cross_site_refusal(policy, req, found).map(|site| site.to_str().unwrap_or(""))
}
