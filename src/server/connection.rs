//! One connection, any IO type: HTTP/1.1 and h2c on the same port (chosen by the first bytes, see
//! `preface.rs`), behind the h2 flood guard, finished gracefully when the server drains or the connection has been
//! idle for `idle_timeout`.

use std::any::Any;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;
use tokio::time::Instant;

use super::admission::Registration;
use super::h2flood::FloodGuard;
use super::preface::{self, Protocol};
use super::Activity;
use crate::live::Shared;
use crate::observe::Observer;
use crate::policy::Scheme;
use crate::proxy::Proxy;
use crate::snapshot::ServerSettings;

/// HTTP/2 keep-alive: a PING this often on a connection with no frames from the peer, and the
/// connection closed when its answer takes longer than `H2_PING_TIMEOUT`. This finds peers that
/// vanished without a FIN; `idle_timeout` closes the ones that are there but idle.
const H2_PING_INTERVAL: Duration = Duration::from_secs(20);
const H2_PING_TIMEOUT: Duration = Duration::from_secs(20);

/// Largest HTTP/2 header list accepted; the proxy itself answers 431 above
/// `proxy::MAX_REQUEST_HEADER_BYTES`, so this only needs to be comfortably larger.
const H2_MAX_HEADER_LIST: u32 = 64 * 1024;

/// One accepted connection's own state, besides its IO.
pub(crate) struct Conn {
    pub(crate) peer: SocketAddr,
    /// Lives as long as the connection and any upgrade tunnel made from it (its slot, its gauge).
    pub(crate) hold: Box<dyn Any + Send + Sync>,
    pub(crate) activity: Arc<Activity>,
    /// Turns `true` when the server drains.
    pub(crate) draining: watch::Receiver<bool>,
    /// In the stalled-head registry while the connection lives: `max_connections` may shed it
    /// while no request head has arrived.
    pub(crate) registration: Registration,
}

/// Serves single connections. Cheap to clone; one per server.
#[derive(Clone, Debug)]
pub(crate) struct Connections {
    pub(super) inner: Arc<ConnectionsInner>,
}

#[derive(Debug)]
pub(super) struct ConnectionsInner {
    http1: http1::Builder,
    http2: http2::Builder<TokioExecutor>,
    pub(super) shared: Arc<Shared>,
    pub(super) observer: Arc<Observer>,
    pub(super) header_read_timeout: Duration,
    idle_timeout: Duration,
    /// The TLS config the server started with: `Some` makes every listener a TLS listener.
    pub(super) tls: Option<Arc<rustls::ServerConfig>>,
}

impl Connections {
    /// A connection server for `shared` with the `[server]` connection settings.
    pub(crate) fn new(
        shared: Arc<Shared>,
        observer: Arc<Observer>,
        settings: &ServerSettings,
    ) -> Connections {
        // No hyper timer for HTTP/1.1, so no `header_read_timeout` of hyper's: it arms a timer
        // (an allocation and a wheel entry) for every request head that is not already whole in
        // the buffer, which on keep-alive is every head after the first (1,600
        // instructions per request). The first head is bounded by `HeadDeadline`; a later one
        // cannot hold the connection longer than an idle one may: the connection has no request
        // in flight, so `idle_timeout` closes it.
        let mut http1 = http1::Builder::new();
        http1.keep_alive(true);
        let mut http2 = http2::Builder::new(TokioExecutor::new());
        http2
            .timer(TokioTimer::new())
            .max_header_list_size(H2_MAX_HEADER_LIST)
            .keep_alive_interval(Some(H2_PING_INTERVAL.min(settings.idle_timeout)))
            .keep_alive_timeout(H2_PING_TIMEOUT);
        let tls = shared.load().snapshot.tls.clone();
        Connections {
            inner: Arc::new(ConnectionsInner {
                tls,
                http1,
                http2,
                shared,
                observer,
                header_read_timeout: settings.header_read_timeout,
                idle_timeout: settings.idle_timeout,
            }),
        }
    }

    /// Serve one accepted connection until it closes (or upgrades). Generic over the IO so a TLS
    /// stream slots in unchanged; `scheme` is the listener's (it decides what the request's own
    /// origin is). The connection is asked to finish gracefully (HTTP/1.1: after the response in
    /// flight; h2: GOAWAY, open streams complete) when the server drains or when it has had no
    /// request in flight for `idle_timeout`.
    ///
    /// A function returning a future rather than an `async fn`: rustc keeps an `async fn`'s
    /// arguments twice in its state, and this state is held by every open connection.
    pub(crate) fn serve<I>(
        &self,
        io: I,
        scheme: Scheme,
        conn: Conn,
    ) -> impl Future<Output = ()> + Send + 'static
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        let Conn {
            peer,
            hold,
            activity,
            mut draining,
            registration,
        } = conn;
        let service = Proxy::new(
            Arc::clone(&inner.shared),
            Arc::clone(&inner.observer),
            peer,
            scheme,
            Arc::clone(&activity),
            hold,
        );
        let io = FloodGuard::new(io);
        async move {
            // In a block of its own, so the sniffed IO, once moved into hyper's connection, leaves
            // no slot behind in this future's state.
            let (protocol, io) = {
                let sniffed = tokio::select! {
                    sniffed = preface::sniff(io) => sniffed,
                    _ = draining.changed() => return,
                    () = registration.shed() => return shed(peer),
                };
                match sniffed {
                    Ok(sniffed) => (sniffed.protocol(), sniffed),
                    Err(e) => {
                        tracing::debug!(%peer, error = %e, "connection ended before its first bytes");
                        return;
                    }
                }
            };
            let life = Life {
                peer,
                activity: &activity,
                registration: &registration,
                idle_timeout: inner.idle_timeout,
            };
            let result = match protocol {
                Protocol::Http1 => {
                    let connection = inner
                        .http1
                        .serve_connection(TokioIo::new(io), service)
                        .with_upgrades();
                    drive(pin!(connection), life, draining).await
                }
                Protocol::Http2 => {
                    // Boxed: h2's connection state is several times HTTP/1.1's, and every
                    // connection's task is as large as its largest branch.
                    let mut connection =
                        Box::pin(inner.http2.serve_connection(TokioIo::new(io), service));
                    drive(connection.as_mut(), life, draining).await
                }
            };
            if let Err(e) = result {
                // Clients that vanish, time out or send garbage end here; hyper has already
                // answered 400/431 where HTTP allowed it.
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        }
    }
}

/// hyper's HTTP/1.1 and HTTP/2 connections, as far as [`drive`] needs them.
trait Graceful: Future<Output = hyper::Result<()>> {
    fn graceful_shutdown(self: Pin<&mut Self>);
}

impl<I> Graceful for http1::UpgradeableConnection<I, Proxy>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    fn graceful_shutdown(self: Pin<&mut Self>) {
        http1::UpgradeableConnection::graceful_shutdown(self);
    }
}

impl<I> Graceful for http2::Connection<I, Proxy, TokioExecutor>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    fn graceful_shutdown(self: Pin<&mut Self>) {
        http2::Connection::graceful_shutdown(self);
    }
}

/// What [`drive`] watches besides the connection.
#[derive(Clone, Copy)]
struct Life<'a> {
    peer: SocketAddr,
    activity: &'a Activity,
    registration: &'a Registration,
    idle_timeout: Duration,
}

fn shed(peer: SocketAddr) {
    tracing::debug!(%peer, "shed: the oldest stalled head, closed for a new connection");
}

/// Run `connection` to its end, asking it to finish gracefully when the server drains or when it
/// has had no request in flight for `idle_timeout`, and closing it when `max_connections` sheds
/// it before its first request head. Not an `async fn`, for the reason `serve` is not.
#[allow(clippy::manual_async_fn)]
fn drive<'a, C: Graceful>(
    mut connection: Pin<&'a mut C>,
    life: Life<'a>,
    mut draining: watch::Receiver<bool>,
) -> impl Future<Output = hyper::Result<()>> + 'a {
    async move {
        let Life {
            peer,
            activity,
            registration,
            idle_timeout,
        } = life;
        let mut idle = pin!(tokio::time::sleep(idle_timeout));
        let mut closing = *draining.borrow_and_update();
        if closing {
            connection.as_mut().graceful_shutdown();
        }
        loop {
            tokio::select! {
                result = connection.as_mut() => return result,
                // An error means the server is gone: drain all the same.
                _ = draining.changed(), if !closing => {
                    closing = true;
                    connection.as_mut().graceful_shutdown();
                }
                () = idle.as_mut(), if !closing => {
                    let now = Instant::now();
                    match activity.idle_for(now) {
                        Some(for_) if for_ >= idle_timeout => {
                            tracing::debug!(%peer, "idle_timeout: closing the connection");
                            closing = true;
                            connection.as_mut().graceful_shutdown();
                        }
                        Some(for_) => idle.as_mut().reset(now + (idle_timeout - for_)),
                        None => idle.as_mut().reset(now + idle_timeout),
                    }
                }
                // Only while no request head has arrived: a head that completes just as the notice
                // goes out keeps its connection (the newcomer then waits for a slot).
                () = registration.shed(), if !activity.head_seen() => {
                    if !activity.head_seen() {
                        shed(peer);
                        return Ok(());
                    }
                }
            }
        }
    }
}
