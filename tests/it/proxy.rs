//! The CORS behaviour of the running proxy: local preflights, denials that never reach the
//! upstream, the upstream's Access-Control-* replaced, Vary merged, and the three enforcement modes.

use crate::support;

use crate::support::{client, one_route, preflight, Gate, Upstream};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};

const APP: &str = "https://app.example";
const EVIL: &str = "https://evil.example";

const POLICY: &str = r#"
allowed_origins = ["https://app.example"]
allowed_methods = ["GET", "POST", "PUT"]
allowed_headers = ["x-token"]
expose_headers = ["x-request-id"]
allow_credentials = true
max_age = 600
"#;

fn cors_headers(h: &HeaderMap) -> Vec<(String, String)> {
    h.iter()
        .filter(|(n, _)| n.as_str().starts_with("access-control-"))
        .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_owned()))
        .collect()
}

/// Every Vary token across all Vary lines, lowercased.
fn vary_tokens(h: &HeaderMap) -> Vec<String> {
    h.get_all("vary")
        .iter()
        .flat_map(|v| v.to_str().unwrap().split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .collect()
}

async fn gate_with(policy: &str) -> (Upstream, Gate) {
    let up = Upstream::start().await;
    let gate = Gate::start(&one_route(&up, policy)).await;
    (up, gate)
}

#[tokio::test]
async fn an_allowed_preflight_is_answered_by_the_proxy_and_never_forwarded() {
    let (up, gate) = gate_with(&format!("{POLICY}\npreflight_status = 200")).await;
    let res = preflight(&gate, APP, "PUT")
        .header("access-control-request-headers", "X-Token")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let h = res.headers().clone();
    assert_eq!(h["access-control-allow-origin"], APP);
    assert_eq!(h["access-control-allow-credentials"], "true");
    assert_eq!(h["access-control-allow-methods"], "GET, POST, PUT");
    assert_eq!(h["access-control-allow-headers"], "x-token");
    assert_eq!(h["access-control-max-age"], "600");
    assert!(h["vary"]
        .to_str()
        .unwrap()
        .contains("Access-Control-Request-Method"));
    assert!(res.bytes().await.unwrap().is_empty());
    assert_eq!(up.hits(), 0);
}

#[tokio::test]
async fn a_denied_preflight_gets_403_without_any_cors_header() {
    let (up, gate) = gate_with(POLICY).await;
    for (origin, method) in [(EVIL, "GET"), (APP, "DELETE")] {
        let res = preflight(&gate, origin, method).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        assert_eq!(cors_headers(res.headers()), vec![]);
    }
    let res = preflight(&gate, APP, "GET")
        .header("access-control-request-headers", "authorization")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(up.hits(), 0);
}

#[tokio::test]
async fn an_options_request_that_is_not_a_preflight_is_forwarded() {
    let (up, gate) = gate_with(POLICY).await;
    let res = client()
        .request(Method::OPTIONS, gate.url("/x"))
        .header("origin", APP)
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::FORBIDDEN,
        "OPTIONS is not an allowed method"
    );
    let res = client()
        .request(Method::OPTIONS, gate.url("/x"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(up.hits(), 1);
    assert_eq!(up.last().method, "OPTIONS");
}

#[tokio::test]
async fn a_denied_request_gets_403_and_never_reaches_the_upstream() {
    let (up, gate) = gate_with(POLICY).await;
    let res = client()
        .post(gate.url("/api/items"))
        .header("origin", EVIL)
        .body("payload")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(res.headers()["content-type"], "text/plain; charset=utf-8");
    assert_eq!(cors_headers(res.headers()), vec![]);
    let body = res.text().await.unwrap();
    assert_eq!(body, "forbidden by CORS policy: origin_not_allowed\n");
    let res = client()
        .delete(gate.url("/api/items"))
        .header("origin", APP)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(up.hits(), 0);
}

#[tokio::test]
async fn the_upstreams_cors_headers_are_replaced_and_vary_is_merged() {
    let (up, gate) = gate_with(POLICY).await;
    let res = client()
        .get(gate.url("/api/items"))
        .header("origin", APP)
        .header("x-reply-header", "access-control-allow-origin: *")
        .header(
            "x-reply-header",
            "access-control-allow-origin: https://evil.example",
        )
        .header("x-reply-header", "access-control-allow-methods: DELETE")
        .header("x-reply-header", "vary: Accept-Encoding")
        .header("x-reply-header", "vary: origin")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let h = res.headers();
    assert_eq!(h.get_all("access-control-allow-origin").iter().count(), 1);
    assert_eq!(
        cors_headers(h),
        vec![
            ("access-control-allow-origin".into(), APP.into()),
            ("access-control-allow-credentials".into(), "true".into()),
            (
                "access-control-expose-headers".into(),
                "x-request-id".into()
            ),
        ]
    );
    assert_eq!(
        vary_tokens(h),
        ["accept-encoding", "origin"],
        "no duplicate token"
    );
    assert_eq!(up.hits(), 1);

    let res = client()
        .get(gate.url("/"))
        .header("origin", APP)
        .header("x-reply-header", "vary: *")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["vary"], "*");
}

#[tokio::test]
async fn every_status_to_an_allowed_origin_carries_cors_headers() {
    let (_up, gate) = gate_with(POLICY).await;
    for status in ["201", "304", "404", "500", "503"] {
        let res = client()
            .get(gate.url("/"))
            .header("origin", APP)
            .header("x-reply-status", status)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_str(), status);
        assert_eq!(
            res.headers()["access-control-allow-origin"],
            APP,
            "{status}"
        );
    }
}

/// corsgate owns Access-Control-* on every routed response: an upstream that answers a request
/// without Origin (or a same-origin one) with its own ACAO/ACAC and `Cache-Control: public` must not
/// put those headers into a shared cache, in block and in headers-only alike.
#[tokio::test]
async fn requests_without_origin_and_same_origin_requests_are_forwarded_with_corsgates_headers() {
    for mode in ["block", "headers-only"] {
        let (up, gate) = gate_with(&format!("{POLICY}\nenforcement = \"{mode}\"")).await;
        let evil = |req: reqwest::RequestBuilder| {
            req.header(
                "x-reply-header",
                "access-control-allow-origin: https://evil.example",
            )
            .header("x-reply-header", "access-control-allow-credentials: true")
            .header("x-reply-header", "cache-control: public")
        };
        let res = evil(client().get(gate.url("/"))).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{mode}");
        assert_eq!(cors_headers(res.headers()), vec![], "{mode}: no Origin");
        assert_eq!(vary_tokens(res.headers()), ["origin"], "{mode}");
        assert_eq!(res.headers()["cache-control"], "public");

        let own = format!("http://{}", gate.addr);
        let res = evil(client().delete(gate.url("/")).header("origin", own))
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            StatusCode::OK,
            "{mode}: same-origin is not subject to the policy"
        );
        assert_eq!(cors_headers(res.headers()), vec![], "{mode}: same-origin");
        assert_eq!(vary_tokens(res.headers()), ["origin"], "{mode}");
        assert_eq!(up.hits(), 2);
    }
}

/// A `*` policy (no credentials) answers the same to everyone: `Access-Control-Allow-Origin: *` on
/// every response, CORS or not, and no `Vary: Origin` (Fetch, "CORS protocol and HTTP caches").
#[tokio::test]
async fn a_star_policy_sends_its_headers_on_every_response_and_no_vary() {
    let (_up, gate) = gate_with(
        r#"allowed_origins = ["*"]
expose_headers = ["x-request-id"]"#,
    )
    .await;
    for origin in [None, Some("https://anyone.example")] {
        let mut req = client().get(gate.url("/")).header(
            "x-reply-header",
            "access-control-allow-origin: https://evil.example",
        );
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        let res = req.send().await.unwrap();
        assert_eq!(
            cors_headers(res.headers()),
            vec![
                ("access-control-allow-origin".to_owned(), "*".to_owned()),
                (
                    "access-control-expose-headers".to_owned(),
                    "x-request-id".to_owned()
                ),
            ],
            "{origin:?}"
        );
        assert!(vary_tokens(res.headers()).is_empty(), "{origin:?}");
    }
}

#[tokio::test]
async fn headers_only_forwards_a_denied_request_but_strips_every_cors_header() {
    let (up, gate) = gate_with(&format!("{POLICY}\nenforcement = \"headers-only\"")).await;
    let res = client()
        .get(gate.url("/"))
        .header("origin", EVIL)
        .header("x-reply-header", "access-control-allow-origin: *")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(cors_headers(res.headers()), vec![]);
    assert_eq!(res.headers()["vary"], "Origin");
    assert_eq!(up.hits(), 1);
    // A denied preflight is still answered locally with 403.
    let res = preflight(&gate, EVIL, "GET").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(up.hits(), 1);
    // An allowed origin gets the policy's headers as in block mode.
    let res = client()
        .get(gate.url("/"))
        .header("origin", APP)
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["access-control-allow-origin"], APP);
}

#[tokio::test]
async fn report_only_forwards_everything_untouched_preflights_included() {
    let (up, gate) = gate_with(&format!("{POLICY}\nenforcement = \"report-only\"")).await;
    let res = client()
        .get(gate.url("/"))
        .header("origin", EVIL)
        .header("x-reply-header", "access-control-allow-origin: *")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        cors_headers(res.headers()),
        vec![("access-control-allow-origin".into(), "*".into())]
    );
    assert!(res.headers().get("vary").is_none());
    let res = preflight(&gate, APP, "PUT").send().await.unwrap();
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "the upstream answered the preflight"
    );
    assert_eq!(cors_headers(res.headers()), vec![]);
    assert_eq!(up.hits(), 2);
    assert_eq!(up.last().method, "OPTIONS");
    // Both disagreed with the policy: the upstream allowed a denied origin, then sent nothing to
    // an allowed one.
    let mismatches = gate.metric("corsgate_cors_upstream_mismatch_total", &[("route", "all")]);
    assert_eq!(mismatches, Some(2.0));
    let res = client()
        .get(gate.url("/"))
        .header("origin", APP)
        .header(
            "x-reply-header",
            "access-control-allow-origin: https://app.example",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let mismatches = gate.metric("corsgate_cors_upstream_mismatch_total", &[("route", "all")]);
    assert_eq!(
        mismatches,
        Some(2.0),
        "an agreeing upstream is not a mismatch"
    );
}

#[tokio::test]
async fn a_request_matching_no_route_gets_404_with_a_short_body() {
    let up = Upstream::start().await;
    let config = one_route(&up, POLICY).replace("name = \"all\"", "path_prefix = \"/api\"");
    let gate = Gate::start(&config).await;
    let res = client().get(gate.url("/other")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert_eq!(res.text().await.unwrap(), "no route\n");
    let res = client().get(gate.url("/api/x")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(up.hits(), 1);
}

/// Routes `/` (app) and `/admin` (admin only): every spelling of `/admin` must get `/admin`'s policy,
/// and the upstream must receive the path corsgate routed on.
#[tokio::test]
async fn equivalent_spellings_of_a_path_cannot_escape_its_route() {
    let up = Upstream::start().await;
    let config = format!(
        r#"
[server]
listen = "127.0.0.1:0"

[upstreams.up]
url = "{}"

[policies.app]
allowed_origins = ["https://app.example"]
allow_credentials = true

[policies.admin]
allowed_origins = ["https://admin.example"]
allow_credentials = true

[[routes]]
name = "root"
upstream = "up"
policy = "app"

[[routes]]
name = "admin"
path_prefix = "/admin"
upstream = "up"
policy = "admin"
"#,
        up.url()
    );
    let gate = Gate::start(&config).await;
    let get = |target: &str, origin: &str| {
        format!(
            "GET {target} HTTP/1.1\r\nHost: api\r\nOrigin: {origin}\r\nConnection: close\r\n\r\n"
        )
    };
    let spellings = [
        "/admin/secret",
        "/%61dmin/secret",
        "/adm%69n/secret",
        "/./admin/secret",
        "/x/../admin/secret",
        "/x/%2e%2e/admin/secret",
        "//admin/secret",
        "/%2E/admin/secret?q=%2e%2e",
    ];
    for target in spellings {
        let res = support::raw(gate.addr, get(target, APP).as_bytes()).await;
        assert_eq!(support::raw_status(&res), 403, "{target}: {res}");
        assert!(
            !res.to_ascii_lowercase()
                .contains("access-control-allow-origin"),
            "{target}: {res}"
        );
    }
    assert_eq!(up.hits(), 0, "a denied spelling reached the upstream");
    for target in spellings {
        let res = support::raw(gate.addr, get(target, "https://admin.example").as_bytes()).await;
        assert_eq!(support::raw_status(&res), 200, "{target}: {res}");
        let seen = up.last().target;
        let want = if target.contains('?') {
            "/admin/secret?q=%2e%2e"
        } else {
            "/admin/secret"
        };
        assert_eq!(seen, want, "{target} was forwarded as {seen}");
    }
    // The root route still serves its own paths, and a reserved escape stays encoded.
    let res = support::raw(gate.addr, get("/adminx/%2fy", APP).as_bytes()).await;
    assert_eq!(support::raw_status(&res), 200, "{res}");
    assert_eq!(up.last().target, "/adminx/%2Fy");
}

/// `explain --json` prints exactly what the wire carries: for many requests, its status and its
/// `Access-Control-*` and `Vary` headers equal those of the running proxy's answer.
#[tokio::test]
async fn explain_prints_what_the_proxy_sends_header_for_header() {
    let up = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (mut cases, mut gates) = (Vec::new(), Vec::new());
    for (n, policy) in [
        POLICY,
        "allowed_origins = [\"*\"]\nexpose_headers = [\"x-id\"]\nmax_age = 60",
        "allowed_origins = [\"https://*.app.example\"]\nenforcement = \"headers-only\"",
        "allowed_origins = [\"https://app.example\"]\nenforcement = \"report-only\"",
    ]
    .iter()
    .enumerate()
    {
        let toml = one_route(&up, policy);
        let path = dir.path().join(format!("p{n}.toml"));
        std::fs::write(&path, &toml).unwrap();
        let gate = Gate::start(&toml).await;
        let own = format!("http://{}", gate.addr);
        for origin in [
            None,
            Some(APP),
            Some(EVIL),
            Some("https://x.app.example"),
            Some(&own),
        ] {
            for (method, preflight, header) in [
                ("GET", false, None),
                ("POST", false, None),
                ("DELETE", false, None),
                ("PUT", true, None),
                ("PUT", true, Some("x-token")),
                ("GET", true, Some("x-other")),
            ] {
                cases.push((
                    path.clone(),
                    gate.addr,
                    origin.map(str::to_owned),
                    method,
                    preflight,
                    header,
                ));
            }
        }
        gates.push(gate);
    }
    let interesting = |h: &HeaderMap| -> Vec<(String, String)> {
        let mut v: Vec<_> = h
            .iter()
            .filter(|(n, _)| n.as_str().starts_with("access-control-") || n.as_str() == "vary")
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_owned()))
            .collect();
        v.sort();
        v
    };
    for (path, addr, origin, method, preflight, header) in cases {
        let mut args = vec![
            "explain".to_owned(),
            "-c".to_owned(),
            path.display().to_string(),
            "--json".to_owned(),
            "--host".to_owned(),
            addr.to_string(),
            "--path".to_owned(),
            "/api/items".to_owned(),
            "--method".to_owned(),
            method.to_owned(),
        ];
        if let Some(o) = &origin {
            args.extend(["--origin".to_owned(), o.clone()]);
        }
        if let Some(h) = header {
            args.extend(["--header".to_owned(), h.to_owned()]);
        }
        if preflight {
            args.push("--preflight".to_owned());
        }
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_corsgate"))
            .args(&args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let mut explained: Vec<(String, String)> = v["headers"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(n, v)| (n.clone(), v.as_str().unwrap().to_owned()))
            .collect();
        explained.sort();

        let url = format!("http://{addr}/api/items");
        let mut req = if preflight {
            client()
                .request(Method::OPTIONS, &url)
                .header("access-control-request-method", method)
        } else {
            client().request(Method::from_bytes(method.as_bytes()).unwrap(), &url)
        };
        if let Some(o) = &origin {
            req = req.header("origin", o);
        }
        if let (Some(h), true) = (header, preflight) {
            req = req.header("access-control-request-headers", h);
        }
        let res = req.send().await.unwrap();
        let what = format!("{args:?}");
        match v["status"].as_u64() {
            Some(s) => assert_eq!(u64::from(res.status().as_u16()), s, "{what}"),
            None => assert_eq!(res.status(), StatusCode::OK, "{what}: forwarded"),
        }
        assert_eq!(interesting(res.headers()), explained, "{what}");
    }
    for gate in gates {
        gate.stop().await;
    }
}

fn sec_fetch(
    req: reqwest::RequestBuilder,
    site: &str,
    mode: &str,
    dest: &str,
) -> reqwest::RequestBuilder {
    req.header("sec-fetch-site", site)
        .header("sec-fetch-mode", mode)
        .header("sec-fetch-dest", dest)
}

const ENFORCE: &str = r#"
allowed_origins = ["https://app.example"]
allowed_methods = ["GET", "POST"]
fetch_metadata = "enforce"
"#;

#[tokio::test]
async fn fetch_metadata_enforce_refuses_a_cross_site_no_cors_post_before_the_upstream() {
    let (up, gate) = gate_with(ENFORCE).await;
    // A cross-site form post: no-cors, and (as for an <img> or <script> load) maybe no Origin.
    for origin in [None, Some(EVIL)] {
        let mut req = sec_fetch(
            client().post(gate.url("/api/items")),
            "cross-site",
            "no-cors",
            "empty",
        );
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        let res = req.body("a=1").send().await.unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        assert_eq!(cors_headers(res.headers()), vec![]);
        let body = res.text().await.unwrap();
        assert!(body.contains("cross_site_request"), "{body}");
    }
    assert_eq!(up.hits(), 0);
    let labels = [("route", "all"), ("reason", "cross_site_request")];
    assert_eq!(
        gate.metric("corsgate_cors_denials_total", &labels),
        Some(2.0)
    );
    let labels = [("route", "all"), ("outcome", "denied")];
    assert_eq!(gate.metric("corsgate_requests_total", &labels), Some(2.0));
}

#[tokio::test]
async fn fetch_metadata_enforce_lets_navigations_cors_and_same_origin_through() {
    let (up, gate) = gate_with(ENFORCE).await;
    let res = sec_fetch(
        client().get(gate.url("/api/items")),
        "cross-site",
        "navigate",
        "document",
    )
    .send()
    .await
    .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(up.hits(), 1);
    let res = sec_fetch(
        client().post(gate.url("/api/items")),
        "cross-site",
        "cors",
        "empty",
    )
    .header("origin", APP)
    .send()
    .await
    .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["access-control-allow-origin"], APP);
    assert_eq!(up.hits(), 2);
    // Behind a load balancer that rewrote Host: the browser's own verdict makes it same-origin.
    let res = sec_fetch(
        client().post(gate.url("/api/items")),
        "same-origin",
        "cors",
        "empty",
    )
    .header("host", "internal.lb:8080")
    .header("origin", "https://public.example.net")
    .send()
    .await
    .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(up.hits(), 3);
    let labels = [("route", "all"), ("outcome", "same-origin")];
    assert_eq!(gate.metric("corsgate_requests_total", &labels), Some(1.0));
}

#[tokio::test]
async fn fetch_metadata_report_forwards_and_counts_cross_site_requests() {
    let report = r#"
allowed_origins = ["https://app.example"]
fetch_metadata = "report"
"#;
    let enforce_report_only = r#"
allowed_origins = ["https://app.example"]
fetch_metadata = "enforce"
enforcement = "report-only"
"#;
    for policy in [report, enforce_report_only] {
        let (up, gate) = gate_with(policy).await;
        let labels = [("route", "all")];
        assert_eq!(
            gate.metric("corsgate_cross_site_reports_total", &labels),
            Some(0.0)
        );
        let res = sec_fetch(
            client().get(gate.url("/api/items")),
            "cross-site",
            "no-cors",
            "image",
        )
        .send()
        .await
        .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(up.hits(), 1);
        assert_eq!(
            gate.metric("corsgate_cross_site_reports_total", &labels),
            Some(1.0)
        );
        let labels = [("route", "all"), ("reason", "cross_site_request")];
        assert_eq!(
            gate.metric("corsgate_cors_denials_total", &labels),
            Some(0.0)
        );
    }
}
