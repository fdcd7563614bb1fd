//! corsgate's explanation for the demo page: the page POSTs a description of a request, and this
//! evaluates it against the demo snapshot with the same code as `corsgate explain --json`.

use serde::Deserialize;
use serde_json::Value;

use crate::cli::ExplainArgs;
use crate::report::{explain_json, ExplainRequest};
use crate::snapshot::Snapshot;

/// The request the page asks about (POSTed as JSON to `/explain`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExplainQuery {
    /// The `Origin` the browser sends (the page's own origin), if any.
    pub origin: Option<String>,
    /// The method (for a preflight: the method it asks about).
    pub method: String,
    /// The path on the proxy.
    pub path: String,
    /// Header names the request carries (for a preflight: the ones it asks about).
    #[serde(default)]
    pub headers: Vec<String>,
    /// Evaluate the preflight instead of the request itself.
    #[serde(default)]
    pub preflight: bool,
}

/// Evaluate `q` as a request to `host` (the proxy's authority, which the browser sends as Host) and
/// return the `explain --json` object. An unusable query (bad method or header) is an error string.
pub(crate) fn explain(snapshot: &Snapshot, host: &str, q: &ExplainQuery) -> Result<Value, String> {
    let args = ExplainArgs {
        origin: q.origin.clone(),
        method: q.method.clone(),
        path: q.path.clone(),
        host: Some(host.to_owned()),
        headers: q.headers.clone(),
        preflight: q.preflight,
        private_network: false,
        sec_fetch_site: None,
        sec_fetch_mode: None,
        sec_fetch_dest: None,
        https: false,
        json: true,
    };
    let request = ExplainRequest::new(&args, false)?;
    let view = request.view();
    let eval = snapshot.evaluate(&view);
    Ok(explain_json(&eval, &view))
}
