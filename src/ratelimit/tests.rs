use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use governor::clock::FakeRelativeClock;
use http::header::{HeaderMap, HeaderValue, ORIGIN};

use super::*;

fn settings(rps: f64, burst: u32, key: RateLimitKey, max_keys: usize) -> RateLimitSettings {
    RateLimitSettings {
        name: "l".into(),
        requests_per_second: rps,
        burst,
        key,
        max_keys,
    }
}

const PEER: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));

fn origin(o: &'static str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(ORIGIN, HeaderValue::from_static(o));
    h
}

#[test]
fn a_burst_passes_then_the_next_request_waits_one_period() {
    let clock = FakeRelativeClock::default();
    let l = RateLimit::with_clock(&settings(0.5, 3, RateLimitKey::Client, 10), clock.clone());
    let k = l.key(&HeaderMap::new(), PEER);
    for _ in 0..3 {
        assert_eq!(l.check(&k), Ok(()));
    }
    assert_eq!(l.check(&k), Err(Duration::from_secs(2)));
    clock.advance(Duration::from_millis(1500));
    assert_eq!(l.check(&k), Err(Duration::from_millis(500)));
    clock.advance(Duration::from_millis(500));
    assert_eq!(l.check(&k), Ok(()));
}

#[test]
fn retry_after_rounds_up_to_whole_seconds_and_is_never_zero() {
    assert_eq!(retry_after_secs(Duration::ZERO), 1);
    assert_eq!(retry_after_secs(Duration::from_millis(20)), 1);
    assert_eq!(retry_after_secs(Duration::from_secs(2)), 2);
    assert_eq!(retry_after_secs(Duration::from_millis(2001)), 3);
}

#[test]
fn origins_get_separate_buckets_and_requests_without_origin_share_one() {
    let l = RateLimit::with_clock(
        &settings(1.0 / 60.0, 1, RateLimitKey::Origin, 10),
        FakeRelativeClock::default(),
    );
    let a = l.key(&origin("https://a.example"), PEER);
    let b = l.key(&origin("https://b.example"), PEER);
    assert_ne!(a, b);
    assert_eq!(
        a,
        l.key(&origin("https://a.example"), Ipv4Addr::LOCALHOST.into())
    );
    assert!(l.check(&a).is_ok() && l.check(&a).is_err());
    assert!(l.check(&b).is_ok());
    let none = l.key(&HeaderMap::new(), PEER);
    assert_eq!(none, Key::NoOrigin);
    assert_eq!(l.key(&HeaderMap::new(), Ipv4Addr::LOCALHOST.into()), none);
}

#[test]
fn forwarded_keys_fall_back_to_the_peer_when_the_header_is_short_or_unparsable() {
    let l = RateLimit::new(&settings(
        1.0,
        1,
        RateLimitKey::Forwarded { trusted_hops: 2 },
        10,
    ));
    let mut h = HeaderMap::new();
    h.insert(
        &crate::proxy::X_FORWARDED_FOR,
        HeaderValue::from_static("203.0.113.9"),
    );
    assert_eq!(l.key(&h, PEER), Key::Addr(PEER));
    h.insert(
        &crate::proxy::X_FORWARDED_FOR,
        HeaderValue::from_static("1.1.1.1, garbage, 10.0.0.1"),
    );
    assert_eq!(l.key(&h, PEER), Key::Addr(PEER));
    h.insert(
        &crate::proxy::X_FORWARDED_FOR,
        HeaderValue::from_static("1.1.1.1, 203.0.113.9, 10.0.0.1"),
    );
    assert_eq!(l.key(&h, PEER), Key::Addr("203.0.113.9".parse().unwrap()));
}

#[test]
fn a_full_store_sends_new_keys_to_one_overflow_bucket_and_keeps_held_keys_their_own() {
    let clock = FakeRelativeClock::default();
    let l = RateLimit::with_clock(&settings(1.0, 1, RateLimitKey::Client, 2), clock.clone());
    let key = |n: u8| Key::Addr(IpAddr::V4(Ipv4Addr::new(10, 0, 0, n)));
    assert!(l.check(&key(1)).is_ok());
    assert!(l.check(&key(2)).is_ok());
    // The third key finds the store full: it shares the overflow bucket, whose one request it takes.
    assert!(l.check(&key(3)).is_ok());
    assert!(
        l.check(&key(4)).is_err(),
        "a fourth key shares the same overflow bucket"
    );
    assert_eq!(l.keys(), 2);
    assert_eq!(l.overflowed(), 2);
    // Held keys are unaffected by the overflow.
    clock.advance(Duration::from_secs(1));
    assert!(l.check(&key(1)).is_ok());
}

#[test]
fn a_sweep_evicts_idle_keys_first_and_keeps_active_ones() {
    let clock = FakeRelativeClock::default();
    let l = RateLimit::with_clock(&settings(1.0, 5, RateLimitKey::Client, 100), clock.clone());
    let idle = Key::Addr(Ipv4Addr::new(10, 0, 0, 1).into());
    let busy = Key::Addr(Ipv4Addr::new(10, 0, 0, 2).into());
    assert!(l.check(&idle).is_ok());
    for _ in 0..5 {
        assert!(l.check(&busy).is_ok());
    }
    // Two seconds on: the idle key's bucket is full again, the busy one's is not.
    clock.advance(Duration::from_secs(2));
    l.sweep();
    assert_eq!(l.keys(), 1);
    // Two seconds refilled two of its five: it kept its state through the sweep.
    assert!(l.check(&busy).is_ok());
    assert!(l.check(&busy).is_ok());
    assert!(
        l.check(&busy).is_err(),
        "the busy key kept its state through the sweep"
    );
}

/// The memory bound under a flood of distinct keys: a million addresses against max_keys = 100000,
/// swept as the background task would (here every 10000 requests, one second apart on the test
/// clock). The store never holds more than the bound, and the flood shares the overflow bucket.
#[test]
fn a_million_distinct_keys_never_hold_more_than_max_keys() {
    const MAX: usize = 100_000;
    let clock = FakeRelativeClock::default();
    let l = RateLimit::with_clock(
        &settings(50.0, 100, RateLimitKey::Client, MAX),
        clock.clone(),
    );
    let mut most = 0;
    for i in 0u32..1_000_000 {
        let ip = Ipv6Addr::from((0x2001_0db8_u128 << 96) | u128::from(i));
        let _ = l.check(&Key::Addr(ip.into()));
        if i % 10_000 == 9_999 {
            most = most.max(l.keys());
            clock.advance(Duration::from_millis(100));
            if i % 200_000 == 199_999 {
                l.sweep();
            }
        }
    }
    assert!(most <= MAX, "held {most} keys");
    assert!(l.limiter.len() <= MAX);
    assert!(l.overflowed() > 0);
}

#[test]
fn fractional_and_huge_rates_build_valid_quotas() {
    let q = quota(&settings(0.25, 2, RateLimitKey::Client, 1));
    assert_eq!(q.replenish_interval(), Duration::from_secs(4));
    assert_eq!(q.burst_size().get(), 2);
    let q = quota(&settings(1e9, 1, RateLimitKey::Client, 1));
    assert_eq!(q.replenish_interval(), Duration::from_nanos(1));
}
