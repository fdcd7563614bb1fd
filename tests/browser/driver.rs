//! Checks of the drivers themselves, in each engine, against a hand-made CORS endpoint (no
//! corsgate): a fetch runs in the page, its requests and preflights are reported, a CORS failure is
//! seen, a thrown exception and a failed navigation are errors.

use http::HeaderValue;
use serde_json::Value;

use crate::engine::{assert_blocked, Browser, Engine, Error, Stopped};
use crate::servers::{probe_page, respond, serve, Req, Resp};

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

pub async fn driver_runs_fetch_in_the_page_and_reports_requests_and_preflights(engine: Engine) {
    let browser = Browser::launch(engine).await.expect("launch browser");
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
            .any(|r| r.method == "GET" && r.url == url && r.kind == "fetch"),
        "{sent:?}"
    );
    assert!(!sent.iter().any(|r| r.preflight), "{sent:?}");

    // A PUT with a custom header: the driver sees the preflight the server received.
    let mark = page.mark();
    let put = format!("probe({url:?}, {{method: 'PUT', headers: {{'X-Probe': '1'}}}})");
    let got = page.eval(&put).await.unwrap();
    assert_eq!(got["ok"], true, "{got}");
    page.wait_for_request_done(mark, &url).await.unwrap();
    let sent = page.requests_since(mark);
    let preflights: Vec<_> = sent.iter().filter(|r| r.preflight).collect();
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
    let lacking = "access-control-allow-origin";
    assert_blocked(
        &page,
        mark,
        &blocked,
        Stopped::AtResponse { lacking },
        |e| e == "MissingAllowOriginHeader",
    )
    .await;
}

pub async fn driver_reports_script_exceptions_and_failed_navigation(engine: Engine) {
    let browser = Browser::launch(engine).await.expect("launch browser");
    let page = browser.new_page().await.expect("new page");
    let err = page
        .eval("(async () => { throw new Error('boom') })()")
        .await;
    assert!(
        matches!(&err, Err(Error::Page(m)) if m.contains("boom")),
        "{err:?}"
    );
    // Bind then drop a listener: nothing listens on that port any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap();
    let nav = page.navigate(&format!("http://127.0.0.1:{port}/")).await;
    assert!(matches!(&nav, Err(Error::Page(_))), "{nav:?}");
    let v: Value = page.eval("1 + 1").await.unwrap();
    assert_eq!(v, 2);
}
