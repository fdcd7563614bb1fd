//! Hot reload: SIGHUP, and with `watch_config` file changes, re-read and compile the config off the
//! request path and swap it in with one atomic store. A file that fails keeps the old policy serving.
//!
//! Requests `load_full()` the `Live` once, so in-flight requests finish with the policy they started
//! with and every request that starts after the store sees the new one; no lock is taken per request.

mod diff;
mod watch;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use crate::config;
use crate::live::{Live, Shared};
use crate::observe::Observer;
use crate::snapshot::{LogSettings, ServerSettings, Snapshot};

pub(crate) use diff::Changes;

/// Why a reload was rejected (the old config keeps serving).
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The file did not compile; every error is rendered FILE:LINE:COL.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// The compiled config could not be made live (upstream TLS setup, say).
    #[error(transparent)]
    Live(#[from] crate::live::LiveError),
    /// The blocking reload task died.
    #[error("reload task failed: {0}")]
    Task(String),
}

/// What a successful reload did.
#[derive(Debug)]
pub struct Reloaded {
    /// What changed, for the summary line.
    pub changes: Changes,
    /// Settings that changed in the file but need a restart (listen, admin, ...).
    pub needs_restart: Vec<&'static str>,
    /// Warnings from the new file.
    pub warnings: Vec<String>,
}

/// Reloads one config file into one `Shared`. Reloads are serialised by the caller's single task.
#[derive(Debug)]
pub struct Reloader {
    path: PathBuf,
    shared: Arc<Shared>,
    observer: Arc<Observer>,
}

impl Reloader {
    /// A reloader for `path` into `shared`.
    pub fn new(path: &Path, shared: Arc<Shared>, observer: Arc<Observer>) -> Self {
        Reloader {
            path: path.to_path_buf(),
            shared,
            observer,
        }
    }

    /// Read, compile, build and store; blocking (file I/O, compile), so call it off the runtime's
    /// request workers (`reload` does). Logs and counts the outcome.
    pub fn reload_blocking(&self) -> Result<Reloaded, ReloadError> {
        let started = Instant::now();
        let result = self.try_reload();
        match &result {
            Ok(r) => {
                self.observer.reload(true);
                for w in &r.warnings {
                    tracing::warn!(target: "corsgate::reload", "{w}");
                }
                for setting in &r.needs_restart {
                    tracing::warn!(
                        target: "corsgate::reload",
                        setting,
                        "{setting} changed but needs a restart; the running value stays"
                    );
                }
                tracing::info!(
                    target: "corsgate::reload",
                    result = "success",
                    elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
                    changes = %r.changes,
                    "config reloaded"
                );
            }
            Err(e) => {
                self.observer.reload(false);
                match e {
                    ReloadError::Config(c) => {
                        for line in c.errors() {
                            tracing::error!(target: "corsgate::reload", "{line}");
                        }
                    }
                    other => tracing::error!(target: "corsgate::reload", "{other}"),
                }
                tracing::error!(
                    target: "corsgate::reload",
                    result = "failure",
                    file = %self.path.display(),
                    "config reload rejected; the previous config keeps serving"
                );
            }
        }
        result
    }

    fn try_reload(&self) -> Result<Reloaded, ReloadError> {
        let loaded = config::load(&self.path)?;
        let old = self.shared.load_full();
        let needs_restart = restart_only_changes(&old.snapshot, &loaded.snapshot);
        let changes = Changes::between(&old.snapshot, &loaded.snapshot);
        let live = Live::build(loaded.snapshot, &self.observer, Some(&old))?;
        self.shared.store(Arc::new(live));
        Ok(Reloaded {
            changes,
            needs_restart,
            warnings: loaded.warnings,
        })
    }

    /// Reload on a blocking thread, so that compiling a large file never stalls request handling.
    pub async fn reload(self: &Arc<Self>) -> Result<Reloaded, ReloadError> {
        let this = Arc::clone(self);
        tokio::task::spawn_blocking(move || this.reload_blocking())
            .await
            .map_err(|e| ReloadError::Task(e.to_string()))?
    }
}

/// Settings read once at startup: a change is reported, not applied.
///
/// Both settings tables are destructured without `..`: a new key is a compile error here until it
/// is either listed as restart-only or marked as applied on reload.
fn restart_only_changes(old: &Snapshot, new: &Snapshot) -> Vec<&'static str> {
    let ServerSettings {
        listen,
        admin,
        tls,
        header_read_timeout,
        max_connections,
        max_connections_per_ip,
        idle_timeout,
        worker_threads,
        shutdown_grace,
        watch_config,
    } = &old.server;
    let n = &new.server;
    let LogSettings {
        format,
        level,
        // Applied on reload: the access log switch is read per request from the snapshot.
        access_log: _,
    } = &old.log;
    let mut out = Vec::new();
    let mut check = |name, changed: bool| {
        if changed {
            out.push(name);
        }
    };
    check("server.listen", *listen != n.listen);
    check("server.admin", *admin != n.admin);
    // The certificate files themselves are re-read on every reload; only switching TLS on or off
    // needs new listeners.
    check(
        "server.tls (enabling or disabling)",
        tls.is_some() != n.tls.is_some(),
    );
    check(
        "server.header_read_timeout",
        *header_read_timeout != n.header_read_timeout,
    );
    check(
        "server.max_connections",
        *max_connections != n.max_connections,
    );
    check(
        "server.max_connections_per_ip",
        *max_connections_per_ip != n.max_connections_per_ip,
    );
    check("server.idle_timeout", *idle_timeout != n.idle_timeout);
    check("server.worker_threads", *worker_threads != n.worker_threads);
    check("server.shutdown_grace", *shutdown_grace != n.shutdown_grace);
    check("server.watch_config", *watch_config != n.watch_config);
    check("log.format", *format != new.log.format);
    check("log.level", *level != new.log.level);
    out
}

/// Reload on every SIGHUP, and on file changes when `watch_config` is set, until the runtime stops.
/// Reloads run one at a time, in the order their triggers arrived.
pub(crate) fn spawn(
    config_path: &Path,
    shared: Arc<Shared>,
    observer: Arc<Observer>,
) -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let watch = shared.load().snapshot.server.watch_config;
    let reloader = Arc::new(Reloader::new(config_path, shared, observer));
    let mut hup = signal(SignalKind::hangup())?;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<&'static str>(1);
    let hup_tx = tx.clone();
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            // A full channel means a reload is already queued; it will read the newest file.
            let _ = hup_tx.try_send("SIGHUP");
        }
    });
    if watch {
        watch::spawn(config_path, tx)?;
    }
    tokio::spawn(async move {
        while let Some(trigger) = rx.recv().await {
            tracing::info!(target: "corsgate::reload", trigger, "reloading config");
            let _ = reloader.reload().await;
        }
    });
    Ok(())
}
