//! Observability end to end below the proxy: requests evaluated by the real policy engine are fed to
//! the `Observer`; JSON log lines are captured and parsed; `/metrics`, `/healthz` and `/readyz` are
//! read from the real admin listener on 127.0.0.1:0.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use corsgate::observe::{AccessRecord, Observer, RouteHandles, UpstreamErrorKind};
use corsgate::policy::{RequestView, Scheme};
use corsgate::snapshot::{LogFormat, LogSettings, Snapshot};
use http::header::{HeaderMap, HeaderValue, ORIGIN};
use http::Method;
use serde_json::Value;

mod support;

// === fixtures ===

/// Routes `api` (host api.example.com, policy `strict`, block) and `legacy` (/legacy, policy
/// `lenient`, report-only), compiled by the real config compiler.
fn snapshot(format: &str, access_log: bool) -> Snapshot {
    let toml = format!(
        r#"
[server]
listen = "127.0.0.1:0"

[log]
format = "{format}"
level = "info"
access_log = {access_log}

[upstreams.backend]
url = "http://127.0.0.1:9"

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
    );
    corsgate::config::load_str(&toml, Path::new("observability.toml"))
        .expect("test config compiles")
        .snapshot
}

/// What the proxy does per request, minus the I/O: evaluate, then report to the observer.
/// `acrm` makes it a preflight. Returns the decision kind.
fn send(
    obs: &Observer,
    handles: &RouteHandles,
    snap: &Snapshot,
    (method, host, path): (&str, &str, &str),
    origin: Option<&str>,
    acrm: Option<&str>,
) -> &'static str {
    let mut headers = HeaderMap::new();
    if let Some(o) = origin {
        headers.insert(ORIGIN, HeaderValue::from_str(o).unwrap());
    }
    if let Some(m) = acrm {
        headers.insert(
            "access-control-request-method",
            HeaderValue::from_str(m).unwrap(),
        );
    }
    let method = Method::from_bytes(method.as_bytes()).unwrap();
    let view = RequestView {
        method: &method,
        scheme: Scheme::Http,
        host: corsgate::authority::Authority::parse(host).ok(),
        path: path.split('?').next().unwrap(),
        headers: &headers,
    };
    let eval = snap.evaluate(&view);
    let kind = eval.outcome().as_str();
    let index = eval.routed().map(|r| {
        snap.routes
            .iter()
            .position(|x| std::ptr::eq(x, r.route))
            .unwrap()
    });
    let local = matches!(
        kind,
        "preflight-denied" | "denied" | "preflight-allowed" | "no-route"
    );
    let rec = AccessRecord {
        method: method.as_str(),
        host: Some(host),
        path,
        origin,
        route: index,
        outcome: eval.outcome(),
        denial: eval
            .routed()
            .and_then(|r| r.decision.denial())
            .map(|d| (d.reason, d.detail)),
        enforcement: eval.routed().map(|r| r.policy.enforcement().as_str()),
        status: match kind {
            "preflight-denied" | "denied" => 403,
            "preflight-allowed" => 204,
            "no-route" => 404,
            _ => 200,
        },
        upstream_latency: (!local).then(|| Duration::from_micros(2500)),
        total: Duration::from_micros(3100),
        bytes_in: 17,
        bytes_out: 42,
    };
    obs.request(handles, snap, &rec);
    kind
}

// === capture ===

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Capture {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
    /// Every line, parsed: a line that is not one JSON object fails the test.
    fn json(&self) -> Vec<Value> {
        self.text()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }
}

/// Run `f` with a subscriber writing to a fresh capture.
fn logged(settings: &LogSettings, f: impl FnOnce()) -> Capture {
    let cap = Capture::default();
    let writer = cap.clone();
    let dispatch = corsgate::telemetry::dispatch(settings, None, false, move || writer.clone())
        .expect("valid filter");
    tracing::dispatcher::with_default(&dispatch, f);
    cap
}

fn with_target<'a>(lines: &'a [Value], target: &str) -> Vec<&'a Value> {
    lines.iter().filter(|l| l["target"] == target).collect()
}

// === admin ===

struct Admin {
    addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
    client: reqwest::Client,
}

/// The real admin listener on 127.0.0.1:0. The socket is bound before `serve` starts, so requests
/// wait in the backlog instead of racing the accept loop.
async fn admin(obs: Arc<Observer>) -> Admin {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(corsgate::admin::serve(listener, obs, async move {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    Admin {
        addr,
        stop,
        task,
        client,
    }
}

impl Admin {
    async fn get(&self, path: &str) -> (u16, String, String) {
        let resp = self
            .client
            .get(format!("http://{}{path}", self.addr))
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

#[test]
fn json_access_lines_parse_and_carry_every_documented_field() {
    let snap = snapshot("json", true);
    let obs = Observer::new();
    let handles = obs.route_handles(&snap);
    let cap = logged(&snap.log, || {
        let r = ("GET", "api.example.com", "/v1/users?token=secret");
        assert_eq!(
            send(
                &obs,
                &handles,
                &snap,
                r,
                Some("https://app.example.com"),
                None
            ),
            "allowed"
        );
        let r = ("DELETE", "api.example.com", "/v1/users/7");
        assert_eq!(
            send(&obs, &handles, &snap, r, Some("https://evil.example"), None),
            "denied"
        );
    });
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
        assert_eq!(l["bytes_in"], 17);
        assert_eq!(l["bytes_out"], 42);
        assert!((l["total_latency_ms"].as_f64().unwrap() - 3.1).abs() < 1e-9);
    }
    let ok = access[0];
    assert_eq!(ok["decision"], "allowed");
    assert_eq!(ok["path"], "/v1/users", "the query string is never logged");
    assert!(!cap.text().contains("secret"));
    assert!((ok["upstream_latency_ms"].as_f64().unwrap() - 2.5).abs() < 1e-9);
    assert!(ok.get("reason").is_none() && ok.get("denied_value").is_none());
    let denied = access[1];
    assert_eq!(denied["decision"], "denied");
    assert_eq!(denied["status"], 403);
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

#[test]
fn without_access_log_denials_are_still_logged_at_warn() {
    let snap = snapshot("json", false);
    let obs = Observer::new();
    let handles = obs.route_handles(&snap);
    let cap = logged(&snap.log, || {
        let r = ("OPTIONS", "api.example.com", "/v1");
        let kind = send(
            &obs,
            &handles,
            &snap,
            r,
            Some("https://app.example.com"),
            Some("PUT"),
        );
        assert_eq!(kind, "preflight-denied");
        send(
            &obs,
            &handles,
            &snap,
            ("GET", "api.example.com", "/"),
            None,
            None,
        );
    });
    let lines = cap.json();
    assert!(
        with_target(&lines, "corsgate::access").is_empty(),
        "{lines:#?}"
    );
    let warn = with_target(&lines, "corsgate::denial");
    assert_eq!(warn.len(), 1);
    assert_eq!(warn[0]["message"], "CORS preflight denied");
    assert_eq!(warn[0]["reason"], "method_not_allowed");
    assert_eq!(warn[0]["denied_value"], "PUT");
}

#[test]
fn pretty_format_writes_human_lines() {
    let snap = snapshot("pretty", true);
    let obs = Observer::new();
    let handles = obs.route_handles(&snap);
    let cap = logged(&snap.log, || {
        let r = ("GET", "api.example.com", "/");
        send(&obs, &handles, &snap, r, Some("null"), None);
    });
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

#[test]
fn a_spray_of_random_origins_is_bounded_in_the_log_and_summarised() {
    const RATE: u32 = 5;
    const SPRAY: usize = 300;
    let snap = snapshot("json", true);
    let obs = Observer::with_log_rate(RATE);
    let handles = obs.route_handles(&snap);
    let started = Instant::now();
    let cap = logged(&snap.log, || {
        for i in 0..SPRAY {
            let origin = format!("https://x{i}.attacker.example");
            send(
                &obs,
                &handles,
                &snap,
                ("GET", "api.example.com", "/"),
                Some(&origin),
                None,
            );
        }
        // Let the one-second window pass: the next denial line reports how many were held back.
        std::thread::sleep(Duration::from_millis(1100));
        let r = ("GET", "api.example.com", "/");
        send(
            &obs,
            &handles,
            &snap,
            r,
            Some("https://last.attacker.example"),
            None,
        );
    });
    let windows = started.elapsed().as_secs() + 1;
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
    assert!(!summaries.is_empty());
    let suppressed: u64 = summaries
        .iter()
        .map(|l| l["suppressed"].as_u64().unwrap())
        .sum();
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
    let snap = snapshot("json", true);
    let obs = Observer::new();
    let handles = obs.route_handles(&snap);
    let admin = admin(obs.clone()).await;
    let before = admin.metrics().await;
    let line = "corsgate_cors_denials_total{route=\"api\",reason=\"method_not_allowed\"}";
    assert!(before.contains(&format!("{line} 0\n")), "{before}");

    let r = ("OPTIONS", "api.example.com", "/v1");
    let kind = send(
        &obs,
        &handles,
        &snap,
        r,
        Some("https://app.example.com"),
        Some("PATCH"),
    );
    assert_eq!(kind, "preflight-denied");

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
    let snap = snapshot("json", false);
    let obs = Observer::new();
    let handles = obs.route_handles(&snap);
    let admin = admin(obs.clone()).await;
    send(
        &obs,
        &handles,
        &snap,
        ("GET", "nowhere.example", "/x"),
        None,
        None,
    );
    obs.upstream_error(&handles, 0, UpstreamErrorKind::Timeout);
    obs.mismatch(&handles, 1, "upstream sent Access-Control-Allow-Origin: *");
    obs.reload(true);
    obs.reload(false);
    obs.reload(false);
    let _conn = obs.connection();

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
    let snap = snapshot("json", false);
    let obs = Observer::new();
    let handles = obs.route_handles(&snap);
    let admin = admin(obs.clone()).await;
    for i in 0..20 {
        let host = format!("h{i}.random.example");
        let origin = format!("https://o{i}.random.example");
        send(
            &obs,
            &handles,
            &snap,
            ("GET", &host, "/p"),
            Some(&origin),
            None,
        );
        send(
            &obs,
            &handles,
            &snap,
            ("GET", "api.example.com", "/"),
            Some(&origin),
            None,
        );
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
    let obs = Observer::new();
    let admin = admin(obs.clone()).await;
    assert_eq!(admin.get("/healthz").await.0, 200);
    assert_eq!(
        admin.get("/readyz").await.0,
        503,
        "not ready before listeners are bound"
    );
    obs.set_ready(true);
    let (status, ctype, body) = admin.get("/readyz").await;
    assert_eq!((status, body.as_str()), (200, "ready\n"));
    assert!(ctype.starts_with("text/plain"));
    // SIGTERM: the server marks itself not ready and drains; the admin listener keeps answering.
    obs.set_ready(false);
    assert_eq!(admin.get("/readyz").await.0, 503);
    assert_eq!(admin.get("/healthz").await.0, 200, "alive while draining");
    assert_eq!(admin.get("/nope").await.0, 404);
    let post = admin
        .client
        .post(format!("http://{}/metrics", admin.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 405);
    assert_eq!(post.headers()["allow"], "GET, HEAD");

    admin.stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), admin.task)
        .await
        .expect("serve returns after shutdown")
        .unwrap();
    let refused = reqwest::Client::builder().no_proxy().build().unwrap();
    assert!(refused
        .get(format!("http://{}/healthz", admin.addr))
        .send()
        .await
        .is_err());
}

#[tokio::test]
async fn the_active_connections_gauge_follows_connection_guards() {
    let obs = Observer::new();
    let admin = admin(obs.clone()).await;
    let a = obs.connection();
    let b = obs.connection();
    assert!(admin
        .metrics()
        .await
        .contains("corsgate_active_connections 2\n"));
    drop(a);
    assert!(admin
        .metrics()
        .await
        .contains("corsgate_active_connections 1\n"));
    drop(b);
    assert!(admin
        .metrics()
        .await
        .contains("corsgate_active_connections 0\n"));
}

#[test]
fn a_reload_keeps_counting_on_the_same_series() {
    let snap = snapshot("json", false);
    let obs = Observer::new();
    let first = obs.route_handles(&snap);
    send(
        &obs,
        &first,
        &snap,
        ("GET", "api.example.com", "/"),
        None,
        None,
    );
    let second = obs.route_handles(&snap);
    send(
        &obs,
        &second,
        &snap,
        ("GET", "api.example.com", "/"),
        None,
        None,
    );
    let text = obs.encode_metrics().unwrap();
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
    let err = corsgate::telemetry::dispatch(&settings, Some("corsgate=[bad"), false, std::io::sink)
        .expect_err("rejected");
    assert!(err.to_string().contains("RUST_LOG"), "{err}");
}

#[test]
fn upstream_errors_and_mismatches_are_logged_with_config_names() {
    let snap = snapshot("json", false);
    let obs = Observer::new();
    let handles = obs.route_handles(&snap);
    let cap = logged(&snap.log, || {
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        obs.upstream_failure(&handles, 0, UpstreamErrorKind::Connect, Some(&refused));
        obs.mismatch(&handles, 1, "upstream sent Access-Control-Allow-Origin: *");
        // Out-of-range indices are ignored rather than panicking.
        obs.upstream_error(&handles, 9, UpstreamErrorKind::Tls);
        obs.mismatch(&handles, 9, "x");
    });
    let lines = cap.json();
    let up = with_target(&lines, "corsgate::upstream");
    assert_eq!(up.len(), 1, "{lines:#?}");
    assert_eq!(up[0]["level"], "WARN");
    assert_eq!(up[0]["upstream"], "backend");
    assert_eq!(up[0]["kind"], "connect");
    assert_eq!(up[0]["error"], "refused");
    let mm = with_target(&lines, "corsgate::mismatch");
    assert_eq!(mm.len(), 1, "{lines:#?}");
    assert_eq!(mm[0]["route"], "legacy");
    assert_eq!(mm[0]["policy"], "lenient");
    assert_eq!(
        mm[0]["detail"],
        "upstream sent Access-Control-Allow-Origin: *"
    );
}

// === through the real proxy ===

/// The real proxy (`server::serve`) and the real admin listener sharing one observer, both on
/// 127.0.0.1:0, in front of the recording upstream of tests/support.
struct Stack {
    proxy: SocketAddr,
    admin: Admin,
    obs: Arc<Observer>,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<()>,
}

async fn stack(up: &support::Upstream) -> Stack {
    let toml = format!(
        r#"
[server]
listen = "127.0.0.1:0"
shutdown_grace = "10s"

[log]
format = "json"
access_log = true

[upstreams.backend]
url = "{}"

[policies.strict]
allowed_origins = ["https://app.example.com"]
allowed_methods = ["GET", "POST"]
allow_credentials = true

[[routes]]
name = "api"
upstream = "backend"
policy = "strict"
"#,
        up.url()
    );
    let loaded = corsgate::config::load_str(&toml, Path::new("e2e.toml")).unwrap();
    let obs = Observer::new();
    let live = corsgate::live::Live::build(loaded.snapshot, &obs).unwrap();
    let shared = Arc::new(corsgate::live::Shared::from_pointee(live));
    let admin = admin(obs.clone()).await;
    assert_eq!(
        admin.get("/readyz").await.0,
        503,
        "not ready before the proxy serves"
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(corsgate::server::serve(
        vec![listener],
        shared,
        obs.clone(),
        async move {
            let _ = stopped.await;
        },
    ));
    Stack {
        proxy,
        admin,
        obs,
        stop,
        server,
    }
}

/// Poll `/readyz` until it answers `want` (there is no other signal for the server's
/// `set_ready` calls, which happen inside `serve`).
async fn readyz_becomes(admin: &Admin, want: u16) {
    let deadline = Instant::now() + support::PATIENCE;
    while admin.get("/readyz").await.0 != want {
        assert!(Instant::now() < deadline, "/readyz never answered {want}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn through_the_proxy_a_denied_preflight_is_counted_logged_and_never_forwarded() {
    let up = support::Upstream::start().await;
    // The current-thread runtime runs the proxy's tasks on this thread, so a thread-local
    // subscriber sees their events.
    let cap = Capture::default();
    let writer = cap.clone();
    let settings = LogSettings {
        format: LogFormat::Json,
        level: "info".into(),
        access_log: true,
    };
    let dispatch =
        corsgate::telemetry::dispatch(&settings, None, false, move || writer.clone()).unwrap();
    let _guard = tracing::dispatcher::set_default(&dispatch);
    let s = stack(&up).await;
    readyz_becomes(&s.admin, 200).await;
    let client = support::client();

    let res = client
        .request(
            Method::OPTIONS,
            format!("http://{}/v1/x?token=secret", s.proxy),
        )
        .header("origin", "https://app.example.com")
        .header("access-control-request-method", "PATCH")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let res = client
        .get(format!("http://{}/v1/y", s.proxy))
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

    let text = s.admin.metrics().await;
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
    s.stop.send(()).unwrap();
    tokio::time::timeout(support::PATIENCE, s.server)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn readyz_is_503_while_the_proxy_drains_an_in_flight_request() {
    let up = support::Upstream::start().await;
    let s = stack(&up).await;
    readyz_becomes(&s.admin, 200).await;
    let url = format!("http://{}/slow?ms=1500", s.proxy);
    let slow = tokio::spawn(async move { support::client().get(url).send().await });
    up.wait_for_hits(1).await;
    let text = s.admin.metrics().await;
    assert!(text.contains("corsgate_active_connections 1\n"), "{text}");

    s.stop.send(()).unwrap();
    readyz_becomes(&s.admin, 503).await;
    assert!(
        !slow.is_finished(),
        "503 was observed while the request was still in flight"
    );
    assert_eq!(s.admin.get("/healthz").await.0, 200, "alive while draining");

    let res = slow
        .await
        .unwrap()
        .expect("the in-flight request completes during the drain");
    assert_eq!(res.status(), 200);
    tokio::time::timeout(support::PATIENCE, s.server)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s.admin.get("/readyz").await.0, 503);
    let text = s.obs.encode_metrics().unwrap();
    assert!(text.contains("corsgate_active_connections 0\n"), "{text}");
}
