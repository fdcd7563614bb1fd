//! Editor and shell integration through the real binary: `corsgate schema` against the committed
//! copy, the fixtures and broken configs; `corsgate completions SHELL` and `corsgate manpage`; and the
//! Grafana dashboard against the `/metrics` of a running corsgate.

use std::path::{Path, PathBuf};

mod dashboard;
mod schema;
mod shell;

use crate::cli::corsgate;

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
