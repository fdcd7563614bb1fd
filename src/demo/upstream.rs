//! The demo's echo upstream: answers every request with JSON describing what reached it, so the page
//! can show what corsgate forwarded. `/status/NNN` answers with that status, `/cookie` sets a cookie.
//! Every answer carries `X-Demo-Request-Id` (exposed by the demo policy) and `X-Demo-Internal` (not).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use http::header::{HeaderValue, CACHE_CONTROL, COOKIE, ORIGIN, SET_COOKIE};
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde_json::{json, Map, Value};

use super::http::{json, Resp};

/// Request bodies larger than this are not echoed.
const MAX_BODY: usize = 64 * 1024;

/// The echo upstream's state: a request counter, for `X-Demo-Request-Id` and cookie values.
#[derive(Clone, Debug, Default)]
pub(crate) struct Echo {
    served: Arc<AtomicU64>,
}

impl Echo {
    /// Answer one request.
    pub(crate) async fn handle(self, req: Request<Incoming>) -> Resp {
        let n = self.served.fetch_add(1, Ordering::Relaxed) + 1;
        let (parts, body) = req.into_parts();
        let body = match Limited::new(body, MAX_BODY).collect().await {
            Ok(b) => String::from_utf8_lossy(&b.to_bytes()).into_owned(),
            Err(_) => format!("(body not echoed: over {MAX_BODY} bytes or unreadable)"),
        };
        let path = parts.uri.path();
        let status = match path.strip_prefix("/status/") {
            Some(code) => match code
                .parse::<u16>()
                .ok()
                .and_then(|c| StatusCode::from_u16(c).ok())
            {
                Some(s) => s,
                None => StatusCode::BAD_REQUEST,
            },
            None => StatusCode::OK,
        };
        let header = |name| {
            parts
                .headers
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
        };
        let mut headers = Map::new();
        for (k, v) in &parts.headers {
            headers.insert(
                k.to_string(),
                Value::from(v.to_str().unwrap_or("(not text)")),
            );
        }
        let value = json!({
            "upstream": "echo",
            "request": n,
            "method": parts.method.as_str(),
            "path": path,
            "query": parts.uri.query(),
            "origin": header(ORIGIN),
            "cookie": header(COOKIE),
            "headers": headers,
            "body": body,
        });
        let mut resp = json(status, &value);
        let h = resp.headers_mut();
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h.insert("x-demo-request-id", HeaderValue::from(n));
        h.insert(
            "x-demo-internal",
            HeaderValue::from_static("not-exposed-so-script-cannot-read-this"),
        );
        if path == "/cookie" {
            let cookie =
                format!("corsgate_demo=visit-{n}; Path=/; Max-Age=3600; SameSite=Lax; HttpOnly");
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                h.insert(SET_COOKIE, v);
            }
        }
        resp
    }
}
