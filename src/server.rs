//! Listeners and connections: `run` (load, bind, serve until SIGTERM/SIGINT), `serve` (accept loops
//! over already-bound sockets, the `max_connections` semaphore, graceful drain) and `Connections`
//! (one connection, any IO type, HTTP/1.1 and h2c on the same port via hyper-util's auto builder).

mod deadline;

use std::any::Any;
use std::future::Future;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::config::{self, ConfigError};
use crate::live::{Live, LiveError, Shared};
use crate::observe::Observer;
use crate::policy::Scheme;
use crate::proxy::Proxy;
use crate::snapshot::ServerSettings;
use deadline::FirstByteDeadline;

/// After a failed `accept` (out of file descriptors, say), wait this long before the next one rather
/// than spinning.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Largest HTTP/2 header list accepted; the proxy itself answers 431 above
/// `proxy::MAX_REQUEST_HEADER_BYTES`, so this only needs to be comfortably larger.
const H2_MAX_HEADER_LIST: u32 = 64 * 1024;

/// Why `corsgate run` stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The config file did not compile.
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// The compiled config could not be made live.
    #[error(transparent)]
    Live(#[from] LiveError),
    /// A listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address from `server.listen`.
        addr: SocketAddr,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The log subscriber could not be installed.
    #[error(transparent)]
    Telemetry(#[from] crate::telemetry::TelemetryError),
    /// The signal handlers could not be installed.
    #[error("cannot install signal handlers: {0}")]
    Signal(std::io::Error),
}

/// Load the config at `config_path`, bind every `server.listen` address and serve until SIGTERM or
/// SIGINT, then drain in-flight requests for up to `shutdown_grace`. Prints one
/// `corsgate: listening on http://ADDR` line per listener on stdout once it accepts connections.
pub async fn run(config_path: &Path) -> Result<(), ServerError> {
    let loaded = config::load(config_path)?;
    for warning in &loaded.warnings {
        eprintln!("{warning}");
    }
    crate::telemetry::init(&loaded.snapshot.log)?;
    // Signals are hooked before the sockets exist, so a SIGTERM that follows readiness is never
    // the default (abrupt) one.
    let shutdown = shutdown_signal()?;
    let observer = Observer::new();
    let live = Live::build(loaded.snapshot, &observer)?;
    let listen = live.snapshot.server.listen.clone();
    let live_admin = live.snapshot.server.admin;
    let scheme = if live.snapshot.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let shared = Arc::new(Shared::from_pointee(live));
    // SIGHUP is hooked before the listening lines go out: a supervisor (or a test) that signals as
    // soon as corsgate reports it is up must get a reload, not SIGHUP's default (terminate).
    crate::reload::spawn(config_path, Arc::clone(&shared), Arc::clone(&observer))
        .map_err(ServerError::Signal)?;
    let mut listeners = Vec::with_capacity(listen.len());
    for addr in listen {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| ServerError::Bind { addr, source })?;
        let local = listener
            .local_addr()
            .map_err(|source| ServerError::Bind { addr, source })?;
        tracing::info!(%local, scheme, "listening");
        // A closed stdout must not stop the proxy, so the result is ignored.
        let _ = writeln!(
            std::io::stdout(),
            "corsgate: listening on {scheme}://{local}"
        );
        listeners.push(listener);
    }
    let (admin_stop, admin_stopped) = tokio::sync::oneshot::channel::<()>();
    if let Some(addr) = live_admin {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| ServerError::Bind { addr, source })?;
        tracing::info!(%addr, "admin listening");
        tokio::spawn(crate::admin::serve(
            listener,
            Arc::clone(&observer),
            async move {
                let _ = admin_stopped.await;
            },
        ));
    }
    serve(listeners, shared, observer, shutdown).await;
    let _ = admin_stop.send(());
    Ok(())
}

/// Resolves on the first SIGTERM or SIGINT.
fn shutdown_signal() -> Result<impl Future<Output = ()>, ServerError> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).map_err(ServerError::Signal)?;
    let mut int = signal(SignalKind::interrupt()).map_err(ServerError::Signal)?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: draining"),
            _ = int.recv() => tracing::info!("SIGINT: draining"),
        }
    })
}

/// Serve plain-HTTP connections on `listeners` until `shutdown` resolves; then stop accepting, mark
/// the process not ready, and give open connections `shutdown_grace` to finish their in-flight
/// requests. Returns when they have, or when the grace is over (the rest are cut).
///
/// Connection settings (`header_read_timeout`, `max_connections`, `shutdown_grace`) are read from
/// the snapshot live at the start; a reload changes policies and routes, not these.
pub async fn serve(
    listeners: Vec<TcpListener>,
    shared: Arc<Shared>,
    observer: Arc<Observer>,
    shutdown: impl Future<Output = ()>,
) {
    let settings = shared.load().snapshot.server.clone();
    let conns = Connections::new(shared, Arc::clone(&observer), &settings);
    let slots = Arc::new(Semaphore::new(
        settings.max_connections.clamp(1, Semaphore::MAX_PERMITS),
    ));
    let graceful = GracefulShutdown::new();
    observer.set_ready(true);
    {
        let loops = listeners
            .into_iter()
            .map(|l| accept_loop(l, &conns, &graceful, &slots));
        tokio::select! {
            _ = shutdown => {}
            _ = futures_util::future::join_all(loops) => {}
        }
        // The accept loops, and with them the listening sockets, are dropped here.
    }
    observer.set_ready(false);
    let open = graceful.count();
    tracing::info!(open, grace = ?settings.shutdown_grace, "draining connections");
    if tokio::time::timeout(settings.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("shutdown_grace elapsed; closing the remaining connections");
    }
}

/// Accept on one listener forever. A connection first takes a slot: at `max_connections`, new
/// connections wait in the kernel's backlog until one closes.
async fn accept_loop(
    listener: TcpListener,
    conns: &Connections,
    graceful: &GracefulShutdown,
    slots: &Arc<Semaphore>,
) {
    loop {
        let Ok(slot) = Arc::clone(slots).acquire_owned().await else {
            return;
        };
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        // Small responses (preflights, 403s) should not wait for Nagle.
        let _ = stream.set_nodelay(true);
        let guard = conns.inner.observer.connection();
        let watcher = graceful.watcher();
        let conns = conns.clone();
        // The certificate is read per connection from the live snapshot, so a reload rotates it for
        // new handshakes while open connections carry on with theirs.
        let tls = conns.inner.tls.as_ref().map(|initial| {
            conns
                .inner
                .shared
                .load()
                .snapshot
                .tls
                .clone()
                .unwrap_or_else(|| Arc::clone(initial))
        });
        tokio::spawn(async move {
            let hold: Box<dyn Any + Send + Sync> = Box::new((slot, guard));
            let Some(config) = tls else {
                conns.serve(stream, Scheme::Http, peer, hold, watcher).await;
                return;
            };
            // The handshake counts against the same budget as a request head: a client that opens
            // a socket and stalls must not hold a slot forever.
            let accept = tokio_rustls::TlsAcceptor::from(config).accept(stream);
            match tokio::time::timeout(conns.inner.header_read_timeout, accept).await {
                Ok(Ok(tls_stream)) => {
                    conns
                        .serve(tls_stream, Scheme::Https, peer, hold, watcher)
                        .await;
                }
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        });
    }
}

/// Serves single connections. Cheap to clone; one per server.
#[derive(Clone, Debug)]
pub struct Connections {
    inner: Arc<ConnectionsInner>,
}

#[derive(Debug)]
struct ConnectionsInner {
    builder: auto::Builder<TokioExecutor>,
    shared: Arc<Shared>,
    observer: Arc<Observer>,
    header_read_timeout: Duration,
    /// The TLS config the server started with: `Some` makes every listener a TLS listener.
    tls: Option<Arc<rustls::ServerConfig>>,
}

impl Connections {
    /// A connection server for `shared` with the `[server]` connection settings.
    pub fn new(
        shared: Arc<Shared>,
        observer: Arc<Observer>,
        settings: &ServerSettings,
    ) -> Connections {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(settings.header_read_timeout)
            .keep_alive(true);
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_header_list_size(H2_MAX_HEADER_LIST);
        let tls = shared.load().snapshot.tls.clone();
        Connections {
            inner: Arc::new(ConnectionsInner {
                tls,
                builder,
                shared,
                observer,
                header_read_timeout: settings.header_read_timeout,
            }),
        }
    }

    /// Serve one accepted connection until it closes (or upgrades) or the graceful shutdown behind
    /// `watcher` finishes it. Generic over the IO so a TLS stream slots in unchanged; `scheme` is
    /// the listener's (it decides what the request's own origin is). `hold` lives as long as the
    /// connection and any upgrade tunnel made from it.
    pub async fn serve<I>(
        &self,
        io: I,
        scheme: Scheme,
        peer: SocketAddr,
        hold: Box<dyn Any + Send + Sync>,
        watcher: Watcher,
    ) where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let inner = &self.inner;
        let io = TokioIo::new(FirstByteDeadline::new(io, inner.header_read_timeout));
        let service = Proxy::new(
            Arc::clone(&inner.shared),
            Arc::clone(&inner.observer),
            peer,
            scheme,
            hold,
        );
        let conn = inner.builder.serve_connection_with_upgrades(io, service);
        if let Err(e) = watcher.watch(conn).await {
            // Clients that vanish, time out or send garbage end here; hyper has already answered
            // 400/431 where HTTP allowed it.
            tracing::debug!(%peer, error = %e, "connection ended with an error");
        }
    }
}
