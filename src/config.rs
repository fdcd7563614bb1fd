//! The config file: `raw` mirrors the TOML, `compile` validates it into a `Snapshot`, and
//! `diagnostic` renders every problem as FILE:LINE:COL; `schema` derives the file's JSON Schema.

mod compile;
pub(crate) mod diagnostic;
pub(crate) mod file;
pub(crate) mod raw;
pub(crate) mod schema;

use std::path::{Path, PathBuf};

pub use diagnostic::{Diagnostic, Severity};

use crate::snapshot::Snapshot;
use diagnostic::Diagnostics;

/// A compiled config and the warnings it produced.
#[derive(Debug)]
pub struct Loaded {
    /// The compiled snapshot.
    pub snapshot: Snapshot,
    /// Warnings, rendered as `FILE:LINE:COL: warning: message` (printed, never fatal).
    pub warnings: Vec<String>,
}

/// Every problem in a config file that did not compile: its errors, and the warnings found on the
/// way, each located, sorted by position. Displayed as one `FILE:LINE:COL: error: message` line per
/// error.
#[derive(Debug, thiserror::Error)]
#[error("{}", self.errors().join("\n"))]
pub struct ConfigError {
    path: PathBuf,
    diagnostics: Vec<Diagnostic>,
}

impl ConfigError {
    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every diagnostic, errors and warnings, sorted by position.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        &self.diagnostics
    }

    /// The errors, rendered as `FILE:LINE:COL: error: message`.
    pub fn errors(&self) -> Vec<String> {
        self.rendered(Severity::Error)
    }

    /// The warnings, rendered as `FILE:LINE:COL: warning: message`.
    pub fn warnings(&self) -> Vec<String> {
        self.rendered(Severity::Warning)
    }

    fn rendered(&self, severity: Severity) -> Vec<String> {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == severity)
            .map(|d| d.render(&self.path))
            .collect()
    }
}

/// Read and compile a config file. Relative paths inside resolve against its directory.
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    let read = file::read_bounded(path, file::MAX_CONFIG_BYTES)
        .map_err(|e| e.to_string())
        .and_then(|bytes| String::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_owned()));
    match read {
        Ok(text) => load_str(&text, path),
        Err(e) => Err(ConfigError {
            path: path.to_path_buf(),
            diagnostics: vec![Diagnostic {
                line: 1,
                col: 1,
                severity: Severity::Error,
                message: format!("cannot read the config: {e}"),
            }],
        }),
    }
}

/// Compile config text as if read from `path`.
pub fn load_str(text: &str, path: &Path) -> Result<Loaded, ConfigError> {
    let mut d = Diagnostics::new(text);
    let base = path.parent().unwrap_or(Path::new("."));
    let snapshot = match toml::from_str::<raw::RawConfig>(text) {
        Ok(raw) => compile::compile(raw, path, base, &mut d),
        Err(e) => {
            let span = e.span().unwrap_or(0..0);
            d.serde_error(span, e.message());
            None
        }
    };
    let diagnostics = d.into_sorted();
    let failed = diagnostics.iter().any(|x| x.severity == Severity::Error);
    match snapshot {
        Some(snapshot) if !failed => Ok(Loaded {
            snapshot,
            warnings: diagnostics.iter().map(|w| w.render(path)).collect(),
        }),
        _ => Err(ConfigError {
            path: path.to_path_buf(),
            diagnostics,
        }),
    }
}
