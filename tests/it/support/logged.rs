//! The real binary on a config file the test owns, with its stderr log lines captured: for tests
//! that rewrite the file and wait for the reload's own log line rather than guessing with sleeps.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;

use super::PATIENCE;

/// `corsgate run -c FILE` as a child; stderr lines arrive on a channel.
pub struct Logged {
    child: Child,
    /// The first listener.
    pub addr: SocketAddr,
    /// `http` or `https`, as printed in the listening line.
    pub scheme: String,
    logs: mpsc::Receiver<String>,
}

impl Logged {
    /// Start on `config` (the test keeps the file) and wait for the listening line.
    pub fn start(config: &Path) -> Logged {
        let mut child = Command::new(env!("CARGO_BIN_EXE_corsgate"))
            .args(["run", "-c"])
            .arg(config)
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (addr_tx, addr_rx) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("corsgate: listening on ") {
                    if let Some((scheme, addr)) = rest.split_once("://") {
                        let _ = addr_tx.send((scheme.to_owned(), addr.parse().unwrap()));
                    }
                }
            }
        });
        let (log_tx, logs) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = log_tx.send(line);
            }
        });
        let (scheme, addr) = match addr_rx.recv_timeout(PATIENCE) {
            Ok(first) => first,
            Err(_) => {
                let _ = child.kill();
                let logs: Vec<String> = logs.try_iter().collect();
                panic!("corsgate did not print its listening line; stderr: {logs:#?}");
            }
        };
        Logged {
            child,
            addr,
            scheme,
            logs,
        }
    }

    /// Send SIGHUP and wait for the reload's outcome line; returns every line up to it.
    pub fn hup(&self) -> (bool, Vec<String>) {
        let ok = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -HUP failed");
        self.reload_outcome()
    }

    /// Wait for the next "config reloaded" (true) or "config reload rejected" (false) line.
    pub fn reload_outcome(&self) -> (bool, Vec<String>) {
        let mut seen = Vec::new();
        loop {
            let line = self
                .logs
                .recv_timeout(PATIENCE)
                .unwrap_or_else(|_| panic!("no reload outcome; logs so far: {seen:#?}"));
            let done = if line.contains("config reloaded") {
                Some(true)
            } else if line.contains("config reload rejected") {
                Some(false)
            } else {
                None
            };
            seen.push(line);
            if let Some(ok) = done {
                return (ok, seen);
            }
        }
    }

    /// Send SIGTERM, wait for the process to exit, and return its exit code and every stderr line
    /// not yet consumed by [`Logged::reload_outcome`] (the stream ends when the process does).
    pub fn terminate(mut self) -> (Option<i32>, Vec<String>) {
        let ok = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -TERM failed");
        let mut lines = Vec::new();
        loop {
            match self.logs.recv_timeout(PATIENCE) {
                Ok(line) => lines.push(line),
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    panic!("stderr still open {PATIENCE:?} after SIGTERM: {lines:#?}")
                }
            }
        }
        let code = self.child.wait().unwrap().code();
        (code, lines)
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Logged {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Replace `path` atomically, as careful tooling does.
pub fn replace(path: &std::path::Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}
