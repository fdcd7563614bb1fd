//! One WebDriver BiDi connection: a writer task, a reader task that routes command answers by id and
//! events by browsing context, and per-context event logs that tests can wait on.
//!
//! Messages ([BiDi transport](https://w3c.github.io/webdriver-bidi/#transport)): commands are
//! `{id, method, params}`; answers are `{type: "success", id, result}` or
//! `{type: "error", id, error, message}`; events are `{type: "event", method, params}`, and every
//! event this driver subscribes to names its top-level context (`params.context`, or
//! `params.source.context` for `log.entryAdded`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

use crate::events::{lock, Event, EventLog};

use super::BidiError;

/// How long one protocol command may take before the test fails.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(20);

type Reply = Result<Value, BidiError>;
type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Reply>>>>;
type Sinks = Arc<Mutex<HashMap<String, Arc<EventLog>>>>;

/// A live websocket to Firefox's remote agent, with a BiDi session on it.
pub struct Connection {
    out: mpsc::UnboundedSender<Message>,
    next_id: AtomicU64,
    pending: Pending,
    sinks: Sinks,
    tasks: Vec<JoinHandle<()>>,
}

impl Connection {
    /// Connect to `ws_url` (`ws://127.0.0.1:PORT/session`, from `WebDriver BiDi listening on`).
    pub async fn connect(ws_url: &str) -> Result<Connection, BidiError> {
        let (ws, _) =
            tokio::time::timeout(COMMAND_TIMEOUT, tokio_tungstenite::connect_async(ws_url))
                .await
                .map_err(|_| BidiError::Timeout("connecting to the BiDi websocket".into()))?
                .map_err(|e| BidiError::Socket(format!("{ws_url}: {e}")))?;
        let (mut sink, mut stream) = ws.split();
        let (out, mut out_rx) = mpsc::unbounded_channel::<Message>();
        let writer = tokio::spawn(async move {
            while let Some(m) = out_rx.recv().await {
                if sink.send(m).await.is_err() {
                    break;
                }
            }
        });
        let pending: Pending = Arc::default();
        let sinks: Sinks = Arc::default();
        let (p, s) = (Arc::clone(&pending), Arc::clone(&sinks));
        let reader = tokio::spawn(async move {
            while let Some(Ok(msg)) = stream.next().await {
                if let Message::Text(text) = msg {
                    route(&text, &p, &s);
                }
            }
            // The browser went away: fail every command still waiting instead of letting it hang.
            for (_, tx) in lock(&p).drain() {
                let _ = tx.send(Err(BidiError::Closed));
            }
        });
        Ok(Connection {
            out,
            next_id: AtomicU64::new(1),
            pending,
            sinks,
            tasks: vec![writer, reader],
        })
    }

    /// Send `method` and wait (up to [`COMMAND_TIMEOUT`]) for its result.
    pub async fn call(&self, method: &str, params: Value) -> Result<Value, BidiError> {
        self.call_within(COMMAND_TIMEOUT, method, params).await
    }

    /// [`Connection::call`] with its own time limit (for commands that run page script).
    pub async fn call_within(
        &self,
        limit: Duration,
        method: &str,
        params: Value,
    ) -> Result<Value, BidiError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let msg = json!({ "id": id, "method": method, "params": params });
        let (tx, rx) = oneshot::channel();
        lock(&self.pending).insert(id, tx);
        if self.out.send(Message::Text(msg.to_string())).is_err() {
            lock(&self.pending).remove(&id);
            return Err(BidiError::Closed);
        }
        match tokio::time::timeout(limit, rx).await {
            Ok(Ok(reply)) => reply.map_err(|e| e.context(method)),
            Ok(Err(_)) => Err(BidiError::Closed),
            Err(_) => {
                lock(&self.pending).remove(&id);
                Err(BidiError::Timeout(format!("BiDi command {method}")))
            }
        }
    }

    /// Start recording the events of browsing context `context`.
    pub fn subscribe(&self, context: &str) -> Arc<EventLog> {
        let log = Arc::new(EventLog::default());
        lock(&self.sinks).insert(context.to_owned(), Arc::clone(&log));
        log
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Route one incoming message: a command answer to its waiter, an event to its context's log.
fn route(text: &str, pending: &Pending, sinks: &Sinks) {
    let Ok(v) = serde_json::from_str::<Value>(text) else {
        return;
    };
    match v["type"].as_str() {
        Some("success") | Some("error") => {
            let Some(tx) = v["id"].as_u64().and_then(|id| lock(pending).remove(&id)) else {
                return;
            };
            let reply = if v["type"] == "success" {
                Ok(v["result"].clone())
            } else {
                Err(BidiError::Protocol(format!(
                    "{}: {}",
                    v["error"].as_str().unwrap_or("error"),
                    v["message"].as_str().unwrap_or_default()
                )))
            };
            let _ = tx.send(reply);
        }
        Some("event") => {
            if std::env::var_os("CORSGATE_BIDI_TRACE").is_some() {
                eprintln!("bidi event: {text}");
            }
            // `log.entryAdded` names its context under `source`.
            let context = v["params"]["context"]
                .as_str()
                .or_else(|| v["params"]["source"]["context"].as_str());
            let (Some(method), Some(context)) = (v["method"].as_str(), context) else {
                return;
            };
            let log = lock(sinks).get(context).cloned();
            if let Some(log) = log {
                log.push(Event {
                    method: method.to_owned(),
                    params: v["params"].clone(),
                });
            }
        }
        _ => {}
    }
}
