//! Rate limits through real sockets and the real proxy: 429 with Retry-After and the policy's CORS
//! headers, limited requests never reaching the upstream, preflights and denied origins counted,
//! the three keys (client, origin, forwarded with trusted_hops), the metrics and the access log, a
//! reload through the real binary keeping or renewing buckets, and `explain` naming the limit.
//!
//! Every limit here refills one request a minute (or slower), so no bucket can refill while a test
//! runs: the tests never sleep and never depend on the machine's speed.

use serde_json::Value;

use crate::support::{self, capture, replace, with_target, Gate, Logged, Upstream};

const APP: &str = "https://app.example";
const EVIL: &str = "https://evil.example";

/// One catch-all route `api` to `up` with policy `p` (allows [`APP`], methods GET and PUT) under
/// the rate limit `l`, whose TOML lines are `limit`.
fn config(up: &Upstream, limit: &str, extra_policy: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"

[log]
format = "json"
access_log = true

[upstreams.up]
url = "{}"

[policies.p]
allowed_origins = ["{APP}"]
allowed_methods = ["GET", "PUT"]
{extra_policy}

[rate_limits.l]
{limit}

[[routes]]
name = "api"
upstream = "up"
policy = "p"
rate_limit = "l"
"#,
        up.url()
    )
}

/// A GET of `/x` with these headers; returns the response.
async fn get(addr: std::net::SocketAddr, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut req = support::client().get(format!("http://{addr}/x"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

async fn status(addr: std::net::SocketAddr, headers: &[(&str, &str)]) -> u16 {
    get(addr, headers).await.status().as_u16()
}

fn header<'r>(res: &'r reqwest::Response, name: &str) -> Option<&'r str> {
    res.headers().get(name).map(|v| v.to_str().unwrap())
}

#[tokio::test]
async fn past_the_burst_an_allowed_origin_reads_a_429_with_retry_after_and_nothing_reaches_the_upstream(
) {
    let up = Upstream::start().await;
    let gate = Gate::start(&config(
        &up,
        "requests_per_second = 0.016\nburst = 2",
        "expose_headers = [\"x-request-id\"]",
    ))
    .await;
    let origin = [("origin", APP)];
    assert_eq!(status(gate.addr, &origin).await, 200);
    assert_eq!(status(gate.addr, &origin).await, 200);
    let res = get(gate.addr, &origin).await;
    assert_eq!(res.status(), 429);
    let retry: u64 = header(&res, "retry-after").unwrap().parse().unwrap();
    // One request every 62.5 s: the next one conforms in 62.5 s, rounded up to whole seconds.
    assert!((60..=63).contains(&retry), "retry-after {retry}");
    assert_eq!(header(&res, "access-control-allow-origin"), Some(APP));
    // Retry-After is not CORS-safelisted: the 429 exposes it, after the policy's own list.
    assert_eq!(
        header(&res, "access-control-expose-headers"),
        Some("x-request-id, Retry-After")
    );
    assert!(header(&res, "vary").unwrap().contains("Origin"));
    assert_eq!(res.text().await.unwrap(), "too many requests\n");
    assert_eq!(up.hits(), 2, "a limited request never reaches the upstream");
}

#[tokio::test]
async fn a_denied_origin_counts_against_the_limit_and_its_429_carries_no_cors_headers() {
    let up = Upstream::start().await;
    let gate = Gate::start(&config(&up, "requests_per_second = 0.01\nburst = 2", "")).await;
    // The rate limit is checked first: the denied request takes the bucket's first token.
    assert_eq!(status(gate.addr, &[("origin", EVIL)]).await, 403);
    assert_eq!(status(gate.addr, &[("origin", APP)]).await, 200);
    let res = get(gate.addr, &[("origin", EVIL)]).await;
    assert_eq!(res.status(), 429);
    assert!(header(&res, "retry-after").is_some());
    assert!(res
        .headers()
        .keys()
        .all(|k| !k.as_str().starts_with("access-control-")));
    assert_eq!(header(&res, "vary"), Some("Origin"));
    assert_eq!(
        status(gate.addr, &[]).await,
        429,
        "not-CORS requests count too"
    );
    assert_eq!(up.hits(), 1);
}

#[tokio::test]
async fn preflights_count_and_a_limited_preflight_gets_429_with_the_preflight_headers() {
    let up = Upstream::start().await;
    let gate = Gate::start(&config(&up, "requests_per_second = 0.01\nburst = 2", "")).await;
    let preflight = || support::preflight(&gate, APP, "PUT").send();
    assert_eq!(preflight().await.unwrap().status(), 204);
    assert_eq!(status(gate.addr, &[("origin", APP)]).await, 200);
    let res = preflight().await.unwrap();
    assert_eq!(res.status(), 429);
    assert_eq!(header(&res, "access-control-allow-origin"), Some(APP));
    assert!(header(&res, "access-control-allow-methods")
        .unwrap()
        .contains("PUT"));
    assert!(header(&res, "retry-after").is_some());
    assert_eq!(up.hits(), 1, "only the GET was forwarded");
}

#[tokio::test]
async fn origin_keys_give_each_origin_its_own_bucket_and_no_origin_one_shared_bucket() {
    let up = Upstream::start().await;
    let gate = Gate::start(&config(
        &up,
        "requests_per_second = 0.01\nburst = 1\nkey = \"origin\"",
        "",
    ))
    .await;
    assert_eq!(status(gate.addr, &[("origin", APP)]).await, 200);
    assert_eq!(status(gate.addr, &[("origin", APP)]).await, 429);
    // Another origin (denied by the policy, which does not matter to the limit) has its own bucket.
    assert_eq!(status(gate.addr, &[("origin", EVIL)]).await, 403);
    assert_eq!(status(gate.addr, &[("origin", EVIL)]).await, 429);
    assert_eq!(status(gate.addr, &[]).await, 200);
    assert_eq!(status(gate.addr, &[]).await, 429);
}

#[tokio::test]
async fn forwarded_keys_take_the_trusted_hop_so_spoofed_left_entries_do_not_evade_the_limit() {
    let up = Upstream::start().await;
    let gate = Gate::start(&config(
        &up,
        "requests_per_second = 0.01\nburst = 1\nkey = \"forwarded\"\ntrusted_hops = 2",
        "",
    ))
    .await;
    let xff = |v: &'static str| [("x-forwarded-for", v)];
    // The client is 203.0.113.5 (seen by the outer proxy), 10.0.0.1 the inner proxy.
    assert_eq!(
        status(gate.addr, &xff("1.1.1.1, 203.0.113.5, 10.0.0.1")).await,
        200
    );
    assert_eq!(
        status(gate.addr, &xff("2.2.2.2, 203.0.113.5, 10.0.0.1")).await,
        429
    );
    assert_eq!(status(gate.addr, &xff("203.0.113.5, 10.0.0.1")).await, 429);
    assert_eq!(status(gate.addr, &xff("203.0.113.6, 10.0.0.1")).await, 200);
    // Too short or unparsable: keyed by the TCP peer (127.0.0.1), which all of these share.
    assert_eq!(status(gate.addr, &xff("10.0.0.1")).await, 200);
    assert_eq!(status(gate.addr, &xff("garbage, 10.0.0.1")).await, 429);
    assert_eq!(status(gate.addr, &[]).await, 429);
}

/// On the current-thread runtime (the default), the proxy's tasks run on this thread, so the
/// thread-local subscriber sees their access lines.
#[tokio::test]
async fn limited_requests_are_counted_as_rate_limited_and_logged_with_the_limit_name() {
    let up = Upstream::start().await;
    let gate = Gate::start(&config(&up, "requests_per_second = 0.01\nburst = 1", "")).await;
    let (cap, guard) = capture(&gate);
    assert_eq!(status(gate.addr, &[("origin", APP)]).await, 200);
    assert_eq!(status(gate.addr, &[("origin", APP)]).await, 429);
    assert_eq!(status(gate.addr, &[("origin", EVIL)]).await, 429);
    drop(guard);

    let rate_limited = [("route", "api"), ("outcome", "rate-limited")];
    assert_eq!(
        gate.metric("corsgate_requests_total", &rate_limited),
        Some(2.0)
    );
    let allowed = [("route", "api"), ("outcome", "allowed")];
    assert_eq!(gate.metric("corsgate_requests_total", &allowed), Some(1.0));
    assert_eq!(
        gate.metric("corsgate_rate_limited_total", &[("route", "api")]),
        Some(2.0)
    );
    // Counted as rate-limited only, never also as a CORS denial.
    assert_eq!(
        gate.metric(
            "corsgate_cors_denials_total",
            &[("reason", "origin_not_allowed")]
        ),
        Some(0.0)
    );

    let text = cap.text();
    let lines = cap.json();
    let access = with_target(&lines, "corsgate::access");
    assert_eq!(access.len(), 3, "{text}");
    assert_eq!(access[0]["decision"], "allowed");
    assert!(access[0]["rate_limit"].is_null());
    for l in &access[1..] {
        assert_eq!(l["decision"], "rate-limited", "{l}");
        assert_eq!(l["rate_limit"], "l", "{l}");
        assert_eq!(l["status"], 429, "{l}");
        assert!(l["reason"].is_null(), "{l}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reload_keeps_the_buckets_of_an_unchanged_limit_and_renews_a_changed_one() {
    let up = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("corsgate.toml");
    let limit = "requests_per_second = 0.01\nburst = 1";
    std::fs::write(&path, config(&up, limit, "")).unwrap();
    let proxy = Logged::start(&path);
    assert_eq!(status(proxy.addr, &[]).await, 200);
    assert_eq!(status(proxy.addr, &[]).await, 429);

    // An unrelated change (the policy's exposed headers): the limit's buckets carry on.
    replace(
        &path,
        &config(&up, limit, "expose_headers = [\"x-request-id\"]"),
    );
    let (ok, lines) = proxy.hup();
    assert!(ok, "{lines:#?}");
    let res = get(proxy.addr, &[("origin", APP)]).await;
    assert_eq!(
        res.status(),
        429,
        "the exhausted bucket survived the reload"
    );
    assert_eq!(
        header(&res, "access-control-expose-headers"),
        Some("x-request-id, Retry-After"),
        "the reload applied"
    );

    // A changed rate: a fresh limiter, whose first request conforms.
    replace(
        &path,
        &config(
            &up,
            "requests_per_second = 0.02\nburst = 1",
            "expose_headers = [\"x-request-id\"]",
        ),
    );
    let (ok, lines) = proxy.hup();
    assert!(ok, "{lines:#?}");
    assert!(
        lines.last().unwrap().contains("rate limits changed: l"),
        "{lines:#?}"
    );
    assert_eq!(status(proxy.addr, &[]).await, 200);
    assert_eq!(status(proxy.addr, &[]).await, 429);
    let (code, _) = proxy.terminate();
    assert_eq!(code, Some(0));
}

#[test]
fn explain_names_the_routes_rate_limit() {
    let out = crate::cli::corsgate(&[
        "explain",
        "-c",
        "tests/fixtures/good/rate-limits.toml",
        "--origin",
        APP,
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("limit:    per-origin (5 requests/s per origin, burst 10;"),
        "{text}"
    );
    let out = crate::cli::corsgate(&[
        "explain",
        "-c",
        "tests/fixtures/good/rate-limits.toml",
        "--json",
        "--path",
        "/open",
    ]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["rate_limit"], Value::Null);
    assert_eq!(v["decision"], "not-cors");
}
