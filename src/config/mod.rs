//! The config file: `raw` mirrors the TOML, `compile` validates it into a `Snapshot`, and
//! `diagnostic` renders every problem as FILE:LINE:COL; `schema` derives the file's JSON Schema.

mod compile;
pub(crate) mod diagnostic;
pub(crate) mod file;
pub(crate) mod raw;
pub(crate) mod schema;

use std::path::{Path, PathBuf};

pub(crate) use diagnostic::Severity;

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

/// Every error in a config file, each rendered as `FILE:LINE:COL: error: message`, sorted by position.
#[derive(Debug, thiserror::Error)]
#[error("{}", .errors.join("\n"))]
pub struct ConfigError {
    /// The file.
    pub path: PathBuf,
    /// Rendered errors.
    pub errors: Vec<String>,
    /// Rendered warnings found on the way.
    pub warnings: Vec<String>,
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
            errors: vec![format!(
                "{}:1:1: error: cannot read the config: {e}",
                path.display()
            )],
            warnings: Vec::new(),
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
    let (errors, warnings): (Vec<_>, Vec<_>) = d
        .into_sorted()
        .into_iter()
        .partition(|x| x.severity == Severity::Error);
    let warnings = warnings.iter().map(|w| w.render(path)).collect();
    match snapshot {
        Some(snapshot) if errors.is_empty() => Ok(Loaded { snapshot, warnings }),
        _ => Err(ConfigError {
            path: path.to_path_buf(),
            errors: errors.iter().map(|e| e.render(path)).collect(),
            warnings,
        }),
    }
}
