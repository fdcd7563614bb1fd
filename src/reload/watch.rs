//! `watch_config`: reload when the config file's content changes.
//!
//! The directory is watched, not the file's inode: Kubernetes mounts a ConfigMap key as a symlink into
//! a `..data` directory that is swapped atomically, and editors write a temporary file and rename it
//! over the original. Both replace the inode, which an inode watch would lose.
//!
//! Only events that can change what the config path resolves to count (`Resolution`): the file's own
//! name, each directory entry its symlink chain goes through, and `..data`. Everything else in the
//! directory (a log file written there, an editor's swap file) is ignored, so that it can neither
//! postpone a reload nor cause one. Counted events are debounced, with a bound (`settle`): a change is
//! read at most `MAX_WAIT` after its first event even while events keep coming. A reload is triggered
//! only when the bytes behind the path actually changed, so the temporary file of a
//! write-then-rename never causes a reload of a half-written config.

use std::collections::HashSet;
use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Quiet time after the last counted event before the file is read.
const DEBOUNCE: Duration = Duration::from_millis(250);

/// Longest wait between the first counted event and reading the file, however many follow it.
const MAX_WAIT: Duration = Duration::from_secs(1);

/// Symlinks followed at most when resolving the config path (Linux's own limit is 40).
const MAX_HOPS: usize = 40;

/// The ConfigMap volume's pointer to the current data directory; kubelet swaps it by rename.
const CONFIGMAP_DATA: &str = "..data";

/// Start watching `config`'s directory; send one trigger per settled content change.
pub(super) fn spawn(config: &Path, reload: mpsc::Sender<&'static str>) -> std::io::Result<()> {
    let config = std::path::absolute(config)?;
    let dir = config
        .parent()
        .map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
    let resolution = Arc::new(ArcSwap::from_pointee(Resolution::of(&config, &dir)));
    let (tx, mut rx) = mpsc::unbounded_channel();
    let filter = Arc::clone(&resolution);
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        // An error or a rescan request may hide any change, so it counts.
        let counts = event.map_or(true, |e| {
            e.need_rescan() || e.paths.is_empty() || filter.load().affects(&e.paths)
        });
        if counts {
            let _ = tx.send(());
        }
    })
    .map_err(std::io::Error::other)?;
    watcher
        .watch(&dir, RecursiveMode::NonRecursive)
        .map_err(std::io::Error::other)?;
    let mut last = read_config(&config);
    tracing::info!(target: "corsgate::reload", dir = %dir.display(), "watching the config directory");
    tokio::spawn(async move {
        // The watcher lives as long as this task.
        let _watcher = watcher;
        while rx.recv().await.is_some() {
            if !settle(&mut rx, DEBOUNCE, MAX_WAIT).await {
                return;
            }
            // A swap may have moved the path onto new entries (the next `..data` target).
            resolution.store(Arc::new(Resolution::of(&config, &dir)));
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
    Ok(())
}

/// The config's bytes, to tell a real change from a touch; through the same bound as every other
/// config read, so a config path swapped for a device cannot stall or abort the watcher.
fn read_config(path: &Path) -> Option<Vec<u8>> {
    crate::config::file::read_bounded(path, crate::config::file::MAX_CONFIG_BYTES).ok()
}

/// After a first event: wait until `debounce` passes with no further event, or until `max_wait` has
/// passed since the start, whichever is first. False when the event source has closed.
async fn settle(
    rx: &mut mpsc::UnboundedReceiver<()>,
    debounce: Duration,
    max_wait: Duration,
) -> bool {
    let hard = Instant::now() + max_wait;
    loop {
        let quiet = (Instant::now() + debounce).min(hard);
        match tokio::time::timeout_at(quiet, rx.recv()).await {
            Ok(Some(())) if Instant::now() < hard => continue,
            Ok(Some(())) | Err(_) => return true,
            Ok(None) => return false,
        }
    }
}

// === impl Resolution ===

/// The entries of the watched directory that the config path resolves through.
#[derive(Debug, PartialEq, Eq)]
struct Resolution {
    dir: PathBuf,
    names: HashSet<OsString>,
}

impl Resolution {
    /// Follow `config` (inside `dir`) through its symlinks: every entry of `dir` on the way counts,
    /// and so does `..data`, whose swap replaces a ConfigMap's files all at once.
    fn of(config: &Path, dir: &Path) -> Resolution {
        let mut names = HashSet::from([OsString::from(CONFIGMAP_DATA)]);
        let mut next = Some(config.to_path_buf());
        for _ in 0..MAX_HOPS {
            let Some(path) = next.take() else { break };
            let Ok(rest) = path.strip_prefix(dir) else {
                // The chain left the directory: nothing further happens in it.
                break;
            };
            let mut parts = rest.components();
            let Some(Component::Normal(first)) = parts.next() else {
                break;
            };
            names.insert(first.to_os_string());
            let entry = dir.join(first);
            if let Ok(target) = std::fs::read_link(&entry) {
                next = Some(normalize(&dir.join(target).join(parts.as_path())));
            }
        }
        Resolution {
            dir: dir.to_path_buf(),
            names,
        }
    }

    /// Whether an event on `paths` can change what the config path resolves to.
    fn affects(&self, paths: &[PathBuf]) -> bool {
        paths.iter().any(|p| {
            *p == self.dir
                || (p.parent() == Some(self.dir.as_path())
                    && p.file_name().is_some_and(|n| self.names.contains(n)))
        })
    }
}

/// `a/b/../c` → `a/c`, without touching the file system (a symlink target's own `..`).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(r: &Resolution) -> Vec<String> {
        let mut v: Vec<_> = r
            .names
            .iter()
            .map(|n| n.to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_plain_file_counts_only_its_own_name_and_configmap_data() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("corsgate.toml");
        std::fs::write(&config, "").unwrap();
        let r = Resolution::of(&config, dir.path());
        assert_eq!(names(&r), ["..data", "corsgate.toml"]);
        assert!(r.affects(std::slice::from_ref(&config)));
        assert!(r.affects(&[dir.path().join("corsgate.tmp"), config]));
        assert!(!r.affects(&[dir.path().join("corsgate.log")]));
        assert!(!r.affects(&[dir.path().join("corsgate.tmp")]));
        assert!(!r.affects(&[dir.path().join("sub/corsgate.toml")]));
    }

    #[test]
    fn a_configmap_layout_counts_the_symlink_chain_and_its_data_directory() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir(root.join("..2026_01_01_00_00_00.1")).unwrap();
        std::fs::write(root.join("..2026_01_01_00_00_00.1/corsgate.toml"), "").unwrap();
        std::os::unix::fs::symlink("..2026_01_01_00_00_00.1", root.join("..data")).unwrap();
        std::os::unix::fs::symlink("..data/corsgate.toml", root.join("corsgate.toml")).unwrap();
        let r = Resolution::of(&root.join("corsgate.toml"), root);
        assert_eq!(
            names(&r),
            ["..2026_01_01_00_00_00.1", "..data", "corsgate.toml"]
        );
        assert!(r.affects(&[root.join("..data_tmp"), root.join("..data")]));
        assert!(!r.affects(&[root.join("..data_tmp")]));
        assert!(!r.affects(&[root.join("..2026_01_01_00_05_00.2")]));
    }

    #[test]
    fn relative_and_parent_symlink_targets_resolve_inside_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir(root.join("real")).unwrap();
        std::fs::write(root.join("real/c.toml"), "").unwrap();
        std::os::unix::fs::symlink("real/../real/c.toml", root.join("link.toml")).unwrap();
        let r = Resolution::of(&root.join("link.toml"), root);
        assert_eq!(names(&r), ["..data", "link.toml", "real"]);
    }

    #[tokio::test(start_paused = true)]
    async fn settling_is_bounded_by_max_wait_under_a_stream_of_events() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let feeder = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(20)).await;
                if tx.send(()).is_err() {
                    return;
                }
            }
        });
        let start = Instant::now();
        assert!(settle(&mut rx, DEBOUNCE, MAX_WAIT).await);
        let waited = start.elapsed();
        assert!(
            waited >= MAX_WAIT && waited < MAX_WAIT + Duration::from_millis(50),
            "{waited:?}"
        );
        feeder.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn settling_ends_after_the_quiet_time_when_events_stop() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        tx.send(()).unwrap();
        let start = Instant::now();
        assert!(settle(&mut rx, DEBOUNCE, MAX_WAIT).await);
        // The queued event restarts the quiet time once.
        assert_eq!(start.elapsed(), DEBOUNCE);
        drop(tx);
        assert!(!settle(&mut rx, DEBOUNCE, MAX_WAIT).await);
    }
}
