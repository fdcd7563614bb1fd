//! A rate-limited route in a real browser: past its burst, a page on an allowed origin reads the
//! 429 (status and Retry-After visible to script, no CORS error), and a preflighted request whose
//! preflight is the one over the limit fails as a preflight failure, as docs/configuration.md says.

use serde_json::Value;

use crate::engine::{assert_blocked, Engine, Page, Stopped};
use crate::gate::{policy, World};

/// One request a minute after a burst of 2, keyed by client (the browser's 127.0.0.1): no refill
/// can happen while the case runs.
fn limited(origin: &str) -> String {
    policy(
        "p",
        origin,
        "allowed_methods = [\"GET\", \"PUT\"]\nallowed_headers = [\"x-custom\"]",
    ) + "[rate_limits.tight]\nrequests_per_second = 0.016\nburst = 2\n\n\
         [[routes]]\npath_prefix = \"/\"\nupstream = \"echo\"\npolicy = \"p\"\nrate_limit = \"tight\"\n\n"
}

/// `probe(url, init)` in the page, as the keys this case reads: whether the fetch resolved, its
/// `ok`, status, `Retry-After` and body.
async fn fetch(page: &Page, url: &str, init: &str) -> (Value, usize) {
    let (got, mark) = crate::cases::probe(page, url, init).await;
    let ok = got["status"]
        .as_u64()
        .is_some_and(|s| (200..300).contains(&s));
    let read = serde_json::json!({
        "fetched": got["ok"],
        "ok": ok,
        "status": got["status"],
        "retryAfter": got["headers"]["retry-after"],
        "body": got["body"],
        "error": got["error"],
    });
    (read, mark)
}

pub async fn a_page_reads_the_429_of_a_rate_limited_route_past_its_burst(engine: Engine) {
    let w = World::start(engine, limited).await;
    let page = w.open(&w.allowed).await;
    let url = w.api("/limited");
    for _ in 0..2 {
        let (got, _) = fetch(&page, &url, "{}").await;
        assert_eq!(got["status"], 200, "{got}");
        assert_eq!(got["ok"], true, "{got}");
    }
    let (got, mark) = fetch(&page, &url, "{}").await;
    // The fetch resolved: no CORS error, and script sees the real status and when to retry.
    assert_eq!(got["fetched"], true, "{got}");
    assert_eq!(got["status"], 429, "{got}");
    assert_eq!(got["ok"], false, "{got}");
    let retry: u64 = got["retryAfter"]
        .as_str()
        .unwrap_or("")
        .parse()
        .expect("Retry-After");
    assert!((1..=63).contains(&retry), "{got}");
    assert_eq!(got["body"], "too many requests\n");
    let failed: Vec<_> = page
        .failures_since(mark)
        .into_iter()
        .filter(|f| f.request.url == url)
        .collect();
    assert!(failed.is_empty(), "{failed:?}");
    assert_eq!(
        w.upstream.hits().len(),
        2,
        "the 429 never reached the upstream"
    );

    // A preflighted request: its preflight is over the limit too, and a preflight answer that is
    // not 2xx fails the request before it is sent, whatever CORS headers it carries.
    let put = w.api("/limited/put");
    let (got, mark) = fetch(&page, &put, "{method: 'PUT', headers: {'X-Custom': '1'}}").await;
    assert_eq!(got["fetched"], false, "{got}");
    assert_blocked(&page, mark, &put, Stopped::AtPreflight, |e| {
        e == "PreflightInvalidStatus"
    })
    .await;
    assert_eq!(w.upstream.hits().len(), 2);
}
