//! A small WebDriver BiDi driver for the browser tests: launch Debian's headless `firefox-esr` with a
//! throwaway profile, open tabs, run script in them and watch their network traffic.
//!
//! Hand-written over tokio-tungstenite rather than a crate: the Rust BiDi clients we found
//! (`webdriverbidi` 0.2, `thirtyfour`'s `bidi` feature) open their session through a WebDriver
//! classic HTTP server (geckodriver) and cannot attach to the endpoint that Firefox's own
//! `--remote-debugging-port` serves; and the half-dozen commands used here fit in three small files,
//! shaped like the Chromium driver next door.
//!
//! Every await has a timeout, and the browser (its whole process group) is killed when the
//! `Browser` is dropped.
#![allow(dead_code)]

mod connection;
pub mod page;
mod prefs;

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;

pub use page::Page;

use crate::events::lock;
use connection::Connection;

/// Where Debian installs Firefox ESR; `CORSGATE_FIREFOX` overrides it.
pub const DEFAULT_FIREFOX: &str = "/usr/bin/firefox-esr";

/// How long Firefox may take to print its BiDi endpoint (a fresh profile is created on first run).
const LAUNCH_TIMEOUT: Duration = Duration::from_secs(60);

/// The events every tab records (`session.subscribe`, for all contexts).
const EVENTS: [&str; 6] = [
    "browsingContext.load",
    "log.entryAdded",
    "network.beforeRequestSent",
    "network.responseStarted",
    "network.responseCompleted",
    "network.fetchError",
];

/// What went wrong driving the browser.
#[derive(Debug, thiserror::Error)]
pub enum BidiError {
    /// No Firefox binary where we looked.
    #[error("firefox not found at {0} (install Debian's `firefox-esr` or set CORSGATE_FIREFOX)")]
    NoFirefox(PathBuf),
    /// Spawning or talking to the process failed.
    #[error("firefox process: {0}")]
    Process(String),
    /// The BiDi websocket failed.
    #[error("bidi websocket: {0}")]
    Socket(String),
    /// The browser closed the connection.
    #[error("bidi connection closed")]
    Closed,
    /// A command returned a protocol error.
    #[error("bidi protocol error: {0}")]
    Protocol(String),
    /// Script threw, or a navigation failed.
    #[error("page: {0}")]
    Page(String),
    /// Something did not happen in time.
    #[error("timed out {0}")]
    Timeout(String),
}

impl From<crate::events::TimedOut> for BidiError {
    fn from(t: crate::events::TimedOut) -> BidiError {
        BidiError::Timeout(t.0)
    }
}

impl BidiError {
    fn context(self, what: &str) -> BidiError {
        match self {
            BidiError::Protocol(m) => BidiError::Protocol(format!("{what}: {m}")),
            other => other,
        }
    }
}

/// A running headless Firefox with a fresh profile and one BiDi session.
pub struct Browser {
    child: Child,
    conn: Option<Arc<Connection>>,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
    version: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Launch Firefox (`CORSGATE_FIREFOX` or [`DEFAULT_FIREFOX`]), open a session, subscribe.
    pub async fn launch() -> Result<Browser, BidiError> {
        let path = std::env::var_os("CORSGATE_FIREFOX")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_FIREFOX));
        if !path.is_file() {
            return Err(BidiError::NoFirefox(path));
        }
        let profile = tempfile::tempdir().map_err(|e| BidiError::Process(e.to_string()))?;
        std::fs::write(profile.path().join("user.js"), prefs::USER_JS)
            .map_err(|e| BidiError::Process(format!("write user.js: {e}")))?;
        let mut child = Command::new(&path)
            .args(["--headless", "--no-remote", "--remote-debugging-port=0"])
            .arg("--profile")
            .arg(profile.path())
            .arg("about:blank")
            // Remote Settings: with this set, `services.settings.server` (pointed at a closed
            // loopback port in user.js) is honoured instead of the built-in Mozilla server.
            .env("MOZ_REMOTE_SETTINGS_DEVTOOLS", "1")
            .env("MOZ_CRASHREPORTER_DISABLE", "1")
            .env("MOZ_DISABLE_AUTO_SAFE_MODE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            // Its own process group, so Drop takes the content processes down with it.
            .process_group(0)
            .spawn()
            .map_err(|e| BidiError::Process(format!("spawn {}: {e}", path.display())))?;
        let stderr = child.stderr.take();
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        // From here on the guard owns the process: every early return below kills it.
        let mut browser = Browser {
            child,
            conn: None,
            stderr_tail: Arc::clone(&tail),
            version: String::new(),
            _profile: profile,
        };
        let stderr = stderr.ok_or_else(|| BidiError::Process("no stderr pipe".into()))?;
        let (url_tx, url_rx) = tokio::sync::oneshot::channel();
        // A plain thread, as for Chromium: the reads block for the browser's whole life.
        std::thread::spawn(move || drain_stderr(stderr, tail, url_tx));
        let ws_url = match tokio::time::timeout(LAUNCH_TIMEOUT, url_rx).await {
            Ok(Ok(url)) => format!("{url}/session"),
            Ok(Err(_)) => {
                return Err(BidiError::Process(format!(
                    "exited before printing its BiDi URL; stderr:\n{}",
                    browser.stderr_tail()
                )))
            }
            Err(_) => {
                return Err(BidiError::Timeout(format!(
                    "waiting for `WebDriver BiDi listening on`; stderr:\n{}",
                    browser.stderr_tail()
                )))
            }
        };
        let conn = Connection::connect(&ws_url).await?;
        let session = conn
            .call("session.new", json!({ "capabilities": {} }))
            .await?;
        browser.version = session["capabilities"]["browserVersion"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        conn.call("session.subscribe", json!({ "events": EVENTS }))
            .await?;
        browser.conn = Some(Arc::new(conn));
        Ok(browser)
    }

    fn conn(&self) -> Result<&Arc<Connection>, BidiError> {
        self.conn.as_ref().ok_or(BidiError::Closed)
    }

    /// Open a new tab on `about:blank`, recording its events.
    pub async fn new_page(&self) -> Result<Page, BidiError> {
        let conn = self.conn()?;
        let created = conn
            .call("browsingContext.create", json!({ "type": "tab" }))
            .await?;
        let context = created["context"]
            .as_str()
            .ok_or_else(|| BidiError::Protocol(format!("browsingContext.create: {created}")))?;
        Ok(Page::new(Arc::clone(conn), context.to_owned()))
    }

    /// The version `session.new` reported, e.g. `140.10.2`.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The last lines Firefox wrote to stderr (for failure messages).
    pub fn stderr_tail(&self) -> String {
        lock(&self.stderr_tail)
            .iter()
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The group id is the browser's pid (process_group(0)); this reaches every content process
        // it forked, which a kill of the parent alone can leave behind.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Read Firefox's stderr for the whole run: hand over the BiDi URL, keep the last lines, and never
/// let the pipe fill up (a full pipe would stall the browser).
fn drain_stderr(
    stderr: std::process::ChildStderr,
    tail: Arc<Mutex<VecDeque<String>>>,
    url_tx: tokio::sync::oneshot::Sender<String>,
) {
    let mut url_tx = Some(url_tx);
    for line in BufReader::new(stderr).lines() {
        let Ok(line) = line else { break };
        if let Some(rest) = line.split("WebDriver BiDi listening on ").nth(1) {
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
