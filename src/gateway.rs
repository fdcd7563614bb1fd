//! `Gateway`: the front door. It owns what one running corsgate shares between its parts (the live
//! state behind one swap point, and the observer) and starts each part over it: the data listeners,
//! the admin listener and the reloader. `corsgate run`, `corsgate demo`, the tests and the benches
//! all start corsgate this one way, so none of them can wire it differently.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::live::{Live, LiveError, Shared};
use crate::observe::Observer;
use crate::reload::Reloader;
use crate::snapshot::Snapshot;

/// One corsgate: its live state and its observer. Cheap to clone (two reference counts).
#[derive(Clone, Debug)]
pub struct Gateway {
    shared: Arc<Shared>,
    observer: Arc<Observer>,
}

impl Gateway {
    /// Make `snapshot` live (upstream clients, metric handles) and record to `observer`.
    pub fn new(snapshot: Snapshot, observer: Arc<Observer>) -> Result<Gateway, LiveError> {
        let live = Live::build(snapshot, &observer, None)?;
        Ok(Gateway {
            shared: Arc::new(Shared::from_pointee(live)),
            observer,
        })
    }

    /// The snapshot requests are evaluated against right now.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        Arc::clone(&self.shared.load().snapshot)
    }

    /// Where logs and metrics go.
    pub fn observer(&self) -> &Arc<Observer> {
        &self.observer
    }

    /// Make `snapshot` live in place of the current one, as a reload does (without reading a file).
    pub fn install(&self, snapshot: Snapshot) -> Result<(), LiveError> {
        let previous = self.shared.load_full();
        let live = Live::build(snapshot, &self.observer, Some(&previous))?;
        self.shared.store(Arc::new(live));
        Ok(())
    }

    /// Serve the data listeners until `shutdown` resolves, then drain (see `server::serve`). While
    /// it serves, idle rate-limit keys are swept out every second.
    pub fn serve(
        &self,
        listeners: Vec<TcpListener>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> impl Future<Output = ()> + Send + 'static {
        let sweeper = crate::ratelimit::sweep_forever(Arc::downgrade(&self.shared));
        let serving = crate::server::serve(
            listeners,
            Arc::clone(&self.shared),
            Arc::clone(&self.observer),
            shutdown,
        );
        async move {
            let sweeper = tokio::spawn(sweeper);
            serving.await;
            sweeper.abort();
        }
    }

    /// Serve the admin listener (`/healthz`, `/readyz`, `/metrics`) until `shutdown` resolves.
    pub fn serve_admin(
        &self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> impl Future<Output = ()> + Send + 'static {
        crate::admin::serve(listener, Arc::clone(&self.observer), shutdown)
    }

    /// A reloader of the config file at `path` into this gateway.
    pub fn reloader(&self, path: &Path) -> Reloader {
        Reloader::new(path, Arc::clone(&self.shared), Arc::clone(&self.observer))
    }

    /// Reload from `path` on every SIGHUP, and on file changes when the config says
    /// `watch_config`, until the runtime stops.
    pub fn reload_on_signals(&self, path: &Path) -> std::io::Result<()> {
        crate::reload::spawn(path, Arc::clone(&self.shared), Arc::clone(&self.observer))
    }
}
