//! Heap allocations per request, counted by a wrapping global allocator: deterministic where
//! throughput on a loaded machine is not. A real corsgate (`Gateway::serve`) runs in-process in front
//! of a tiny hyper upstream; one raw HTTP/1.1 keep-alive connection sends `N` requests after a
//! warm-up, and the allocations during those `N` (every thread, the upstream's included) are divided
//! by `N`. The same GET sent straight to the upstream gives the upstream's (and this client's) own
//! share, which is subtracted. Run with `cargo bench --bench allocations`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::convert::Infallible;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

struct Counting;

static ALLOCS: AtomicUsize = AtomicUsize::new(0);
static BYTES: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        BYTES.fetch_add(layout.size(), Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        BYTES.fetch_add(layout.size(), Relaxed);
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        BYTES.fetch_add(new_size, Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const N: usize = 2000;
const WARMUP: usize = 200;

fn config(upstream: SocketAddr, access_log: bool) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"

[log]
format = "json"
level = "info"
access_log = {access_log}

[upstreams.backend]
url = "http://{upstream}"

[policies.strict]
allowed_origins = ["https://app.example.com"]
allowed_methods = ["GET", "POST"]

[[routes]]
name = "api"
host = "api.example.com"
upstream = "backend"
policy = "strict"
"#
    )
}

const GET: &[u8] = b"GET /v1/items?page=2 HTTP/1.1\r\nHost: api.example.com\r\n\
Origin: https://app.example.com\r\nAccept: */*\r\nUser-Agent: alloc-bench\r\n\r\n";
const PREFLIGHT: &[u8] = b"OPTIONS /v1/items HTTP/1.1\r\nHost: api.example.com\r\n\
Origin: https://app.example.com\r\nAccess-Control-Request-Method: POST\r\n\
User-Agent: alloc-bench\r\n\r\n";

/// Read one response (head, then `Content-Length` bytes) into `buf`, without allocating.
fn read_response(conn: &mut TcpStream, buf: &mut [u8]) -> u16 {
    let mut len = 0;
    let head_end = loop {
        let n = conn.read(&mut buf[len..]).expect("read");
        assert!(n > 0, "connection closed");
        len += n;
        if let Some(i) = buf[..len].windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = std::str::from_utf8(&buf[..head_end]).expect("utf-8 head");
    let status: u16 = head[9..12].parse().expect("status");
    let body_len = head
        .split("\r\n")
        .find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().expect("content-length"))
        })
        .unwrap_or(0);
    while len < head_end + body_len {
        let n = conn.read(&mut buf[len..]).expect("read body");
        assert!(n > 0, "connection closed in body");
        len += n;
    }
    assert_eq!(len, head_end + body_len, "one response at a time");
    status
}

/// Allocations per request for `N` keep-alive requests `req` to `addr`, after `WARMUP`.
fn per_request(addr: SocketAddr, req: &[u8], expect: u16) -> (f64, f64) {
    let mut conn = TcpStream::connect(addr).expect("connect");
    conn.set_nodelay(true).unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    for _ in 0..WARMUP {
        conn.write_all(req).unwrap();
        assert_eq!(read_response(&mut conn, &mut buf), expect);
    }
    // Let background tasks (pool bookkeeping, timers) settle before counting.
    std::thread::sleep(std::time::Duration::from_millis(50));
    let (a0, b0) = (ALLOCS.load(Relaxed), BYTES.load(Relaxed));
    for _ in 0..N {
        conn.write_all(req).unwrap();
        read_response(&mut conn, &mut buf);
    }
    let (a1, b1) = (ALLOCS.load(Relaxed), BYTES.load(Relaxed));
    ((a1 - a0) as f64 / N as f64, (b1 - b0) as f64 / N as f64)
}

async fn upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let svc = service_fn(|_req| async {
                    Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from_static(
                        b"{\"items\":[1,2,3]}",
                    ))))
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    addr
}

async fn gateway(upstream: SocketAddr, access_log: bool) -> SocketAddr {
    let text = config(upstream, access_log);
    let loaded = corsgate::load_str(&text, Path::new("bench.toml")).expect("config");
    let snapshot = loaded.snapshot;
    let gateway = corsgate::Gateway::new(snapshot, corsgate::Observer::new()).expect("gateway");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(gateway.serve(vec![listener], std::future::pending()));
    addr
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (up, with_log, without_log) = rt.block_on(async {
        let up = upstream().await;
        (up, gateway(up, true).await, gateway(up, false).await)
    });
    // The access log goes through the JSON subscriber `corsgate run` installs, into a sink.
    let settings = {
        let text = config(up, true);
        corsgate::load_str(&text, Path::new("bench.toml"))
            .unwrap()
            .snapshot
            .log
            .clone()
    };
    let dispatch = corsgate::testing::dispatch(&settings, None, false, std::io::sink).unwrap();
    tracing::dispatcher::set_global_default(dispatch).unwrap();

    let (bare, _) = per_request(up, GET, 200);
    let rows = [
        ("upstream alone (GET)", per_request(up, GET, 200), false),
        (
            "forwarded GET, access_log = false",
            per_request(without_log, GET, 200),
            true,
        ),
        (
            "forwarded GET, access_log = true",
            per_request(with_log, GET, 200),
            true,
        ),
        (
            "preflight, access_log = false",
            per_request(without_log, PREFLIGHT, 204),
            false,
        ),
        (
            "preflight, access_log = true",
            per_request(with_log, PREFLIGHT, 204),
            false,
        ),
    ];
    println!("allocations per request ({N} keep-alive requests on one connection, after {WARMUP} warm-up)");
    println!();
    println!("| case | allocs/req (process) | bytes/req (process) | allocs/req (corsgate, upstream subtracted) |");
    println!("|---|---:|---:|---:|");
    for (name, (allocs, bytes), forwarded) in rows {
        let own = if forwarded { allocs - bare } else { allocs };
        println!("| {name} | {allocs:.2} | {bytes:.0} | {own:.2} |");
    }
    println!();
    println!("(preflights never reach the upstream: nothing is subtracted; the client loop allocates nothing)");
    rt.shutdown_background();
}
