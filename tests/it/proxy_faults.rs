//! Faults and hostile clients: 502/504 (with CORS headers for an allowed origin), connect_timeout,
//! an upstream reset mid-body, malformed requests (400/405/431, never a panic), slow clients,
//! max_connections, and the graceful drain of the in-process server.

use std::time::{Duration, Instant};

use crate::support::{
    client, closed_port, one_route, one_route_with, raw, raw_status, Gate, Upstream, PATIENCE,
};
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const APP: &str = "https://app.example";
const POLICY: &str = r#"allowed_origins = ["https://app.example"]"#;

/// A config whose only upstream is at `url`, with the given timeouts.
fn config_to(url: &str, connect_timeout: &str, timeout: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
[upstreams.up]
url = "{url}"
connect_timeout = "{connect_timeout}"
timeout = "{timeout}"
[policies.p]
{POLICY}
[[routes]]
upstream = "up"
policy = "p"
"#
    )
}

#[tokio::test]
async fn a_refused_connection_is_a_502_that_an_allowed_origin_can_read() {
    let port = closed_port();
    let gate = Gate::start(&config_to(&format!("http://127.0.0.1:{port}"), "2s", "5s")).await;
    let res = client()
        .get(gate.url("/"))
        .header("origin", APP)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(res.headers()["access-control-allow-origin"], APP);
    assert_eq!(res.text().await.unwrap(), "bad gateway: upstream failed\n");
    let errors = gate.metric("corsgate_upstream_errors_total", &[("kind", "connect")]);
    assert_eq!(errors, Some(1.0));
}

#[tokio::test]
async fn no_response_head_within_timeout_is_a_504() {
    let up = Upstream::start().await;
    let gate = Gate::start(&config_to(&up.url(), "2s", "300ms")).await;
    let start = Instant::now();
    let res = client()
        .get(gate.url("/slow?ms=5000"))
        .header("origin", APP)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(res.headers()["access-control-allow-origin"], APP);
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn connect_timeout_is_honoured() {
    // A listener that never accepts, with its backlog filled: Linux then drops further SYNs, so a
    // new connect hangs until the connector's timeout.
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(1).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..8 {
        if let Ok(Ok(s)) =
            tokio::time::timeout(Duration::from_millis(200), TcpStream::connect(addr)).await
        {
            fillers.push(s);
        }
    }
    let gate = Gate::start(&config_to(&format!("http://{addr}"), "300ms", "10s")).await;
    let start = Instant::now();
    let res = client().get(gate.url("/")).send().await.unwrap();
    let took = start.elapsed();
    assert_eq!(res.status(), StatusCode::GATEWAY_TIMEOUT);
    assert!(
        took < Duration::from_secs(3),
        "connect_timeout not applied: {took:?}"
    );
    drop(listener);
}

#[tokio::test]
async fn an_upstream_reset_mid_body_aborts_the_client_response() {
    let up = Upstream::start().await;
    let gate = Gate::start(&one_route(&up, POLICY)).await;
    for path in ["/reset", "/reset?chunked"] {
        let res = client().get(gate.url(path)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let body = res.bytes().await;
        assert!(
            body.is_err(),
            "{path}: a truncated body must not end cleanly: {body:?}"
        );
    }
    // The proxy is still fine.
    let res = client().get(gate.url("/")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn no_fault_leaks_a_connection() {
    let up = Upstream::start().await;
    let gate = Gate::start(&config_to(&up.url(), "2s", "300ms")).await;
    {
        let http = client();
        for path in ["/slow?ms=2000", "/reset", "/reset?chunked", "/"] {
            let res = http.get(gate.url(path)).send().await.unwrap();
            let _ = res.bytes().await;
        }
        let _ = raw(gate.addr, b"NOT HTTP\r\n\r\n").await;
        let active = gate.metric("corsgate_active_connections", &[]);
        assert!(active.is_some_and(|n| n >= 1.0), "{active:?}");
    }
    // The client is gone; every server-side connection must close and be counted closed. There is
    // no event for that, so poll the gauge.
    let deadline = Instant::now() + PATIENCE;
    while gate.metric("corsgate_active_connections", &[]) != Some(0.0) {
        assert!(Instant::now() < deadline, "connections leaked");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn malformed_requests_get_4xx_and_the_proxy_keeps_serving() {
    let up = Upstream::start().await;
    let gate = Gate::start(&one_route(&up, POLICY)).await;
    let cases: [(&[u8], u16); 7] = [
        (b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a/b@c\r\nConnection: close\r\n\r\n", 400),
        (b"OPTIONS * HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", 400),
        (b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\nConnection: close\r\n\r\n", 405),
        (b"THIS IS NOT HTTP\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nOrigin: https://\xff\xfe.example\r\nConnection: close\r\n\r\n", 403),
    ];
    for (req, status) in cases {
        let res = raw(gate.addr, req).await;
        assert_eq!(raw_status(&res), status, "{}", String::from_utf8_lossy(req));
    }
    // Too large for the proxy: its own 431, which an allowed origin can read.
    let big = format!(
        "GET / HTTP/1.1\r\nHost: a\r\nOrigin: {APP}\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
        "x".repeat(40 * 1024)
    );
    let res = raw(gate.addr, big.as_bytes()).await;
    assert_eq!(raw_status(&res), 431);
    assert!(
        res.contains("access-control-allow-origin: https://app.example"),
        "{res}"
    );
    // Too large for hyper itself: still a 431 (or a closed connection), never a crash.
    let huge = format!(
        "GET / HTTP/1.1\r\nHost: a\r\nX-Huge: {}\r\n\r\n",
        "x".repeat(1 << 20)
    );
    let res = raw(gate.addr, huge.as_bytes()).await;
    assert!(res.is_empty() || raw_status(&res) == 431, "{res}");
    let many = (0..300)
        .map(|i| format!("x-{i}"))
        .collect::<Vec<_>>()
        .join(",");
    let res = client()
        .request(reqwest::Method::OPTIONS, gate.url("/"))
        .header("origin", APP)
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", many)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(up.hits(), 0);
    let res = client().get(gate.url("/")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn slow_and_silent_clients_are_cut_after_header_read_timeout() {
    let up = Upstream::start().await;
    let config = one_route_with(&up, POLICY, "header_read_timeout = \"300ms\"");
    let gate = Gate::start(&config).await;
    let preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    let mut preface_and_settings = preface.to_vec();
    preface_and_settings.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
    let openings: [&[u8]; 5] = [
        b"",
        b"GET / HTTP/1.1\r\nHost: a\r\n",
        // The first byte of the h2 preface, then the whole preface: the version sniff waits for 24
        // bytes, and h2 has no header timeout of its own.
        b"P",
        preface,
        &preface_and_settings,
    ];
    for opening in openings {
        let mut s = TcpStream::connect(gate.addr).await.unwrap();
        s.write_all(opening).await.unwrap();
        let start = Instant::now();
        let mut buf = Vec::new();
        let closed = tokio::time::timeout(PATIENCE, s.read_to_end(&mut buf)).await;
        assert!(closed.is_ok(), "the connection was never closed");
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(250),
            "closed too early: {took:?}"
        );
        assert!(took < Duration::from_secs(5), "closed too late: {took:?}");
    }
    assert_eq!(up.hits(), 0);
}

/// Write `bytes` one at a time, 50 ms apart, reading (and dropping) whatever comes back meanwhile:
/// how long after `start` the server closed the connection, `None` if it never did.
async fn trickle_until_closed(s: &mut TcpStream, bytes: &[u8], start: Instant) -> Option<Duration> {
    for b in bytes {
        if s.write_all(&[*b]).await.is_err() {
            return Some(start.elapsed());
        }
        let mut buf = [0u8; 512];
        if let Ok(Ok(0) | Err(_)) =
            tokio::time::timeout(Duration::from_millis(50), s.read(&mut buf)).await
        {
            return Some(start.elapsed());
        }
    }
    None
}

#[tokio::test]
async fn a_client_that_trickles_its_head_is_cut_at_the_deadline_all_the_same() {
    let up = Upstream::start().await;
    let config = one_route_with(&up, POLICY, "header_read_timeout = \"400ms\"");
    let gate = Gate::start(&config).await;
    // h2: the preface and SETTINGS, then valid PING frames for ever, never a HEADERS frame.
    let mut h2 = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0".to_vec();
    for _ in 0..20 {
        h2.extend_from_slice(&[0, 0, 8, 6, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8]);
    }
    let h1 =
        b"GET / HTTP/1.1\r\nHost: a\r\nX-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".to_vec();
    for head in [h1, h2] {
        let mut s = TcpStream::connect(gate.addr).await.unwrap();
        let start = Instant::now();
        // Every read returns data, none completes a request.
        let closed_at = trickle_until_closed(&mut s, &head[..head.len().min(200)], start).await;
        let took = closed_at.expect("a trickling client was never cut");
        assert!(
            took >= Duration::from_millis(350),
            "cut too early: {took:?}"
        );
        assert!(took < Duration::from_secs(4), "cut too late: {took:?}");
    }
    assert_eq!(up.hits(), 0);
}

#[tokio::test]
async fn a_keep_alive_connection_trickling_its_next_head_is_closed_after_idle_timeout() {
    // Later heads on a keep-alive connection are bounded by `idle_timeout` (the connection has no
    // request in flight), not by a timer per head: trickling buys no more than idling.
    let up = Upstream::start().await;
    let config = one_route_with(
        &up,
        POLICY,
        "header_read_timeout = \"10s\"\nidle_timeout = \"400ms\"",
    );
    let gate = Gate::start(&config).await;
    let mut s = TcpStream::connect(gate.addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    let mut first = [0u8; 12];
    s.read_exact(&mut first).await.unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");
    let start = Instant::now();
    let next = b"GET / HTTP/1.1\r\nHost: a\r\nX-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    // The rest of the first response is read (and ignored) meanwhile.
    let closed_at = trickle_until_closed(&mut s, next, start).await;
    let took = closed_at.expect("a trickling keep-alive connection was never closed");
    assert!(
        took >= Duration::from_millis(300),
        "closed too early: {took:?}"
    );
    assert!(took < Duration::from_secs(4), "closed too late: {took:?}");
    assert_eq!(
        up.hits(),
        1,
        "only the first, complete request reached the upstream"
    );
}

#[tokio::test]
async fn stalled_h2_prefaces_at_max_connections_do_not_lock_new_clients_out() {
    let up = Upstream::start().await;
    let config = one_route_with(
        &up,
        POLICY,
        "header_read_timeout = \"500ms\"\nmax_connections = 4",
    );
    let gate = Gate::start(&config).await;
    // Four bytes in all: every slot taken by a socket that sent the first byte of a preface.
    let mut stalled = Vec::new();
    for _ in 0..4 {
        let mut s = TcpStream::connect(gate.addr).await.unwrap();
        s.write_all(b"P").await.unwrap();
        stalled.push(s);
    }
    let start = Instant::now();
    let res = client().get(gate.url("/")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "a new client waited {:?}",
        start.elapsed()
    );
    for mut s in stalled {
        let mut buf = Vec::new();
        let closed = tokio::time::timeout(PATIENCE, s.read_to_end(&mut buf)).await;
        assert!(closed.is_ok(), "a stalled preface was never closed");
    }
}

#[tokio::test]
async fn idle_keep_alive_and_h2_connections_are_closed_after_idle_timeout() {
    let up = Upstream::start().await;
    let config = one_route_with(
        &up,
        POLICY,
        "header_read_timeout = \"10s\"\nidle_timeout = \"400ms\"",
    );
    let gate = Gate::start(&config).await;

    // HTTP/1.1 keep-alive: served, then closed once idle (well before header_read_timeout).
    let mut s = TcpStream::connect(gate.addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    let start = Instant::now();
    let mut buf = Vec::new();
    let closed = tokio::time::timeout(PATIENCE, s.read_to_end(&mut buf)).await;
    assert!(
        closed.is_ok(),
        "an idle keep-alive connection was never closed"
    );
    assert!(String::from_utf8_lossy(&buf).starts_with("HTTP/1.1 200"));
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(300),
        "closed too early: {took:?}"
    );
    assert!(took < Duration::from_secs(5), "closed too late: {took:?}");

    // h2c: one request, then the connection ends (GOAWAY) once idle.
    let stream = TcpStream::connect(gate.addr).await.unwrap();
    let io = hyper_util::rt::TokioIo::new(stream);
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io)
            .await
            .unwrap();
    let driver = tokio::spawn(conn);
    let req = http::Request::get(gate.url("/"))
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    let res = send.send_request(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    drop(res);
    let start = Instant::now();
    let ended = tokio::time::timeout(PATIENCE, driver).await;
    assert!(ended.is_ok(), "an idle h2 connection was never closed");
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(300),
        "closed too early: {took:?}"
    );
    assert!(took < Duration::from_secs(5), "closed too late: {took:?}");
}

#[tokio::test]
async fn connections_beyond_max_connections_wait_for_a_free_slot() {
    let up = Upstream::start().await;
    let config = one_route_with(&up, POLICY, "max_connections = 1");
    let gate = Gate::start(&config).await;
    let request = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    let mut first = TcpStream::connect(gate.addr).await.unwrap();
    first.write_all(request).await.unwrap();
    let mut buf = [0u8; 512];
    let n = first.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));

    let mut second = TcpStream::connect(gate.addr).await.unwrap();
    second.write_all(request).await.unwrap();
    let early = tokio::time::timeout(Duration::from_millis(500), second.read(&mut buf)).await;
    assert!(
        early.is_err(),
        "the second connection was served while the first held the slot"
    );
    drop(first);
    let n = tokio::time::timeout(PATIENCE, second.read(&mut buf))
        .await
        .expect("the second connection was never served")
        .unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    assert_eq!(up.hits(), 2);
}

#[tokio::test]
async fn a_graceful_stop_lets_the_in_flight_request_finish_and_refuses_new_ones() {
    let up = Upstream::start().await;
    let gate = Gate::start(&one_route(&up, POLICY)).await;
    let addr = gate.addr;
    let slow = tokio::spawn(client().get(gate.url("/slow?ms=800")).send());
    up.wait_for_hits(1).await;
    gate.stop().await;
    let res = slow.await.unwrap().unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.text().await.unwrap(), "slow done\n");
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "still accepting after the stop"
    );
}

#[tokio::test]
async fn the_drain_ends_when_shutdown_grace_is_over() {
    let up = Upstream::start().await;
    let config =
        one_route(&up, POLICY).replace("shutdown_grace = \"5s\"", "shutdown_grace = \"200ms\"");
    let gate = Gate::start(&config).await;
    let slow = tokio::spawn(client().get(gate.url("/slow?ms=10000")).send());
    up.wait_for_hits(1).await;
    let start = Instant::now();
    gate.stop().await;
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    drop(slow);
}

#[tokio::test]
async fn userinfo_in_the_authority_is_refused_in_every_form() {
    let up = Upstream::start().await;
    let gate = Gate::start(&one_route(&up, POLICY)).await;
    for req in [
        &b"GET http://evil@internal.example.com/x HTTP/1.1\r\nHost: internal.example.com\r\nConnection: close\r\n\r\n"[..],
        b"GET /x HTTP/1.1\r\nHost: evil@internal.example.com\r\nConnection: close\r\n\r\n",
    ] {
        let res = raw(gate.addr, req).await;
        assert_eq!(raw_status(&res), 400, "{res}");
    }
    // h2 `:authority` with userinfo.
    let stream = TcpStream::connect(gate.addr).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let req = http::Request::get(format!("http://evil@{}/x", gate.addr))
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    match send.send_request(req).await {
        Ok(res) => assert_eq!(res.status(), StatusCode::BAD_REQUEST),
        // Refused by the h2 layer before it became a request: also never forwarded.
        Err(e) => eprintln!("h2 refused the request itself: {e}"),
    }
    assert_eq!(up.hits(), 0);
    // Refused before evaluation: their own outcome, never "no-route".
    let rejected = gate.metric(
        "corsgate_requests_total",
        &[("route", "unmatched"), ("outcome", "rejected")],
    );
    assert!(rejected >= Some(2.0), "{rejected:?}");
    let no_route = gate.metric(
        "corsgate_requests_total",
        &[("route", "unmatched"), ("outcome", "no-route")],
    );
    assert_eq!(no_route, Some(0.0));
}

/// A TCP connection to `addr` from the loopback address `from` (any of 127/8 on Linux).
async fn connect_from(from: &str, addr: std::net::SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
    socket.connect(addr).await.unwrap()
}

/// Poll the active-connections gauge until it reads `n` (there is no event for a close).
async fn wait_for_active(gate: &Gate, n: f64) {
    let deadline = Instant::now() + PATIENCE;
    while gate.metric("corsgate_active_connections", &[]) != Some(n) {
        assert!(
            Instant::now() < deadline,
            "active connections never reached {n}: {:?}",
            gate.metric("corsgate_active_connections", &[])
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_client_address_over_max_connections_per_ip_is_closed_at_once_and_others_are_served() {
    let up = Upstream::start().await;
    let config = one_route_with(&up, POLICY, "max_connections_per_ip = 2");
    let gate = Gate::start(&config).await;
    let request = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    // Two stalled connections from 127.0.0.2: its whole allowance.
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = connect_from("127.0.0.2", gate.addr).await;
        s.write_all(b"G").await.unwrap();
        held.push(s);
    }
    wait_for_active(&gate, 2.0).await;
    // A third from the same address is closed without a response, though it sends a whole request.
    let mut third = connect_from("127.0.0.2", gate.addr).await;
    let _ = third.write_all(request).await;
    let mut buf = Vec::new();
    let start = Instant::now();
    let read = tokio::time::timeout(PATIENCE, third.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "the connection over the cap was kept open");
    assert!(buf.is_empty(), "{}", String::from_utf8_lossy(&buf));
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    // Another address is served.
    let mut other = connect_from("127.0.0.1", gate.addr).await;
    other.write_all(request).await.unwrap();
    let mut head = [0u8; 64];
    let n = tokio::time::timeout(PATIENCE, other.read(&mut head))
        .await
        .expect("another address was not served")
        .unwrap();
    assert!(head[..n].starts_with(b"HTTP/1.1 200"));
    drop(other);
    // Once one of 127.0.0.2's connections closes, it may open another.
    drop(held.pop());
    wait_for_active(&gate, 1.0).await;
    let mut again = connect_from("127.0.0.2", gate.addr).await;
    again.write_all(request).await.unwrap();
    let n = tokio::time::timeout(PATIENCE, again.read(&mut head))
        .await
        .expect("a freed place was not given back")
        .unwrap();
    assert!(head[..n].starts_with(b"HTTP/1.1 200"));
    assert_eq!(up.hits(), 2);
}

#[tokio::test]
async fn at_max_connections_the_oldest_stalled_head_is_shed_for_a_new_client() {
    let up = Upstream::start().await;
    let config = one_route_with(
        &up,
        POLICY,
        "max_connections = 2\nheader_read_timeout = \"15s\"",
    );
    let gate = Gate::start(&config).await;
    // Two stalled heads, the oldest first: every slot taken.
    let mut oldest = TcpStream::connect(gate.addr).await.unwrap();
    oldest.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
    wait_for_active(&gate, 1.0).await;
    let mut younger = TcpStream::connect(gate.addr).await.unwrap();
    younger.write_all(b"P").await.unwrap();
    wait_for_active(&gate, 2.0).await;

    let start = Instant::now();
    let res = client().get(gate.url("/")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "a new client waited {:?} behind stalled heads",
        start.elapsed()
    );
    let mut buf = Vec::new();
    let closed = tokio::time::timeout(PATIENCE, oldest.read_to_end(&mut buf)).await;
    assert!(closed.is_ok(), "the oldest stalled head was not closed");
    assert!(buf.is_empty(), "{}", String::from_utf8_lossy(&buf));
    // The younger one keeps its slot until its own deadline.
    let mut byte = [0u8; 1];
    let open = tokio::time::timeout(Duration::from_millis(300), younger.read(&mut byte)).await;
    assert!(
        open.is_err(),
        "the younger stalled head was closed too: {open:?}"
    );
}

/// The server's frames in `bytes` (after no preface), as (type, flags, payload).
fn h2_frames(mut bytes: &[u8]) -> Vec<(u8, u8, Vec<u8>)> {
    let mut frames = Vec::new();
    while bytes.len() >= 9 {
        let len = usize::from(bytes[0]) << 16 | usize::from(bytes[1]) << 8 | usize::from(bytes[2]);
        if bytes.len() < 9 + len {
            break;
        }
        frames.push((bytes[3], bytes[4], bytes[9..9 + len].to_vec()));
        bytes = &bytes[9 + len..];
    }
    frames
}

#[tokio::test]
async fn an_h2_ping_flood_ends_the_connection_with_enhance_your_calm() {
    let up = Upstream::start().await;
    // Deadlines far away: only the flood bound can end the connection within the test.
    let config = one_route_with(
        &up,
        POLICY,
        "header_read_timeout = \"60s\"\nidle_timeout = \"60s\"",
    );
    let gate = Gate::start(&config).await;
    let stream = TcpStream::connect(gate.addr).await.unwrap();
    let (mut rd, mut wr) = stream.into_split();
    // A real request first (HEADERS, END_STREAM: GET http / from the static table, :authority
    // "a" as a literal), then 5,000 PINGs.
    let mut bytes = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0".to_vec();
    bytes.extend_from_slice(&[0, 0, 6, 1, 0x5, 0, 0, 0, 1, 0x82, 0x86, 0x84, 0x41, 1, b'a']);
    let writer = tokio::spawn(async move {
        wr.write_all(&bytes).await?;
        let ping = [0u8, 0, 8, 6, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8];
        let pings: Vec<u8> = (0..5_000).flat_map(|_| ping).collect();
        wr.write_all(&pings).await?;
        // Keep the write side open: the end must come from the server.
        std::future::pending::<()>().await;
        Ok::<_, std::io::Error>(())
    });
    let start = Instant::now();
    let mut out = Vec::new();
    let read = tokio::time::timeout(PATIENCE, async {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    writer.abort();
    assert!(read.is_ok(), "the flooding connection was kept open");
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    let frames = h2_frames(&out);
    let pongs = frames.iter().filter(|f| f.0 == 6 && f.1 & 1 == 1).count();
    assert!(pongs < 5_000, "every PING was answered: {pongs}");
    let goaways = frames.iter().filter(|f| f.0 == 7).count();
    eprintln!(
        "{} frames back, {pongs} PING ACKs, {goaways} GOAWAY",
        frames.len()
    );
    // A GOAWAY with ENHANCE_YOUR_CALM when it made it out before the close.
    if let Some(goaway) = frames.iter().find(|f| f.0 == 7) {
        assert_eq!(goaway.2[4..8], [0, 0, 0, 11], "{goaway:?}");
    }
    // Others are still served, h2c included.
    let res = crate::support::h2c_client()
        .get(gate.url("/"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.version(), reqwest::Version::HTTP_2);
    let res = client().get(gate.url("/")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_normal_h2c_client_is_never_mistaken_for_a_flood() {
    let up = Upstream::start().await;
    let gate = Gate::start(&one_route(&up, POLICY)).await;
    let h2 = crate::support::h2c_client();
    for _ in 0..50 {
        let res = h2.get(gate.url("/")).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.version(), reqwest::Version::HTTP_2);
        let _ = res.bytes().await.unwrap();
    }
    assert_eq!(up.hits(), 50);
}
