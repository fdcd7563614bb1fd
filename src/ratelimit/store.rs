//! `BoundedStore`: governor's keyed state (one GCRA state per key in a sharded `DashMap`, as its
//! own `DashMapStateStore`), with a hard bound on the number of keys.
//!
//! governor's store inserts every key it sees, so a flood of distinct keys (spoofed forwarded
//! addresses, made-up origins, an IPv6 /64) would grow it without limit between sweeps. This store
//! counts its keys; once `max_keys` are held, a new key is measured against one shared overflow
//! state instead of being inserted, until a sweep (`retain_recent`) drops idle keys and frees room.
//! Keys already held keep their own state, so the flood cannot push out an active client.
//!
//! The GCRA arithmetic stays governor's: this store only decides *which* `InMemoryState` a key's
//! check runs against, and delegates the measurement to it.

use std::hash::{BuildHasher, Hash};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use dashmap::mapref::entry::Entry;
use dashmap::DashMap;
use governor::nanos::Nanos;
use governor::state::keyed::ShrinkableKeyedStateStore;
use governor::state::{InMemoryState, NotKeyed, StateStore};

/// A keyed GCRA state store that never holds more than `max` keys. A cheap handle: the limiter owns
/// one and `RateLimit` keeps a clone to read the counts, which governor does not expose.
#[derive(Debug)]
pub(crate) struct BoundedStore<K: Hash + Eq, S: BuildHasher + Clone>(Arc<Inner<K, S>>);

impl<K: Hash + Eq, S: BuildHasher + Clone> Clone for BoundedStore<K, S> {
    fn clone(&self) -> Self {
        BoundedStore(Arc::clone(&self.0))
    }
}

#[derive(Debug)]
struct Inner<K: Hash + Eq, S: BuildHasher + Clone> {
    map: DashMap<K, InMemoryState, S>,
    /// Keys in `map`, counted by this store (a `DashMap::len` would read-lock every shard). Taken
    /// before an insert, so concurrent inserts can never overshoot `max`.
    held: AtomicUsize,
    max: usize,
    /// The one state every key beyond `max` shares until a sweep frees room.
    overflow: InMemoryState,
    /// Checks that went to `overflow` since the store was built.
    overflowed: AtomicUsize,
}

impl<K: Hash + Eq, S: BuildHasher + Clone> BoundedStore<K, S> {
    pub(crate) fn new(max: usize, hasher: S) -> Self {
        BoundedStore(Arc::new(Inner {
            map: DashMap::with_hasher(hasher),
            held: AtomicUsize::new(0),
            max,
            overflow: InMemoryState::default(),
            overflowed: AtomicUsize::new(0),
        }))
    }

    /// Keys held now.
    pub(crate) fn held(&self) -> usize {
        self.0.held.load(Ordering::Relaxed)
    }

    /// Checks measured against the shared overflow state so far.
    pub(crate) fn overflowed(&self) -> usize {
        self.0.overflowed.load(Ordering::Relaxed)
    }
}

impl<K: Hash + Eq, S: BuildHasher + Clone> Inner<K, S> {
    /// Claim a slot for a new key, or `false` when the bound is reached.
    fn claim(&self) -> bool {
        self.held
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |n| {
                (n < self.max).then_some(n + 1)
            })
            .is_ok()
    }
}

impl<K: Hash + Eq + Clone, S: BuildHasher + Clone> StateStore for BoundedStore<K, S> {
    type Key = K;

    fn measure_and_replace<T, F, E>(&self, key: &K, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        let this = &*self.0;
        // Fast path, as governor's own DashMap store: a shard read lock and one atomic update.
        if let Some(state) = this.map.get(key) {
            return state.measure_and_replace(&NotKeyed::NonKey, f);
        }
        if !this.claim() {
            this.overflowed.fetch_add(1, Ordering::Relaxed);
            return this.overflow.measure_and_replace(&NotKeyed::NonKey, f);
        }
        match this.map.entry(key.clone()) {
            Entry::Occupied(e) => {
                // Another request inserted it between the read and the write lock.
                this.held.fetch_sub(1, Ordering::AcqRel);
                e.get().measure_and_replace(&NotKeyed::NonKey, f)
            }
            Entry::Vacant(e) => e
                .insert(InMemoryState::default())
                .measure_and_replace(&NotKeyed::NonKey, f),
        }
    }
}

impl<K: Hash + Eq + Clone, S: BuildHasher + Clone> ShrinkableKeyedStateStore<K>
    for BoundedStore<K, S>
{
    fn retain_recent(&self, drop_below: Nanos) {
        let drop_below = u64::from(drop_below);
        let mut dropped = 0;
        self.0.map.retain(|_, state| {
            let keep = theoretical_arrival(state) > drop_below;
            dropped += usize::from(!keep);
            keep
        });
        self.0.held.fetch_sub(dropped, Ordering::AcqRel);
    }

    fn shrink_to_fit(&self) {
        self.0.map.shrink_to_fit();
    }

    fn len(&self) -> usize {
        self.held()
    }

    fn is_empty(&self) -> bool {
        self.held() == 0
    }
}

/// A state's theoretical arrival time, in nanoseconds since the limiter's start (0 = never used).
/// Read through the public `StateStore` contract: a measurement that refuses never writes, so
/// handing the old value back as the refusal reads it without changing it.
fn theoretical_arrival(state: &InMemoryState) -> u64 {
    let read: Result<((), Nanos), Option<Nanos>> =
        state.measure_and_replace(&NotKeyed::NonKey, Err);
    match read {
        Err(tat) => tat.map_or(0, u64::from),
        Ok(_) => 0,
    }
}
