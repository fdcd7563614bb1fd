//! `watch_config`: reload when the config file's content changes.
//!
//! The directory is watched, not the file's inode: Kubernetes mounts a ConfigMap key as a symlink into
//! a `..data` directory that is swapped atomically, and editors write a temporary file and rename it
//! over the original. Both replace the inode, which an inode watch would lose. Events are debounced and
//! a reload is triggered only when the bytes behind the path actually changed, so the temporary
//! file of a write-then-rename never causes a reload of a half-written config.

use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

/// Quiet time after the last event before the file is read.
const DEBOUNCE: Duration = Duration::from_millis(250);

/// Start watching `config`'s directory; send one trigger per settled content change.
pub(super) fn spawn(config: &Path, reload: mpsc::Sender<&'static str>) -> std::io::Result<()> {
    let config = std::path::absolute(config)?;
    let dir = config
        .parent()
        .map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        // Any event in the directory may have changed what the path resolves to.
        let _ = tx.send(event.is_ok());
    })
    .map_err(std::io::Error::other)?;
    watcher
        .watch(&dir, RecursiveMode::NonRecursive)
        .map_err(std::io::Error::other)?;
    let mut last = read_config(&config);
    tokio::spawn(async move {
        // The watcher lives as long as this task.
        let _watcher = watcher;
        while rx.recv().await.is_some() {
            // Debounce: wait until the directory has been quiet for DEBOUNCE.
            loop {
                match tokio::time::timeout(DEBOUNCE, rx.recv()).await {
                    Ok(Some(_)) => continue,
                    Ok(None) => return,
                    Err(_) => break,
                }
            }
            let path = config.clone();
            let now = tokio::task::spawn_blocking(move || read_config(&path))
                .await
                .ok()
                .flatten();
            if now.is_some() && now != last {
                last = now;
                if reload.send("file change").await.is_err() {
                    return;
                }
            }
        }
    });
    tracing::info!(target: "corsgate::reload", dir = %dir.display(), "watching the config directory");
    Ok(())
}

/// The config's bytes, to tell a real change from a touch; through the same bound as every other
/// config read, so a config path swapped for a device cannot stall or abort the watcher.
fn read_config(path: &Path) -> Option<Vec<u8>> {
    crate::config::file::read_bounded(path, crate::config::file::MAX_CONFIG_BYTES).ok()
}
