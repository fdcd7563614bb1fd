//! deploy/grafana/corsgate.json against a running corsgate: every metric a panel queries is in the
//! real `/metrics`, and every corsgate family `/metrics` exports has a panel. A family added later
//! without a panel fails here; a panel over a per-route family must filter on `$route`, which is
//! checked where the family has series (extend `live_metrics`'s config when a new one needs it).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::repo;
use crate::support::{client, Gate, Upstream, PATIENCE};

/// The metric families of an OpenMetrics text: name (as in `# TYPE`) → type.
fn families(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| {
            let (name, kind) = l.split_once(' ')?;
            Some((name.to_owned(), kind.trim().to_owned()))
        })
        .collect()
}

/// Sample name → whether any of its samples carries a `route` label.
fn samples(text: &str) -> BTreeMap<String, bool> {
    let mut out: BTreeMap<String, bool> = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let end = line.find(['{', ' ']).unwrap_or(line.len());
        let routed = line[end..].starts_with('{') && line.contains("route=\"");
        *out.entry(line[..end].to_owned()).or_default() |= routed;
    }
    out
}

/// The family a queried sample name belongs to: a gauge's own name, a counter's `_total`, a
/// histogram's `_bucket`, `_sum` or `_count`.
fn family_of<'f>(name: &str, families: &'f BTreeMap<String, String>) -> Option<&'f str> {
    const SUFFIXES: [(&str, &[&str]); 5] = [
        ("", &["gauge", "unknown"]),
        ("_total", &["counter"]),
        ("_bucket", &["histogram"]),
        ("_sum", &["histogram", "summary"]),
        ("_count", &["histogram", "summary"]),
    ];
    SUFFIXES.iter().find_map(|(suffix, kinds)| {
        let base = name.strip_suffix(suffix)?;
        let (family, kind) = families.get_key_value(base)?;
        kinds.contains(&kind.as_str()).then_some(family.as_str())
    })
}

/// Every `corsgate_*` metric name in a PromQL expression.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let re = regex::Regex::new(r"\bcorsgate_[A-Za-z0-9_]+").expect("regex");
    re.find_iter(expr).map(|m| m.as_str().to_owned()).collect()
}

/// Every panel, rows' nested panels included.
fn panels(dashboard: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for p in dashboard["panels"].as_array().expect("panels") {
        out.push(p);
        if let Some(inner) = p["panels"].as_array() {
            out.extend(inner);
        }
    }
    out
}

/// A running corsgate with two routes (one report-only, its upstream answering with its own CORS
/// headers), an upstream that refuses connections, and a few requests of each kind sent through
/// it; returns the text of its admin listener's `/metrics`.
async fn live_metrics() -> String {
    let up = Upstream::start().await;
    let refused = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let gate = Gate::start(&format!(
        r#"
[server]
listen = "127.0.0.1:0"

[upstreams.up]
url = "{}"

[upstreams.down]
url = "http://{refused}"
connect_timeout = "2s"

[policies.strict]
allowed_origins = ["https://app.example"]

[policies.legacy]
allowed_origins = ["https://app.example"]
enforcement = "report-only"

[[routes]]
name = "api"
upstream = "up"
policy = "strict"

[[routes]]
name = "legacy"
path_prefix = "/legacy"
upstream = "up"
policy = "legacy"

[[routes]]
name = "broken"
path_prefix = "/broken"
upstream = "down"
policy = "strict"
"#,
        up.url()
    ))
    .await;
    let admin = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind admin");
    let admin_addr = admin.local_addr().expect("admin addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let admin_task = tokio::spawn(gate.gateway.serve_admin(admin, async move {
        let _ = stopped.await;
    }));

    let c = client();
    let send = |path: &str, origin: Option<&str>, extra: Option<(&str, &str)>| {
        let mut req = c.get(gate.url(path));
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        if let Some((k, v)) = extra {
            req = req.header(k, v);
        }
        req.send()
    };
    assert_eq!(send("/a", None, None).await.expect("plain").status(), 200);
    let allowed = send("/a", Some("https://app.example"), None)
        .await
        .expect("allowed");
    assert_eq!(allowed.status(), 200);
    let denied = send("/a", Some("https://evil.example"), None)
        .await
        .expect("denied");
    assert_eq!(denied.status(), 403);
    let mismatch = send(
        "/legacy/x",
        Some("https://app.example"),
        Some(("x-reply-header", "access-control-allow-origin: *")),
    )
    .await
    .expect("report-only");
    assert_eq!(mismatch.status(), 200);
    let failed = send("/broken/x", None, None)
        .await
        .expect("refused upstream");
    assert_eq!(failed.status(), 502);

    let resp = c
        .get(format!("http://{admin_addr}/metrics"))
        .send()
        .await
        .expect("GET /metrics");
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.expect("metrics body");
    let _ = stop.send(());
    tokio::time::timeout(PATIENCE, admin_task)
        .await
        .expect("admin drains")
        .expect("admin task");
    gate.stop().await;
    text
}

#[tokio::test]
async fn every_panel_queries_real_metrics_and_every_family_has_a_panel() {
    let path = repo("deploy/grafana/corsgate.json");
    let dashboard: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("dashboard")).expect("JSON");
    let text = live_metrics().await;
    let families = families(&text);
    let samples = samples(&text);
    let exported: BTreeSet<&str> = families
        .keys()
        .map(String::as_str)
        .filter(|f| f.starts_with("corsgate_"))
        .collect();
    assert!(exported.len() >= 7, "{text}");
    // The requests above put a non-zero sample in the families that need traffic.
    for (name, labels) in [
        (
            "corsgate_cors_denials_total",
            "reason=\"origin_not_allowed\"",
        ),
        ("corsgate_cors_upstream_mismatch_total", "route=\"legacy\""),
        ("corsgate_upstream_errors_total", "kind=\"connect\""),
    ] {
        let hit = text
            .lines()
            .any(|l| l.starts_with(name) && l.contains(labels) && !l.ends_with(" 0"));
        assert!(hit, "no {name}{{{labels}}} sample above 0 in\n{text}");
    }

    let mut covered: BTreeSet<&str> = BTreeSet::new();
    let mut ids = BTreeSet::new();
    for panel in panels(&dashboard) {
        let title = panel["title"].as_str().unwrap_or("(untitled)");
        if panel["type"] == "row" {
            continue;
        }
        assert!(ids.insert(panel["id"].as_i64()), "{title}: duplicate id");
        assert_eq!(panel["datasource"]["uid"], "${DS_PROMETHEUS}", "{title}");
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{title}: no query");
        for target in targets {
            let expr = target["expr"].as_str().expect("expr");
            let names = metric_names(expr);
            assert!(
                !names.is_empty(),
                "{title}: {expr} queries no corsgate metric"
            );
            for name in &names {
                // A family is in /metrics from registration on (its `# TYPE` line), even before a
                // config gives it series; the suffix must fit its type.
                let family = family_of(name, &families)
                    .unwrap_or_else(|| panic!("{title}: {name} is not in /metrics"));
                covered.insert(family);
                if samples.get(name).copied().unwrap_or(false) {
                    assert!(
                        expr.contains("route=~\"$route\""),
                        "{title}: {name} has a route label, but {expr} ignores $route"
                    );
                }
            }
        }
    }
    let missing: Vec<_> = exported.difference(&covered).collect();
    assert!(
        missing.is_empty(),
        "families exported by /metrics with no panel in {}: {missing:?}",
        path.display()
    );
}

#[test]
fn the_dashboard_is_importable_with_a_prometheus_input_and_a_route_variable() {
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(repo("deploy/grafana/corsgate.json")).expect("dashboard"),
    )
    .expect("JSON");
    let version = dashboard["schemaVersion"].as_i64().expect("schemaVersion");
    assert!((36..=41).contains(&version), "schemaVersion {version}");
    assert_eq!(dashboard["uid"], "corsgate");
    assert!(
        dashboard["id"].is_null(),
        "an exported dashboard carries no id"
    );
    let input = &dashboard["__inputs"][0];
    assert_eq!(input["name"], "DS_PROMETHEUS");
    assert_eq!(input["pluginId"], "prometheus");
    let vars = dashboard["templating"]["list"]
        .as_array()
        .expect("templating");
    let route = vars
        .iter()
        .find(|v| v["name"] == "route")
        .expect("a route variable");
    assert_eq!(route["includeAll"], true);
    assert!(metric_names(route["definition"].as_str().unwrap_or(""))
        .contains("corsgate_requests_total"));
    for panel in panels(&dashboard) {
        let pos = &panel["gridPos"];
        assert!(
            pos["w"].as_i64().is_some_and(|w| (1..=24).contains(&w)),
            "{panel}"
        );
        assert!(pos["x"]
            .as_i64()
            .is_some_and(|x| x + pos["w"].as_i64().unwrap_or(0) <= 24));
    }
}
