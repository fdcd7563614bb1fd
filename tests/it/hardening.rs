//! Hostile clients and upstreams, through real sockets and the real binary: config-named files read with a
//! bound (`/dev/zero` on `check` and on SIGHUP), durations capped, Content-Length beside
//! Transfer-Encoding from an upstream, a client's malformed chunked body, and a regression suite of
//! raw-byte attacks that hold (smuggling forms, ACRH bounds, h2 rapid reset, CONTINUATION flood,
//! HPACK bombs), plus bounded proptests over raw request heads and config text.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::{client, one_route, raw, raw_status, Gate, Logged, Upstream, PATIENCE};
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestRunner};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const APP: &str = "https://app.example";
const POLICY: &str = r#"allowed_origins = ["https://app.example"]
allowed_headers = ["*"]"#;

fn corsgate_check(config: &Path) -> (Option<i32>, String, Duration) {
    let start = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_corsgate"))
        .args(["check", "-c"])
        .arg(config)
        .env_remove("CORSGATE_CONFIG")
        .output()
        .expect("run corsgate");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code(), stderr, start.elapsed())
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

// === item 4: files a config names are read with a bound ===

#[test]
fn check_on_dev_zero_and_oversized_pem_files_exits_1_with_located_errors() {
    let dir = tempfile::tempdir().unwrap();
    // A 5 MiB "CA bundle": a regular file, over the 4 MiB bound.
    write(dir.path(), "big.pem", &"A".repeat(5 << 20));
    let text = r#"[server]
tls = { cert = "/dev/zero", key = "/dev/zero" }
[upstreams.api]
url = "https://127.0.0.1:3000"
ca_file = "big.pem"
[policies.p]
allowed_origins = ["https://a.example"]
[[routes]]
upstream = "api"
policy = "p"
"#;
    let config = write(dir.path(), "c.toml", text);
    let (code, stderr, took) = corsgate_check(&config);
    assert_eq!(code, Some(1), "{stderr}");
    let at = |pos: &str, what: &str| {
        let prefix = format!("{}:{pos}: error: ", config.display());
        assert!(
            stderr
                .lines()
                .any(|l| l.starts_with(&prefix) && l.contains(what)),
            "no error at {pos} with {what:?}:\n{stderr}"
        );
    };
    at("2:16", "not a regular file");
    at("2:35", "not a regular file");
    at("5:11", "larger than 4 MiB");
    // Before the bound, reading /dev/zero grew one line until allocation failed.
    assert!(took < Duration::from_secs(10), "check took {took:?}");
}

#[test]
fn a_config_file_that_is_a_device_is_an_error_not_an_abort() {
    let (code, stderr, _) = corsgate_check(Path::new("/dev/zero"));
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("not a regular file"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_onto_dev_zero_pem_files_keeps_the_old_config_serving() {
    let up = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let good = one_route(&up, POLICY);
    let path = write(dir.path(), "c.toml", &good);
    let mut gate = Logged::start(&path);
    let url = format!("http://{}/", gate.addr);
    assert_eq!(client().get(&url).send().await.unwrap().status(), 200);

    let with_tls = good.replacen(
        "shutdown_grace = \"5s\"",
        "shutdown_grace = \"5s\"\ntls = { cert = \"/dev/zero\", key = \"/dev/zero\" }",
        1,
    );
    let with_ca = good.replacen(
        "timeout = \"5s\"",
        "timeout = \"5s\"\nca_file = \"/dev/zero\"",
        1,
    );
    for broken in [with_tls, with_ca] {
        std::fs::write(&path, &broken).unwrap();
        let (ok, lines) = gate.hup();
        assert!(!ok, "{lines:#?}");
        assert!(
            lines.iter().any(|l| l.contains("not a regular file")),
            "{lines:#?}"
        );
        assert!(gate.alive(), "the proxy died on the reload");
        assert_eq!(client().get(&url).send().await.unwrap().status(), 200);
    }
}

// === item 5: Content-Length beside Transfer-Encoding from an upstream ===

/// An upstream that answers every request head with exactly `response`, then closes.
async fn raw_upstream(response: &'static [u8]) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = s.write_all(response).await;
                let _ = s.shutdown().await;
            });
        }
    });
    addr
}

fn config_to(url: &str) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[upstreams.up]\nurl = \"{url}\"\ntimeout = \"5s\"\n\
         [policies.p]\n{POLICY}\n[[routes]]\nupstream = \"up\"\npolicy = \"p\"\n"
    )
}

#[tokio::test]
async fn an_upstream_response_with_content_length_and_chunked_is_relayed_by_its_chunks() {
    let addr = raw_upstream(
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n\
          1a\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n\r\n",
    )
    .await;
    let gate = Gate::start(&config_to(&format!("http://{addr}"))).await;
    let res = raw(
        gate.addr,
        b"GET /one HTTP/1.1\r\nHost: a\r\n\r\nGET /two HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(res.matches("HTTP/1.1 200 OK").count(), 2, "{res}");
    assert_eq!(
        res.matches("abcdefghijklmnopqrstuvwxyz").count(),
        2,
        "{res}"
    );
    assert!(
        !res.to_ascii_lowercase().contains("content-length: 5"),
        "{res}"
    );
}

// === item 7: a client's malformed chunked body is the client's fault ===

#[tokio::test]
async fn a_malformed_chunked_request_body_is_a_400_and_no_upstream_error() {
    let up = Upstream::start().await;
    let gate = Gate::start(&one_route(&up, POLICY)).await;
    let res = raw(
        gate.addr,
        b"POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n\
          5\r\nhello\r\n-5\r\nxxxxx\r\n0\r\n\r\n",
    )
    .await;
    assert_eq!(raw_status(&res), 400, "{res}");
    for kind in ["reset", "connect", "timeout", "tls"] {
        let n = gate.metric("corsgate_upstream_errors_total", &[("kind", kind)]);
        assert!(n.unwrap_or(0.0) == 0.0, "{kind}: {n:?}");
    }
    assert_eq!(
        client().get(gate.url("/")).send().await.unwrap().status(),
        200
    );
}

// === item 8: durations are bounded ===

#[test]
fn a_duration_over_a_day_is_a_located_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(
        dir.path(),
        "c.toml",
        "[server]\nheader_read_timeout = \"18446744073709551615s\"\n",
    );
    let (code, stderr, _) = corsgate_check(&config);
    assert_eq!(code, Some(1), "{stderr}");
    let prefix = format!("{}:2:23: error: ", config.display());
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with(&prefix) && l.contains("too long")),
        "{stderr}"
    );
}

// === regression: request smuggling forms, header and ACRH bounds ===

#[tokio::test]
async fn smuggling_forms_are_refused_or_read_as_one_request_and_the_connection_closed() {
    let up = Upstream::start().await;
    let gate = Gate::start(&one_route(&up, POLICY)).await;
    let smuggled = "GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n";
    let refused = [
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 40\r\n\r\nabc",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\nContent-Length: 3\r\n\r\nabc",
        "GET / HTTP/1.1\r\nHost: a\r\nX-Folded: a\r\n b\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nContent-Length : 40\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n",
    ];
    for req in refused {
        let res = raw(gate.addr, format!("{req}{smuggled}").as_bytes()).await;
        assert_eq!(raw_status(&res), 400, "{req:?}: {res}");
        assert_eq!(res.matches("HTTP/1.1 ").count(), 1, "{req:?}: {res}");
    }
    assert_eq!(up.hits(), 0, "a refused request reached the upstream");
    // CL and TE together: RFC 9112 §6.1 lets a server read it by its Transfer-Encoding alone,
    // provided it closes the connection after answering; what follows is never a second request.
    let cl_te = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
    let res = raw(gate.addr, format!("{cl_te}{smuggled}").as_bytes()).await;
    let status = raw_status(&res);
    assert!(status == 400 || status == 200, "{res}");
    assert_eq!(res.matches("HTTP/1.1 ").count(), 1, "{res}");
    assert!(up.hits() <= 1);
    if up.hits() == 1 {
        assert_eq!(up.last().target, "/");
        assert!(up
            .last()
            .headers
            .get("content-length")
            .is_none_or(|v| v == "0"));
    }
}

#[tokio::test]
async fn acrh_over_its_byte_or_name_bound_is_refused_header_not_allowed() {
    let up = Upstream::start().await;
    let gate = Gate::start(&one_route(&up, POLICY)).await;
    let long = vec!["x".repeat(1000); 9].join(",");
    let many = vec!["x-a"; 129].join(",");
    for acrh in [long, many] {
        let res = client()
            .request(reqwest::Method::OPTIONS, gate.url("/"))
            .header("origin", APP)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", &acrh)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 403);
        assert!(res.text().await.unwrap().contains("header_not_allowed"));
    }
    // Just within both bounds: allowed.
    let res = client()
        .request(reqwest::Method::OPTIONS, gate.url("/"))
        .header("origin", APP)
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", vec!["x-a"; 128].join(","))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    assert_eq!(up.hits(), 0);
}

#[tokio::test]
async fn many_small_headers_over_the_section_bound_get_431() {
    let up = Upstream::start().await;
    let gate = Gate::start(&one_route(&up, POLICY)).await;
    let headers: String = (0..90)
        .map(|i| format!("x-h{i}: {}\r\n", "v".repeat(400)))
        .collect();
    let req = format!("GET / HTTP/1.1\r\nHost: a\r\n{headers}Connection: close\r\n\r\n");
    let res = raw(gate.addr, req.as_bytes()).await;
    assert!(res.is_empty() || raw_status(&res) == 431, "{res}");
    assert_eq!(up.hits(), 0);
}

// === regression: h2 frame-level attacks ===

mod h2 {
    //! Hand-built HTTP/2 frames and HPACK literals, enough to attack a server's frame handling.

    pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    pub const HEADERS: u8 = 1;
    pub const RST_STREAM: u8 = 3;
    pub const SETTINGS: u8 = 4;
    pub const CONTINUATION: u8 = 9;
    pub const END_STREAM: u8 = 0x1;
    pub const END_HEADERS: u8 = 0x4;

    pub fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let len = payload.len() as u32;
        let mut out = len.to_be_bytes()[1..].to_vec();
        out.extend([kind, flags]);
        out.extend(stream.to_be_bytes());
        out.extend(payload);
        out
    }

    /// An HPACK integer with an `n`-bit prefix (RFC 7541 §5.1), the prefix's high bits `first`.
    pub fn int(first: u8, n: u32, mut v: usize, out: &mut Vec<u8>) {
        let max = (1usize << n) - 1;
        if v < max {
            out.push(first | v as u8);
            return;
        }
        out.push(first | max as u8);
        v -= max;
        while v >= 128 {
            out.push((v % 128) as u8 | 0x80);
            v /= 128;
        }
        out.push(v as u8);
    }

    /// A literal header field; `0x00` without indexing, `0x40` with incremental indexing.
    pub fn literal(kind: u8, name: &str, value: &str, out: &mut Vec<u8>) {
        out.push(kind);
        int(0, 7, name.len(), out);
        out.extend(name.as_bytes());
        int(0, 7, value.len(), out);
        out.extend(value.as_bytes());
    }

    /// `GET /` on authority `a`.
    pub fn get_block() -> Vec<u8> {
        let mut b = Vec::new();
        for (n, v) in [
            (":method", "GET"),
            (":scheme", "http"),
            (":path", "/"),
            (":authority", "a"),
        ] {
            literal(0x00, n, v, &mut b);
        }
        b
    }
}

/// Write `bytes`, then read until the server closes or `limit` passes; true when it closed (EOF or
/// an error), false when the connection was still open.
async fn send_and_wait_close(addr: SocketAddr, bytes: &[u8], limit: Duration) -> bool {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let (mut rd, mut wr) = s.split();
    let write = async {
        let _ = wr.write_all(bytes).await;
        std::future::pending::<()>().await
    };
    let read = async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => return true,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(limit, async {
        tokio::select! {
            closed = read => closed,
            _ = write => false,
        }
    })
    .await
    .unwrap_or(false)
}

#[tokio::test]
async fn h2_rapid_reset_is_cut_off_and_the_upstream_sees_a_bounded_number_of_requests() {
    let up = Upstream::start().await;
    let gate = Gate::start(&one_route(&up, POLICY)).await;
    let mut bytes = h2::PREFACE.to_vec();
    bytes.extend(h2::frame(h2::SETTINGS, 0, 0, &[]));
    let block = h2::get_block();
    let streams = 5_000u32;
    for i in 0..streams {
        let id = 2 * i + 1;
        let flags = h2::END_HEADERS | h2::END_STREAM;
        bytes.extend(h2::frame(h2::HEADERS, flags, id, &block));
        bytes.extend(h2::frame(h2::RST_STREAM, 0, id, &8u32.to_be_bytes()));
    }
    let closed = send_and_wait_close(gate.addr, &bytes, Duration::from_secs(5)).await;
    assert!(closed, "rapid reset did not close the connection");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let hits = up.hits();
    assert!(
        hits < 200,
        "{hits} of {streams} reset streams reached the upstream"
    );
    assert_eq!(
        client().get(gate.url("/")).send().await.unwrap().status(),
        200
    );
}

#[tokio::test]
async fn an_h2_continuation_flood_without_end_headers_is_closed() {
    let up = Upstream::start().await;
    let gate = Gate::start(&one_route(&up, POLICY)).await;
    let mut bytes = h2::PREFACE.to_vec();
    bytes.extend(h2::frame(h2::SETTINGS, 0, 0, &[]));
    bytes.extend(h2::frame(h2::HEADERS, h2::END_STREAM, 1, &h2::get_block()));
    let mut piece = Vec::new();
    h2::literal(0x00, "x-flood", &"f".repeat(100), &mut piece);
    for _ in 0..20_000 {
        bytes.extend(h2::frame(h2::CONTINUATION, 0, 1, &piece));
    }
    let closed = send_and_wait_close(gate.addr, &bytes, PATIENCE).await;
    assert!(closed, "a CONTINUATION flood was not cut off");
    assert_eq!(up.hits(), 0);
    assert_eq!(
        client().get(gate.url("/")).send().await.unwrap().status(),
        200
    );
}

#[tokio::test]
async fn hpack_bombs_are_refused_and_never_forwarded() {
    let up = Upstream::start().await;
    let gate = Gate::start(&one_route(&up, POLICY)).await;
    // A dynamic table size update far over SETTINGS_HEADER_TABLE_SIZE (4096): a COMPRESSION_ERROR.
    let mut resize = Vec::new();
    h2::int(0x20, 5, 1 << 30, &mut resize);
    resize.extend(h2::get_block());
    // One 4000-byte header indexed once, then referenced 2000 times: 8 MB decoded from 6 KB.
    let mut bomb = h2::get_block();
    h2::literal(0x40, "x-bomb", &"b".repeat(4000), &mut bomb);
    bomb.extend(std::iter::repeat_n(0xbe, 2000));
    for block in [resize, bomb] {
        let mut bytes = h2::PREFACE.to_vec();
        bytes.extend(h2::frame(h2::SETTINGS, 0, 0, &[]));
        let mut rest = block.as_slice();
        let mut first = true;
        while !rest.is_empty() || first {
            let (now, later) = rest.split_at(rest.len().min(16_384));
            let kind = if first { h2::HEADERS } else { h2::CONTINUATION };
            let mut flags = if first { h2::END_STREAM } else { 0 };
            if later.is_empty() {
                flags |= h2::END_HEADERS;
            }
            bytes.extend(h2::frame(kind, flags, 1, now));
            rest = later;
            first = false;
        }
        let mut s = TcpStream::connect(gate.addr).await.unwrap();
        s.write_all(&bytes).await.unwrap();
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(3), s.read_to_end(&mut out)).await;
        // Whatever came back (a 431, RST_STREAM or GOAWAY), the request went nowhere.
        assert_eq!(up.hits(), 0);
    }
    assert_eq!(
        client().get(gate.url("/")).send().await.unwrap().status(),
        200
    );
}

// === fuzz: bounded proptests over raw request heads and config text ===

static PANICS: AtomicUsize = AtomicUsize::new(0);

fn count_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, Ordering::SeqCst);
            default(info);
        }));
    });
}

fn request_heads() -> impl Strategy<Value = Vec<u8>> {
    let bytes = proptest::collection::vec(any::<u8>(), 0..600);
    let prefixes = prop_oneof![
        Just(Vec::new()),
        Just(b"GET / HTTP/1.1\r\n".to_vec()),
        Just(b"POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n".to_vec()),
        Just(b"OPTIONS / HTTP/1.1\r\nHost: a\r\nOrigin: https://app.example\r\n".to_vec()),
        Just(h2::PREFACE.to_vec()),
    ];
    (prefixes, bytes).prop_map(|(mut p, b)| {
        p.extend(b);
        p
    })
}

#[test]
fn arbitrary_request_heads_get_4xx_5xx_or_a_close_and_never_a_panic() {
    count_panics();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (up, gate) = rt.block_on(async {
        let up = Upstream::start().await;
        let gate = Gate::start(&one_route(&up, POLICY)).await;
        (up, gate)
    });
    let addr = gate.addr;
    let before = PANICS.load(Ordering::SeqCst);
    let mut runner = TestRunner::new(ProptestConfig::with_cases(96));
    let result = runner.run(&request_heads(), |head| {
        let res = rt.block_on(async {
            let mut s = TcpStream::connect(addr).await.unwrap();
            let _ = s.write_all(&head).await;
            let _ = s.shutdown().await;
            let mut out = Vec::new();
            let _ = tokio::time::timeout(Duration::from_secs(3), s.read_to_end(&mut out)).await;
            out
        });
        let h1 = !head.starts_with(h2::PREFACE);
        if h1 && res.starts_with(b"HTTP/1.1 ") {
            let status = &res[9..12.min(res.len())];
            prop_assert!(
                status.first().is_some_and(|c| *c == b'4' || *c == b'5'),
                "{:?} answered {:?}",
                String::from_utf8_lossy(&head),
                String::from_utf8_lossy(&res)
            );
        }
        Ok(())
    });
    result.unwrap();
    assert_eq!(PANICS.load(Ordering::SeqCst), before, "the proxy panicked");
    rt.block_on(async {
        assert_eq!(
            client().get(gate.url("/")).send().await.unwrap().status(),
            200
        );
    });
    drop(up);
}

fn good_fixtures() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/good");
    let mut texts: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    texts.sort();
    texts
}

#[test]
fn config_text_never_panics_the_loader() {
    let fixtures = Arc::new(good_fixtures());
    let toml_ish = proptest::string::string_regex(
        r#"(\[[a-z.]{0,12}\]\n|[a-z_]{1,20} = ("[ -~]{0,30}"|[0-9-]{1,22}|\[("[ -~]{0,12}",? ?){0,4}\]|true|\{ [a-z]{1,6} = "[ -~]{0,10}" \})\n|[ -~\n]{0,20}){0,30}"#,
    )
    .unwrap();
    let n = fixtures.len();
    let mutated = (
        0..n,
        any::<prop::sample::Index>(),
        0usize..40,
        "[ -~\n]{0,40}",
    )
        .prop_map(move |(which, at, cut, insert)| {
            let text = &fixtures[which];
            let mut i = at.index(text.len() + 1);
            while !text.is_char_boundary(i) {
                i -= 1;
            }
            let mut j = (i + cut).min(text.len());
            while !text.is_char_boundary(j) {
                j -= 1;
            }
            format!("{}{insert}{}", &text[..i], &text[j..])
        });
    let mut runner = TestRunner::new(ProptestConfig::with_cases(400));
    runner
        .run(&prop_oneof![toml_ish, mutated], |text| {
            let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/good/fuzz.toml");
            let _ = corsgate::load_str(&text, &path);
            Ok(())
        })
        .unwrap();
}
