//! A small Chrome DevTools Protocol driver for the browser tests: launch Debian's headless Chromium
//! with a throwaway profile, open pages, run script in them and watch their network traffic.
//!
//! `tests/browser.rs` includes it as `cdp`; `engine.rs` puts it behind the engine-neutral `Page`.
//! Every await has a timeout, and the browser (its whole process group) is killed when the
//! `Browser` is dropped.
#![allow(dead_code)]

mod connection;
mod page;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};

#[allow(unused_imports)]
pub use connection::{Event, EventLog};
#[allow(unused_imports)]
pub use page::{FailedRequest, Page, SeenRequest};

use connection::{lock, Connection};

/// Where Debian installs Chromium; `CORSGATE_CHROMIUM` overrides it.
pub const DEFAULT_CHROMIUM: &str = "/usr/bin/chromium";

/// How long Chromium may take to print its DevTools endpoint (generous: on a loaded two-core CI box
/// with both engines' suites running, 30 s was seen to run out).
const LAUNCH_TIMEOUT: Duration = Duration::from_secs(60);

/// What went wrong driving the browser.
#[derive(Debug, thiserror::Error)]
pub enum CdpError {
    /// No Chromium binary where we looked.
    #[error("chromium not found at {0} (install Debian's `chromium` or set CORSGATE_CHROMIUM)")]
    NoChromium(PathBuf),
    /// Spawning or talking to the process failed.
    #[error("chromium process: {0}")]
    Process(String),
    /// The DevTools websocket failed.
    #[error("devtools websocket: {0}")]
    Socket(String),
    /// The browser closed the connection.
    #[error("devtools connection closed")]
    Closed,
    /// A command returned a protocol error.
    #[error("devtools protocol error: {0}")]
    Protocol(String),
    /// Script threw, or a navigation failed.
    #[error("page: {0}")]
    Page(String),
    /// Something did not happen in time.
    #[error("timed out {0}")]
    Timeout(String),
}

impl From<crate::events::TimedOut> for CdpError {
    fn from(t: crate::events::TimedOut) -> CdpError {
        CdpError::Timeout(t.0)
    }
}

impl CdpError {
    fn context(self, what: &str) -> CdpError {
        match self {
            CdpError::Protocol(m) => CdpError::Protocol(format!("{what}: {m}")),
            other => other,
        }
    }
}

/// A running headless Chromium with a fresh profile.
pub struct Browser {
    child: Child,
    conn: Option<Arc<Connection>>,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Launch Chromium (`CORSGATE_CHROMIUM` or [`DEFAULT_CHROMIUM`]) and connect to it.
    pub async fn launch() -> Result<Browser, CdpError> {
        let path = std::env::var_os("CORSGATE_CHROMIUM")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CHROMIUM));
        if !path.is_file() {
            return Err(CdpError::NoChromium(path));
        }
        let profile = tempfile::tempdir().map_err(|e| CdpError::Process(e.to_string()))?;
        let mut child = Command::new(&path)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-quic",
                "--disable-extensions",
                "--disable-breakpad",
                "--disable-crash-reporter",
                "--remote-debugging-port=0",
                "--remote-debugging-address=127.0.0.1",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            // Its own process group, so Drop can take the renderers and the zygote down with it.
            .process_group(0)
            .spawn()
            .map_err(|e| CdpError::Process(format!("spawn {}: {e}", path.display())))?;
        let stderr = child.stderr.take();
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        // From here on the guard owns the process: every early return below kills it.
        let mut browser = Browser {
            child,
            conn: None,
            stderr_tail: Arc::clone(&tail),
            _profile: profile,
        };
        let stderr = stderr.ok_or_else(|| CdpError::Process("no stderr pipe".into()))?;
        let (url_tx, url_rx) = tokio::sync::oneshot::channel();
        // A plain thread: tokio's `process` feature is not enabled in this crate, and the reads
        // block for the whole life of the browser anyway.
        std::thread::spawn(move || drain_stderr(stderr, tail, url_tx));
        let ws_url = match tokio::time::timeout(LAUNCH_TIMEOUT, url_rx).await {
            Ok(Ok(url)) => url,
            Ok(Err(_)) => {
                return Err(CdpError::Process(format!(
                    "exited before printing its DevTools URL; stderr:\n{}",
                    browser.stderr_tail()
                )))
            }
            Err(_) => {
                return Err(CdpError::Timeout(format!(
                    "waiting for `DevTools listening on`; stderr:\n{}",
                    browser.stderr_tail()
                )))
            }
        };
        browser.conn = Some(Arc::new(Connection::connect(&ws_url).await?));
        Ok(browser)
    }

    fn conn(&self) -> Result<&Arc<Connection>, CdpError> {
        self.conn.as_ref().ok_or(CdpError::Closed)
    }

    /// Open a new tab on `about:blank` with the Page, Runtime and Network domains enabled.
    pub async fn new_page(&self) -> Result<Page, CdpError> {
        let conn = self.conn()?;
        let target = conn
            .call(None, "Target.createTarget", json!({ "url": "about:blank" }))
            .await?;
        let target_id = target["targetId"].as_str().unwrap_or_default().to_owned();
        let attached = conn
            .call(
                None,
                "Target.attachToTarget",
                json!({ "targetId": target_id, "flatten": true }),
            )
            .await?;
        let session = attached["sessionId"]
            .as_str()
            .ok_or_else(|| CdpError::Protocol(format!("attachToTarget: {attached}")))?;
        Page::attach(Arc::clone(conn), session.to_owned(), target_id).await
    }

    /// The last lines Chromium wrote to stderr (for failure messages).
    pub fn stderr_tail(&self) -> String {
        tail_text(&self.stderr_tail)
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The group id is the browser's pid (process_group(0)); this reaches every helper process
        // it forked, which a kill of the browser alone can leave behind.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Read Chromium's stderr for the whole run: hand over the DevTools URL, keep the last lines, and
/// never let the pipe fill up (a full pipe would stall the browser).
fn drain_stderr(
    stderr: std::process::ChildStderr,
    tail: Arc<Mutex<VecDeque<String>>>,
    url_tx: tokio::sync::oneshot::Sender<String>,
) {
    let mut url_tx = Some(url_tx);
    for line in BufReader::new(stderr).lines() {
        let Ok(line) = line else { break };
        if let Some(rest) = line.split("DevTools listening on ").nth(1) {
            if let Some(tx) = url_tx.take() {
                let _ = tx.send(rest.trim().to_owned());
            }
        }
        let mut t = lock(&tail);
        if t.len() == 40 {
            t.pop_front();
        }
        t.push_back(line);
    }
}

fn tail_text(tail: &Mutex<VecDeque<String>>) -> String {
    lock(tail).iter().cloned().collect::<Vec<_>>().join("\n")
}
