//! The demo page server. The same page is served on two origins, one the demo policy allows and one
//! it denies; `POST /explain` answers with corsgate's explanation of a described request.

use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde_json::json;

use super::explain::{explain, ExplainQuery};
use super::http::{json, respond, Resp};
use crate::snapshot::Snapshot;

const INDEX: &str = include_str!("index.html");
const SCRIPT: &str = include_str!("demo.js");
const STYLE: &str = include_str!("demo.css");
/// Where `index.html` takes its settings.
const CONFIG_SLOT: &str = "/*CONFIG*/null";
/// An explain query is a few hundred bytes.
const MAX_QUERY: usize = 16 * 1024;

/// Which of the two page origins this server is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// The origin the demo policy allows.
    Allowed,
    /// The origin it does not.
    Denied,
}

/// One page server.
#[derive(Clone)]
pub(crate) struct Pages {
    index: Bytes,
    snapshot: Arc<Snapshot>,
    /// The proxy's authority (`127.0.0.1:PORT`), the Host the browser sends to it.
    api_host: Arc<str>,
}

impl Pages {
    /// A page server for `role`, calling the API at `api` and linking to the other page at `other`.
    pub(crate) fn new(
        role: Role,
        api_host: &str,
        other: &str,
        policy_toml: &str,
        snapshot: Arc<Snapshot>,
    ) -> Pages {
        let config = json!({
            "api": format!("http://{api_host}"),
            "role": if role == Role::Allowed { "allowed" } else { "denied" },
            "other": other,
            "policy": policy_toml,
        });
        // `<` escaped so that no string in the settings can close the <script> element.
        let config = config.to_string().replace('<', "\\u003c");
        Pages {
            index: Bytes::from(INDEX.replace(CONFIG_SLOT, &config)),
            snapshot,
            api_host: Arc::from(api_host),
        }
    }

    /// Answer one request.
    pub(crate) async fn handle(self, req: Request<Incoming>) -> Resp {
        let html = "text/html; charset=utf-8";
        match (req.method(), req.uri().path()) {
            (&Method::GET, "/" | "/index.html") => {
                respond(StatusCode::OK, html, self.index.clone())
            }
            (&Method::GET, "/demo.js") => respond(StatusCode::OK, "text/javascript", SCRIPT),
            (&Method::GET, "/demo.css") => respond(StatusCode::OK, "text/css", STYLE),
            (&Method::POST, "/explain") => self.explain(req).await,
            _ => respond(StatusCode::NOT_FOUND, "text/plain", "not found"),
        }
    }

    async fn explain(&self, req: Request<Incoming>) -> Resp {
        let body = match Limited::new(req.into_body(), MAX_QUERY).collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => return error(StatusCode::PAYLOAD_TOO_LARGE, &e.to_string()),
        };
        let query: ExplainQuery = match serde_json::from_slice(&body) {
            Ok(q) => q,
            Err(e) => return error(StatusCode::BAD_REQUEST, &e.to_string()),
        };
        match explain(&self.snapshot, &self.api_host, &query) {
            Ok(v) => json(StatusCode::OK, &v),
            Err(e) => error(StatusCode::BAD_REQUEST, &e),
        }
    }
}

fn error(status: StatusCode, message: &str) -> Resp {
    json(status, &json!({ "error": message }))
}
