//! Observability end to end: real requests through the proxy in-process (`support::Gate`), with
//! its JSON or pretty log lines captured and parsed, and `/metrics`, `/healthz` and `/readyz` read
//! from its real admin listener on 127.0.0.1:0.
//!
//! The tests run on tokio's current-thread runtime, so the proxy's tasks run on the test's thread
//! and a thread-local subscriber (`capture`) sees their events.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use corsgate::{Clock, Observer};
use corsgate::{LogFormat, LogSettings};
use reqwest::Method;
use serde_json::Value;

use crate::support::{self, capture, with_target, Gate, Upstream, PATIENCE};

// === fixtures ===

/// Routes `api` (host api.example.com, policy `strict`, block) and `legacy` (/legacy, policy
/// `lenient`, report-only), both to the upstream `backend` whose TOML lines are `backend`.
fn config(format: &str, access_log: bool, backend: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
shutdown_grace = "10s"

[log]
format = "{format}"
level = "info"
access_log = {access_log}

[upstreams.backend]
{backend}

[policies.strict]
allowed_origins = ["https://app.example.com"]
allowed_methods = ["GET", "POST"]
allow_credentials = true

[policies.lenient]
allowed_origins = ["https://old.example.com"]
enforcement = "report-only"

[[routes]]
name = "api"
host = "api.example.com"
upstream = "backend"
policy = "strict"

[[routes]]
name = "legacy"
path_prefix = "/legacy"
upstream = "backend"
policy = "lenient"
"#
    )
}

/// [`config`] with `up` as the backend.
fn config_to(up: &Upstream, format: &str, access_log: bool) -> String {
    config(format, access_log, &format!("url = \"{}\"", up.url()))
}

/// One request through the proxy: `(method, host, path)`, an optional Origin, an optional
/// Access-Control-Request-Method (which makes an OPTIONS a preflight), and a body of `body` bytes.
/// Returns the status and the body the client received.
async fn send(
    client: &reqwest::Client,
    gate: &Gate,
    (method, host, path): (&str, &str, &str),
    origin: Option<&str>,
    acrm: Option<&str>,
    body: usize,
) -> (u16, String) {
    let method = Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = client.request(method, gate.url(path)).header("host", host);
    if let Some(o) = origin {
        req = req.header("origin", o);
    }
    if let Some(m) = acrm {
        req = req.header("access-control-request-method", m);
    }
    if body > 0 {
        req = req.body(vec![b'x'; body]);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.text().await.unwrap())
}

/// A clock the test moves by hand, in whole seconds.
#[derive(Clone, Debug, Default)]
struct HandClock(Arc<AtomicU64>);

impl HandClock {
    fn advance(&self, secs: u64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }
    fn now(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

impl Clock for HandClock {
    fn elapsed(&self) -> Duration {
        Duration::from_secs(self.now())
    }
}

// === capture ===

// === admin ===

/// A client for the gate's admin listener.
struct Admin {
    base: String,
    client: reqwest::Client,
}

impl Admin {
    fn of(gate: &Gate) -> Admin {
        Admin {
            base: gate.admin_url(""),
            client: support::client(),
        }
    }

    async fn get(&self, path: &str) -> (u16, String, String) {
        let resp = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let ctype = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        (status, ctype, resp.text().await.unwrap())
    }

    async fn metrics(&self) -> String {
        let (status, ctype, body) = self.get("/metrics").await;
        assert_eq!(status, 200);
        assert!(ctype.starts_with("application/openmetrics-text"), "{ctype}");
        body
    }
}

/// Poll `/readyz` until it answers `want` (there is no other signal for the server's
/// `set_ready` calls, which happen inside `serve`).
async fn readyz_becomes(admin: &Admin, want: u16) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while admin.get("/readyz").await.0 != want {
        assert!(
            tokio::time::Instant::now() < deadline,
            "/readyz never answered {want}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// `name{labels} value` → (name, label keys, labels text).
fn samples(exposition: &str) -> Vec<(String, Vec<String>, String)> {
    exposition
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let end = l.find(['{', ' ']).unwrap();
            let labels = match l[end..].strip_prefix('{') {
                Some(rest) => &rest[..rest.rfind('}').unwrap()],
                None => "",
            };
            let keys = labels
                .split("\",")
                .filter(|kv| !kv.is_empty())
                .map(|kv| kv.split('=').next().unwrap().to_owned())
                .collect();
            (l[..end].to_owned(), keys, labels.to_owned())
        })
        .collect()
}

// === tests ===

#[tokio::test]
async fn json_access_lines_parse_and_carry_every_documented_field() {
    const BODY: usize = 17;
    let up = Upstream::start().await;
    let gate = Gate::start(&config_to(&up, "json", true)).await;
    let (cap, _log) = capture(&gate);
    let client = support::client();
    let r = ("GET", "api.example.com", "/v1/users?token=secret");
    let (status, ok_body) = send(
        &client,
        &gate,
        r,
        Some("https://app.example.com"),
        None,
        BODY,
    )
    .await;
    assert_eq!(status, 200, "allowed");
    let r = ("DELETE", "api.example.com", "/v1/users/7");
    let (status, denied_body) =
        send(&client, &gate, r, Some("https://evil.example"), None, BODY).await;
    assert_eq!(status, 403, "denied");
    assert_eq!(
        up.hits(),
        1,
        "the denied request never reached the upstream"
    );

    let lines = cap.json();
    let access = with_target(&lines, "corsgate::access");
    assert_eq!(access.len(), 2, "{lines:#?}");
    for l in &access {
        for field in [
            "timestamp",
            "level",
            "target",
            "message",
            "method",
            "host",
            "path",
            "origin",
            "route",
            "policy",
            "decision",
            "enforcement",
            "status",
            "upstream",
            "total_latency_ms",
            "bytes_in",
            "bytes_out",
        ] {
            assert!(!l[field].is_null(), "{field} missing in {l}");
        }
        assert_eq!(l["level"], "INFO");
        assert_eq!(l["route"], "api");
        assert_eq!(l["policy"], "strict");
        assert_eq!(l["upstream"], "backend");
        assert_eq!(l["enforcement"], "block");
        assert_eq!(l["bytes_in"], BODY);
        assert!(l["total_latency_ms"].as_f64().unwrap() >= 0.0, "{l}");
    }
    let ok = access[0];
    assert_eq!(ok["decision"], "allowed");
    assert_eq!(ok["path"], "/v1/users", "the query string is never logged");
    assert!(!cap.text().contains("secret"));
    assert_eq!(ok["bytes_out"], ok_body.len());
    let upstream_ms = ok["upstream_latency_ms"].as_f64().unwrap();
    assert!(
        upstream_ms <= ok["total_latency_ms"].as_f64().unwrap(),
        "{ok}"
    );
    assert!(ok.get("reason").is_none() && ok.get("denied_value").is_none());
    let denied = access[1];
    assert_eq!(denied["decision"], "denied");
    assert_eq!(denied["status"], 403);
    assert_eq!(denied["bytes_out"], denied_body.len());
    assert_eq!(denied["reason"], "origin_not_allowed");
    assert_eq!(denied["denied_value"], "https://evil.example");
    assert!(
        denied.get("upstream_latency_ms").is_none(),
        "answered locally"
    );

    let warn = with_target(&lines, "corsgate::denial");
    assert_eq!(warn.len(), 1, "{lines:#?}");
    assert_eq!(warn[0]["level"], "WARN");
    assert_eq!(warn[0]["message"], "CORS request denied");
    for (k, v) in [
        ("route", "api"),
        ("policy", "strict"),
        ("decision", "denied"),
        ("reason", "origin_not_allowed"),
        ("denied_value", "https://evil.example"),
        ("origin", "https://evil.example"),
        ("method", "DELETE"),
        ("path", "/v1/users/7"),
        ("enforcement", "block"),
    ] {
        assert_eq!(warn[0][k], v, "{k} in {}", warn[0]);
    }
    assert_eq!(warn[0]["status"], 403);
}

#[tokio::test]
async fn without_access_log_denials_are_still_logged_at_warn() {
    let up = Upstream::start().await;
    let gate = Gate::start(&config_to(&up, "json", false)).await;
    let (cap, _log) = capture(&gate);
    let client = support::client();
    let r = ("OPTIONS", "api.example.com", "/v1");
    let app = Some("https://app.example.com");
    let (status, _) = send(&client, &gate, r, app, Some("PUT"), 0).await;
    assert_eq!(status, 403, "preflight-denied");
    let r = ("GET", "api.example.com", "/");
    assert_eq!(send(&client, &gate, r, None, None, 0).await.0, 200);
    let lines = cap.json();
    assert!(
        with_target(&lines, "corsgate::access").is_empty(),
        "{lines:#?}"
    );
    let warn = with_target(&lines, "corsgate::denial");
    assert_eq!(warn.len(), 1);
    assert_eq!(warn[0]["message"], "CORS preflight denied");
    assert_eq!(warn[0]["decision"], "preflight-denied");
    assert_eq!(warn[0]["reason"], "method_not_allowed");
    assert_eq!(warn[0]["denied_value"], "PUT");
}

#[tokio::test]
async fn pretty_format_writes_human_lines() {
    let up = Upstream::start().await;
    let gate = Gate::start(&config_to(&up, "pretty", true)).await;
    let (cap, _log) = capture(&gate);
    let r = ("GET", "api.example.com", "/");
    send(&support::client(), &gate, r, Some("null"), None, 0).await;
    let text = cap.text();
    let denial = text
        .lines()
        .find(|l| l.contains("corsgate::denial"))
        .unwrap();
    assert!(
        denial.contains("WARN") && denial.contains("CORS request denied"),
        "{text}"
    );
    assert!(denial.contains("null_origin"), "{text}");
    assert!(serde_json::from_str::<Value>(denial).is_err(), "not JSON");
}

#[tokio::test]
async fn a_spray_of_random_origins_is_bounded_in_the_log_and_summarised() {
    const RATE: u32 = 5;
    const SPRAY: usize = 300;
    let up = Upstream::start().await;
    // The log-rate windows run on a clock this test moves, never on the wall clock: how fast the
    // machine sends the spray cannot move a window boundary.
    let clock = HandClock::default();
    let observer = Arc::new(Observer::with_clock(RATE, clock.clone()));
    let gate = Gate::with()
        .observer(observer)
        .start(&config_to(&up, "json", true))
        .await;
    let (cap, _log) = capture(&gate);
    let client = support::client();
    for i in 0..SPRAY {
        let origin = format!("https://x{i}.attacker.example");
        let r = ("GET", "api.example.com", "/");
        assert_eq!(send(&client, &gate, r, Some(&origin), None, 0).await.0, 403);
    }
    // The one-second window passes: the next denial line reports how many were held back.
    clock.advance(1);
    let r = ("GET", "api.example.com", "/");
    let last = Some("https://last.attacker.example");
    assert_eq!(send(&client, &gate, r, last, None, 0).await.0, 403);
    let windows = clock.now() + 1;
    let lines = cap.json();
    assert_eq!(with_target(&lines, "corsgate::access").len(), SPRAY + 1);
    let denial = with_target(&lines, "corsgate::denial");
    let (summaries, denials): (Vec<&Value>, Vec<&Value>) =
        denial.iter().partition(|l| l.get("suppressed").is_some());
    assert!(denials.len() > RATE as usize, "{}", denials.len());
    assert!(
        denials.len() as u64 <= u64::from(RATE) * windows,
        "{}",
        denials.len()
    );
    // With the clock in the test's hands the split is exact: RATE lines in the first window, the
    // rest held back and reported once by the first line of the next.
    assert_eq!(denials.len(), RATE as usize + 1);
    assert_eq!(summaries.len(), 1, "{summaries:#?}");
    assert!(!summaries.is_empty());
    let suppressed: u64 = summaries
        .iter()
        .map(|l| l["suppressed"].as_u64().unwrap())
        .sum();
    assert_eq!(suppressed, (SPRAY - RATE as usize) as u64);
    assert_eq!(suppressed + denials.len() as u64, SPRAY as u64 + 1);
    let msg = summaries[0]["message"].as_str().unwrap();
    assert!(
        msg.starts_with("suppressed ") && msg.ends_with(" denial lines"),
        "{msg}"
    );
    assert_eq!(summaries[0]["route"], "api");
}

#[tokio::test]
async fn a_denied_preflight_moves_the_denial_counter_with_its_reason() {
    let up = Upstream::start().await;
    let gate = Gate::with()
        .admin()
        .start(&config_to(&up, "json", true))
        .await;
    let admin = Admin::of(&gate);
    let before = admin.metrics().await;
    let line = "corsgate_cors_denials_total{route=\"api\",reason=\"method_not_allowed\"}";
    assert!(before.contains(&format!("{line} 0\n")), "{before}");

    let r = ("OPTIONS", "api.example.com", "/v1");
    let app = Some("https://app.example.com");
    let (status, _) = send(&support::client(), &gate, r, app, Some("PATCH"), 0).await;
    assert_eq!(status, 403, "preflight-denied");
    assert_eq!(up.hits(), 0, "answered by the proxy");

    let after = admin.metrics().await;
    assert!(after.contains(&format!("{line} 1\n")), "{after}");
    let outcome = "corsgate_requests_total{route=\"api\",outcome=\"preflight-denied\"} 1\n";
    assert!(after.contains(outcome), "{after}");
    assert!(after.contains("corsgate_request_duration_seconds_count{route=\"api\"} 1\n"));
    let other = "corsgate_cors_denials_total{route=\"api\",reason=\"origin_not_allowed\"} 0\n";
    assert!(after.contains(other), "{after}");
}

#[tokio::test]
async fn metric_names_and_labels_match_the_spec_exactly() {
    let up = Upstream::start().await;
    // A short upstream timeout, so `/slow` is an upstream timeout.
    let backend = format!("url = \"{}\"\ntimeout = \"300ms\"", up.url());
    let toml = config("json", false, &backend);
    let file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    std::fs::write(file.path(), &toml).unwrap();
    let gate = Gate::with().admin().start(&toml).await;
    let admin = Admin::of(&gate);
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .timeout(PATIENCE)
        .build()
        .unwrap();
    let r = ("GET", "nowhere.example", "/x");
    assert_eq!(
        send(&client, &gate, r, None, None, 0).await.0,
        404,
        "no route"
    );
    let r = ("GET", "api.example.com", "/slow?ms=2000");
    assert_eq!(
        send(&client, &gate, r, None, None, 0).await.0,
        504,
        "timeout"
    );
    // report-only, and the upstream's own Access-Control-Allow-Origin disagrees.
    let mismatch = client
        .get(gate.url("/legacy/x"))
        .header("host", "old.example.com")
        .header("origin", "https://old.example.com")
        .header("x-reply-header", "access-control-allow-origin: *")
        .send()
        .await
        .unwrap();
    assert_eq!(mismatch.status(), 200);
    // The real reload step on the gate's live state: one applied, two rejected.
    let reloader = gate.gateway.reloader(file.path());
    assert!(reloader.reload_blocking().is_ok());
    std::fs::write(file.path(), "[server\nbroken").unwrap();
    assert!(reloader.reload_blocking().is_err());
    assert!(reloader.reload_blocking().is_err());
    drop(client);
    // Exactly one open client connection.
    gate.metric_becomes("corsgate_active_connections", &[], 0.0)
        .await;
    let _conn = tokio::net::TcpStream::connect(gate.addr).await.unwrap();
    gate.metric_becomes("corsgate_active_connections", &[], 1.0)
        .await;

    let text = admin.metrics().await;
    let mut found: BTreeMap<String, BTreeSet<Vec<String>>> = BTreeMap::new();
    for (name, mut keys, _) in samples(&text) {
        keys.sort();
        found.entry(name).or_default().insert(keys);
    }
    let k = |ks: &[&str]| BTreeSet::from([ks.iter().map(|s| s.to_string()).collect::<Vec<_>>()]);
    let expected = BTreeMap::from([
        (
            "corsgate_requests_total".to_owned(),
            k(&["outcome", "route"]),
        ),
        (
            "corsgate_cors_denials_total".to_owned(),
            k(&["reason", "route"]),
        ),
        (
            "corsgate_upstream_errors_total".to_owned(),
            k(&["kind", "upstream"]),
        ),
        (
            "corsgate_cors_upstream_mismatch_total".to_owned(),
            k(&["route"]),
        ),
        (
            "corsgate_cross_site_reports_total".to_owned(),
            k(&["route"]),
        ),
        ("corsgate_rate_limited_total".to_owned(), k(&["route"])),
        (
            "corsgate_request_duration_seconds_bucket".to_owned(),
            k(&["le", "route"]),
        ),
        (
            "corsgate_request_duration_seconds_sum".to_owned(),
            k(&["route"]),
        ),
        (
            "corsgate_request_duration_seconds_count".to_owned(),
            k(&["route"]),
        ),
        ("corsgate_config_reloads_total".to_owned(), k(&["result"])),
        ("corsgate_active_connections".to_owned(), k(&[])),
    ]);
    assert_eq!(found, expected, "{text}");
    for (family, kind) in [
        ("corsgate_requests", "counter"),
        ("corsgate_cors_denials", "counter"),
        ("corsgate_upstream_errors", "counter"),
        ("corsgate_cors_upstream_mismatch", "counter"),
        ("corsgate_cross_site_reports", "counter"),
        ("corsgate_rate_limited", "counter"),
        ("corsgate_request_duration_seconds", "histogram"),
        ("corsgate_config_reloads", "counter"),
        ("corsgate_active_connections", "gauge"),
    ] {
        assert!(
            text.contains(&format!("# TYPE {family} {kind}\n")),
            "{family}: {text}"
        );
    }
    for sample in [
        "corsgate_requests_total{route=\"unmatched\",outcome=\"no-route\"} 1",
        "corsgate_upstream_errors_total{upstream=\"backend\",kind=\"timeout\"} 1",
        "corsgate_upstream_errors_total{upstream=\"backend\",kind=\"connect\"} 0",
        "corsgate_cors_upstream_mismatch_total{route=\"legacy\"} 1",
        "corsgate_config_reloads_total{result=\"success\"} 1",
        "corsgate_config_reloads_total{result=\"failure\"} 2",
        "corsgate_active_connections 1",
    ] {
        assert!(text.contains(&format!("{sample}\n")), "{sample}: {text}");
    }
    assert!(text.ends_with("# EOF\n"));
}

#[tokio::test]
async fn labels_carry_config_names_only_never_request_data() {
    let up = Upstream::start().await;
    let gate = Gate::with()
        .admin()
        .start(&config_to(&up, "json", false))
        .await;
    let admin = Admin::of(&gate);
    let client = support::client();
    for i in 0..20 {
        let host = format!("h{i}.random.example");
        let origin = format!("https://o{i}.random.example");
        let r = ("GET", host.as_str(), "/p");
        assert_eq!(send(&client, &gate, r, Some(&origin), None, 0).await.0, 404);
        let r = ("GET", "api.example.com", "/");
        assert_eq!(send(&client, &gate, r, Some(&origin), None, 0).await.0, 403);
    }
    let text = admin.metrics().await;
    assert!(!text.contains("random"), "{text}");
    let routes: BTreeSet<String> = samples(&text)
        .into_iter()
        .filter_map(|(_, _, labels)| {
            let start = labels.find("route=\"")? + 7;
            Some(labels[start..start + labels[start..].find('"')?].to_owned())
        })
        .collect();
    let expected = ["api", "legacy", "unmatched"].map(String::from);
    assert_eq!(routes, BTreeSet::from(expected));
    let denied = "corsgate_cors_denials_total{route=\"api\",reason=\"origin_not_allowed\"} 20\n";
    assert!(text.contains(denied), "{text}");
    assert!(text.contains("corsgate_requests_total{route=\"unmatched\",outcome=\"no-route\"} 20\n"));
}

#[tokio::test]
async fn readyz_follows_readiness_and_turns_503_while_draining() {
    let up = Upstream::start().await;
    let bound = Gate::with()
        .admin()
        .bind(&config_to(&up, "json", false))
        .await;
    let admin = Admin::of(&bound.gate);
    assert_eq!(admin.get("/healthz").await.0, 200);
    assert_eq!(
        admin.get("/readyz").await.0,
        503,
        "not ready before listeners are bound"
    );
    let mut gate = bound.serve();
    readyz_becomes(&admin, 200).await;
    let (status, ctype, body) = admin.get("/readyz").await;
    assert_eq!((status, body.as_str()), (200, "ready\n"));
    assert!(ctype.starts_with("text/plain"));
    // SIGTERM: the server marks itself not ready and drains; the admin listener keeps answering.
    gate.drained().await;
    assert_eq!(admin.get("/readyz").await.0, 503);
    assert_eq!(admin.get("/healthz").await.0, 200, "alive while draining");
    assert_eq!(admin.get("/nope").await.0, 404);
    let post = admin
        .client
        .post(gate.admin_url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 405);
    assert_eq!(post.headers()["allow"], "GET, HEAD");

    let healthz = gate.admin_url("/healthz");
    // Panics unless the admin listener's `serve` returns after its shutdown.
    gate.stop().await;
    let refused = reqwest::Client::builder().no_proxy().build().unwrap();
    assert!(refused.get(healthz).send().await.is_err());
}

#[tokio::test]
async fn the_active_connections_gauge_follows_connection_guards() {
    let up = Upstream::start().await;
    let gate = Gate::with()
        .admin()
        .start(&config_to(&up, "json", false))
        .await;
    let admin = Admin::of(&gate);
    let gauge = |n: u32| format!("corsgate_active_connections {n}\n");
    // Each client connection holds one guard while it is open.
    let a = tokio::net::TcpStream::connect(gate.addr).await.unwrap();
    let b = tokio::net::TcpStream::connect(gate.addr).await.unwrap();
    gate.metric_becomes("corsgate_active_connections", &[], 2.0)
        .await;
    assert!(admin.metrics().await.contains(&gauge(2)));
    drop(a);
    gate.metric_becomes("corsgate_active_connections", &[], 1.0)
        .await;
    assert!(admin.metrics().await.contains(&gauge(1)));
    drop(b);
    gate.metric_becomes("corsgate_active_connections", &[], 0.0)
        .await;
    assert!(admin.metrics().await.contains(&gauge(0)));
}

#[tokio::test]
async fn a_reload_keeps_counting_on_the_same_series() {
    let up = Upstream::start().await;
    let toml = config_to(&up, "json", false);
    let gate = Gate::start(&toml).await;
    let client = support::client();
    let r = ("GET", "api.example.com", "/");
    assert_eq!(send(&client, &gate, r, None, None, 0).await.0, 200);
    // What a reload installs: the same config rebuilt, with fresh handles from the same observer.
    let loaded = corsgate::load_str(&toml, Path::new("reloaded.toml")).unwrap();
    gate.gateway.install(loaded.snapshot).unwrap();
    assert_eq!(send(&client, &gate, r, None, None, 0).await.0, 200);
    let text = gate.observer.encode_metrics().unwrap();
    assert!(
        text.contains("corsgate_requests_total{route=\"api\",outcome=\"not-cors\"} 2\n"),
        "{text}"
    );
}

#[test]
fn an_invalid_rust_log_override_is_an_error_not_silence() {
    let settings = LogSettings {
        format: LogFormat::Json,
        level: "info".into(),
        access_log: true,
    };
    let err = corsgate::testing::dispatch(&settings, Some("corsgate=[bad"), false, std::io::sink)
        .expect_err("rejected");
    assert!(err.to_string().contains("RUST_LOG"), "{err}");
}

#[tokio::test]
async fn upstream_errors_and_mismatches_are_logged_with_config_names() {
    let port = support::closed_port();
    let refused = config("json", false, &format!("url = \"http://127.0.0.1:{port}\""));
    let dead = Gate::start(&refused).await;
    let up = Upstream::start().await;
    let live = Gate::start(&config_to(&up, "json", false)).await;
    let (cap, _log) = capture(&dead);
    let client = support::client();
    let r = ("GET", "api.example.com", "/");
    assert_eq!(send(&client, &dead, r, None, None, 0).await.0, 502);
    let mismatch = client
        .get(live.url("/legacy/x"))
        .header("origin", "https://old.example.com")
        .header("x-reply-header", "access-control-allow-origin: *")
        .send()
        .await
        .unwrap();
    assert_eq!(mismatch.status(), 200);
    let lines = cap.json();
    let upstream = with_target(&lines, "corsgate::upstream");
    assert_eq!(upstream.len(), 1, "{lines:#?}");
    assert_eq!(upstream[0]["level"], "WARN");
    assert_eq!(upstream[0]["upstream"], "backend");
    assert_eq!(upstream[0]["kind"], "connect");
    let error = upstream[0]["error"].as_str().unwrap().to_ascii_lowercase();
    assert!(error.contains("refused"), "{}", upstream[0]);
    let mm = with_target(&lines, "corsgate::mismatch");
    assert_eq!(mm.len(), 1, "{lines:#?}");
    assert_eq!(mm[0]["route"], "legacy");
    assert_eq!(mm[0]["policy"], "lenient");
    assert_eq!(
        mm[0]["detail"],
        "upstream Access-Control-Allow-Origin: \"*\", corsgate would send: \"https://old.example.com\""
    );
}

// === through the real proxy, with its admin listener ===

#[tokio::test]
async fn through_the_proxy_a_denied_preflight_is_counted_logged_and_never_forwarded() {
    let up = Upstream::start().await;
    let bound = Gate::with()
        .admin()
        .bind(&config_to(&up, "json", true))
        .await;
    let admin = Admin::of(&bound.gate);
    assert_eq!(
        admin.get("/readyz").await.0,
        503,
        "not ready before the proxy serves"
    );
    let gate = bound.serve();
    let (cap, _log) = capture(&gate);
    readyz_becomes(&admin, 200).await;
    let client = support::client();

    let res = client
        .request(Method::OPTIONS, gate.url("/v1/x?token=secret"))
        .header("host", "api.example.com")
        .header("origin", "https://app.example.com")
        .header("access-control-request-method", "PATCH")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let res = client
        .get(gate.url("/v1/y"))
        .header("host", "api.example.com")
        .header("origin", "https://app.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body = res.text().await.unwrap();
    assert_eq!(
        up.hits(),
        1,
        "the denied preflight never reached the upstream"
    );

    let text = admin.metrics().await;
    for sample in [
        "corsgate_cors_denials_total{route=\"api\",reason=\"method_not_allowed\"} 1",
        "corsgate_requests_total{route=\"api\",outcome=\"preflight-denied\"} 1",
        "corsgate_requests_total{route=\"api\",outcome=\"allowed\"} 1",
        "corsgate_request_duration_seconds_count{route=\"api\"} 2",
    ] {
        assert!(text.contains(&format!("{sample}\n")), "{sample}: {text}");
    }

    let lines = cap.json();
    let access = with_target(&lines, "corsgate::access");
    assert_eq!(access.len(), 2, "{lines:#?}");
    assert_eq!(access[0]["decision"], "preflight-denied");
    assert_eq!(access[0]["reason"], "method_not_allowed");
    assert_eq!(access[0]["denied_value"], "PATCH");
    assert_eq!(access[0]["path"], "/v1/x");
    assert_eq!(access[0]["status"], 403);
    assert_eq!(access[1]["decision"], "allowed");
    assert_eq!(access[1]["upstream"], "backend");
    assert!(
        access[1]["upstream_latency_ms"].as_f64().is_some(),
        "{}",
        access[1]
    );
    assert_eq!(access[1]["bytes_out"], body.len());
    assert!(!cap.text().contains("secret"));
    let denial = with_target(&lines, "corsgate::denial");
    assert_eq!(denial.len(), 1, "{lines:#?}");
    assert_eq!(denial[0]["message"], "CORS preflight denied");
    gate.stop().await;
}

#[tokio::test]
async fn readyz_is_503_while_the_proxy_drains_an_in_flight_request() {
    let up = Upstream::start().await;
    let mut gate = Gate::with()
        .admin()
        .start(&config_to(&up, "json", true))
        .await;
    let admin = Admin::of(&gate);
    readyz_becomes(&admin, 200).await;
    let url = gate.url("/slow?ms=1500");
    let slow = tokio::spawn(async move {
        let req = support::client().get(url).header("host", "api.example.com");
        req.send().await
    });
    up.wait_for_hits(1).await;
    let text = admin.metrics().await;
    assert!(text.contains("corsgate_active_connections 1\n"), "{text}");

    gate.shutdown();
    readyz_becomes(&admin, 503).await;
    assert!(
        !slow.is_finished(),
        "503 was observed while the request was still in flight"
    );
    assert_eq!(admin.get("/healthz").await.0, 200, "alive while draining");

    let res = slow
        .await
        .unwrap()
        .expect("the in-flight request completes during the drain");
    assert_eq!(res.status(), 200);
    gate.drained().await;
    assert_eq!(admin.get("/readyz").await.0, 503);
    let text = gate.observer.encode_metrics().unwrap();
    assert!(text.contains("corsgate_active_connections 0\n"), "{text}");
    gate.stop().await;
}
