//! `check` and `explain`: rendering compiled configs and decisions for people and for JSON.

use std::path::Path;
use std::process::ExitCode;

use crate::cli::ExplainArgs;

/// `corsgate check`.
pub fn check_command(path: &Path) -> ExitCode {
    let _ = path;
    ExitCode::FAILURE
}

/// `corsgate explain`.
pub fn explain_command(path: &Path, args: &ExplainArgs) -> ExitCode {
    let _ = (path, args);
    ExitCode::FAILURE
}
