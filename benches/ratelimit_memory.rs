//! Memory of the rate limiter's key store under a flood of distinct keys: one million IPv6
//! addresses (a /64 gives an attacker far more), first against the default bound (max_keys =
//! 100000), then against max_keys = 1000000 to price one held key. Prints resident-set growth.
//!
//! `cargo bench --bench ratelimit_memory` (Linux: reads VmRSS from /proc/self/status).

use std::hint::black_box;
use std::net::{IpAddr, Ipv6Addr};

use corsgate::testing::{RateLimit, RateLimitKeyValue};
use corsgate::{RateLimitKey, RateLimitSettings};

const FLOOD: u32 = 1_000_000;

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

fn flood(max_keys: usize) {
    let settings = RateLimitSettings {
        name: "flood".into(),
        requests_per_second: 50.0,
        burst: 100,
        key: RateLimitKey::Client,
        max_keys,
    };
    let before = rss_bytes();
    let limit = RateLimit::new(&settings);
    let mut most = 0;
    for i in 0..FLOOD {
        let ip = Ipv6Addr::from((0x2001_0db8_u128 << 96) | u128::from(i));
        let _ = black_box(limit.check(&RateLimitKeyValue::Addr(IpAddr::V6(ip))));
        if i % 65_536 == 0 {
            most = most.max(limit.keys());
        }
    }
    most = most.max(limit.keys());
    let grown = rss_bytes().saturating_sub(before);
    println!(
        "max_keys {max_keys:>8}: {FLOOD} distinct keys -> {} held (most seen {most}), {} sent to the \
         overflow bucket; RSS +{:.1} MiB, {:.0} bytes per held key",
        limit.keys(),
        limit.overflowed(),
        grown as f64 / 1048576.0,
        grown as f64 / limit.keys().max(1) as f64
    );
    assert!(most <= max_keys, "the bound held");
}

/// Each bound runs in a fresh process (this binary, with the bound as its argument), so one run's
/// freed memory cannot hide the next one's growth.
fn main() {
    if let Some(max_keys) = std::env::args().nth(1).and_then(|a| a.parse().ok()) {
        flood(max_keys);
        return;
    }
    let me = std::env::current_exe().expect("own path");
    for max_keys in ["100000", "1000000"] {
        let ok = std::process::Command::new(&me)
            .arg(max_keys)
            .status()
            .expect("run the flood")
            .success();
        assert!(ok, "flood with max_keys {max_keys} failed");
    }
}
