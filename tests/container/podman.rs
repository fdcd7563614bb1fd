//! podman from the container test: the command line, one attached `podman run` with its output
//! read line by line, cleanup of what a run created, and the uid a container's process runs as.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Container start, reload and stop may each take this long before the test fails.
const CONTAINER_PATIENCE: Duration = Duration::from_secs(60);
/// `podman run` flags: these machines refuse runc's default rlimits.
const LIMITS: [&str; 4] = [
    "--ulimit",
    "nofile=1024:1024",
    "--ulimit",
    "nproc=1024:1024",
];

/// The podman command line (program and global flags).
pub struct Podman(pub Vec<String>);

impl Podman {
    /// From `CORSGATE_PODMAN`, else the flags these machines need. Panics if podman does not run:
    /// this test is only selected when the caller asked for it.
    pub fn from_env() -> Podman {
        let line = std::env::var("CORSGATE_PODMAN")
            .unwrap_or_else(|_| "podman --runtime runc --cgroup-manager=cgroupfs".into());
        let podman = Podman(line.split_whitespace().map(String::from).collect());
        match podman.cmd().arg("--version").output() {
            Ok(out) if out.status.success() => podman,
            other => panic!(
                "`{line} --version` failed ({other:?}): this test needs podman and runc \
                 (apt-get install podman runc), or CORSGATE_PODMAN set to a working podman"
            ),
        }
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(&self.0[0]);
        c.args(&self.0[1..]);
        c
    }

    /// Run `podman ARGS` to completion; panics with its output unless it succeeds.
    pub fn ok(&self, args: &[&str]) -> String {
        let mut cmd = self.cmd();
        match args.split_first() {
            // These machines refuse the default rlimits; every container gets these.
            Some((&"run", rest)) => cmd.arg("run").args(LIMITS).args(rest),
            _ => cmd.args(args),
        };
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "podman {args:?} failed: {}",
            show(&out)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

fn show(out: &Output) -> String {
    format!(
        "{}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Removes what the test created, whatever happened: its containers, then its image.
pub struct Cleanup<'a> {
    pub podman: &'a Podman,
    pub image: String,
    pub containers: Vec<String>,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        for name in &self.containers {
            let _ = self
                .podman
                .cmd()
                .args(["rm", "-f", "-t", "0", name])
                .output();
        }
        let _ = self.podman.cmd().args(["rmi", "-f", &self.image]).output();
    }
}

/// A running `podman run` (attached), with its output arriving line by line.
pub struct Container {
    name: String,
    child: Child,
    lines: mpsc::Receiver<String>,
    /// Every line read so far, for failure messages.
    pub seen: Vec<String>,
}

impl Container {
    /// `podman run --name NAME EXTRA... IMAGE`, attached, stdout and stderr both read.
    pub fn run(podman: &Podman, name: &str, extra: &[&str], image: &str) -> Container {
        let mut child = podman
            .cmd()
            .args(["run", "--name", name])
            .args(LIMITS)
            .args(extra)
            .arg(image)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = mpsc::channel();
        forward(child.stdout.take().unwrap(), tx.clone());
        forward(child.stderr.take().unwrap(), tx);
        Container {
            name: name.to_owned(),
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Wait for a line containing `needle`; returns it.
    pub fn expect_line(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + CONTAINER_PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "container {} printed no line with {needle:?}; exit: {:?}; output:\n{}",
                    self.name,
                    self.child.try_wait(),
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// Wait for `podman run` to return; its exit code is the container's.
    pub fn wait(&mut self) -> Option<i32> {
        let deadline = Instant::now() + CONTAINER_PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(Instant::now() < deadline, "podman run did not return");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn forward(from: impl Read + Send + 'static, to: mpsc::Sender<String>) {
    std::thread::spawn(move || {
        for line in BufReader::new(from).lines().map_while(Result::ok) {
            if to.send(line).is_err() {
                return;
            }
        }
    });
}

/// The real and effective uid and gid of the container's main process, as the container sees them
/// (scratch has no `ps` for `podman top`, so read /proc on the host and undo the user namespace's map).
pub fn container_ids(podman: &Podman, name: &str) -> [u32; 4] {
    let pid = podman.ok(&["inspect", "--format", "{{.State.Pid}}", name]);
    let proc = PathBuf::from(format!("/proc/{}", pid.trim()));
    let status = std::fs::read_to_string(proc.join("status")).unwrap();
    let field = |key: &str| -> Vec<u32> {
        let line = status.lines().find_map(|l| l.strip_prefix(key)).unwrap();
        line.split_whitespace()
            .map(|v| v.parse().unwrap())
            .collect()
    };
    let inside = |map: &str, host: u32| -> u32 {
        let map = std::fs::read_to_string(proc.join(map)).unwrap();
        map.lines()
            .map(|l| {
                l.split_whitespace()
                    .map(|v| v.parse::<u64>().unwrap())
                    .collect::<Vec<_>>()
            })
            .find(|m| (m[1]..m[1] + m[2]).contains(&u64::from(host)))
            .map(|m| (u64::from(host) - m[1] + m[0]) as u32)
            .unwrap_or_else(|| panic!("{host} is not mapped in {map}"))
    };
    let (uid, gid) = (field("Uid:"), field("Gid:"));
    [
        inside("uid_map", uid[0]),
        inside("gid_map", gid[0]),
        inside("uid_map", uid[1]),
        inside("gid_map", gid[1]),
    ]
}
