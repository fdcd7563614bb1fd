//! Hot reload through the real binary and real signals: SIGHUP applies a new policy, a broken file keeps
//! the old one, 100 reloads under load never produce a failed or mixed response, and watch mode follows
//! a Kubernetes ConfigMap symlink swap and applies an edit within two seconds while another file in
//! the config's folder keeps changing.

use crate::support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::{replace, Logged as Proxy, Upstream};

/// A policy that allows `origin` and marks its answers with `tag` in Access-Control-Expose-Headers.
fn config(up: &Upstream, origin: &str, tag: &str, watch: bool) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
watch_config = {watch}

[log]
format = "json"
access_log = false

[upstreams.up]
url = "{}"

[policies.p]
allowed_origins = ["{origin}"]
expose_headers = ["{tag}"]

[[routes]]
name = "all"
upstream = "up"
policy = "p"
"#,
        up.url()
    )
}

async fn cors_get(addr: SocketAddr, origin: &str) -> (u16, Option<String>, usize) {
    let res = support::client()
        .get(format!("http://{addr}/x"))
        .header("origin", origin)
        .send()
        .await
        .unwrap();
    let acao = res
        .headers()
        .get_all("access-control-allow-origin")
        .iter()
        .count();
    let tag = res
        .headers()
        .get("access-control-expose-headers")
        .map(|v| v.to_str().unwrap().to_owned());
    (res.status().as_u16(), tag, acao)
}

fn temp_config(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("corsgate.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_applies_a_new_policy_and_a_broken_file_keeps_the_old_one() {
    let up = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = temp_config(dir.path(), &config(&up, "https://a.example", "x-a", false));
    let mut proxy = Proxy::start(&path);
    assert_eq!(cors_get(proxy.addr, "https://a.example").await.0, 200);
    assert_eq!(cors_get(proxy.addr, "https://b.example").await.0, 403);

    replace(&path, &config(&up, "https://b.example", "x-b", false));
    let (ok, lines) = proxy.hup();
    assert!(ok, "{lines:#?}");
    let summary = lines.last().unwrap();
    assert!(
        summary.contains("origins added: p:https://b.example"),
        "{summary}"
    );
    assert_eq!(cors_get(proxy.addr, "https://a.example").await.0, 403);
    assert_eq!(
        cors_get(proxy.addr, "https://b.example").await,
        (200, Some("x-b".into()), 1)
    );

    // A broken file: every error is logged with FILE:LINE:COL, and the old policy keeps serving.
    let broken =
        config(&up, "https://c.example/path", "x-c", false).replace("[log]", "[log]\nbogus = 1");
    replace(&path, &broken);
    let (ok, lines) = proxy.hup();
    assert!(!ok);
    let file = path.display().to_string();
    let line_of = |needle: &str| broken.lines().position(|l| l.contains(needle)).unwrap() + 1;
    let expected = [
        format!(":{}:1: error: unknown field `bogus`", line_of("bogus")),
        format!(":{}:20: error: invalid origin", line_of("allowed_origins")),
    ];
    for needle in &expected {
        assert!(
            lines
                .iter()
                .any(|l| l.contains(&file) && l.contains(needle.as_str()) && l.contains("ERROR")),
            "no ERROR line with {needle}: {lines:#?}"
        );
    }
    assert!(proxy.alive());
    assert_eq!(cors_get(proxy.addr, "https://b.example").await.0, 200);
    assert_eq!(cors_get(proxy.addr, "https://c.example").await.0, 403);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hundred_reloads_under_load_never_fail_or_mix_policies() {
    let up = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let a = config(&up, "https://app.example", "x-policy-a", false);
    let b = config(&up, "https://app.example", "x-policy-b", false);
    let path = temp_config(dir.path(), &a);
    let mut proxy = Proxy::start(&path);
    let addr = proxy.addr;

    let stop = Arc::new(AtomicBool::new(false));
    let counts = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
    let mut clients = Vec::new();
    for _ in 0..4 {
        let (stop, counts) = (Arc::clone(&stop), Arc::clone(&counts));
        clients.push(tokio::spawn(async move {
            let mut n = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let (status, tag, acao) = cors_get(addr, "https://app.example").await;
                assert_eq!((status, acao), (200, 1), "a failed or malformed response");
                match tag.as_deref() {
                    Some("x-policy-a") => counts[0].fetch_add(1, Ordering::Relaxed),
                    Some("x-policy-b") => counts[1].fetch_add(1, Ordering::Relaxed),
                    other => panic!("a response from neither policy: {other:?}"),
                };
                n += 1;
            }
            n
        }));
    }
    let (mut applied, mut rejected) = (0, 0);
    for i in 0..100 {
        let text = match i % 10 {
            3 | 7 => "[policies.p\nthis is not toml".to_owned(),
            _ if i % 2 == 0 => b.clone(),
            _ => a.clone(),
        };
        replace(&path, &text);
        let (ok, _) = proxy.hup();
        if ok {
            applied += 1;
        } else {
            rejected += 1;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let mut total = 0;
    for c in clients {
        total += c.await.expect("a client saw a failure");
    }
    assert_eq!((applied, rejected), (80, 20));
    assert!(proxy.alive());
    assert!(total >= 100, "only {total} requests during the reloads");
    let (seen_a, seen_b) = (
        counts[0].load(Ordering::Relaxed),
        counts[1].load(Ordering::Relaxed),
    );
    assert!(seen_a > 0 && seen_b > 0, "a={seen_a} b={seen_b}");
}

#[tokio::test(flavor = "multi_thread")]
async fn watch_mode_follows_a_configmap_symlink_swap() {
    let up = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    // The layout kubelet creates for a ConfigMap volume.
    let v1 = root.join("..2026_11_29_10_00_00.1");
    std::fs::create_dir(&v1).unwrap();
    std::fs::write(
        v1.join("corsgate.toml"),
        config(&up, "https://a.example", "x-a", true),
    )
    .unwrap();
    std::os::unix::fs::symlink(v1.file_name().unwrap(), root.join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/corsgate.toml", root.join("corsgate.toml")).unwrap();
    let path = root.join("corsgate.toml");
    let proxy = Proxy::start(&path);
    assert_eq!(cors_get(proxy.addr, "https://a.example").await.0, 200);

    // kubelet's update: a new timestamped directory, then an atomic rename of the ..data symlink.
    let v2 = root.join("..2026_11_29_10_05_00.2");
    std::fs::create_dir(&v2).unwrap();
    std::fs::write(
        v2.join("corsgate.toml"),
        config(&up, "https://b.example", "x-b", true),
    )
    .unwrap();
    std::os::unix::fs::symlink(v2.file_name().unwrap(), root.join("..data_tmp")).unwrap();
    std::fs::rename(root.join("..data_tmp"), root.join("..data")).unwrap();
    std::fs::remove_dir_all(&v1).unwrap();

    let (ok, lines) = proxy.reload_outcome();
    assert!(ok, "{lines:#?}");
    assert!(
        lines.iter().any(|l| l.contains("file change")),
        "{lines:#?}"
    );
    assert_eq!(cors_get(proxy.addr, "https://b.example").await.0, 200);
    assert_eq!(cors_get(proxy.addr, "https://a.example").await.0, 403);
}

#[tokio::test(flavor = "multi_thread")]
async fn watch_mode_applies_an_edit_while_another_file_in_the_folder_keeps_changing() {
    let up = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = temp_config(dir.path(), &config(&up, "https://a.example", "x-a", true));
    let proxy = Proxy::start(&path);
    assert_eq!(cors_get(proxy.addr, "https://a.example").await.0, 200);

    // A log file in the same folder, appended to every 20 ms, as a redirected corsgate log is.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (stop, log) = (Arc::clone(&stop), dir.path().join("corsgate.log"));
        std::thread::spawn(move || {
            let mut file = std::fs::File::create(log).unwrap();
            while !stop.load(Ordering::Relaxed) {
                std::io::Write::write_all(&mut file, b"a log line\n").unwrap();
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };

    replace(&path, &config(&up, "https://b.example", "x-b", true));
    let written = Instant::now();
    // The debounce settles at most a second after the edit's first event; the rest is slack for a
    // busy machine. Polled, so the test takes as long as the reload does.
    let deadline = written + Duration::from_secs(3);
    loop {
        if cors_get(proxy.addr, "https://b.example").await.0 == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the edit was not applied {:?} after it was written",
            written.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(cors_get(proxy.addr, "https://a.example").await.0, 403);
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
}
