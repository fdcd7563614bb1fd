//! Decisions per second: 10, 1,000 and 100,000 exact origins plus 100 wildcard patterns, and
//! preflights with Access-Control-Request-Headers lists of 1 and 50 names; and the rate limiter's
//! check per request (key derivation plus the GCRA update), by client address and by origin; and
//! what Fetch Metadata adds to a decision.
//! Targets: one decision under 300 ns; 100,000 origins no more than 2x slower than 10.

use std::hint::black_box;
use std::path::Path;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use http::header::{HeaderMap, HeaderValue, ORIGIN};
use http::Method;

use corsgate::Snapshot;
use corsgate::{RequestView, Scheme};

fn snapshot(exact: usize, headers: usize) -> Snapshot {
    let mut origins: Vec<String> = (0..exact)
        .map(|i| format!("\"https://app{i}.example.com\""))
        .collect();
    origins.extend((0..100).map(|i| format!("\"https://*.tenant{i}.example.net\"")));
    let names: Vec<String> = (0..headers.max(1))
        .map(|i| format!("\"x-header-{i}\""))
        .collect();
    let toml = format!(
        "[upstreams.u]\nurl = \"http://127.0.0.1:1\"\n[policies.p]\nallowed_origins = [{}]\n\
         allowed_methods = [\"GET\", \"PUT\"]\nallowed_headers = [{}]\nallow_credentials = true\n\
         max_age = 600\n[[routes]]\nupstream = \"u\"\npolicy = \"p\"\n",
        origins.join(","),
        names.join(",")
    );
    compile(&toml)
}

fn compile(toml: &str) -> Snapshot {
    corsgate::load_str(toml, Path::new("bench.toml"))
        .expect("bench config compiles")
        .snapshot
}

/// A GET for `/v1/orders/42` on `api.example.com` over HTTPS with `headers`; built inside each
/// timed iteration, as a request would be.
#[inline]
fn get_view<'a>(method: &'a Method, headers: &'a HeaderMap) -> RequestView<'a> {
    RequestView {
        method,
        scheme: Scheme::Https,
        host: corsgate::Authority::parse("api.example.com").ok(),
        path: "/v1/orders/42",
        headers,
    }
}

fn bench_origins(c: &mut Criterion) {
    let mut group = c.benchmark_group("actual_request");
    for n in [10usize, 1_000, 100_000] {
        let s = snapshot(n, 1);
        let mut headers = HeaderMap::new();
        let origin = format!("https://app{}.example.com", n / 2);
        headers.insert(ORIGIN, HeaderValue::from_str(&origin).unwrap());
        let get = Method::GET;
        group.bench_with_input(BenchmarkId::new("exact_origins", n), &n, |b, _| {
            b.iter(|| {
                let view = get_view(&get, &headers);
                black_box(s.evaluate(black_box(&view)).outcome())
            })
        });
        let mut wild = HeaderMap::new();
        wild.insert(
            ORIGIN,
            HeaderValue::from_static("https://a.b.tenant57.example.net"),
        );
        group.bench_with_input(BenchmarkId::new("wildcard_hit", n), &n, |b, _| {
            b.iter(|| {
                let view = get_view(&get, &wild);
                black_box(s.evaluate(black_box(&view)).outcome())
            })
        });
    }
    group.finish();
}

fn bench_preflight(c: &mut Criterion) {
    let mut group = c.benchmark_group("preflight");
    for names in [1usize, 50] {
        let s = snapshot(1_000, names);
        let mut headers = HeaderMap::new();
        headers.insert(ORIGIN, HeaderValue::from_static("https://app7.example.com"));
        headers.insert(
            "access-control-request-method",
            HeaderValue::from_static("PUT"),
        );
        // Lowercase, as Chromium and Firefox send them.
        let list: Vec<String> = (0..names).map(|i| format!("x-header-{i}")).collect();
        headers.insert(
            "access-control-request-headers",
            HeaderValue::from_str(&list.join(", ")).unwrap(),
        );
        let options = Method::OPTIONS;
        let view = RequestView {
            method: &options,
            scheme: Scheme::Https,
            host: corsgate::Authority::parse("api.example.com").ok(),
            path: "/v1/orders",
            headers: &headers,
        };
        group.bench_with_input(BenchmarkId::new("acrh_names", names), &names, |b, _| {
            b.iter(|| black_box(s.evaluate(black_box(&view)).outcome()))
        });
        // The decision plus writing its response headers into a fresh HeaderMap.
        group.bench_with_input(
            BenchmarkId::new("acrh_names_with_headers", names),
            &names,
            |b, _| {
                b.iter(|| {
                    let e = s.evaluate(black_box(&view));
                    let mut out = HeaderMap::new();
                    if let Some(r) = e.routed() {
                        r.decision.apply(&mut out);
                    }
                    black_box(out.len())
                })
            },
        );
    }
    group.finish();
}

/// One request's rate-limit check: derive the key from the request, then the GCRA test-and-update
/// on its bucket. The limit is high enough that every check conforms (the common case, which
/// writes the state); `10k_clients` spreads the checks over 10,000 held keys, as a busy API does.
fn bench_rate_limit(c: &mut Criterion) {
    use corsgate::testing::RateLimit;
    use corsgate::{RateLimitKey, RateLimitSettings};
    use std::net::{IpAddr, Ipv4Addr};
    let limit = |key| {
        RateLimit::new(&RateLimitSettings {
            name: "bench".into(),
            requests_per_second: 1e9,
            burst: 1_000_000,
            key,
            max_keys: 100_000,
        })
    };
    let mut group = c.benchmark_group("rate_limit_check");
    let mut headers = HeaderMap::new();
    headers.insert(ORIGIN, HeaderValue::from_static("https://app7.example.com"));
    let peer = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7));
    let client = limit(RateLimitKey::Client);
    group.bench_function("client_key", |b| {
        b.iter(|| black_box(client.check(&client.key(black_box(&headers), peer))))
    });
    let by_origin = limit(RateLimitKey::Origin);
    group.bench_function("origin_key", |b| {
        b.iter(|| black_box(by_origin.check(&by_origin.key(black_box(&headers), peer))))
    });
    let peers: Vec<IpAddr> = (0..10_000u32)
        .map(|i| IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | i)))
        .collect();
    let spread = limit(RateLimitKey::Client);
    let mut i = 0;
    group.bench_function("10k_clients", |b| {
        b.iter(|| {
            i = (i + 1) % peers.len();
            black_box(spread.check(&spread.key(&headers, peers[i])))
        })
    });
    group.finish();
}

/// Fetch Metadata's cost on the decision: the same cross-site CORS fetch from an allowed origin
/// under `fetch_metadata = "off"` and `"enforce"` (where it passes rule 3, mode `cors`), and a
/// cross-site `<img>` load (mode `no-cors`, no Origin) that enforce refuses.
fn bench_fetch_metadata(c: &mut Criterion) {
    let config = |mode: &str| {
        let toml = format!(
            "[upstreams.u]\nurl = \"http://127.0.0.1:1\"\n[policies.p]\n\
             allowed_origins = [\"https://app.example.com\"]\nfetch_metadata = \"{mode}\"\n\
             [[routes]]\nupstream = \"u\"\npolicy = \"p\"\n"
        );
        compile(&toml)
    };
    let site = http::header::HeaderName::from_static("sec-fetch-site");
    let mode = http::header::HeaderName::from_static("sec-fetch-mode");
    let dest = http::header::HeaderName::from_static("sec-fetch-dest");
    let mut fetch = HeaderMap::new();
    fetch.insert(ORIGIN, HeaderValue::from_static("https://app.example.com"));
    fetch.insert(&site, HeaderValue::from_static("cross-site"));
    fetch.insert(&mode, HeaderValue::from_static("cors"));
    fetch.insert(&dest, HeaderValue::from_static("empty"));
    let mut image = HeaderMap::new();
    image.insert(&site, HeaderValue::from_static("cross-site"));
    image.insert(&mode, HeaderValue::from_static("no-cors"));
    image.insert(&dest, HeaderValue::from_static("image"));
    let get = Method::GET;
    let mut group = c.benchmark_group("fetch_metadata");
    for (name, policy, headers) in [
        ("off/cors_fetch", "off", &fetch),
        ("enforce/cors_fetch", "enforce", &fetch),
        ("enforce/cross_site_image_refused", "enforce", &image),
    ] {
        let s = config(policy);
        group.bench_function(name, |b| {
            b.iter(|| {
                let view = get_view(&get, headers);
                black_box(s.evaluate(black_box(&view)).outcome())
            })
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    bench_origins,
    bench_preflight,
    bench_rate_limit,
    bench_fetch_metadata
);
criterion_main!(benches);
