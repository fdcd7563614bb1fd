//! The real binary on the fixtures: `check` exit codes and FILE:LINE:COL, `explain` text and JSON.
//!
//! Each broken fixture in tests/fixtures/bad/ states what it expects in its first lines:
//! `# expect: LINE:COL fragment`, one line per error the file must produce.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// Run the real `corsgate` with `args` in the repository root, without `$CORSGATE_CONFIG`.
pub(crate) fn corsgate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_corsgate"))
        .args(args)
        .env_remove("CORSGATE_CONFIG")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run corsgate")
}

fn fixtures(kind: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(kind);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no fixtures in {}", dir.display());
    files
}

#[test]
fn every_broken_fixture_exits_1_naming_line_and_column() {
    let mut checked = 0;
    for file in fixtures("bad") {
        let rel = file
            .strip_prefix(env!("CARGO_MANIFEST_DIR"))
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        let text = std::fs::read_to_string(&file).unwrap();
        let expects: Vec<(&str, &str)> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# expect: "))
            .map(|l| l.split_once(' ').unwrap())
            .collect();
        assert!(!expects.is_empty(), "{rel} has no `# expect:` line");
        let out = corsgate(&["check", "-c", &rel]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{rel}: {stderr}");
        let errors: Vec<&str> = stderr.lines().filter(|l| l.contains(": error: ")).collect();
        assert!(
            errors.len() >= expects.len(),
            "{rel}: expected {} errors, got:\n{stderr}",
            expects.len()
        );
        for (pos, fragment) in expects {
            let prefix = format!("{rel}:{pos}: error: ");
            assert!(
                errors
                    .iter()
                    .any(|l| l.starts_with(&prefix) && l.contains(fragment)),
                "{rel}: no error at {pos} containing {fragment:?} in:\n{stderr}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 40, "only {checked} expectations checked");
}

#[test]
fn the_example_config_and_good_fixtures_pass_with_located_warnings() {
    let out = corsgate(&["check", "-c", "config/corsgate.toml"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("routes (2):"), "{stdout}");
    assert!(stdout.contains("app "), "{stdout}");

    let out = corsgate(&["-c", "tests/fixtures/good/warnings.toml", "check"]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    for needle in [
        "warnings.toml:6:41: warning: \"null\"",
        "warnings.toml:6:49: warning: a plain-http origin with credentials",
        "warnings.toml:8:11: warning: max_age above 7200",
        "warnings.toml:9:31: warning: \"Connection\" in allowed_headers has no effect: it is a forbidden request header",
        "warnings.toml:9:45: warning: \"Sec-Fetch-Mode\" in allowed_headers has no effect",
        "warnings.toml:10:35: warning: \"Set-Cookie\" in expose_headers has no effect: browsers never expose Set-Cookie",
        "warnings.toml:10:49: warning: \"authorization\" in expose_headers has no effect: it is a request header",
        "warnings.toml:27:1: warning: rate limit \"unused\" is not used by any route",
    ] {
        assert!(stderr.contains(needle), "missing {needle:?} in:\n{stderr}");
    }
    // Only b.example is plain http over the network; the loopback origins are trustworthy.
    assert_eq!(
        stderr.matches("plain-http origin with credentials").count(),
        1,
        "{stderr}"
    );
}

#[test]
fn config_defaults_to_the_environment_variable() {
    let out = Command::new(env!("CARGO_BIN_EXE_corsgate"))
        .arg("check")
        .env("CORSGATE_CONFIG", "tests/fixtures/bad/unknown-policy.toml")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown-policy.toml:"));
}

fn explain(args: &[&str]) -> Value {
    let mut all = vec!["explain", "-c", "config/corsgate.toml", "--json"];
    all.extend_from_slice(args);
    let out = corsgate(&all);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON object")
}

#[test]
fn explain_json_covers_every_decision_kind() {
    let v = explain(&["--path", "/orders"]);
    assert_eq!(v["decision"], "not-cors");
    assert_eq!(v["status"], Value::Null);
    assert_eq!(v["headers"]["vary"], "Origin");

    let v = explain(&[
        "--origin",
        "http://127.0.0.1:8080",
        "--host",
        "127.0.0.1:8080",
    ]);
    assert_eq!(v["decision"], "same-origin");

    let v = explain(&[
        "--origin",
        "https://app.example.com",
        "--method",
        "PUT",
        "--header",
        "content-type",
        "--preflight",
    ]);
    assert_eq!(v["decision"], "preflight-allowed");
    assert_eq!(v["route"], "api");
    assert_eq!(v["policy"], "app");
    assert_eq!(v["status"], 204);
    let h = &v["headers"];
    assert_eq!(h["access-control-allow-origin"], "https://app.example.com");
    assert_eq!(h["access-control-allow-credentials"], "true");
    assert_eq!(h["access-control-max-age"], "600");

    let v = explain(&[
        "--origin",
        "https://app.example.com",
        "--method",
        "PUT",
        "--header",
        "x-secret",
        "--preflight",
    ]);
    assert_eq!(v["decision"], "preflight-denied");
    assert_eq!(v["status"], 403);
    // Exactly what the proxy's 403 carries: no Access-Control-*, but Vary: Origin.
    assert_eq!(v["headers"], serde_json::json!({"vary": "Origin"}));
    assert!(v["reason"]
        .as_str()
        .unwrap()
        .contains("header_not_allowed: x-secret"));

    let v = explain(&[
        "--origin",
        "https://x.app.example.com",
        "--method",
        "DELETE",
    ]);
    assert_eq!(v["decision"], "allowed");
    assert_eq!(v["status"], Value::Null);
    assert_eq!(
        v["headers"]["access-control-expose-headers"],
        "x-request-id"
    );
    assert!(v["reason"]
        .as_str()
        .unwrap()
        .contains("https://*.app.example.com"));

    let v = explain(&["--origin", "https://evil.example", "--path", "/public/x"]);
    assert_eq!(v["decision"], "allowed");
    assert_eq!(v["route"], "public");
    assert_eq!(v["headers"]["access-control-allow-origin"], "*");

    let v = explain(&["--origin", "https://evil.example", "--method", "POST"]);
    assert_eq!(v["decision"], "denied");
    assert_eq!(v["status"], 403);
    assert!(v["reason"]
        .as_str()
        .unwrap()
        .starts_with("origin_not_allowed"));
}

#[test]
fn explain_reports_no_route_and_prints_text() {
    let out = corsgate(&[
        "explain",
        "-c",
        "tests/fixtures/good/host-routes.toml",
        "--json",
        "--host",
        "other.test",
        "--path",
        "/v1/x",
    ]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["decision"], "no-route");
    assert_eq!(v["status"], 404);
    assert_eq!(v["route"], Value::Null);

    let out = corsgate(&[
        "explain",
        "-c",
        "config/corsgate.toml",
        "--origin",
        "https://app.example.com",
        "--preflight",
        "--method",
        "DELETE",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("decision: preflight-allowed"), "{text}");
    assert!(text.contains("access-control-allow-methods: GET, HEAD, POST, PUT, DELETE"));
}

#[test]
fn a_config_error_keeps_its_diagnostics_structured() {
    let text = "[server]\nheader_read_timeout = \"10 seconds\"\n\n[policies.unused]\n";
    let err = corsgate::load_str(text, std::path::Path::new("x.toml")).unwrap_err();
    let errors: Vec<_> = err
        .diagnostics()
        .iter()
        .filter(|d| d.severity == corsgate::Severity::Error)
        .collect();
    assert!(!errors.is_empty(), "{err}");
    assert_eq!((errors[0].line, errors[0].col), (2, 23), "{err}");
    assert!(errors[0].message.contains("duration"), "{err}");
    assert_eq!(err.errors()[0], errors[0].render(err.path()));
    assert!(err.to_string().starts_with("x.toml:2:23: error:"), "{err}");
}

#[test]
fn trailing_dot_origins_are_accepted_and_matched_exactly() {
    let out = corsgate(&["check", "-c", "tests/fixtures/good/trailing-dot.toml"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let needle =
        "trailing-dot.toml:8:25: warning: this regex lets a host label be extended to the \
                  left of \"example.net\": it matches \"https://aexample.net\"";
    assert!(stderr.contains(needle), "missing {needle:?} in:\n{stderr}");
    let decide = |origin: &str| {
        let out = corsgate(&[
            "explain",
            "-c",
            "tests/fixtures/good/trailing-dot.toml",
            "--json",
            "--origin",
            origin,
        ]);
        let v: Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
        v["decision"].as_str().unwrap_or_default().to_owned()
    };
    assert_eq!(decide("https://example.com."), "allowed");
    assert_eq!(decide("http://localhost.:3000"), "allowed");
    assert_eq!(decide("https://a.example.org."), "allowed");
    assert_eq!(decide("https://example.com"), "denied");
    assert_eq!(decide("https://a.example.org"), "denied");
}

#[test]
fn explain_takes_sec_fetch_flags_and_names_sec_fetch_site_in_a_refusal() {
    let run = |extra: &[&str]| {
        let mut all = vec![
            "explain",
            "-c",
            "tests/fixtures/fetch-metadata.toml",
            "--json",
            "--host",
            "api.example.com",
        ];
        all.extend_from_slice(extra);
        let out = corsgate(&all);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<Value>(&out.stdout).expect("one JSON object")
    };
    let v = run(&[
        "--method",
        "POST",
        "--sec-fetch-site",
        "cross-site",
        "--sec-fetch-mode",
        "no-cors",
        "--sec-fetch-dest",
        "empty",
    ]);
    assert_eq!(v["decision"], "denied", "{v}");
    assert_eq!(v["status"], 403, "{v}");
    let reason = v["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("cross_site_request"), "{reason}");
    assert!(reason.contains("Sec-Fetch-Site"), "{reason}");
    assert!(v["headers"]
        .as_object()
        .is_some_and(|h| h.keys().all(|k| !k.starts_with("access-control-"))));
    let v = run(&[
        "--sec-fetch-site",
        "cross-site",
        "--sec-fetch-mode",
        "navigate",
        "--sec-fetch-dest",
        "document",
    ]);
    assert_eq!(v["decision"], "not-cors", "{v}");
    let v = run(&[
        "--origin",
        "https://lb.example.net",
        "--sec-fetch-site",
        "same-origin",
        "--sec-fetch-mode",
        "cors",
    ]);
    assert_eq!(v["decision"], "same-origin", "{v}");
}
