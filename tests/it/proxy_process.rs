//! The real binary as a child process: SIGTERM drains a slow in-flight request and exits 0, SIGINT
//! too, 200 MB streamed each way leave its resident memory almost unchanged, and with
//! `log.format = "json"` every line on stderr is a JSON object.

use std::time::Duration;

use crate::support::{
    client, drain, generated_upload, one_route, pattern_sum, Binary, Logged, Upstream,
};
use reqwest::StatusCode;

const POLICY: &str = r#"allowed_origins = ["https://app.example"]
allowed_methods = ["GET", "POST"]"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_a_slow_in_flight_request_then_exits_0() {
    let up = Upstream::start().await;
    let mut gate = Binary::start(&one_route(&up, POLICY));
    let slow = tokio::spawn(client().get(gate.url("/slow?ms=1500")).send());
    up.wait_for_hits(1).await;
    gate.signal("TERM");
    let res = slow.await.unwrap().expect("the in-flight request was cut");
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.text().await.unwrap(), "slow done\n");
    let code = tokio::task::block_in_place(|| gate.wait(Duration::from_secs(10)));
    assert_eq!(code, Some(0));
    assert!(
        tokio::net::TcpStream::connect(gate.addr).await.is_err(),
        "the port still accepts after exit"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_with_nothing_in_flight_exits_0_at_once() {
    let up = Upstream::start().await;
    let mut gate = Binary::start(&one_route(&up, POLICY));
    let res = client().get(gate.url("/")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    gate.signal("INT");
    let code = tokio::task::block_in_place(|| gate.wait(Duration::from_secs(3)));
    assert_eq!(code, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_listen_address_serves() {
    let up = Upstream::start().await;
    let config = one_route(&up, POLICY).replace(
        "listen = \"127.0.0.1:0\"",
        "listen = [\"127.0.0.1:0\", \"127.0.0.1:0\"]",
    );
    let gate = Binary::start_with_listeners(&config, 2);
    assert_ne!(gate.addrs[0], gate.addrs[1]);
    for addr in &gate.addrs {
        let res = client()
            .get(format!("http://{addr}/"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
    }
    assert_eq!(up.hits(), 2);
}

/// 200 MB up and 200 MB down through the proxy process raise its peak RSS by less than 20 MB.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_200_mb_each_way_keeps_the_proxys_memory_flat() {
    const N: u64 = 200 * 1024 * 1024;
    const WARM: u64 = 4 * 1024 * 1024;
    let up = Upstream::start().await;
    let gate =
        Binary::start(&one_route(&up, POLICY).replace("timeout = \"5s\"", "timeout = \"120s\""));
    let http = client();
    // Warm up pools, buffers and allocator arenas before the baseline.
    for _ in 0..2 {
        let res = http
            .post(gate.url("/upload"))
            .body(generated_upload(WARM))
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.text().await.unwrap(),
            format!("{WARM} {}", pattern_sum(WARM))
        );
        let res = http
            .get(gate.url(&format!("/download?bytes={WARM}")))
            .send()
            .await
            .unwrap();
        assert_eq!(drain(res).await.unwrap(), (WARM, pattern_sum(WARM)));
    }
    // Reset the peak (VmHWM) so that it measures this transfer only (Linux >= 4.0).
    let reset = std::fs::write(format!("/proc/{}/clear_refs", gate.pid()), "5").is_ok();
    let before = gate.rss_kib();

    let res = http
        .post(gate.url("/upload"))
        .body(generated_upload(N))
        .send()
        .await
        .unwrap();
    assert_eq!(res.text().await.unwrap(), format!("{N} {}", pattern_sum(N)));
    let res = http
        .get(gate.url(&format!("/download?bytes={N}")))
        .send()
        .await
        .unwrap();
    assert_eq!(drain(res).await.unwrap(), (N, pattern_sum(N)));

    let after = if reset {
        gate.peak_rss_kib()
    } else {
        gate.rss_kib()
    };
    let growth = after.saturating_sub(before);
    eprintln!(
        "RSS before {before} KiB, {} after {after} KiB",
        if reset { "peak" } else { "" }
    );
    assert!(
        growth < 20 * 1024,
        "RSS grew by {growth} KiB streaming 2 x 200 MB"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_json_logs_every_stderr_line_is_a_json_object() {
    let up = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("corsgate.toml");
    // max_age above 7200 is a config warning, logged before the listener starts.
    let toml = one_route(&up, &format!("{POLICY}\nmax_age = 8000")).replace(
        "[upstreams.up]",
        "[log]\nformat = \"json\"\n\n[upstreams.up]",
    );
    std::fs::write(&path, toml).unwrap();
    let gate = Logged::start(&path);
    let url = format!("http://{}/x", gate.addr);
    let allowed = client()
        .get(&url)
        .header("origin", "https://app.example")
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status(), StatusCode::OK);
    let denied = client()
        .get(&url)
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), StatusCode::FORBIDDEN);

    let (code, lines) = tokio::task::block_in_place(|| gate.terminate());
    assert_eq!(code, Some(0), "{lines:#?}");
    for line in lines.iter().filter(|l| !l.trim().is_empty()) {
        assert!(
            matches!(
                serde_json::from_str::<serde_json::Value>(line),
                Ok(serde_json::Value::Object(_))
            ),
            "not a JSON object on stderr: {line:?}\nall: {lines:#?}"
        );
    }
    let said = |needle: &str| lines.iter().any(|l| l.contains(needle));
    assert!(said("max_age above 7200"), "the config warning: {lines:#?}");
    assert!(said("listening"), "{lines:#?}");
    assert!(said("SIGTERM"), "{lines:#?}");
}
