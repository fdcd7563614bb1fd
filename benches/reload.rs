//! Reload time for a config with 10,000 origins and 1,000 routes: read, compile, build the live state
//! and swap it in (everything between SIGHUP and the swap). Target: under 50 ms, so a reload is never noticed by traffic.

use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion};

use corsgate::{Gateway, Observer};

fn big_config() -> String {
    let mut t = String::new();
    for u in 0..10 {
        t.push_str(&format!(
            "[upstreams.u{u}]\nurl = \"http://127.0.0.1:{}\"\n",
            3000 + u
        ));
    }
    for p in 0..10 {
        let origins: Vec<String> = (0..1000)
            .map(|i| format!("\"https://app{i}.tenant{p}.example.com\""))
            .collect();
        t.push_str(&format!(
            "[policies.p{p}]\nallowed_origins = [{}]\nallowed_headers = [\"content-type\"]\nmax_age = 600\n",
            origins.join(",")
        ));
    }
    for r in 0..1000 {
        t.push_str(&format!(
            "[[routes]]\nhost = \"svc{}.example.com\"\npath_prefix = \"/v{}\"\nupstream = \"u{}\"\npolicy = \"p{}\"\n",
            r / 10,
            r % 10,
            r % 10,
            r % 10
        ));
    }
    t
}

fn bench_reload(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("corsgate.toml");
    std::fs::write(&path, big_config()).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let _guard = runtime.enter();
    let observer = Observer::new();
    let loaded = corsgate::load(Path::new(&path)).expect("bench config compiles");
    let gateway = Gateway::new(loaded.snapshot, observer).unwrap();
    let reloader = gateway.reloader(&path);
    let mut group = c.benchmark_group("reload");
    group.sample_size(20);
    group.bench_function("10k_origins_1k_routes", |b| {
        b.iter(|| reloader.reload_blocking().expect("reload succeeds"))
    });
    group.finish();
}

criterion_group!(benches, bench_reload);
criterion_main!(benches);
