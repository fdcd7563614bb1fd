//! Listeners and the connection loop (lands with issue 3).

use std::path::Path;

/// Why the server stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Not built yet.
    #[error("`corsgate run` is not implemented yet (issue 3)")]
    NotYet,
}

/// Load the config at `config_path`, bind every listener and serve until SIGTERM/SIGINT.
pub async fn run(config_path: &Path) -> Result<(), ServerError> {
    let _ = config_path;
    Err(ServerError::NotYet)
}
