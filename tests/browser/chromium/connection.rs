//! One Chrome DevTools Protocol connection: a writer task, a reader task that routes command answers
//! by id and events by session, and per-session event logs that tests can wait on.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

pub use crate::events::{lock, Event, EventLog};

use super::CdpError;

/// How long one protocol command may take before the test fails.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(20);

type Reply = Result<Value, CdpError>;
type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Reply>>>>;
type Sinks = Arc<Mutex<HashMap<String, Arc<EventLog>>>>;

/// A live websocket to the browser endpoint.
pub struct Connection {
    out: mpsc::UnboundedSender<Message>,
    next_id: AtomicU64,
    pending: Pending,
    sinks: Sinks,
    tasks: Vec<JoinHandle<()>>,
}

impl Connection {
    /// Connect to `ws_url` (the browser's `DevTools listening on` URL).
    pub async fn connect(ws_url: &str) -> Result<Connection, CdpError> {
        let (ws, _) =
            tokio::time::timeout(COMMAND_TIMEOUT, tokio_tungstenite::connect_async(ws_url))
                .await
                .map_err(|_| CdpError::Timeout("connecting to the DevTools websocket".into()))?
                .map_err(|e| CdpError::Socket(e.to_string()))?;
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
                let _ = tx.send(Err(CdpError::Closed));
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

    /// Send `method` (to `session`, or to the browser when `None`) and wait for its result.
    pub async fn call(
        &self,
        session: Option<&str>,
        method: &str,
        params: Value,
    ) -> Result<Value, CdpError> {
        self.call_within(COMMAND_TIMEOUT, session, method, params)
            .await
    }

    /// [`Connection::call`] with its own time limit (for commands that run page script).
    pub async fn call_within(
        &self,
        limit: Duration,
        session: Option<&str>,
        method: &str,
        params: Value,
    ) -> Result<Value, CdpError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut msg = json!({ "id": id, "method": method, "params": params });
        if let Some(s) = session {
            msg["sessionId"] = Value::from(s);
        }
        let (tx, rx) = oneshot::channel();
        lock(&self.pending).insert(id, tx);
        if self.out.send(Message::Text(msg.to_string())).is_err() {
            lock(&self.pending).remove(&id);
            return Err(CdpError::Closed);
        }
        match tokio::time::timeout(limit, rx).await {
            Ok(Ok(reply)) => reply.map_err(|e| e.context(method)),
            Ok(Err(_)) => Err(CdpError::Closed),
            Err(_) => {
                lock(&self.pending).remove(&id);
                Err(CdpError::Timeout(format!("CDP command {method}")))
            }
        }
    }

    /// Start recording the events of `session` (call before enabling any domain on it).
    pub fn subscribe(&self, session: &str) -> Arc<EventLog> {
        let log = Arc::new(EventLog::default());
        lock(&self.sinks).insert(session.to_owned(), Arc::clone(&log));
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

/// Route one incoming message: a command answer to its waiter, an event to its session's log.
fn route(text: &str, pending: &Pending, sinks: &Sinks) {
    let Ok(v) = serde_json::from_str::<Value>(text) else {
        return;
    };
    if let Some(id) = v.get("id").and_then(Value::as_u64) {
        let Some(tx) = lock(pending).remove(&id) else {
            return;
        };
        let reply = match v.get("error") {
            Some(e) => Err(CdpError::Protocol(e.to_string())),
            None => Ok(v.get("result").cloned().unwrap_or(Value::Null)),
        };
        let _ = tx.send(reply);
        return;
    }
    let (Some(method), Some(session)) = (
        v.get("method").and_then(Value::as_str),
        v.get("sessionId").and_then(Value::as_str),
    ) else {
        return;
    };
    let log = lock(sinks).get(session).cloned();
    if let Some(log) = log {
        log.push(Event {
            method: method.to_owned(),
            params: v.get("params").cloned().unwrap_or(Value::Null),
        });
    }
}
