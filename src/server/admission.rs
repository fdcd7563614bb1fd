//! Who gets a connection slot: the per-client-address cap (`max_connections_per_ip`) and the
//! shedding of stalled heads when every `max_connections` slot is taken.
//!
//! Both are touched only when a connection is accepted and when it closes, never per request, so a
//! plain `Mutex` around each map is enough: the critical sections are a hash-map or B-tree update,
//! and accepts are already serialised per listener. The request path reads only the connection's
//! own `Activity` atomics.
//!
//! A *stalled head* is a connection that was accepted and has not yet delivered a complete request
//! head. Every connection is registered as one when it is admitted; the registry is ordered by
//! admission, so its first live entry is the one that has waited longest. An entry is not removed
//! when the head arrives (that would put a lock on the first request); instead the shedder skips,
//! and drops, entries whose `Activity` has seen a request, and the connection removes its own entry
//! when it closes. So the registry never holds more than one entry per open connection.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::{Notify, Semaphore};

use super::Activity;

/// Everything the accept loops consult before a connection is served.
#[derive(Debug)]
pub(crate) struct Admission {
    /// One permit per `max_connections` slot.
    pub(crate) slots: Arc<Semaphore>,
    /// `None` without a per-client cap.
    pub(crate) per_ip: Option<Arc<PerIp>>,
    pub(crate) stalled: Arc<Stalled>,
}

/// Lock a mutex whose data stays consistent even if a holder panicked (every critical section here
/// is a single map operation).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Connections per client address, for `max_connections_per_ip`.
#[derive(Debug)]
pub(crate) struct PerIp {
    cap: u32,
    /// Open connections per address; an address leaves the map when its count reaches zero, so the
    /// map holds at most one entry per open connection.
    counts: Mutex<HashMap<IpAddr, u32>>,
}

impl PerIp {
    /// `None` when `cap` is 0 (no per-client cap).
    pub(crate) fn new(cap: usize) -> Option<Arc<PerIp>> {
        (cap > 0).then(|| {
            Arc::new(PerIp {
                cap: u32::try_from(cap).unwrap_or(u32::MAX),
                counts: Mutex::new(HashMap::new()),
            })
        })
    }

    /// Count one more connection from `ip`, or `None` when `ip` already holds `cap`. The guard gives
    /// the place back when dropped.
    pub(crate) fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<IpPlace> {
        // An IPv4 client on a dual-stack socket is the same client as on an IPv4 socket.
        let ip = ip.to_canonical();
        let mut counts = lock(&self.counts);
        let n = counts.entry(ip).or_insert(0);
        if *n >= self.cap {
            return None;
        }
        *n += 1;
        Some(IpPlace {
            per_ip: Arc::clone(self),
            ip,
        })
    }

    #[cfg(test)]
    fn addresses(&self) -> usize {
        lock(&self.counts).len()
    }
}

/// One connection's place in its address's count.
#[derive(Debug)]
pub(crate) struct IpPlace {
    per_ip: Arc<PerIp>,
    ip: IpAddr,
}

impl Drop for IpPlace {
    fn drop(&mut self) {
        let mut counts = lock(&self.per_ip.counts);
        if let Some(n) = counts.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

/// The connections still waiting for their first request head, oldest first.
#[derive(Debug, Default)]
pub(crate) struct Stalled {
    inner: Mutex<StalledInner>,
}

#[derive(Debug, Default)]
struct StalledInner {
    next: u64,
    /// Keyed by admission order.
    waiting: BTreeMap<u64, Entry>,
}

#[derive(Debug)]
struct Entry {
    activity: Arc<Activity>,
    shed: Arc<Notify>,
}

impl Stalled {
    pub(crate) fn new() -> Arc<Stalled> {
        Arc::default()
    }

    /// Register a newly admitted connection. The registration removes itself when dropped; its
    /// `shed` resolves if the connection is chosen to make room for a newer one.
    pub(crate) fn register(self: &Arc<Self>, activity: &Arc<Activity>) -> Registration {
        let shed = Arc::new(Notify::new());
        let mut inner = lock(&self.inner);
        let id = inner.next;
        inner.next += 1;
        inner.waiting.insert(
            id,
            Entry {
                activity: Arc::clone(activity),
                shed: Arc::clone(&shed),
            },
        );
        Registration {
            stalled: Arc::clone(self),
            id,
            shed,
        }
    }

    /// Whether some registered connection has still not delivered a request head. Entries whose
    /// head has arrived are dropped on the way.
    pub(crate) fn any(&self) -> bool {
        let mut inner = lock(&self.inner);
        while let Some(first) = inner.waiting.first_entry() {
            if !first.get().activity.head_seen() {
                return true;
            }
            first.remove();
        }
        false
    }

    /// Tell the connection that has waited longest for its first request head to close; `false`
    /// when there is none. Connections that have had a request are never chosen (and are dropped
    /// from the registry on the way).
    pub(crate) fn shed_oldest(&self) -> bool {
        let mut inner = lock(&self.inner);
        while let Some((_, entry)) = inner.waiting.pop_first() {
            if !entry.activity.head_seen() {
                // `notify_one` keeps the permit if the connection is not waiting yet.
                entry.shed.notify_one();
                return true;
            }
        }
        false
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        lock(&self.inner).waiting.len()
    }
}

/// A connection's entry in [`Stalled`], for as long as the connection is open.
#[derive(Debug)]
pub(crate) struct Registration {
    stalled: Arc<Stalled>,
    id: u64,
    shed: Arc<Notify>,
}

impl Registration {
    /// Resolves when this connection is shed (a notice sent before this is called still counts).
    pub(crate) fn shed(&self) -> tokio::sync::futures::Notified<'_> {
        self.shed.notified()
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        lock(&self.stalled.inner).waiting.remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::Instant;

    #[test]
    fn per_ip_counts_cap_and_forget_addresses_at_zero() {
        assert!(PerIp::new(0).is_none());
        let per_ip = PerIp::new(2).unwrap();
        let a: IpAddr = "127.0.0.2".parse().unwrap();
        let mapped: IpAddr = "::ffff:127.0.0.2".parse().unwrap();
        let b: IpAddr = "127.0.0.1".parse().unwrap();
        let one = per_ip.admit(a).unwrap();
        let two = per_ip.admit(mapped).unwrap();
        assert!(per_ip.admit(a).is_none(), "a third from the same address");
        let other = per_ip.admit(b).unwrap();
        drop(one);
        let three = per_ip.admit(a).unwrap();
        drop((two, three, other));
        assert_eq!(per_ip.addresses(), 0);
    }

    #[tokio::test]
    async fn the_oldest_stalled_head_is_shed_and_served_ones_never() {
        let stalled = Stalled::new();
        let served = Activity::new(Instant::now());
        let old = Activity::new(Instant::now());
        let young = Activity::new(Instant::now());
        let r_served = stalled.register(&served);
        let r_old = stalled.register(&old);
        let r_young = stalled.register(&young);
        let _request = served.request();
        assert!(stalled.any());
        assert!(stalled.shed_oldest());
        // The permit is stored: the shed connection sees it even if it starts waiting later.
        tokio::time::timeout(std::time::Duration::from_secs(1), r_old.shed())
            .await
            .expect("the oldest stalled head was not told to close");
        drop(r_old);
        let _request = young.request();
        assert!(!stalled.any());
        assert!(!stalled.shed_oldest());
        drop((r_served, r_young));
        assert_eq!(stalled.len(), 0);
    }
}
