//! Tiny real HTTP servers for the browser tests (hyper on 127.0.0.1:0): static pages, a recording
//! echo upstream with `/status/NNN`, and a WebSocket echo endpoint.
// Not every case reads every recorded field.
#![allow(dead_code)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use http::{Method, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{json, Map, Value};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::WebSocketStream;

use crate::events::lock;

/// The response type every handler returns.
pub type Resp = Response<Full<Bytes>>;

/// A received request, body already read.
pub struct Req {
    /// Method.
    pub method: Method,
    /// Target URI (path and query).
    pub uri: Uri,
    /// Headers.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Bytes,
    upgrade: Option<OnUpgrade>,
}

/// What a server recorded of one request.
#[derive(Clone, Debug)]
pub struct Hit {
    /// Method.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Headers.
    pub headers: HeaderMap,
}

/// A running server; stops accepting when dropped.
pub struct Server {
    /// Where it listens.
    pub addr: SocketAddr,
    hits: Arc<Mutex<Vec<Hit>>>,
    task: JoinHandle<()>,
}

impl Server {
    /// `http://127.0.0.1:PORT`.
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://localhost:PORT`: the same server by name. A page here is *cross-site* to the proxy
    /// at `http://127.0.0.1:PORT` (a site is the scheme and registrable domain, or the IP itself),
    /// whereas two `127.0.0.1` ports are merely cross-origin and same-site. Both hosts stay
    /// potentially trustworthy, which matters: browsers send `Sec-Fetch-*` only to such URLs.
    pub fn origin_by_name(&self) -> String {
        format!("http://localhost:{}", self.addr.port())
    }

    /// Every request received so far.
    pub fn hits(&self) -> Vec<Hit> {
        lock(&self.hits).clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serve `handler` on 127.0.0.1:0 (HTTP/1.1 and h2c, upgrades allowed), recording every request.
pub async fn serve<F>(handler: F) -> std::io::Result<Server>
where
    F: Fn(Req) -> Resp + Send + Sync + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let hits: Arc<Mutex<Vec<Hit>>> = Arc::default();
    let handler = Arc::new(handler);
    let recorded = Arc::clone(&hits);
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (handler, recorded) = (Arc::clone(&handler), Arc::clone(&recorded));
            let svc = service_fn(move |mut req: http::Request<Incoming>| {
                let (handler, recorded) = (Arc::clone(&handler), Arc::clone(&recorded));
                async move {
                    let upgrade = req.extensions_mut().remove::<OnUpgrade>();
                    let (parts, body) = req.into_parts();
                    let body = body
                        .collect()
                        .await
                        .map(|b| b.to_bytes())
                        .unwrap_or_default();
                    lock(&recorded).push(Hit {
                        method: parts.method.to_string(),
                        path: parts.uri.to_string(),
                        headers: parts.headers.clone(),
                    });
                    let req = Req {
                        method: parts.method,
                        uri: parts.uri,
                        headers: parts.headers,
                        body,
                        upgrade,
                    };
                    Ok::<_, Infallible>(handler(req))
                }
            });
            tokio::spawn(async move {
                let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                let _ = builder
                    .serve_connection_with_upgrades(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Ok(Server { addr, hits, task })
}

/// A response with a body and content type.
pub fn respond(status: u16, content_type: &str, body: impl Into<Bytes>) -> Resp {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(v) = HeaderValue::from_str(content_type) {
        r.headers_mut().insert(CONTENT_TYPE, v);
    }
    r
}

/// The echo upstream: answers every request with JSON describing it (method, path, headers, body).
/// `/status/NNN` answers with that status. Every answer carries `X-Request-Id` and `X-Secret`, and a
/// wide-open `Access-Control-Allow-Origin: *` that the proxy must replace. A WebSocket handshake is
/// accepted and echoed. `/asset/pixel.gif` and `/asset/script.js` answer with a real image and a
/// real script instead, so that an `<img>` or `<script>` the proxy lets through visibly loads.
pub fn echo(req: Req) -> Resp {
    if is_websocket(&req.headers) {
        return accept_websocket(req);
    }
    match req.uri.path() {
        "/asset/pixel.gif" => return respond(200, "image/gif", PIXEL_GIF),
        "/asset/script.js" => return respond(200, "text/javascript", ASSET_SCRIPT),
        _ => {}
    }
    let mut headers = Map::new();
    for (k, v) in &req.headers {
        headers.insert(k.to_string(), Value::from(v.to_str().unwrap_or("")));
    }
    let path = req.uri.path().to_owned();
    let status = path
        .strip_prefix("/status/")
        .and_then(|s| s.parse::<u16>().ok())
        .unwrap_or(200);
    let body = json!({
        "method": req.method.as_str(),
        "path": path,
        "headers": headers,
        "body": String::from_utf8_lossy(&req.body),
    });
    let mut r = respond(status, "application/json", body.to_string());
    let h = r.headers_mut();
    h.insert("x-request-id", HeaderValue::from_static("req-42"));
    h.insert(
        "x-secret",
        HeaderValue::from_static("hidden-unless-exposed"),
    );
    h.insert("access-control-allow-origin", HeaderValue::from_static("*"));
    r
}

/// A 1x1 transparent GIF.
pub const PIXEL_GIF: &[u8] = &[
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00,
    0xff, 0xff, 0xff, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b,
];

/// What `/asset/script.js` runs: a mark the page can see, proof the script was executed.
pub const ASSET_SCRIPT: &str = "window.apiScriptRan = (window.apiScriptRan || 0) + 1;";

fn is_websocket(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::UPGRADE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"))
}

/// Answer a WebSocket handshake with 101 and echo every text message back, prefixed by `echo:`.
fn accept_websocket(req: Req) -> Resp {
    let Some(key) = req.headers.get("sec-websocket-key") else {
        return respond(400, "text/plain", "missing sec-websocket-key");
    };
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    let Some(upgrade) = req.upgrade else {
        return respond(400, "text/plain", "not upgradable");
    };
    tokio::spawn(async move {
        let Ok(upgraded) = upgrade.await else { return };
        let mut ws =
            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
        while let Some(Ok(msg)) = ws.next().await {
            if msg.is_text() {
                let reply = format!("echo:{}", msg.into_text().unwrap_or_default());
                if ws.send(reply.into()).await.is_err() {
                    break;
                }
            }
        }
    });
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert(http::header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(
        http::header::CONNECTION,
        HeaderValue::from_static("Upgrade"),
    );
    if let Ok(v) = HeaderValue::from_str(&accept) {
        h.insert("sec-websocket-accept", v);
    }
    r
}

/// A page for the tests: it defines `probe(url, init)`, which runs `fetch` and reports what the
/// browser let script see, `probeWs(url)`, which opens a WebSocket and reports whether it
/// connected and echoed, `loadElement(tag, url)` for `<img>`/`<script>` loads, and
/// `submitForm(url, fields)` / `postForm(url, fields)` for a plain form post (top-level, or into a
/// hidden iframe).
pub const PROBE_PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>probe</title></head><body>probe
<script>
window.probe = async (url, init) => {
  try {
    const r = await fetch(url, init || {});
    const headers = {};
    r.headers.forEach((v, k) => { headers[k] = v; });
    return { ok: true, status: r.status, headers, body: await r.text() };
  } catch (e) {
    return { ok: false, error: String(e) };
  }
};
window.probeWs = (url) => new Promise((resolve) => {
  let ws;
  try { ws = new WebSocket(url); } catch (e) { resolve({ open: false, error: String(e) }); return; }
  ws.onopen = () => ws.send('hello');
  ws.onmessage = (m) => { resolve({ open: true, message: String(m.data) }); ws.close(); };
  ws.onerror = () => resolve({ open: false, error: 'error event' });
  ws.onclose = (c) => resolve({ open: false, error: 'closed ' + c.code });
});
// Load `url` as an <img> or a <script> and report which event fired: 'load' or 'error'.
window.loadElement = (tag, url) => new Promise((resolve) => {
  const el = document.createElement(tag);
  el.onload = () => resolve('load');
  el.onerror = () => resolve('error');
  el.src = url;
  document.body.appendChild(el);
});
// A plain <form method=POST> to `url` with hidden `fields`, as a CSRF page would build it.
const makeForm = (url, fields) => {
  const form = document.createElement('form');
  form.method = 'POST';
  form.action = url;
  for (const [k, v] of Object.entries(fields || {})) {
    const input = document.createElement('input');
    input.type = 'hidden';
    input.name = k;
    input.value = v;
    form.appendChild(input);
  }
  document.body.appendChild(form);
  return form;
};
// Submit such a form in this tab: a top-level POST navigation, so this page is gone afterwards
// and the answer is watched in the network log.
window.submitForm = (url, fields) => makeForm(url, fields).submit();
// Submit it into a hidden iframe instead, so that this page stays; resolves when the frame has
// loaded whatever came back. That answer is from another origin, so script cannot read it (the
// servers can) and reading the frame's location throws: that tells its load apart from the
// initial about:blank one, which engines fire at insertion, synchronously or not.
window.postForm = (url, fields) => new Promise((resolve) => {
  const frame = document.createElement('iframe');
  frame.name = 'sink' + Math.random().toString(36).slice(2);
  frame.style.display = 'none';
  frame.onload = () => {
    try { frame.contentWindow.location.href; } catch (e) { resolve('load'); }
  };
  document.body.appendChild(frame);
  const form = makeForm(url, fields);
  form.target = frame.name;
  form.submit();
});
</script></body></html>"#;

/// Serve [`PROBE_PAGE`] at every path.
pub async fn probe_page() -> std::io::Result<Server> {
    serve(|_| respond(200, "text/html; charset=utf-8", PROBE_PAGE)).await
}
