//! `LogLimiter`: at most N log lines per one-second window, lock-free, so that a client spraying
//! random origins cannot flood the log. What it holds back is counted and handed to the next line
//! that is let through, which reports "suppressed K ..." once.

use std::sync::atomic::{AtomicU64, Ordering};

/// A per-route (or per-upstream) budget of log lines per second.
#[derive(Debug)]
pub(crate) struct LogLimiter {
    per_window: u32,
    /// The current window (seconds since the observer's epoch) in the high 32 bits, lines logged in
    /// it in the low 32 bits; one word so that a compare-exchange moves both together.
    state: AtomicU64,
    /// Lines held back since the last line that was let through.
    suppressed: AtomicU64,
}

/// What the caller should do with one line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Admit {
    /// Write it; `suppressed` lines were held back before it (write a summary first when > 0).
    Log {
        /// Lines suppressed since the last line let through.
        suppressed: u64,
    },
    /// Drop it (it has been counted).
    Suppress,
}

impl LogLimiter {
    /// At most `per_window` lines a second; 0 suppresses every line.
    pub(crate) fn new(per_window: u32) -> LogLimiter {
        LogLimiter {
            per_window,
            state: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// Decide about one line at `now_sec` (whole seconds on a monotonic clock).
    pub(crate) fn admit(&self, now_sec: u64) -> Admit {
        if self.per_window == 0 {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            return Admit::Suppress;
        }
        let now = u32::try_from(now_sec).unwrap_or(u32::MAX);
        let mut current = self.state.load(Ordering::Relaxed);
        loop {
            let (window, count) = unpack(current);
            // A thread that read the clock just before another one rolled the window over still
            // counts against the newer window, instead of rolling it back.
            if now <= window && current != 0 {
                if count >= self.per_window {
                    self.suppressed.fetch_add(1, Ordering::Relaxed);
                    return Admit::Suppress;
                }
                match self.state.compare_exchange_weak(
                    current,
                    pack(window, count + 1),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => return Admit::Log { suppressed: 0 },
                    Err(actual) => current = actual,
                }
            } else {
                match self.state.compare_exchange(
                    current,
                    pack(now, 1),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        let suppressed = self.suppressed.swap(0, Ordering::Relaxed);
                        return Admit::Log { suppressed };
                    }
                    Err(actual) => current = actual,
                }
            }
        }
    }
}

fn pack(window: u32, count: u32) -> u64 {
    (u64::from(window) << 32) | u64::from(count)
}

fn unpack(state: u64) -> (u32, u32) {
    ((state >> 32) as u32, state as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lets_n_lines_through_per_second_then_reports_the_suppressed_count_once() {
        let l = LogLimiter::new(3);
        for _ in 0..3 {
            assert_eq!(l.admit(0), Admit::Log { suppressed: 0 });
        }
        for _ in 0..5 {
            assert_eq!(l.admit(0), Admit::Suppress);
        }
        assert_eq!(l.admit(1), Admit::Log { suppressed: 5 });
        assert_eq!(l.admit(1), Admit::Log { suppressed: 0 });
        assert_eq!(l.admit(7), Admit::Log { suppressed: 0 });
    }

    #[test]
    fn a_late_clock_reading_does_not_roll_the_window_back() {
        let l = LogLimiter::new(1);
        assert_eq!(l.admit(5), Admit::Log { suppressed: 0 });
        assert_eq!(l.admit(4), Admit::Suppress);
        assert_eq!(l.admit(6), Admit::Log { suppressed: 1 });
    }

    #[test]
    fn zero_budget_suppresses_everything() {
        let l = LogLimiter::new(0);
        assert_eq!(l.admit(0), Admit::Suppress);
        assert_eq!(l.admit(9), Admit::Suppress);
    }

    #[test]
    fn concurrent_callers_never_exceed_the_budget() {
        let l = std::sync::Arc::new(LogLimiter::new(10));
        let logged: u64 = (0..4)
            .map(|_| {
                let l = l.clone();
                std::thread::spawn(move || {
                    (0..1000)
                        .filter(|_| matches!(l.admit(3), Admit::Log { .. }))
                        .count() as u64
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .sum();
        assert_eq!(logged, 10);
        assert_eq!(l.admit(4), Admit::Log { suppressed: 3990 });
    }
}
