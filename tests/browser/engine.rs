//! One browser-case table, two engines: `Engine::{Chromium, Firefox}` and an engine-neutral
//! `Browser`/`Page` over the two drivers (Chromium over CDP, Firefox over WebDriver BiDi), so every
//! case in `browser.rs` runs unchanged in both. Network records come back in one shape; where the
//! engines report different things (CORS failure reasons), both are kept, and [`assert_blocked`]
//! checks a CORS block in each engine's own terms.

use serde_json::Value;

use crate::{bidi as firefox, cdp};

/// A browser engine the suite proves corsgate in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// Debian's `chromium`, over the DevTools protocol.
    Chromium,
    /// Debian's `firefox-esr`, over WebDriver BiDi.
    Firefox,
}

/// What went wrong driving a browser.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Script threw (the message includes its text), or a navigation failed.
    #[error("page: {0}")]
    Page(String),
    /// Anything else: launch, protocol, timeout.
    #[error("{0}")]
    Driver(String),
}

impl From<cdp::CdpError> for Error {
    fn from(e: cdp::CdpError) -> Error {
        match e {
            cdp::CdpError::Page(m) => Error::Page(m),
            other => Error::Driver(other.to_string()),
        }
    }
}

impl From<firefox::BidiError> for Error {
    fn from(e: firefox::BidiError) -> Error {
        match e {
            firefox::BidiError::Page(m) => Error::Page(m),
            other => Error::Driver(other.to_string()),
        }
    }
}

/// One request the browser put on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The driver's request id.
    pub id: String,
    /// HTTP method.
    pub method: String,
    /// Full URL.
    pub url: String,
    /// Lower-case resource kind: `fetch` for script's `fetch()`, `document`, ...
    pub kind: String,
    /// Whether it is a CORS preflight the browser sent on its own.
    pub preflight: bool,
}

/// A request that failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The request as it was sent.
    pub request: Request,
    /// The engine's error text (`net::ERR_FAILED`, `NS_ERROR_DOM_BAD_URI`, ...).
    pub error_text: String,
    /// Chromium's `corsErrorStatus.corsError` (`MissingAllowOriginHeader`, ...). Firefox's BiDi
    /// events carry no CORS reason, so this is always `None` there.
    pub cors_error: Option<String>,
}

/// A running headless browser with a fresh profile.
pub enum Browser {
    /// Chromium.
    Chromium(cdp::Browser),
    /// Firefox.
    Firefox(firefox::Browser),
}

impl Browser {
    /// Launch `engine`; a missing binary is an error (and so a test failure), never a skip.
    pub async fn launch(engine: Engine) -> Result<Browser, Error> {
        Ok(match engine {
            Engine::Chromium => Browser::Chromium(cdp::Browser::launch().await?),
            Engine::Firefox => Browser::Firefox(firefox::Browser::launch().await?),
        })
    }

    /// Open a new tab on `about:blank`.
    pub async fn new_page(&self) -> Result<Page, Error> {
        Ok(match self {
            Browser::Chromium(b) => Page::Chromium(b.new_page().await?),
            Browser::Firefox(b) => Page::Firefox(b.new_page().await?),
        })
    }
}

/// One tab.
pub enum Page {
    /// A Chromium tab.
    Chromium(cdp::Page),
    /// A Firefox browsing context.
    Firefox(firefox::Page),
}

impl Page {
    /// Which engine this tab runs in.
    pub fn engine(&self) -> Engine {
        match self {
            Page::Chromium(_) => Engine::Chromium,
            Page::Firefox(_) => Engine::Firefox,
        }
    }

    /// Navigate and wait for the load event.
    pub async fn navigate(&self, url: &str) -> Result<(), Error> {
        match self {
            Page::Chromium(p) => Ok(p.navigate(url).await?),
            Page::Firefox(p) => Ok(p.navigate(url).await?),
        }
    }

    /// Evaluate `expression`, await it if it is a promise, and return its value as JSON.
    pub async fn eval(&self, expression: &str) -> Result<Value, Error> {
        match self {
            Page::Chromium(p) => Ok(p.eval(expression).await?),
            Page::Firefox(p) => Ok(p.eval(expression).await?),
        }
    }

    /// A mark in this tab's event stream.
    pub fn mark(&self) -> usize {
        match self {
            Page::Chromium(p) => p.mark(),
            Page::Firefox(p) => p.mark(),
        }
    }

    /// Wait until the request for `url` sent after `mark` (not a preflight) finished or failed;
    /// afterwards every preflight sent for it has been reported too.
    pub async fn wait_for_request_done(&self, mark: usize, url: &str) -> Result<(), Error> {
        match self {
            Page::Chromium(p) => Ok(p.wait_for_request_done(mark, url).await.map(drop)?),
            Page::Firefox(p) => Ok(p.wait_for_request_done(mark, url).await.map(drop)?),
        }
    }

    /// Wait as [`Page::wait_for_request_done`], then return the HTTP status the response to `url`
    /// came back with, as the network log saw it (before any CORS or ORB check hid it from the
    /// page); `None` if the engine reported no response for it.
    pub async fn response_status(&self, mark: usize, url: &str) -> Result<Option<u16>, Error> {
        match self {
            Page::Chromium(p) => Ok(p.response_status(mark, url).await?),
            Page::Firefox(p) => Ok(p.response_status(mark, url).await?),
        }
    }

    /// Every request this tab sent since `mark`, in order.
    pub fn requests_since(&self, mark: usize) -> Vec<Request> {
        match self {
            Page::Chromium(p) => p.requests_since(mark).into_iter().map(from_cdp).collect(),
            Page::Firefox(p) => p.requests_since(mark).into_iter().map(from_bidi).collect(),
        }
    }

    /// Every request since `mark` that failed.
    pub fn failures_since(&self, mark: usize) -> Vec<Failure> {
        match self {
            Page::Chromium(p) => p
                .failures_since(mark)
                .into_iter()
                .map(|f| Failure {
                    request: from_cdp(f.request),
                    error_text: f.error_text,
                    cors_error: f.cors_error,
                })
                .collect(),
            Page::Firefox(p) => p
                .failures_since(mark)
                .into_iter()
                .map(|f| Failure {
                    request: from_bidi(f.request),
                    error_text: f.error_text,
                    cors_error: None,
                })
                .collect(),
        }
    }

    /// The response headers, as they came off the wire (before CORS filtered what script may
    /// read), of the response to `url` after `mark`; names lower-cased.
    pub async fn response_headers(
        &self,
        mark: usize,
        url: &str,
    ) -> Result<Vec<(String, String)>, Error> {
        match self {
            Page::Chromium(p) => {
                let seen = p
                    .wait_for_event(mark, &format!("response head of {url}"), |e| {
                        e.method == "Network.responseReceived" && e.params["response"]["url"] == url
                    })
                    .await?;
                let headers = seen.params["response"]["headers"].as_object().cloned();
                Ok(headers
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| (k.to_ascii_lowercase(), v.as_str().unwrap_or("").to_owned()))
                    .collect())
            }
            Page::Firefox(p) => Ok(p.response_headers(mark, url).await?),
        }
    }
}

fn from_cdp(r: cdp::SeenRequest) -> Request {
    Request {
        preflight: r.is_preflight(),
        id: r.id,
        method: r.method,
        url: r.url,
        kind: r.kind.to_ascii_lowercase(),
    }
}

fn from_bidi(r: firefox::page::SeenRequest) -> Request {
    Request {
        id: r.id,
        method: r.method,
        url: r.url,
        kind: r.kind.to_ascii_lowercase(),
        preflight: r.preflight,
    }
}

// === CORS verdicts ===

/// Firefox's `network.fetchError` text for a request CORS failed.
const FIREFOX_CORS_ERROR: &str = "NS_ERROR_DOM_BAD_URI";

/// Where CORS stopped a request.
pub enum Stopped {
    /// Its preflight failed, so the request itself was never sent.
    AtPreflight,
    /// The response came back without the header that would have let script read it.
    AtResponse {
        /// That header.
        lacking: &'static str,
    },
}

/// Assert that CORS blocked the request to `url` (sent after `mark`), in each engine's own terms.
///
/// - Chromium names the reason in `Network.loadingFailed` (`corsErrorStatus.corsError`); `chromium`
///   checks it.
/// - Firefox's BiDi events carry no CORS reason: the console message that has it (e.g.
///   `CORSMissingAllowOrigin`) is not forwarded by BiDi's `log` module. A failed preflight ends in
///   `network.fetchError` with `NS_ERROR_DOM_BAD_URI`, for the preflight and for the request. A
///   response that fails the CORS check is reported as an ordinary `network.responseCompleted` (the
///   HTTP exchange did complete; the check runs after it), so there the case checks that the
///   response on the wire lacks the header that would have allowed the read; the rejected
///   `fetch()` the case saw is the browser's verdict.
pub async fn assert_blocked(
    page: &Page,
    mark: usize,
    url: &str,
    stopped: Stopped,
    chromium: impl Fn(&str) -> bool,
) {
    let failed: Vec<Failure> = page
        .failures_since(mark)
        .into_iter()
        .filter(|f| f.request.url == url)
        .collect();
    match (page.engine(), stopped) {
        (Engine::Chromium, _) => assert!(
            failed
                .iter()
                .any(|f| f.cors_error.as_deref().is_some_and(&chromium)),
            "no such CORS failure: {failed:?}"
        ),
        (Engine::Firefox, Stopped::AtPreflight) => {
            let cors = |preflight| {
                failed
                    .iter()
                    .any(|f| f.request.preflight == preflight && f.error_text == FIREFOX_CORS_ERROR)
            };
            assert!(cors(true) && cors(false), "{failed:?}");
        }
        (Engine::Firefox, Stopped::AtResponse { lacking }) => {
            assert!(failed.is_empty(), "{failed:?}");
            let wire = page.response_headers(mark, url).await.expect("response");
            assert!(!wire.iter().any(|(k, _)| k == lacking), "{wire:?}");
        }
    }
}
