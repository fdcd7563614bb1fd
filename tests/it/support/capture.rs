//! Log capture: the proxy's own subscriber (the gate's `[log]` settings) writing into memory, as a
//! thread-local default, so a test reads the very lines the binary would print.

use std::sync::{Arc, Mutex};

use serde_json::Value;

use super::Gate;

/// The captured bytes.
#[derive(Clone, Default)]
pub(crate) struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Capture {
    /// Everything captured so far.
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
    /// Every line, parsed: a line that is not one JSON object fails the test.
    pub fn json(&self) -> Vec<Value> {
        self.text()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }
}

/// Capture this thread's log lines with the proxy's own subscriber, configured by the gate's
/// `[log]`, for as long as the guard lives. On the current-thread test runtime the proxy's tasks
/// run on this thread, so the subscriber sees their events.
pub fn capture(gate: &Gate) -> (Capture, tracing::dispatcher::DefaultGuard) {
    let settings = gate.gateway.snapshot().log.clone();
    let cap = Capture::default();
    let writer = cap.clone();
    let dispatch = corsgate::testing::dispatch(&settings, None, false, move || writer.clone())
        .expect("valid filter");
    (cap, tracing::dispatcher::set_default(&dispatch))
}

/// The lines of `target`.
pub fn with_target<'a>(lines: &'a [Value], target: &str) -> Vec<&'a Value> {
    lines.iter().filter(|l| l["target"] == target).collect()
}
