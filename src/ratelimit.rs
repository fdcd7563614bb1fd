//! `RateLimit`: one `[rate_limits.NAME]` at run time. A GCRA keyed limiter from `governor` over a
//! bounded, sharded store (`store.rs`), the request's key (`Key`), and the sweep that evicts idle
//! keys.
//!
//! The limiter is run-time state, like a connection pool: it lives in `Live` (one per limit, shared
//! by the routes that name it), never in the pure snapshot or the policy engine. A check is a shard
//! read lock and one atomic compare-and-swap on the key's state; there is no global lock per
//! request. A reload keeps a limit whose settings did not change (`Live::build` reuses the `Arc`),
//! so its buckets carry on.

mod forwarded;
mod store;

use std::hash::{BuildHasher, Hash};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::{Quota, RateLimiter};
use http::header::{HeaderMap, ORIGIN};

use forwarded::client_address;
use store::BoundedStore;

use crate::snapshot::{RateLimitKey, RateLimitSettings};

/// How often idle keys are evicted. Between sweeps a full store puts new keys into its shared
/// overflow bucket, so this bounds how long a newcomer can be stuck there after a flood.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// What a request's bucket is chosen by. `Copy` and allocation-free: an address, or a keyed 64-bit
/// hash of the `Origin` bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Key {
    /// `key = "client"`, or `"forwarded"`.
    Addr(IpAddr),
    /// `key = "origin"`: the header's bytes hashed with this limit's random seed, so no one can
    /// choose two origins that collide into one bucket without knowing the seed.
    Origin(u64),
    /// `key = "origin"` and the request has no `Origin`: every such request shares this bucket.
    NoOrigin,
}

type Limiter<C> = RateLimiter<
    Key,
    BoundedStore<Key, std::hash::RandomState>,
    C,
    NoOpMiddleware<<C as Clock>::Instant>,
>;

/// One rate limit, live. Public only for the benches (`corsgate::testing`).
pub struct RateLimit<C: Clock = DefaultClock> {
    settings: RateLimitSettings,
    limiter: Limiter<C>,
    /// The limiter's own store, for the counts governor does not expose.
    store: BoundedStore<Key, std::hash::RandomState>,
    /// Seeds the `Origin` hash. std's `RandomState` is SipHash with a per-process random key.
    origin_seed: std::hash::RandomState,
    /// `overflowed()` as of the last sweep, so each sweep reports only what is new.
    reported_overflow: AtomicUsize,
}

impl<C: Clock> std::fmt::Debug for RateLimit<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimit")
            .field("settings", &self.settings)
            .field("keys", &self.keys())
            .finish_non_exhaustive()
    }
}

impl RateLimit {
    /// A limit with fresh buckets on the default (monotonic) clock.
    pub fn new(settings: &RateLimitSettings) -> RateLimit {
        RateLimit::with_clock(settings, DefaultClock::default())
    }
}

impl<C: Clock> RateLimit<C> {
    /// A limit with fresh buckets, its time read from `clock` (tests drive it by hand).
    pub(crate) fn with_clock(settings: &RateLimitSettings, clock: C) -> RateLimit<C> {
        let store = BoundedStore::new(settings.max_keys, std::hash::RandomState::new());
        RateLimit {
            limiter: RateLimiter::new(quota(settings), store.clone(), clock),
            store,
            settings: settings.clone(),
            origin_seed: std::hash::RandomState::new(),
            reported_overflow: AtomicUsize::new(0),
        }
    }

    /// The settings it was built from.
    pub(crate) fn settings(&self) -> &RateLimitSettings {
        &self.settings
    }

    /// The request's key under this limit.
    pub fn key(&self, headers: &HeaderMap, peer: IpAddr) -> Key {
        match self.settings.key {
            RateLimitKey::Client => Key::Addr(peer),
            RateLimitKey::Forwarded { trusted_hops } => {
                Key::Addr(client_address(headers, trusted_hops).unwrap_or(peer))
            }
            RateLimitKey::Origin => match headers.get(ORIGIN) {
                None => Key::NoOrigin,
                Some(v) => Key::Origin(self.origin_seed.hash_one(v.as_bytes())),
            },
        }
    }

    /// Count one request under `key`: `Ok` when it conforms, else how long until the key's next
    /// request would.
    pub fn check(&self, key: &Key) -> Result<(), Duration> {
        self.limiter
            .check_key(key)
            .map_err(|not_until| not_until.wait_time_from(self.limiter.clock().now()))
    }

    /// Drop the keys whose bucket is indistinguishable from a fresh one (idle long enough to have
    /// refilled), freeing room under `max_keys`. Returns how many checks went to the overflow
    /// bucket since the previous sweep.
    pub fn sweep(&self) -> usize {
        self.limiter.retain_recent();
        let total = self.overflowed();
        total - self.reported_overflow.swap(total, Ordering::Relaxed)
    }

    /// Keys held now (at most `max_keys`).
    pub fn keys(&self) -> usize {
        self.store.held()
    }

    /// Checks that went to the shared overflow bucket because `max_keys` keys were held.
    pub fn overflowed(&self) -> usize {
        self.store.overflowed()
    }
}

/// `Retry-After` in whole seconds: rounded up, at least 1 (a `0` would invite an immediate retry that
/// is refused again).
pub(crate) fn retry_after_secs(wait: Duration) -> u64 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1)
}

/// The GCRA quota: one request every `1 / requests_per_second`, `burst` at once. Config compile
/// guarantees a rate in (0, 1e9] and a burst of at least 1, so the fallbacks never apply.
fn quota(s: &RateLimitSettings) -> Quota {
    let burst = NonZeroU32::new(s.burst).unwrap_or(NonZeroU32::MIN);
    let period = Duration::try_from_secs_f64(1.0 / s.requests_per_second)
        .ok()
        .filter(|p| !p.is_zero())
        .unwrap_or(Duration::from_nanos(1));
    Quota::with_period(period)
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
        .allow_burst(burst)
}

/// Evict idle keys from every limit of the live state every [`SWEEP_EVERY`], until the state is
/// gone. The sweep runs on a blocking thread: a large store takes milliseconds to walk.
pub(crate) async fn sweep_forever(shared: Weak<crate::live::Shared>) {
    let mut tick = tokio::time::interval(SWEEP_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let limits: Vec<Arc<RateLimit>> = shared.load().limits().to_vec();
        drop(shared);
        if limits.is_empty() {
            continue;
        }
        let swept = tokio::task::spawn_blocking(move || {
            for l in &limits {
                let overflowed = l.sweep();
                if overflowed > 0 {
                    // At most one line per limit per sweep, however large the flood.
                    tracing::warn!(
                        target: "corsgate::rate_limit",
                        rate_limit = l.settings.name.as_str(),
                        max_keys = l.settings.max_keys,
                        overflowed,
                        "rate limit held max_keys active keys: new keys shared one overflow bucket"
                    );
                }
            }
        });
        // A panicking sweep would be a bug; the next tick tries again rather than ending sweeps.
        let _ = swept.await;
    }
}

#[cfg(test)]
mod tests;
