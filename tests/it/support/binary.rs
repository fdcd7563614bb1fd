//! The real `corsgate` binary as a child process.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::PATIENCE;

/// The real `corsgate` binary as a child process, on the addresses it prints.
pub struct Binary {
    child: Child,
    /// Its first listener.
    pub addr: SocketAddr,
    /// Every listener, in `server.listen` order.
    pub addrs: Vec<SocketAddr>,
    _config: tempfile::NamedTempFile,
}

impl Binary {
    /// Write `toml` to a temp file, run `corsgate run -c FILE`, and wait for its listening line.
    pub fn start(toml: &str) -> Binary {
        Binary::start_with_listeners(toml, 1)
    }

    /// As [`Binary::start`], for a config with `listeners` addresses in `server.listen`.
    pub fn start_with_listeners(toml: &str, listeners: usize) -> Binary {
        let mut config = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
        std::io::Write::write_all(&mut config, toml.as_bytes()).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_corsgate"))
            .arg("run")
            .arg("-c")
            .arg(config.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(a) = line.strip_prefix("corsgate: listening on http://") {
                    let _ = tx.send(a.parse::<SocketAddr>().unwrap());
                }
            }
        });
        let mut addrs = Vec::with_capacity(listeners);
        while addrs.len() < listeners {
            match rx.recv_timeout(PATIENCE) {
                Ok(addr) => addrs.push(addr),
                Err(_) => {
                    let _ = child.kill();
                    panic!(
                        "corsgate printed {} of {listeners} listening lines",
                        addrs.len()
                    );
                }
            }
        }
        Binary {
            child,
            addr: addrs[0],
            addrs,
            _config: config,
        }
    }

    /// `http://ADDR{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The child's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Send a signal by name (`TERM`, `INT`, `HUP`).
    pub fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{name} failed");
    }

    /// Resident memory in KiB (`VmRSS` from /proc/PID/status).
    pub fn rss_kib(&self) -> u64 {
        self.proc_status_kib("VmRSS:")
    }

    /// The peak resident memory so far in KiB (`VmHWM`).
    pub fn peak_rss_kib(&self) -> u64 {
        self.proc_status_kib("VmHWM:")
    }

    fn proc_status_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {field} line in /proc/PID/status"))
    }

    /// Wait for the process to exit (at most `limit`); returns its exit code.
    pub fn wait(&mut self, limit: Duration) -> Option<i32> {
        let deadline = std::time::Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "corsgate did not exit in {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
