//! The demo's parts on real loopback sockets: the built-in config, the echo upstream, the page
//! server and its `/explain`.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::pages::{Pages, Role};
use super::upstream::Echo;
use super::{demo_config, http};

const PAGE: &str = "http://127.0.0.1:4001";

fn snapshot(upstream: SocketAddr) -> Arc<crate::snapshot::Snapshot> {
    let toml = demo_config(upstream, PAGE);
    match crate::config::load_str(&toml, Path::new("demo.toml")) {
        Ok(l) => Arc::new(l.snapshot),
        Err(e) => panic!("{e}"),
    }
}

async fn listener() -> (TcpListener, SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a = l.local_addr().unwrap();
    (l, a)
}

#[test]
fn the_built_in_demo_config_compiles_without_warnings() {
    let toml = demo_config("127.0.0.1:4000".parse().unwrap(), PAGE);
    let loaded = crate::config::load_str(&toml, Path::new("demo.toml")).unwrap();
    // The demo's plain-http origins with credentials are loopback, which is potentially
    // trustworthy: no warning.
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    assert_eq!(loaded.snapshot.routes.len(), 1);
}

#[tokio::test]
async fn echo_upstream_describes_the_request_and_serves_status_and_cookie_endpoints() {
    let (l, addr) = listener().await;
    let (stop, stopped) = watch::channel(false);
    let echo = Echo::default();
    let task = tokio::spawn(http::serve(l, move |r| echo.clone().handle(r), stopped));
    let client = reqwest::Client::new();
    let r = client
        .put(format!("http://{addr}/items/1?q=2"))
        .header("origin", PAGE)
        .header("cookie", "a=b")
        .body("{\"x\":1}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-demo-request-id"], "1");
    assert!(r.headers().contains_key("x-demo-internal"));
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["method"], "PUT");
    assert_eq!(v["path"], "/items/1");
    assert_eq!(v["query"], "q=2");
    assert_eq!(v["origin"], PAGE);
    assert_eq!(v["cookie"], "a=b");
    assert_eq!(v["body"], "{\"x\":1}");

    let r = client
        .get(format!("http://{addr}/status/500"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 500);
    let r = client
        .get(format!("http://{addr}/status/nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = client
        .get(format!("http://{addr}/cookie"))
        .send()
        .await
        .unwrap();
    let cookie = r.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.starts_with("corsgate_demo=visit-4;"), "{cookie}");

    stop.send(true).unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(5), task)
        .await
        .expect("server stops on the signal")
        .unwrap();
}

#[tokio::test]
async fn page_server_serves_the_page_with_its_settings_and_explains_decisions() {
    let (l, addr) = listener().await;
    let snap = snapshot("127.0.0.1:4000".parse().unwrap());
    let pages = Pages::new(
        Role::Denied,
        "127.0.0.1:4002",
        "http://127.0.0.1:4001/",
        "x = '</script>'",
        snap,
    );
    let (_stop, stopped) = watch::channel(false);
    tokio::spawn(http::serve(l, move |r| pages.clone().handle(r), stopped));
    let client = reqwest::Client::new();
    let base = format!("http://{addr}");

    let html = client
        .get(format!("{base}/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains(r#""api":"http://127.0.0.1:4002""#), "{html}");
    assert!(html.contains(r#""role":"denied""#));
    assert!(
        !html.contains("x = '</script>'"),
        "settings must not close the script element"
    );
    for (path, kind) in [("/demo.js", "text/javascript"), ("/demo.css", "text/css")] {
        let r = client.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], kind);
    }
    assert_eq!(
        client
            .get(format!("{base}/nope"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );

    let explain = |q: Value| {
        let client = client.clone();
        let url = format!("{base}/explain");
        async move {
            let r = client.post(url).json(&q).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (status, v) = explain(json!({"origin": PAGE, "method": "PUT", "path": "/api/x",
        "headers": ["content-type", "x-demo-token"], "preflight": true}))
    .await;
    assert_eq!(status, 200);
    assert_eq!(v["decision"], "preflight-allowed", "{v}");
    assert_eq!(v["route"], "api");
    assert_eq!(v["policy"], "demo");
    assert_eq!(v["status"], 204);
    assert_eq!(v["headers"]["access-control-allow-origin"], PAGE);

    let (_, v) =
        explain(json!({"origin": "http://127.0.0.1:9", "method": "GET", "path": "/api/x"})).await;
    assert_eq!(v["decision"], "denied", "{v}");
    assert_eq!(v["status"], 403);
    assert!(
        v["reason"].as_str().unwrap().contains("origin_not_allowed"),
        "{v}"
    );

    let (_, v) = explain(json!({"origin": PAGE, "method": "GET", "path": "/api/x",
        "headers": ["x-not-allowed"], "preflight": true}))
    .await;
    assert_eq!(v["decision"], "preflight-denied", "{v}");

    let (status, v) = explain(json!({"method": "G E T", "path": "/"})).await;
    assert_eq!(status, 400, "{v}");
    let (status, _) = explain(json!({"nonsense": true})).await;
    assert_eq!(status, 400);
}
