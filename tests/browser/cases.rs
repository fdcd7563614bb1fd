//! The corsgate cases: each is an `async fn(Engine)` that `browser.rs` runs once in Chromium and
//! once in Firefox, against the real proxy, a recording upstream and two page origins. Where the
//! engines legitimately differ, the case asserts each one's documented behaviour and says so.

use serde_json::Value;

use crate::engine::{assert_blocked, Engine, Page, Stopped};
use crate::gate::{policy, route, World};

/// Run `probe(url, init)` in `page` and wait until the network log has the whole exchange.
pub(crate) async fn probe(page: &Page, url: &str, init: &str) -> (Value, usize) {
    let mark = page.mark();
    let got = page
        .eval(&format!("probe({url:?}, {init})"))
        .await
        .expect("probe");
    page.wait_for_request_done(mark, url)
        .await
        .expect("request seen");
    (got, mark)
}

/// The echo upstream's JSON, as the script read it.
pub(crate) fn echoed(got: &Value) -> Value {
    serde_json::from_str(got["body"].as_str().unwrap_or_default()).expect("echo JSON")
}

fn simple_policy(origin: &str) -> String {
    policy("p", origin, "") + &route("/", "p")
}

pub async fn simple_get_from_an_allowed_origin_is_readable(engine: Engine) {
    let w = World::start(engine, simple_policy).await;
    let page = w.open(&w.allowed).await;
    let url = w.api("/things?x=1");
    let (got, mark) = probe(&page, &url, "{}").await;
    assert_eq!(got["ok"], true, "{got}");
    assert_eq!(got["status"], 200);
    let body = echoed(&got);
    assert_eq!(body["method"], "GET");
    assert_eq!(body["headers"]["origin"], w.allowed.origin());
    assert!(!page.requests_since(mark).iter().any(|r| r.preflight));
    assert_eq!(w.upstream.hits().len(), 1);
}

pub async fn simple_get_from_a_denied_origin_is_blocked_and_never_reaches_the_upstream(
    engine: Engine,
) {
    let w = World::start(engine, simple_policy).await;
    let page = w.open(&w.denied).await;
    let url = w.api("/things");
    let (got, mark) = probe(&page, &url, "{}").await;
    assert_eq!(got["ok"], false, "{got}");
    // The browser did send it (a simple request needs no preflight), and CORS failed it.
    let sent = page.requests_since(mark);
    assert!(!sent.iter().any(|r| r.preflight), "{sent:?}");
    let lacking = "access-control-allow-origin";
    assert_blocked(&page, mark, &url, Stopped::AtResponse { lacking }, |e| {
        e == "MissingAllowOriginHeader"
    })
    .await;
    // Block mode: corsgate answered 403 itself. The upstream's own `Access-Control-Allow-Origin: *`
    // would have let the page read it.
    assert!(w.upstream.hits().is_empty(), "{:?}", w.upstream.hits());
}

pub async fn headers_only_forwards_a_denied_request_but_the_browser_still_blocks_the_read(
    engine: Engine,
) {
    let w = World::start(engine, |o| {
        policy("p", o, "enforcement = \"headers-only\"") + &route("/", "p")
    })
    .await;
    let page = w.open(&w.denied).await;
    let (got, _) = probe(&page, &w.api("/things"), "{}").await;
    assert_eq!(got["ok"], false, "{got}");
    // Forwarded, but with the upstream's `Access-Control-Allow-Origin: *` stripped.
    assert_eq!(w.upstream.hits().len(), 1);
}

pub async fn put_with_a_json_body_and_a_custom_header_is_preflighted_and_allowed(engine: Engine) {
    let w = World::start(engine, |o| {
        let extra = "allowed_methods = [\"GET\", \"PUT\"]\n\
                     allowed_headers = [\"content-type\", \"x-custom\"]";
        policy("p", o, extra) + &route("/", "p")
    })
    .await;
    let page = w.open(&w.allowed).await;
    let url = w.api("/items/7");
    let init = "{method: 'PUT', headers: {'Content-Type': 'application/json', 'X-Custom': 'yes'}, \
                body: JSON.stringify({name: 'widget'})}";
    let (got, mark) = probe(&page, &url, init).await;
    assert_eq!(got["ok"], true, "{got}");
    let body = echoed(&got);
    assert_eq!(body["method"], "PUT");
    assert_eq!(body["body"], r#"{"name":"widget"}"#);
    assert_eq!(body["headers"]["x-custom"], "yes");
    let preflights: Vec<_> = page
        .requests_since(mark)
        .into_iter()
        .filter(|r| r.preflight)
        .collect();
    assert_eq!(preflights.len(), 1, "{preflights:?}");
    // corsgate answered the preflight itself: the upstream only saw the PUT.
    let methods: Vec<String> = w.upstream.hits().into_iter().map(|h| h.method).collect();
    assert_eq!(methods, ["PUT"]);
}

pub async fn a_header_outside_allowed_headers_is_stopped_at_the_preflight(engine: Engine) {
    let w = World::start(engine, |o| {
        policy("p", o, "allowed_headers = [\"x-custom\"]") + &route("/", "p")
    })
    .await;
    let page = w.open(&w.allowed).await;
    let url = w.api("/things");
    let (got, mark) = probe(&page, &url, "{headers: {'X-Other': '1'}}").await;
    assert_eq!(got["ok"], false, "{got}");
    let sent = page.requests_since(mark);
    assert_eq!(sent.iter().filter(|r| r.preflight).count(), 1, "{sent:?}");
    assert_blocked(&page, mark, &url, Stopped::AtPreflight, |e| {
        e.starts_with("Preflight")
    })
    .await;
    assert!(w.upstream.hits().is_empty(), "{:?}", w.upstream.hits());
    // Control: the allowed header goes through.
    let (got, _) = probe(&page, &url, "{headers: {'X-Custom': '1'}}").await;
    assert_eq!(got["ok"], true, "{got}");
}

pub async fn a_credentialed_fetch_succeeds_only_under_a_credentials_policy(engine: Engine) {
    let w = World::start(engine, |o| {
        policy("cred", o, "allow_credentials = true")
            + &policy("plain", o, "")
            + &route("/cred", "cred")
            + &route("/plain", "plain")
    })
    .await;
    let page = w.open(&w.allowed).await;
    // Cookies are per host, not per port: this one goes to the proxy's origin too.
    page.eval("document.cookie = 'sid=s3cret; path=/'")
        .await
        .unwrap();
    let include = "{credentials: 'include'}";
    let (got, _) = probe(&page, &w.api("/cred/me"), include).await;
    assert_eq!(got["ok"], true, "{got}");
    assert_eq!(echoed(&got)["headers"]["cookie"], "sid=s3cret");
    let plain = w.api("/plain/me");
    let (got, mark) = probe(&page, &plain, include).await;
    assert_eq!(got["ok"], false, "{got}");
    let lacking = "access-control-allow-credentials";
    assert_blocked(&page, mark, &plain, Stopped::AtResponse { lacking }, |e| {
        e == "InvalidAllowCredentials"
    })
    .await;
    // Control: without credentials the same policy lets the page read the response.
    let (got, _) = probe(&page, &w.api("/plain/me"), "{}").await;
    assert_eq!(got["ok"], true, "{got}");
}

pub async fn a_response_header_is_readable_only_when_listed_in_expose_headers(engine: Engine) {
    let w = World::start(engine, |o| {
        policy("some", o, "expose_headers = [\"x-request-id\"]")
            + &policy(
                "both",
                o,
                "expose_headers = [\"x-request-id\", \"x-secret\"]",
            )
            + &route("/some", "some")
            + &route("/both", "both")
    })
    .await;
    let page = w.open(&w.allowed).await;
    let url = w.api("/some/x");
    let (got, mark) = probe(&page, &url, "{}").await;
    assert_eq!(got["ok"], true, "{got}");
    assert_eq!(got["headers"]["x-request-id"], "req-42");
    assert_eq!(got["headers"].get("x-secret"), None, "{got}");
    // It was on the wire all the same: only script was kept from reading it.
    let wire = page.response_headers(mark, &url).await.unwrap();
    assert!(
        wire.iter()
            .any(|(k, v)| k == "x-secret" && v == "hidden-unless-exposed"),
        "{wire:?}"
    );
    let (got, _) = probe(&page, &w.api("/both/x"), "{}").await;
    assert_eq!(got["headers"]["x-secret"], "hidden-unless-exposed", "{got}");
}

pub async fn an_upstream_500_is_readable_by_the_page(engine: Engine) {
    let w = World::start(engine, simple_policy).await;
    let page = w.open(&w.allowed).await;
    let (got, _) = probe(&page, &w.api("/status/500"), "{}").await;
    assert_eq!(got["ok"], true, "{got}");
    assert_eq!(got["status"], 500);
    assert_eq!(echoed(&got)["path"], "/status/500");
}

pub async fn a_second_identical_preflighted_call_within_max_age_sends_no_options(engine: Engine) {
    let w = World::start(engine, |o| {
        let h = "allowed_methods = [\"PUT\"]\nallowed_headers = [\"x-custom\"]\n";
        policy("cached", o, &format!("{h}max_age = 600"))
            + &policy("uncached", o, &format!("{h}max_age = 0"))
            + &route("/cached", "cached")
            + &route("/uncached", "uncached")
    })
    .await;
    let page = w.open(&w.allowed).await;
    let init = "{method: 'PUT', headers: {'X-Custom': '1'}}";
    let mut preflights = Vec::new();
    // Firefox does not reliably reuse a cached preflight when the API is addressed by an IP literal
    // (127.0.0.1): on 140 ESR it did in some runs and not in others (CI saw [1, 2, 2, 2]). It does
    // for a host name, so both engines address the proxy as `localhost:PORT` here, and the
    // IP-literal form is asserted only where it is dependable (Chromium).
    let mut urls = vec![w.api_by_name("/cached/a"), w.api_by_name("/uncached/a")];
    if page.engine() == Engine::Chromium {
        urls.extend([w.api("/cached/b"), w.api("/uncached/b")]);
    }
    for url in urls {
        let mark = page.mark();
        for _ in 0..2 {
            let (got, _) = probe(&page, &url, init).await;
            assert_eq!(got["ok"], true, "{url}: {got}");
        }
        let n = page
            .requests_since(mark)
            .iter()
            .filter(|r| r.preflight)
            .count();
        preflights.push(n);
    }
    // max_age = 600: the browser reuses the first answer; max_age = 0: it asks every time. Both
    // engines cap Access-Control-Max-Age (Chromium at 7200 s, Firefox at 86400 s); 600 is under
    // both caps, so the same expectation holds in each.
    let want: &[usize] = match page.engine() {
        Engine::Chromium => &[1, 2, 1, 2],
        Engine::Firefox => &[1, 2],
    };
    assert_eq!(preflights, want, "{:?}", page.engine());
}

pub async fn a_websocket_connects_from_an_allowed_origin_and_fails_from_a_denied_one(
    engine: Engine,
) {
    let w = World::start(engine, simple_policy).await;
    let ws = format!("ws://{}/ws", w.gate.addr);
    let page = w.open(&w.allowed).await;
    let got = page.eval(&format!("probeWs({ws:?})")).await.unwrap();
    assert_eq!(got["open"], true, "{got}");
    assert_eq!(got["message"], "echo:hello");
    let page = w.open(&w.denied).await;
    let got = page.eval(&format!("probeWs({ws:?})")).await.unwrap();
    assert_eq!(got["open"], false, "{got}");
    // Only the allowed handshake reached the upstream.
    let origins: Vec<String> = w
        .upstream
        .hits()
        .iter()
        .map(|h| h.headers["origin"].to_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(origins, [w.allowed.origin()]);
}
