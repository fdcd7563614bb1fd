//! Listeners and connections: `run` (load, bind, serve until SIGTERM/SIGINT), `serve` (accept loops
//! over already-bound sockets, admission: `max_connections_per_ip`, the `max_connections` semaphore
//! and stalled-head shedding in `admission`, graceful drain); `connection` serves one connection
//! (HTTP/1.1 and h2c on the same port).

mod admission;
mod connection;
mod deadline;
mod h2flood;
mod preface;

use std::any::Any;
use std::future::Future;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::Either;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore, TryAcquireError};
use tokio::time::Instant;

use crate::config::{self, ConfigError};
use crate::gateway::Gateway;
use crate::live::{LiveError, Shared};
use crate::observe::Observer;
use crate::policy::Scheme;
use admission::{Admission, IpPlace, PerIp, Stalled};
use connection::{Conn, Connections};
pub(crate) use deadline::Activity;
use deadline::HeadDeadline;

/// After a failed `accept` (out of file descriptors, say), wait this long before the next one rather
/// than spinning.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Why `corsgate run` stopped with an error.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ServerError {
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
    /// The async runtime could not be started.
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
}

/// `corsgate run`: load the config at `config_path`, install the log subscriber, build the runtime
/// with `[server].worker_threads` threads, and serve (see [`serve_config`]) until SIGTERM or SIGINT.
/// Returns the exit status; a fatal error has been reported by then, through the subscriber once it
/// is installed (so that in `json` format it is a JSON object like every other stderr line), else as
/// a plain line (the config, and with it the format, could not be read).
pub fn run(config_path: &Path) -> ExitCode {
    let loaded = match config::load(config_path) {
        Ok(loaded) => loaded,
        Err(e) => return failed(&ServerError::Config(e)),
    };
    // The subscriber first, so that with `log.format = "json"` even the config's warnings reach
    // stderr as JSON objects: a log collector must be able to parse every line. The guard lives
    // until the end, so the last lines (the fatal error included) are written out.
    let _log = match crate::telemetry::init(&loaded.snapshot.log) {
        Ok(guard) => guard,
        Err(e) => return failed(&ServerError::Telemetry(e)),
    };
    let threads = worker_threads(loaded.snapshot.server.worker_threads);
    let result = runtime(threads)
        .map_err(ServerError::Runtime)
        .and_then(|rt| {
            tracing::debug!(threads, "runtime started");
            rt.block_on(serve_config(config_path, loaded))
        });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => failed(&e),
    }
}

fn failed(e: &ServerError) -> ExitCode {
    crate::telemetry::fatal(e);
    ExitCode::FAILURE
}

/// `worker_threads = 0`: the CPUs this process may run on. `available_parallelism` honours the
/// affinity mask (`taskset`, a cpuset) and a cgroup CPU quota (a container's `--cpus`), rounding a
/// fractional quota down and never below 1.
fn worker_threads(configured: usize) -> usize {
    match configured {
        0 => std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
        n => n,
    }
}

/// One thread: tokio's current-thread scheduler, which runs every task on the thread that drives it,
/// with no work-stealing queues or cross-thread wake-ups to pay for. More: the multi-thread
/// scheduler with that many workers.
fn runtime(threads: usize) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(threads);
        b
    };
    builder.enable_all().thread_name("corsgate-worker").build()
}

/// Serve the loaded config: bind every `server.listen` address and serve until SIGTERM or SIGINT,
/// then drain in-flight requests for up to `shutdown_grace`. Prints one
/// `corsgate: listening on http://ADDR` line per listener on stdout once it accepts connections (the
/// readiness contract).
async fn serve_config(config_path: &Path, loaded: config::Loaded) -> Result<(), ServerError> {
    for warning in &loaded.warnings {
        tracing::warn!(target: "corsgate::config", "{warning}");
    }
    // Signals are hooked before the sockets exist, so a SIGTERM that follows readiness is never
    // the default (abrupt) one.
    let shutdown = shutdown_signal()?;
    let gateway = Gateway::new(loaded.snapshot, Observer::new())?;
    let snapshot = gateway.snapshot();
    let listen = snapshot.server.listen.clone();
    let live_admin = snapshot.server.admin;
    let scheme = if snapshot.tls.is_some() {
        "https"
    } else {
        "http"
    };
    drop(snapshot);
    // SIGHUP is hooked before the listening lines go out: a supervisor (or a test) that signals as
    // soon as corsgate reports it is up must get a reload, not SIGHUP's default (terminate).
    gateway
        .reload_on_signals(config_path)
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
        tokio::spawn(gateway.serve_admin(listener, async move {
            let _ = admin_stopped.await;
        }));
    }
    gateway.serve(listeners, shutdown).await;
    let _ = admin_stop.send(());
    Ok(())
}

/// Resolves on the first SIGTERM or SIGINT.
fn shutdown_signal() -> Result<impl Future<Output = ()> + Send + 'static, ServerError> {
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
/// Connection settings (`header_read_timeout`, `max_connections`, `max_connections_per_ip`,
/// `idle_timeout`, `shutdown_grace`) are read from
/// the snapshot live at the start; a reload changes policies and routes, not these.
pub(crate) async fn serve(
    listeners: Vec<TcpListener>,
    shared: Arc<Shared>,
    observer: Arc<Observer>,
    shutdown: impl Future<Output = ()>,
) {
    let settings = shared.load().snapshot.server.clone();
    let conns = Connections::new(shared, Arc::clone(&observer), &settings);
    let admission = Admission {
        slots: Arc::new(Semaphore::new(
            settings.max_connections.clamp(1, Semaphore::MAX_PERMITS),
        )),
        per_ip: PerIp::new(settings.max_connections_per_ip),
        stalled: Stalled::new(),
    };
    // Every connection holds a receiver; the drain below waits until they are all gone.
    let (drain, draining) = watch::channel(false);
    observer.set_ready(true);
    {
        let loops = listeners
            .into_iter()
            .map(|l| accept_loop(l, &conns, &draining, &admission));
        tokio::select! {
            _ = shutdown => {}
            _ = futures_util::future::join_all(loops) => {}
        }
        // The accept loops, and with them the listening sockets, are dropped here.
    }
    drop(draining);
    observer.set_ready(false);
    let open = drain.receiver_count();
    tracing::info!(open, grace = ?settings.shutdown_grace, "draining connections");
    let _ = drain.send(true);
    if tokio::time::timeout(settings.shutdown_grace, drain.closed())
        .await
        .is_err()
    {
        tracing::warn!("shutdown_grace elapsed; closing the remaining connections");
    }
}

/// Accept on one listener forever. A connection first takes a slot. At `max_connections`, while
/// some slot is held by a stalled head (a connection still waiting for its first complete request
/// head), the next connection is accepted and the oldest stalled head is closed to make room for it;
/// when every slot is held by a connection that has had a request, new connections wait in the
/// kernel's backlog until one closes. A connection from an address that already holds
/// `max_connections_per_ip` is closed at once, before it takes a slot or sheds anyone.
async fn accept_loop(
    listener: TcpListener,
    conns: &Connections,
    draining: &watch::Receiver<bool>,
    admission: &Admission,
) {
    let slots = &admission.slots;
    loop {
        let free = match Arc::clone(slots).try_acquire_owned() {
            Ok(slot) => Some(slot),
            Err(TryAcquireError::Closed) => return,
            Err(TryAcquireError::NoPermits) => None,
        };
        let (slot, (stream, peer, place)) = if let Some(slot) = free {
            let Some(accepted) = accept_one(&listener, admission).await else {
                continue;
            };
            (slot, accepted)
        } else if !admission.stalled.any() {
            let Ok(slot) = Arc::clone(slots).acquire_owned().await else {
                return;
            };
            let Some(accepted) = accept_one(&listener, admission).await else {
                continue;
            };
            (slot, accepted)
        } else {
            tokio::select! {
                slot = Arc::clone(slots).acquire_owned() => {
                    let Ok(slot) = slot else { return };
                    let Some(accepted) = accept_one(&listener, admission).await else {
                        continue;
                    };
                    (slot, accepted)
                }
                accepted = accept_one(&listener, admission) => {
                    let Some(accepted) = accepted else { continue };
                    let slot = match Arc::clone(slots).try_acquire_owned() {
                        Ok(slot) => slot,
                        Err(TryAcquireError::Closed) => return,
                        Err(TryAcquireError::NoPermits) => {
                            if admission.stalled.shed_oldest() {
                                tracing::debug!(
                                    peer = %accepted.1,
                                    "max_connections: closing the oldest stalled head to admit a new connection"
                                );
                            }
                            // The shed connection gives its slot back as soon as its task sees the
                            // notice; if every stalled head completed meanwhile, this waits for any
                            // connection to close, as the backlog would.
                            let Ok(slot) = Arc::clone(slots).acquire_owned().await else {
                                return;
                            };
                            slot
                        }
                    };
                    (slot, accepted)
                }
            }
        };
        // Every deadline before the first request counts from here.
        let deadline = Instant::now() + conns.inner.header_read_timeout;
        // Small responses (preflights, 403s) should not wait for Nagle.
        let _ = stream.set_nodelay(true);
        let guard = conns.inner.observer.connection();
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
        let activity = Activity::new(Instant::now());
        // Dropped in this order: the address's count, then the slot, then the gauge, so once the
        // gauge shows a connection closed its slot and its place are free again.
        let hold: Box<dyn Any + Send + Sync> = Box::new((place, slot, guard));
        // Under TLS, so the handshake itself is bounded by the same deadline.
        let stream = HeadDeadline::new(stream, deadline, Arc::clone(&activity));
        let conn = Conn {
            peer,
            hold,
            // Registered here, in accept order, so the registry's order is the order of admission.
            registration: admission.stalled.register(&activity),
            activity,
            draining: draining.clone(),
        };
        // The task is the connection's future itself, built here: a task that built it inside
        // would keep what it captured for that in its state, needed or not, for as long as the
        // connection lives.
        let served = match tls {
            None => Either::Left(conns.serve(stream, Scheme::Http, conn)),
            // Boxed: the handshake and the TLS stream's state are three times the size of a plain
            // connection's, and every connection's task would otherwise be that large.
            Some(config) => {
                let conns = conns.clone();
                Either::Right(Box::pin(async move {
                    let accept = tokio::time::timeout_at(
                        deadline,
                        tokio_rustls::TlsAcceptor::from(config).accept(stream),
                    );
                    let handshake = tokio::select! {
                        handshake = accept => handshake,
                        () = conn.registration.shed() => {
                            tracing::debug!(%peer, "shed: the oldest stalled head, closed for a new connection");
                            return;
                        }
                    };
                    match handshake {
                        Ok(Ok(tls_stream)) => conns.serve(tls_stream, Scheme::Https, conn).await,
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }))
            }
        };
        tokio::spawn(served);
    }
}

/// Accept one connection and count it against its address's cap. `None` after a failed `accept`
/// (having waited `ACCEPT_BACKOFF`) or when the address is over `max_connections_per_ip` (the
/// connection is closed at once, nothing read from it).
async fn accept_one(
    listener: &TcpListener,
    admission: &Admission,
) -> Option<(TcpStream, SocketAddr, Option<IpPlace>)> {
    let (stream, peer) = match listener.accept().await {
        Ok(accepted) => accepted,
        Err(e) => {
            tracing::warn!(error = %e, "accept failed");
            tokio::time::sleep(ACCEPT_BACKOFF).await;
            return None;
        }
    };
    let Some(per_ip) = &admission.per_ip else {
        return Some((stream, peer, None));
    };
    match per_ip.admit(peer.ip()) {
        Some(place) => Some((stream, peer, Some(place))),
        None => {
            tracing::debug!(%peer, "max_connections_per_ip: closing the connection");
            drop(stream);
            None
        }
    }
}
