//! The container image, end to end with podman: build it offline from the host's static binary
//! (deploy/container/build-offline.sh, the Dockerfile's `runtime` stage), check its runtime contract,
//! boot its baked config, then run it on the host network with a mounted config: it answers a
//! preflight, forwards to a real upstream, reloads the edited file after `podman kill --signal HUP`,
//! and drains an in-flight request and exits 0 on `podman stop` (SIGTERM, the image's STOPSIGNAL).
//!
//! The podman test is `#[ignore]`d so a plain `cargo test` needs no podman; with `--include-ignored`
//! a missing podman fails it. `CORSGATE_PODMAN` overrides the podman command line (default:
//! `podman --runtime runc --cgroup-manager=cgroupfs`, what these machines need).

#[path = "container/podman.rs"]
mod podman;
#[path = "it/support/mod.rs"]
#[allow(dead_code, unused_imports)]
mod support;

use std::collections::BTreeSet;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use podman::{container_ids, Cleanup, Container, Podman};
use serde_json::Value;
use support::Upstream;

const IMAGE_CONFIG: &str = "/etc/corsgate/corsgate.toml";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

// === the Dockerfile and the shipped config agree (no podman needed) ===

/// The instruction lines of the Dockerfile's last stage, continuation lines joined.
fn runtime_stage() -> Vec<String> {
    let text = std::fs::read_to_string(root().join("Dockerfile")).unwrap();
    let joined = text.replace("\\\n", " ");
    let lines: Vec<String> = joined
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect();
    let start = lines.iter().rposition(|l| l.starts_with("FROM ")).unwrap();
    assert_eq!(lines[start], "FROM scratch AS runtime");
    lines[start..].to_vec()
}

fn instruction<'a>(stage: &'a [String], name: &str) -> Vec<&'a str> {
    stage
        .iter()
        .filter_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .collect()
}

#[test]
fn dockerfile_runtime_contract_matches_the_shipped_container_config() {
    let stage = runtime_stage();
    assert_eq!(instruction(&stage, "USER"), ["65532:65532"]);
    assert_eq!(instruction(&stage, "STOPSIGNAL"), ["SIGTERM"]);
    assert_eq!(
        instruction(&stage, "ENTRYPOINT"),
        [r#"["/usr/local/bin/corsgate", "run"]"#]
    );
    assert_eq!(
        instruction(&stage, "ENV"),
        [format!("CORSGATE_CONFIG={IMAGE_CONFIG}")]
    );
    let copies = instruction(&stage, "COPY");
    assert!(copies
        .iter()
        .any(|c| c.ends_with(" /usr/local/bin/corsgate")));
    let config_copy = format!("deploy/container/corsgate.toml {IMAGE_CONFIG}");
    assert!(
        copies.iter().any(|c| c.ends_with(&config_copy)),
        "{copies:?}"
    );

    let path = root().join("deploy/container/corsgate.toml");
    let loaded = corsgate::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let server = &loaded.snapshot.server;
    assert_eq!(
        server.listen,
        ["0.0.0.0:8080".parse::<SocketAddr>().unwrap()]
    );
    assert_eq!(server.admin, Some("0.0.0.0:9901".parse().unwrap()));
    let exposed: BTreeSet<u16> = instruction(&stage, "EXPOSE")
        .iter()
        .flat_map(|e| e.split_whitespace().map(|p| p.parse::<u16>().unwrap()))
        .collect();
    assert_eq!(exposed, BTreeSet::from([8080, 9901]));
}

// === the image ===

/// A port that was free a moment ago (the container binds it on the host network).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn unique() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{}-{nanos}", std::process::id())
}

fn build_image(podman: &Podman, image: &str) {
    let started = Instant::now();
    let status = Command::new("bash")
        .arg(root().join("deploy/container/build-offline.sh"))
        .arg(image)
        .env("CONTAINER_ENGINE", podman.0.join(" "))
        .env("BUILD_FLAGS", "--layers=false")
        .env(
            "CARGO",
            std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()),
        )
        .status()
        .unwrap();
    assert!(status.success(), "build-offline.sh failed: {status}");
    eprintln!("container: image {image} built in {:?}", started.elapsed());
}

/// The image's config as podman sees it: the contract the Dockerfile declares.
fn assert_contract(podman: &Podman, image: &str) {
    let config: Value = serde_json::from_str(&podman.ok(&[
        "image",
        "inspect",
        "--format",
        "{{json .Config}}",
        image,
    ]))
    .unwrap();
    assert_eq!(config["User"], "65532:65532");
    assert_eq!(config["StopSignal"], "SIGTERM");
    assert_eq!(
        config["Entrypoint"],
        serde_json::json!(["/usr/local/bin/corsgate", "run"])
    );
    let ports: BTreeSet<&str> = config["ExposedPorts"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(ports, BTreeSet::from(["8080/tcp", "9901/tcp"]));
    let env = config["Env"].as_array().unwrap();
    let want = format!("CORSGATE_CONFIG={IMAGE_CONFIG}");
    assert!(env.iter().any(|e| e == &want[..]), "{env:?}");
}

/// The test's config: one route to `upstream`, `origin` allowed, watch off (so only SIGHUP reloads).
fn config(listen: u16, admin: u16, upstream: u16, origin: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:{listen}"
admin = "127.0.0.1:{admin}"
shutdown_grace = "20s"
watch_config = false

[log]
format = "json"
access_log = false

[upstreams.api]
url = "http://localhost:{upstream}"

[policies.web]
allowed_origins = ["{origin}"]
allowed_methods = ["GET", "PUT"]
allowed_headers = ["content-type"]

[[routes]]
name = "api"
upstream = "api"
policy = "web"
"#
    )
}

/// Replace the mounted file the way careful tooling does: write a sibling, rename over it. The
/// directory is mounted, not the file, so the container sees the new inode.
fn replace(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    set_mode(&tmp, 0o644);
    std::fs::rename(&tmp, path).unwrap();
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Preflight for PUT from `origin`: (status, Access-Control-Allow-Origin).
async fn preflight(addr: SocketAddr, origin: &str) -> (u16, Option<String>) {
    let res = support::client()
        .request(reqwest::Method::OPTIONS, format!("http://{addr}/v1/items"))
        .header("origin", origin)
        .header("access-control-request-method", "PUT")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();
    let acao = res
        .headers()
        .get("access-control-allow-origin")
        .map(|v| v.to_str().unwrap().to_owned());
    (res.status().as_u16(), acao)
}

#[test]
#[ignore = "needs podman and runc (apt-get install podman runc); builds the static release binary (~4 min cold)"]
fn container_answers_preflights_reloads_on_sighup_and_exits_zero_on_sigterm() {
    let podman = Podman::from_env();
    let run = unique();
    let image = format!("localhost/corsgate-test:{run}");
    let mut cleanup = Cleanup {
        podman: &podman,
        image: image.clone(),
        containers: Vec::new(),
    };
    build_image(&podman, &image);
    assert_contract(&podman, &image);

    // The baked config compiles, and the non-root user can read it at the path ENV points to.
    let check = podman.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--entrypoint",
        "/usr/local/bin/corsgate",
        &image,
        "check",
    ]);
    assert!(
        check.contains("listen: 0.0.0.0:8080") && check.contains("admin: 0.0.0.0:9901"),
        "{check}"
    );

    // The image boots as shipped (in its own network namespace: no fixed port on the host) and
    // stops cleanly on the STOPSIGNAL that `podman stop` sends.
    let baked = format!("corsgate-test-baked-{run}");
    cleanup.containers.push(baked.clone());
    let mut c = Container::run(&podman, &baked, &["--network", "none"], &image);
    c.expect_line("corsgate: listening on http://0.0.0.0:8080");
    podman.ok(&["stop", "--time", "30", &baked]);
    assert_eq!(c.wait(), Some(0), "baked config: {}", c.seen.join("\n"));
    drop(c);

    // A real upstream, a mounted config, the host network.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let upstream = rt.block_on(Upstream::start());
    let (port, admin) = (free_port(), free_port());
    let dir = tempfile::tempdir().unwrap();
    set_mode(dir.path(), 0o755); // the container's user 65532 must reach the file
    let file = dir.path().join("corsgate.toml");
    let up = upstream.addr.port();
    replace(&file, &config(port, admin, up, "https://app.example"));
    let name = format!("corsgate-test-{run}");
    cleanup.containers.push(name.clone());
    let mount = format!("{}:/etc/corsgate:ro", dir.path().display());
    let mut c = Container::run(&podman, &name, &["--network", "host", "-v", &mount], &image);
    let listening = c.expect_line("corsgate: listening on http://");
    let addr: SocketAddr = listening.rsplit("http://").next().unwrap().parse().unwrap();
    assert_eq!(addr.port(), port);

    assert_eq!(
        container_ids(&podman, &name),
        [65532; 4],
        "the process runs as the image's USER"
    );

    rt.block_on(async {
        let ready = support::client()
            .get(format!("http://127.0.0.1:{admin}/readyz"))
            .send()
            .await;
        assert_eq!(ready.unwrap().status(), 200);
        assert_eq!(
            preflight(addr, "https://app.example").await,
            (204, Some("https://app.example".into()))
        );
        assert_eq!(upstream.hits(), 0, "a preflight is answered by corsgate");
        let res = support::client()
            .get(format!("http://{addr}/v1/items"))
            .header("origin", "https://app.example")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(
            res.headers()["access-control-allow-origin"],
            "https://app.example"
        );
        assert_eq!(res.text().await.unwrap(), "hello from upstream\n");
        assert_eq!(upstream.hits(), 1);
        assert_eq!(upstream.last().target, "/v1/items");
    });

    // Edit the mounted file: nothing changes until SIGHUP (watch_config is off).
    replace(&file, &config(port, admin, up, "https://new.example"));
    assert_eq!(rt.block_on(preflight(addr, "https://new.example")).0, 403);
    podman.ok(&["kill", "--signal", "HUP", &name]);
    c.expect_line("config reloaded");
    rt.block_on(async {
        assert_eq!(
            preflight(addr, "https://new.example").await,
            (204, Some("https://new.example".into()))
        );
        assert_eq!(preflight(addr, "https://app.example").await.0, 403);
    });

    // SIGTERM drains: a request in flight when `podman stop` runs still completes.
    let slow = rt.spawn(async move {
        let res = support::client()
            .get(format!("http://{addr}/slow?ms=1500"))
            .header("origin", "https://new.example")
            .send()
            .await
            .unwrap();
        (res.status(), res.text().await.unwrap())
    });
    rt.block_on(upstream.wait_for_hits(2));
    let stop = Instant::now();
    podman.ok(&["stop", "--time", "30", &name]);
    let (status, body) = rt.block_on(slow).unwrap();
    assert_eq!((status.as_u16(), &body[..]), (200, "slow done\n"));
    c.expect_line("SIGTERM: draining");
    assert_eq!(c.wait(), Some(0), "output:\n{}", c.seen.join("\n"));
    assert!(
        stop.elapsed() < Duration::from_secs(25),
        "stopped by drain, not by SIGKILL"
    );
    let code = podman.ok(&["inspect", "--format", "{{.State.ExitCode}}", &name]);
    assert_eq!(code.trim(), "0");
}
