//! Forwarding through the running proxy: header rewrite, normalised targets, two upstreams on two
//! routes, streamed bodies both ways, keep-alive, h2c, and WebSocket tunnels.

use crate::support::{
    client, drain, generated_upload, h2c_client, one_route, pattern_sum, raw, raw_status, Gate,
    Upstream,
};
use futures_util::{SinkExt, StreamExt};
use reqwest::{StatusCode, Version};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

const POLICY: &str = r#"allowed_origins = ["https://app.example"]
allowed_methods = ["GET", "POST"]"#;

#[tokio::test]
async fn hop_by_hop_headers_go_forwarded_headers_come_and_the_target_is_the_routed_path() {
    let up = Upstream::start().await;
    let gate = Gate::start(&one_route(&up, POLICY)).await;
    let req = "GET /a%2Fb/./c//d?q=%20x&y&z=%2F HTTP/1.1\r\n\
               Host: front.example:8443\r\n\
               Connection: keep-alive, X-Hop\r\n\
               Connection: close\r\n\
               X-Hop: secret\r\n\
               Keep-Alive: timeout=5\r\n\
               TE: trailers\r\n\
               Proxy-Authorization: Basic eA==\r\n\
               X-Forwarded-For: 10.0.0.1\r\n\
               X-Forwarded-Proto: https\r\n\
               X-Forwarded-Host: spoofed.example\r\n\
               X-Keep: yes\r\n\r\n";
    let res = raw(gate.addr, req.as_bytes()).await;
    assert_eq!(raw_status(&res), 200, "{res}");
    let seen = up.last();
    // The path as routed (normalised: `.` and `//` resolved, `%2F` kept), the query byte for byte.
    assert_eq!(seen.target, "/a%2Fb/c/d?q=%20x&y&z=%2F");
    let h = &seen.headers;
    assert_eq!(h["host"], up.addr.to_string());
    assert_eq!(h["x-forwarded-for"], "10.0.0.1, 127.0.0.1");
    assert_eq!(h["x-forwarded-proto"], "http");
    assert_eq!(h["x-forwarded-host"], "front.example:8443");
    assert_eq!(h["x-keep"], "yes");
    for gone in ["x-hop", "keep-alive", "te", "proxy-authorization"] {
        assert!(!h.contains_key(gone), "{gone} was forwarded");
    }
    // hyper's client adds its own Connection handling; the client's tokens never pass.
    for v in h.get_all("connection") {
        assert!(!v.to_str().unwrap().to_ascii_lowercase().contains("x-hop"));
    }
}

#[tokio::test]
async fn preserve_host_keeps_the_clients_host() {
    let up = Upstream::start().await;
    let config = one_route(&up, POLICY)
        .replace("timeout = \"5s\"", "timeout = \"5s\"\npreserve_host = true");
    let gate = Gate::start(&config).await;
    let res = raw(
        gate.addr,
        b"GET / HTTP/1.1\r\nHost: front.example\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(raw_status(&res), 200);
    assert_eq!(up.last().headers["host"], "front.example");
}

#[tokio::test]
async fn two_routes_reach_two_upstreams_with_strip_prefix_and_a_base_path() {
    let (a, b) = (Upstream::start().await, Upstream::start().await);
    let config = format!(
        r#"
[server]
listen = "127.0.0.1:0"
[upstreams.a]
url = "{}"
[upstreams.b]
url = "{}/base"
[policies.p]
{POLICY}
[[routes]]
path_prefix = "/a"
strip_prefix = true
upstream = "a"
policy = "p"
[[routes]]
path_prefix = "/b"
upstream = "b"
policy = "p"
"#,
        a.url(),
        b.url()
    );
    let gate = Gate::start(&config).await;
    let res = client().get(gate.url("/a/x?y=1")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = client().get(gate.url("/a")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = client().get(gate.url("/b/z")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!((a.hits(), b.hits()), (2, 1));
    assert_eq!(a.last().target, "/");
    assert_eq!(b.last().target, "/base/b/z");
    let res = client().get(gate.url("/c")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_20_mb_body_streams_each_way() {
    const N: u64 = 20 * 1024 * 1024;
    let up = Upstream::start().await;
    let gate = Gate::start(&one_route(&up, POLICY)).await;
    let res = client()
        .post(gate.url("/upload"))
        .header("origin", "https://app.example")
        .body(generated_upload(N))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    assert_eq!(res.text().await.unwrap(), format!("{N} {}", pattern_sum(N)));
    let res = client()
        .get(gate.url(&format!("/download?bytes={N}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.content_length(), Some(N));
    assert_eq!(drain(res).await.unwrap(), (N, pattern_sum(N)));
}

#[tokio::test]
async fn keep_alive_serves_pipelined_requests_on_one_connection() {
    let up = Upstream::start().await;
    let gate = Gate::start(&one_route(&up, POLICY)).await;
    let two = b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let res = raw(gate.addr, two).await;
    assert_eq!(res.matches("HTTP/1.1 200 OK").count(), 2, "{res}");
    assert_eq!(up.hits(), 2);
}

#[tokio::test]
async fn h2c_with_prior_knowledge_is_served_on_the_same_port() {
    let up = Upstream::start().await;
    let gate = Gate::start(&one_route(&up, POLICY)).await;
    let res = h2c_client()
        .post(gate.url("/upload"))
        .header("origin", "https://app.example")
        .header("cookie", "a=1")
        .body(generated_upload(1024 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(res.version(), Version::HTTP_2);
    assert_eq!(
        res.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    assert_eq!(
        res.text().await.unwrap(),
        format!("{} {}", 1 << 20, pattern_sum(1 << 20))
    );
    let seen = up.last();
    assert_eq!(seen.headers["host"], up.addr.to_string());
    assert_eq!(seen.headers["x-forwarded-host"], gate.addr.to_string());
    assert_eq!(seen.headers["cookie"], "a=1");
    let res = h2c_client()
        .request(reqwest::Method::OPTIONS, gate.url("/"))
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    // The same port still speaks HTTP/1.1.
    let res = client().get(gate.url("/")).send().await.unwrap();
    assert_eq!(res.version(), Version::HTTP_11);
    assert_eq!(up.hits(), 2);
}

#[tokio::test]
async fn a_websocket_is_tunnelled_end_to_end_and_a_denied_origin_gets_403() {
    let up = Upstream::start().await;
    let gate = Gate::start(&one_route(&up, POLICY)).await;
    let ws_url = format!("ws://{}/ws", gate.addr);

    let mut req = ws_url.as_str().into_client_request().unwrap();
    req.headers_mut()
        .insert("origin", "https://app.example".parse().unwrap());
    let (mut ws, res) = tokio_tungstenite::connect_async(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::SWITCHING_PROTOCOLS);
    for text in ["hello", "again"] {
        ws.send(Message::text(text)).await.unwrap();
        let echo = ws.next().await.unwrap().unwrap();
        assert_eq!(echo.into_text().unwrap(), text);
    }
    ws.send(Message::binary(vec![7u8; 100_000])).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap().into_data().len(), 100_000);
    ws.close(None).await.unwrap();
    assert_eq!(up.hits(), 1);

    let mut req = ws_url.as_str().into_client_request().unwrap();
    req.headers_mut()
        .insert("origin", "https://evil.example".parse().unwrap());
    refused_with_403(req).await;
    assert_eq!(
        up.hits(),
        1,
        "the denied handshake never reached the upstream"
    );
}

/// A WebSocket handshake that the proxy answers with a 403.
async fn refused_with_403(req: tokio_tungstenite::tungstenite::handshake::client::Request) {
    match tokio_tungstenite::connect_async(req).await {
        Err(WsError::Http(res)) => assert_eq!(res.status(), StatusCode::FORBIDDEN),
        other => panic!("expected a 403, got {other:?}"),
    }
}

#[tokio::test]
async fn headers_only_mode_still_blocks_a_cross_site_websocket_handshake() {
    // Stripping headers cannot protect a WebSocket: the browser reads nothing from the 101, it
    // just starts talking. So headers-only blocks denied handshakes like block does.
    let up = Upstream::start().await;
    let policy = format!("{POLICY}\nenforcement = \"headers-only\"");
    let gate = Gate::start(&one_route(&up, &policy)).await;
    let mut req = format!("ws://{}/ws", gate.addr)
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("origin", "https://evil.example".parse().unwrap());
    refused_with_403(req).await;
    assert_eq!(
        up.hits(),
        0,
        "the denied handshake never reached the upstream"
    );
}

#[tokio::test]
async fn fetch_metadata_enforce_leaves_a_websocket_handshake_to_the_origin_check() {
    // What Firefox sends on a cross-site page's handshake (Chromium sends no Sec-Fetch-* there):
    // enforce must not refuse it for the mode alone, or an allowed origin's WebSocket breaks in
    // Firefox only. The Origin check still refuses a denied origin.
    let up = Upstream::start().await;
    let policy = format!("{POLICY}\nfetch_metadata = \"enforce\"");
    let gate = Gate::start(&one_route(&up, &policy)).await;
    let handshake = |origin: &str| {
        let mut req = format!("ws://{}/ws", gate.addr)
            .into_client_request()
            .unwrap();
        let h = req.headers_mut();
        h.insert("origin", origin.parse().unwrap());
        h.insert("sec-fetch-site", "cross-site".parse().unwrap());
        h.insert("sec-fetch-mode", "websocket".parse().unwrap());
        h.insert("sec-fetch-dest", "empty".parse().unwrap());
        req
    };
    let (mut ws, res) = tokio_tungstenite::connect_async(handshake("https://app.example"))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SWITCHING_PROTOCOLS);
    ws.send(Message::text("hi")).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap().into_text().unwrap(), "hi");
    ws.close(None).await.unwrap();
    assert_eq!(up.hits(), 1);
    refused_with_403(handshake("https://evil.example")).await;
    assert_eq!(up.hits(), 1);
    let denials = |reason| {
        let labels = [("reason", reason)];
        gate.metric("corsgate_cors_denials_total", &labels)
    };
    assert_eq!(denials("websocket_origin"), Some(1.0));
    assert_eq!(denials("cross_site_request"), Some(0.0));
}
