//! `Page`: one attached tab. Navigate, evaluate script (awaiting promises, results by value), and
//! read back the requests the browser sent, preflights included.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use super::connection::{Connection, Event, EventLog};
use super::CdpError;

/// How long a navigation or a script may run.
pub const PAGE_TIMEOUT: Duration = Duration::from_secs(30);

/// One request the browser put on the wire (from `Network.requestWillBeSent`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeenRequest {
    /// DevTools request id.
    pub id: String,
    /// HTTP method.
    pub method: String,
    /// Full URL.
    pub url: String,
    /// DevTools resource type: `Document`, `Fetch`, `WebSocket`, `Other`, ...
    pub kind: String,
    /// Who started it: `script`, `parser`, `other`, or `preflight` for a CORS preflight.
    pub initiator: String,
}

impl SeenRequest {
    /// Whether this is a CORS preflight: Chromium reports those as `OPTIONS` requests whose
    /// initiator is `preflight` (pointing at the request they were sent for).
    pub fn is_preflight(&self) -> bool {
        self.method == "OPTIONS" && self.initiator == "preflight"
    }
}

/// A request that failed, with the CORS reason Chromium gave (`Network.loadingFailed`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailedRequest {
    /// The request as it was sent.
    pub request: SeenRequest,
    /// `net::ERR_FAILED` and the like.
    pub error_text: String,
    /// `corsErrorStatus.corsError`, e.g. `PreflightMissingAllowOriginHeader`, if CORS failed it.
    pub cors_error: Option<String>,
}

/// An attached tab.
pub struct Page {
    conn: Arc<Connection>,
    session: String,
    target: String,
    log: Arc<EventLog>,
}

impl Page {
    pub(super) async fn attach(
        conn: Arc<Connection>,
        session: String,
        target: String,
    ) -> Result<Page, CdpError> {
        let log = conn.subscribe(&session);
        let page = Page {
            conn,
            session,
            target,
            log,
        };
        for domain in ["Page.enable", "Runtime.enable", "Network.enable"] {
            page.call(domain, json!({})).await?;
        }
        Ok(page)
    }

    /// Send a command to this tab.
    pub async fn call(&self, method: &str, params: Value) -> Result<Value, CdpError> {
        self.conn.call(Some(&self.session), method, params).await
    }

    /// Navigate and wait for the load event.
    pub async fn navigate(&self, url: &str) -> Result<(), CdpError> {
        let mark = self.log.len();
        let r = self.call("Page.navigate", json!({ "url": url })).await?;
        if let Some(err) = r.get("errorText").and_then(Value::as_str) {
            return Err(CdpError::Page(format!("navigate {url}: {err}")));
        }
        self.log
            .wait_for(mark, PAGE_TIMEOUT, &format!("load of {url}"), |e| {
                e.method == "Page.loadEventFired"
            })
            .await?;
        Ok(())
    }

    /// Evaluate `expression` in the page, await it if it is a promise, and return its JSON value.
    /// A thrown exception is an error carrying its description.
    pub async fn eval(&self, expression: &str) -> Result<Value, CdpError> {
        let params = json!({
            "expression": expression,
            "awaitPromise": true,
            "returnByValue": true,
            "userGesture": true,
        });
        let r = self
            .conn
            .call_within(
                PAGE_TIMEOUT,
                Some(&self.session),
                "Runtime.evaluate",
                params,
            )
            .await
            .map_err(|e| match e {
                CdpError::Timeout(_) => CdpError::Timeout(format!("evaluating {expression}")),
                other => other,
            })?;
        if let Some(ex) = r.get("exceptionDetails") {
            let text = ex["exception"]["description"]
                .as_str()
                .or_else(|| ex["text"].as_str())
                .unwrap_or("exception");
            return Err(CdpError::Page(format!("script threw: {text}")));
        }
        Ok(r["result"]["value"].clone())
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
    ) -> Result<Event, CdpError> {
        Ok(self.log.wait_for(mark, PAGE_TIMEOUT, what, pred).await?)
    }

    /// Wait until the network stack reports the request for `url` (sent after `mark`) finished or
    /// failed, and return that last event. Events for one request arrive in order, so afterwards
    /// every preflight the browser sent for it has already been reported.
    pub async fn wait_for_request_done(&self, mark: usize, url: &str) -> Result<Event, CdpError> {
        let sent = self
            .wait_for_event(mark, &format!("request to {url}"), |e| {
                e.method == "Network.requestWillBeSent"
                    && e.params["request"]["url"] == url
                    && e.params["initiator"]["type"] != "preflight"
            })
            .await?;
        let id = sent.params["requestId"].clone();
        self.wait_for_event(mark, &format!("end of request to {url}"), |e| {
            (e.method == "Network.loadingFinished" || e.method == "Network.loadingFailed")
                && e.params["requestId"] == id
        })
        .await
    }

    /// The HTTP status of the response to `url` (sent after `mark`, not a preflight), waiting
    /// until the request is done; `None` when no response head was reported for it
    /// (`Network.responseReceived`), as for a request that failed on the network.
    pub async fn response_status(&self, mark: usize, url: &str) -> Result<Option<u16>, CdpError> {
        let done = self.wait_for_request_done(mark, url).await?;
        let id = &done.params["requestId"];
        Ok(self
            .events_since(mark)
            .iter()
            .find(|e| e.method == "Network.responseReceived" && e.params["requestId"] == *id)
            .and_then(|e| e.params["response"]["status"].as_u64())
            .and_then(|s| u16::try_from(s).ok()))
    }

    /// Every request this tab sent since `mark`, in order.
    pub fn requests_since(&self, mark: usize) -> Vec<SeenRequest> {
        self.log
            .snapshot()
            .into_iter()
            .skip(mark)
            .filter(|e| e.method == "Network.requestWillBeSent")
            .map(|e| SeenRequest {
                id: str_of(&e.params["requestId"]),
                method: str_of(&e.params["request"]["method"]),
                url: str_of(&e.params["request"]["url"]),
                kind: str_of(&e.params["type"]),
                initiator: str_of(&e.params["initiator"]["type"]),
            })
            .collect()
    }

    /// Every request since `mark` that failed, with Chromium's CORS verdict.
    pub fn failures_since(&self, mark: usize) -> Vec<FailedRequest> {
        let sent = self.requests_since(mark);
        self.events_since(mark)
            .into_iter()
            .filter(|e| e.method == "Network.loadingFailed")
            .filter_map(|e| {
                let id = e.params["requestId"].as_str()?;
                let request = sent.iter().find(|r| r.id == id)?.clone();
                Some(FailedRequest {
                    request,
                    error_text: str_of(&e.params["errorText"]),
                    cors_error: e.params["corsErrorStatus"]["corsError"]
                        .as_str()
                        .map(str::to_owned),
                })
            })
            .collect()
    }

    /// Every event of this tab since `mark` (for assertions on failure reasons).
    pub fn events_since(&self, mark: usize) -> Vec<Event> {
        self.log.snapshot().into_iter().skip(mark).collect()
    }

    /// The DevTools target id of this tab.
    pub fn target_id(&self) -> &str {
        &self.target
    }
}

fn str_of(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}
