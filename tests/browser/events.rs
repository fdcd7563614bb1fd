//! The event log both drivers record protocol events into: every event of one page, in arrival
//! order, with a wake-up so a test can wait (with a deadline) for the one it needs.

use std::sync::Mutex;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::Notify;

/// One protocol event (a CDP `method`, or a BiDi event `method`) with its parameters.
#[derive(Clone, Debug)]
pub struct Event {
    /// e.g. `Network.requestWillBeSent` or `network.beforeRequestSent`.
    pub method: String,
    /// The event's parameters.
    pub params: Value,
}

/// No matching event arrived before the deadline; says what was awaited.
#[derive(Debug)]
pub struct TimedOut(pub String);

/// Every event of one page, in arrival order, with a wake-up for waiters.
#[derive(Debug, Default)]
pub struct EventLog {
    events: Mutex<Vec<Event>>,
    notify: Notify,
}

impl EventLog {
    /// Record one event and wake every waiter.
    pub fn push(&self, e: Event) {
        lock(&self.events).push(e);
        self.notify.notify_waiters();
    }

    /// How many events have arrived so far (a mark for `wait_for`).
    pub fn len(&self) -> usize {
        lock(&self.events).len()
    }

    /// A copy of every event so far.
    pub fn snapshot(&self) -> Vec<Event> {
        lock(&self.events).clone()
    }

    /// Wait until an event at index `from` or later satisfies `pred`, and return it.
    pub async fn wait_for(
        &self,
        from: usize,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&Event) -> bool,
    ) -> Result<Event, TimedOut> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Register interest before looking, so an event pushed in between still wakes us.
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(e) = lock(&self.events).iter().skip(from).find(|e| pred(e)) {
                return Ok(e.clone());
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Err(TimedOut(format!("waiting for {what}")));
            }
        }
    }
}

/// Lock a mutex even if a panicking test thread poisoned it: the data is plain event records.
pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
