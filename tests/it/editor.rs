//! Editor and shell integration through the real binary: `corsgate schema` against the committed
//! copy, the fixtures and broken configs; `corsgate completions SHELL` and `corsgate manpage`; and the
//! Grafana dashboard against the `/metrics` of a running corsgate.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod dashboard;
mod schema;
mod shell;

/// Run the real `corsgate` with `args` in the repository root.
fn corsgate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_corsgate"))
        .args(args)
        .env_remove("CORSGATE_CONFIG")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run corsgate")
}

/// `corsgate ARGS`'s stdout, after checking it exited 0.
fn stdout_of(args: &[&str]) -> String {
    let out = corsgate(args);
    assert!(
        out.status.success(),
        "corsgate {args:?} exited {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// A path in the repository.
fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}
