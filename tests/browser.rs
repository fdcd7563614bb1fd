//! End-to-end CORS in a real browser: headless Chromium, driven over the DevTools protocol.
//!
//! Every test needs Chromium and is `#[ignore]`d so that a plain `cargo test` stays green on a machine
//! without it; CI runs `cargo test -- --include-ignored`, where a missing browser fails the test.

#[path = "chromium/mod.rs"]
mod chromium;
#[path = "chromium/gate.rs"]
mod gate;

use chromium::http::{probe_page, respond, serve, Req, Resp};
use chromium::Browser;
use gate::{policy, route, World};
use http::HeaderValue;
use serde_json::Value;

/// A hand-made CORS endpoint (no corsgate): allows the one origin it is given, `X-Probe`, PUT.
fn hand_made_api(allowed: String) -> impl Fn(Req) -> Resp + Send + Sync + 'static {
    move |req| {
        let mut r = respond(200, "application/json", r#"{"hello":"world"}"#);
        if req.uri.path() == "/no-cors" {
            return r;
        }
        let h = r.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&allowed) {
            h.insert("access-control-allow-origin", v);
        }
        h.insert(
            "access-control-allow-headers",
            HeaderValue::from_static("x-probe"),
        );
        h.insert(
            "access-control-allow-methods",
            HeaderValue::from_static("PUT"),
        );
        h.insert("access-control-max-age", HeaderValue::from_static("600"));
        r
    }
}

#[tokio::test]
#[ignore = "needs chromium: /usr/bin/chromium (run with --include-ignored)"]
async fn driver_runs_fetch_in_the_page_and_reports_requests_and_preflights() {
    let browser = Browser::launch().await.expect("launch chromium");
    let site = probe_page().await.expect("page server");
    let api = serve(hand_made_api(site.origin()))
        .await
        .expect("api server");
    let page = browser.new_page().await.expect("new page");
    page.navigate(&format!("{}/", site.origin()))
        .await
        .expect("navigate");
    assert_eq!(page.eval("location.origin").await.unwrap(), site.origin());

    // A simple GET: readable, and the network log shows it.
    let url = format!("{}/data", api.origin());
    let mark = page.mark();
    let got = page.eval(&format!("probe({url:?})")).await.unwrap();
    assert_eq!(got["ok"], true, "{got}");
    assert_eq!(got["status"], 200);
    assert_eq!(got["body"], r#"{"hello":"world"}"#);
    page.wait_for_request_done(mark, &url).await.unwrap();
    let sent = page.requests_since(mark);
    assert!(
        sent.iter()
            .any(|r| r.method == "GET" && r.url == url && r.kind == "Fetch"),
        "{sent:?}"
    );
    assert!(!sent.iter().any(|r| r.is_preflight()), "{sent:?}");

    // A PUT with a custom header: the driver sees the preflight the server received.
    let mark = page.mark();
    let put = format!("probe({url:?}, {{method: 'PUT', headers: {{'X-Probe': '1'}}}})");
    let got = page.eval(&put).await.unwrap();
    assert_eq!(got["ok"], true, "{got}");
    page.wait_for_request_done(mark, &url).await.unwrap();
    let sent = page.requests_since(mark);
    let preflights: Vec<_> = sent.iter().filter(|r| r.is_preflight()).collect();
    assert_eq!(preflights.len(), 1, "{sent:?}");
    assert_eq!(preflights[0].url, url);
    let server_saw: Vec<String> = api.hits().iter().map(|h| h.method.clone()).collect();
    assert_eq!(server_saw, ["GET", "OPTIONS", "PUT"]);

    // A response without CORS headers: fetch rejects and the driver reports the CORS error.
    let blocked = format!("{}/no-cors", api.origin());
    let mark = page.mark();
    let got = page.eval(&format!("probe({blocked:?})")).await.unwrap();
    assert_eq!(got["ok"], false, "{got}");
    page.wait_for_request_done(mark, &blocked).await.unwrap();
    let failed = page.failures_since(mark);
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(
        failed[0].cors_error.as_deref(),
        Some("MissingAllowOriginHeader")
    );
}

#[tokio::test]
#[ignore = "needs chromium: /usr/bin/chromium (run with --include-ignored)"]
async fn driver_reports_script_exceptions_and_failed_navigation() {
    let browser = Browser::launch().await.expect("launch chromium");
    let page = browser.new_page().await.expect("new page");
    let err = page
        .eval("(async () => { throw new Error('boom') })()")
        .await;
    assert!(
        matches!(&err, Err(chromium::CdpError::Page(m)) if m.contains("boom")),
        "{err:?}"
    );
    // Bind then drop a listener: nothing listens on that port any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap();
    let nav = page.navigate(&format!("http://127.0.0.1:{port}/")).await;
    assert!(matches!(&nav, Err(chromium::CdpError::Page(_))), "{nav:?}");
    let v: Value = page.eval("1 + 1").await.unwrap();
    assert_eq!(v, 2);
}

// === corsgate in the browser ===

/// Run `probe(url, init)` in `page` and wait until the network log has the whole exchange.
async fn probe(page: &chromium::Page, url: &str, init: &str) -> (Value, usize) {
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
fn echoed(got: &Value) -> Value {
    serde_json::from_str(got["body"].as_str().unwrap_or_default()).expect("echo JSON")
}

fn simple_policy(origin: &str) -> String {
    policy("p", origin, "") + &route("/", "p")
}

#[tokio::test]
#[ignore = "needs chromium: /usr/bin/chromium (run with --include-ignored)"]
async fn simple_get_from_an_allowed_origin_is_readable() {
    let w = World::start(simple_policy).await;
    let page = w.open(&w.allowed).await;
    let url = w.api("/things?x=1");
    let (got, mark) = probe(&page, &url, "{}").await;
    assert_eq!(got["ok"], true, "{got}");
    assert_eq!(got["status"], 200);
    let body = echoed(&got);
    assert_eq!(body["method"], "GET");
    assert_eq!(body["headers"]["origin"], w.allowed.origin());
    assert!(!page.requests_since(mark).iter().any(|r| r.is_preflight()));
    assert_eq!(w.upstream.hits().len(), 1);
}

#[tokio::test]
#[ignore = "needs chromium: /usr/bin/chromium (run with --include-ignored)"]
async fn simple_get_from_a_denied_origin_is_blocked_and_never_reaches_the_upstream() {
    let w = World::start(simple_policy).await;
    let page = w.open(&w.denied).await;
    let url = w.api("/things");
    let (got, mark) = probe(&page, &url, "{}").await;
    assert_eq!(got["ok"], false, "{got}");
    // The browser did send it (a simple request needs no preflight), and CORS failed it.
    let failed = page.failures_since(mark);
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].request.method, "GET");
    assert_eq!(
        failed[0].cors_error.as_deref(),
        Some("MissingAllowOriginHeader")
    );
    // Block mode: corsgate answered 403 itself. The upstream's own `Access-Control-Allow-Origin: *`
    // would have let the page read it.
    assert!(w.upstream.hits().is_empty(), "{:?}", w.upstream.hits());
}

#[tokio::test]
#[ignore = "needs chromium: /usr/bin/chromium (run with --include-ignored)"]
async fn headers_only_forwards_a_denied_request_but_the_browser_still_blocks_the_read() {
    let w =
        World::start(|o| policy("p", o, "enforcement = \"headers-only\"") + &route("/", "p")).await;
    let page = w.open(&w.denied).await;
    let (got, _) = probe(&page, &w.api("/things"), "{}").await;
    assert_eq!(got["ok"], false, "{got}");
    // Forwarded, but with the upstream's `Access-Control-Allow-Origin: *` stripped.
    assert_eq!(w.upstream.hits().len(), 1);
}

#[tokio::test]
#[ignore = "needs chromium: /usr/bin/chromium (run with --include-ignored)"]
async fn put_with_a_json_body_and_a_custom_header_is_preflighted_and_allowed() {
    let w = World::start(|o| {
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
        .filter(|r| r.is_preflight())
        .collect();
    assert_eq!(preflights.len(), 1, "{preflights:?}");
    // corsgate answered the preflight itself: the upstream only saw the PUT.
    let methods: Vec<String> = w.upstream.hits().into_iter().map(|h| h.method).collect();
    assert_eq!(methods, ["PUT"]);
}

#[tokio::test]
#[ignore = "needs chromium: /usr/bin/chromium (run with --include-ignored)"]
async fn a_header_outside_allowed_headers_is_stopped_at_the_preflight() {
    let w = World::start(|o| policy("p", o, "allowed_headers = [\"x-custom\"]") + &route("/", "p"))
        .await;
    let page = w.open(&w.allowed).await;
    let url = w.api("/things");
    let (got, mark) = probe(&page, &url, "{headers: {'X-Other': '1'}}").await;
    assert_eq!(got["ok"], false, "{got}");
    let sent = page.requests_since(mark);
    assert_eq!(
        sent.iter().filter(|r| r.is_preflight()).count(),
        1,
        "{sent:?}"
    );
    let failed = page.failures_since(mark);
    assert!(
        failed.iter().any(|f| f
            .cors_error
            .as_deref()
            .is_some_and(|e| e.starts_with("Preflight"))),
        "{failed:?}"
    );
    assert!(w.upstream.hits().is_empty(), "{:?}", w.upstream.hits());
    // Control: the allowed header goes through.
    let (got, _) = probe(&page, &url, "{headers: {'X-Custom': '1'}}").await;
    assert_eq!(got["ok"], true, "{got}");
}

#[tokio::test]
#[ignore = "needs chromium: /usr/bin/chromium (run with --include-ignored)"]
async fn a_credentialed_fetch_succeeds_only_under_a_credentials_policy() {
    let w = World::start(|o| {
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
    let (got, mark) = probe(&page, &w.api("/plain/me"), include).await;
    assert_eq!(got["ok"], false, "{got}");
    let failed = page.failures_since(mark);
    assert_eq!(
        failed.first().and_then(|f| f.cors_error.as_deref()),
        Some("InvalidAllowCredentials"),
        "{failed:?}"
    );
    // Control: without credentials the same policy lets the page read the response.
    let (got, _) = probe(&page, &w.api("/plain/me"), "{}").await;
    assert_eq!(got["ok"], true, "{got}");
}

#[tokio::test]
#[ignore = "needs chromium: /usr/bin/chromium (run with --include-ignored)"]
async fn a_response_header_is_readable_only_when_listed_in_expose_headers() {
    let w = World::start(|o| {
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
    let seen = page
        .wait_for_event(mark, "response head", |e| {
            e.method == "Network.responseReceived" && e.params["response"]["url"] == url.as_str()
        })
        .await
        .unwrap();
    assert_eq!(
        seen.params["response"]["headers"]["x-secret"],
        "hidden-unless-exposed"
    );
    let (got, _) = probe(&page, &w.api("/both/x"), "{}").await;
    assert_eq!(got["headers"]["x-secret"], "hidden-unless-exposed", "{got}");
}

#[tokio::test]
#[ignore = "needs chromium: /usr/bin/chromium (run with --include-ignored)"]
async fn an_upstream_500_is_readable_by_the_page() {
    let w = World::start(simple_policy).await;
    let page = w.open(&w.allowed).await;
    let (got, _) = probe(&page, &w.api("/status/500"), "{}").await;
    assert_eq!(got["ok"], true, "{got}");
    assert_eq!(got["status"], 500);
    assert_eq!(echoed(&got)["path"], "/status/500");
}

#[tokio::test]
#[ignore = "needs chromium: /usr/bin/chromium (run with --include-ignored)"]
async fn a_second_identical_preflighted_call_within_max_age_sends_no_options() {
    let w = World::start(|o| {
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
    for path in ["/cached/a", "/uncached/a"] {
        let url = w.api(path);
        let mark = page.mark();
        for _ in 0..2 {
            let (got, _) = probe(&page, &url, init).await;
            assert_eq!(got["ok"], true, "{got}");
        }
        let n = page
            .requests_since(mark)
            .iter()
            .filter(|r| r.is_preflight())
            .count();
        preflights.push(n);
    }
    // max_age = 600: the browser reuses the first answer; max_age = 0: it asks every time.
    assert_eq!(preflights, [1, 2]);
}

#[tokio::test]
#[ignore = "needs chromium: /usr/bin/chromium (run with --include-ignored)"]
async fn a_websocket_connects_from_an_allowed_origin_and_fails_from_a_denied_one() {
    let w = World::start(simple_policy).await;
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
