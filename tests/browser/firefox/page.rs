//! `Page`: one browsing context (tab). Navigate, evaluate script (awaiting promises, results as
//! JSON), and read back the requests the browser sent, preflights included, from BiDi `network.*`
//! events.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use super::connection::Connection;
use super::BidiError;
use crate::events::{Event, EventLog};

/// How long a navigation or a script may run.
pub const PAGE_TIMEOUT: Duration = Duration::from_secs(30);

/// One request the browser put on the wire (from `network.beforeRequestSent`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeenRequest {
    /// BiDi request id (`request.request`).
    pub id: String,
    /// HTTP method.
    pub method: String,
    /// Full URL.
    pub url: String,
    /// Who started it: `request.initiatorType` (`fetch`, `other`, ...) or, failing that,
    /// `request.destination` (`document`, ...).
    pub kind: String,
    /// Whether it is a CORS preflight.
    pub preflight: bool,
}

/// A request that failed (`network.fetchError`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailedRequest {
    /// The request as it was sent.
    pub request: SeenRequest,
    /// Firefox's `errorText`, e.g. `NS_ERROR_DOM_BAD_URI` for a CORS failure.
    pub error_text: String,
}

/// An open tab.
pub struct Page {
    conn: Arc<Connection>,
    context: String,
    log: Arc<EventLog>,
}

impl Page {
    pub(super) fn new(conn: Arc<Connection>, context: String) -> Page {
        let log = conn.subscribe(&context);
        Page { conn, context, log }
    }

    /// Navigate and wait for the load event (`wait: "complete"`).
    pub async fn navigate(&self, url: &str) -> Result<(), BidiError> {
        let params = json!({ "context": self.context, "url": url, "wait": "complete" });
        self.conn
            .call_within(PAGE_TIMEOUT, "browsingContext.navigate", params)
            .await
            .map_err(|e| match e {
                BidiError::Protocol(m) => BidiError::Page(format!("navigate {url}: {m}")),
                other => other,
            })?;
        Ok(())
    }

    /// Evaluate `expression` in the page, await it if it is a promise, and return its JSON value.
    /// A thrown exception is an error carrying its text.
    ///
    /// BiDi returns results as its own typed "remote values"; the page turns the result into JSON
    /// text instead, which keeps the answer the same shape as Chromium's `returnByValue`.
    pub async fn eval(&self, expression: &str) -> Result<Value, BidiError> {
        let wrapped = format!("(async () => JSON.stringify(await ({expression})))()");
        let params = json!({
            "expression": wrapped,
            "target": { "context": self.context },
            "awaitPromise": true,
            "resultOwnership": "none",
            "userActivation": true,
        });
        let r = self
            .conn
            .call_within(PAGE_TIMEOUT, "script.evaluate", params)
            .await
            .map_err(|e| match e {
                BidiError::Timeout(_) => BidiError::Timeout(format!("evaluating {expression}")),
                other => other,
            })?;
        if r["type"] == "exception" {
            let d = &r["exceptionDetails"];
            let text = d["text"].as_str().unwrap_or("exception");
            return Err(BidiError::Page(format!("script threw: {text}")));
        }
        match r["result"]["value"].as_str() {
            Some(json) => serde_json::from_str(json)
                .map_err(|e| BidiError::Protocol(format!("result of {expression}: {e}"))),
            // `JSON.stringify(undefined)` is `undefined`.
            None => Ok(Value::Null),
        }
    }

    /// A mark in this tab's event stream: events after it can be waited for.
    pub fn mark(&self) -> usize {
        self.log.len()
    }

    /// Wait for an event of this tab after `mark` that satisfies `pred`.
    pub async fn wait_for_event(
        &self,
        mark: usize,
        what: &str,
        pred: impl Fn(&Event) -> bool,
    ) -> Result<Event, BidiError> {
        Ok(self.log.wait_for(mark, PAGE_TIMEOUT, what, pred).await?)
    }

    /// Wait until the network stack reports the request for `url` (sent after `mark`, not a
    /// preflight) completed or failed, and return that last event.
    pub async fn wait_for_request_done(&self, mark: usize, url: &str) -> Result<Event, BidiError> {
        let sent = self
            .wait_for_event(mark, &format!("request to {url}"), |e| {
                e.method == "network.beforeRequestSent"
                    && e.params["request"]["url"] == url
                    && !is_preflight(&e.params)
            })
            .await?;
        let id = sent.params["request"]["request"].clone();
        self.wait_for_event(mark, &format!("end of request to {url}"), |e| {
            (e.method == "network.responseCompleted" || e.method == "network.fetchError")
                && e.params["request"]["request"] == id
        })
        .await
    }

    /// The HTTP status of the response to `url` (sent after `mark`, not a preflight), waiting
    /// until the request is done; `None` when no response head was reported for it.
    ///
    /// Read from `network.responseStarted`, not only `responseCompleted`: Firefox's image and
    /// script loaders abandon an error answer once its head is in, so such a load ends in
    /// `network.fetchError` (`NS_BINDING_ABORTED`) although the status did arrive.
    pub async fn response_status(&self, mark: usize, url: &str) -> Result<Option<u16>, BidiError> {
        let done = self.wait_for_request_done(mark, url).await?;
        let id = &done.params["request"]["request"];
        Ok(self
            .events_since(mark)
            .iter()
            .find(|e| {
                (e.method == "network.responseStarted" || e.method == "network.responseCompleted")
                    && e.params["request"]["request"] == *id
            })
            .and_then(|e| e.params["response"]["status"].as_u64())
            .and_then(|s| u16::try_from(s).ok()))
    }

    /// Every request this tab sent since `mark`, in order.
    pub fn requests_since(&self, mark: usize) -> Vec<SeenRequest> {
        self.events_since(mark)
            .iter()
            .filter(|e| e.method == "network.beforeRequestSent")
            .map(|e| seen(&e.params))
            .collect()
    }

    /// Every request since `mark` that failed.
    pub fn failures_since(&self, mark: usize) -> Vec<FailedRequest> {
        self.events_since(mark)
            .iter()
            .filter(|e| e.method == "network.fetchError")
            .map(|e| FailedRequest {
                request: seen(&e.params),
                error_text: str_of(&e.params["errorText"]),
            })
            .collect()
    }

    /// The response headers of the last completed request to `url` after `mark` (waiting for it),
    /// lower-cased names; BiDi sends them as `[{name, value: {type: "string", value}}]`.
    pub async fn response_headers(
        &self,
        mark: usize,
        url: &str,
    ) -> Result<Vec<(String, String)>, BidiError> {
        let done = self
            .wait_for_event(mark, &format!("response from {url}"), |e| {
                e.method == "network.responseCompleted"
                    && e.params["request"]["url"] == url
                    && !is_preflight(&e.params)
            })
            .await?;
        Ok(headers_of(&done.params["response"]["headers"]))
    }

    /// Every event of this tab since `mark` (for assertions and failure messages).
    pub fn events_since(&self, mark: usize) -> Vec<Event> {
        self.log.snapshot().into_iter().skip(mark).collect()
    }

    /// The BiDi browsing context id of this tab.
    pub fn context(&self) -> &str {
        &self.context
    }
}

/// The request of a `network.*` event.
fn seen(params: &Value) -> SeenRequest {
    let r = &params["request"];
    let kind = [&r["initiatorType"], &r["destination"]]
        .into_iter()
        .filter_map(Value::as_str)
        .find(|s| !s.is_empty())
        .unwrap_or_default();
    SeenRequest {
        id: str_of(&r["request"]),
        method: str_of(&r["method"]),
        url: str_of(&r["url"]),
        kind: kind.to_owned(),
        preflight: is_preflight(params),
    }
}

/// Whether a `network.*` event is about a CORS preflight. Firefox 140 gives a preflight no marker of
/// its own (`initiator.type` is `other`, `initiatorType` null, `destination` empty, and its
/// `beforeRequestSent` comes *after* the one of the request it is for), so this looks at what only
/// a preflight can carry: an `OPTIONS` with `Access-Control-Request-Method`, a header script is
/// forbidden to set (<https://fetch.spec.whatwg.org/#forbidden-request-header>).
fn is_preflight(params: &Value) -> bool {
    let r = &params["request"];
    r["method"] == "OPTIONS"
        && headers_of(&r["headers"])
            .iter()
            .any(|(name, _)| name == "access-control-request-method")
}

fn headers_of(list: &Value) -> Vec<(String, String)> {
    list.as_array()
        .into_iter()
        .flatten()
        .map(|h| {
            (
                str_of(&h["name"]).to_ascii_lowercase(),
                str_of(&h["value"]["value"]),
            )
        })
        .collect()
}

fn str_of(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}
