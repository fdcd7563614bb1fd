//! One upstream's keep-alive connections: a lock-free queue of idle HTTP/1.1 connections (hyper's
//! `client::conn::http1`), dialled through the upstream's connector (TCP, or rustls for https, with
//! `connect_timeout`).
//!
//! Written on hyper's connection API rather than hyper-util's legacy `Client` because a proxy in
//! front of one upstream needs none of what that client does per request and pays for all of it:
//! a pool keyed by scheme and authority behind a mutex (SipHash of the key on every checkout and
//! return), a boxed response future, a race between checkout and a new connect, and a task spawned
//! after every response to wait until the connection is idle again. Measured with callgrind, that
//! was about 11,000 instructions of the 60,000 a forwarded request cost (docs/performance.md).
//! Here a request pops an idle connection (or dials one), sends, and its response body puts the
//! connection back when the body has been read to the end, from the task that read it.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tokio::time::{Instant, Sleep};

use crossbeam_queue::ArrayQueue;
use http::{Request, Response, Uri};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use tower_service::Service;

/// How long an idle upstream connection stays in the pool.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Idle connections kept per upstream; a connection coming back to a full pool is closed.
const MAX_IDLE: usize = 1024;

/// Why no response head came back.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PoolError {
    /// The TCP connect or TLS handshake failed (or `connect_timeout` passed).
    #[error("connecting to the upstream failed")]
    Connect(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The connection was made, but HTTP on it failed: the request could not be sent, the
    /// connection closed, or the response head was malformed.
    #[error("upstream request failed")]
    Http(#[source] hyper::Error),
    /// No response head within the upstream's `timeout`, connecting included.
    #[error("no response head in time")]
    TimedOut,
}

impl PoolError {
    /// Whether the error arose while connecting.
    pub(crate) fn is_connect(&self) -> bool {
        matches!(self, PoolError::Connect(_))
    }
}

/// An upstream connection, and the timer that bounds each request's wait for its response head.
///
/// The timer lives as long as the connection: each request moves its deadline later, which tokio
/// does with one atomic operation while the timer is still armed. A timer per request (`timeout`)
/// was registered in tokio's timer wheel and removed again, under the wheel's lock both times:
/// about 2,000 instructions of a forwarded request. The price: an armed timer that nobody awaits
/// any more fires at its deadline and wakes the task that last waited on it once, for nothing, and
/// until then holds that task's allocation (bounded by the idle connections, `MAX_IDLE`).
struct Connection {
    sender: SendRequest<Incoming>,
    timer: Pin<Box<Sleep>>,
}

impl Connection {
    /// `fut`, unless `deadline` passes first. (Not an `async fn`: rustc would keep `fut` twice in
    /// the state of every forwarded request.)
    #[allow(clippy::manual_async_fn)]
    fn within<'a, F: Future + 'a>(
        timer: &'a mut Pin<Box<Sleep>>,
        deadline: Instant,
        fut: F,
    ) -> impl Future<Output = Result<F::Output, PoolError>> + 'a {
        async move {
            timer.as_mut().reset(deadline);
            tokio::select! {
                biased;
                out = fut => Ok(out),
                () = timer.as_mut() => Err(PoolError::TimedOut),
            }
        }
    }
}

/// An idle connection and since when.
struct Idle {
    connection: Connection,
    since: std::time::Instant,
}

/// One upstream's connections.
pub(crate) struct Pool {
    connector: HttpsConnector<HttpConnector>,
    /// `scheme://authority/`, what the connector dials.
    dial: Uri,
    idle: ArrayQueue<Idle>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("dial", &self.dial)
            .field("idle", &self.idle.len())
            .finish_non_exhaustive()
    }
}

/// A connection lent to one request: back to its pool ([`Lease::release`]) once its response body
/// has been read to the end; closed when dropped instead (a body cut short, a failure, a tunnel:
/// the connection's framing is unknown then, or it is the tunnel now).
pub(crate) struct Lease(Connection);

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Lease")
    }
}

impl Lease {
    /// The response body ended: the connection can carry the next request from `pool`, the one
    /// it was lent from.
    pub(crate) fn release(self, pool: &Pool) {
        pool.put(self.0);
    }
}

impl Pool {
    pub(crate) fn new(connector: HttpsConnector<HttpConnector>, dial: Uri) -> Pool {
        Pool {
            connector,
            dial,
            idle: ArrayQueue::new(MAX_IDLE),
        }
    }

    /// Send `req` (origin-form URI) on an idle connection, or on a new one, and wait for the
    /// response head, `timeout` at most, connecting included. A request that a reused connection
    /// closed before taking is sent again on a fresh connection: the upstream never saw it, and its
    /// keep-alive timeout can close an idle connection at any moment.
    #[allow(clippy::manual_async_fn)]
    pub(crate) fn send(
        &self,
        req: Request<Incoming>,
        timeout: Duration,
    ) -> impl Future<Output = Result<(Response<Incoming>, Lease), PoolError>> + '_ {
        // A function returning a future rather than an `async fn`, which would keep `req` twice
        // in the state of every forwarded request; dialling is boxed, since it is rare and its
        // state (the handshake) is larger than the rest together.
        async move {
            let deadline = Instant::now() + timeout;
            let (mut connection, reused) = match self.checkout(deadline).await? {
                Some(connection) => (connection, true),
                None => (Box::pin(self.connect(deadline)).await?, false),
            };
            let Connection { sender, timer } = &mut connection;
            let sent = sender.try_send_request(req);
            let res = match Connection::within(timer, deadline, sent).await? {
                Ok(res) => res,
                Err(mut e) => match e.take_message() {
                    Some(req) if reused => {
                        connection = Box::pin(self.connect(deadline)).await?;
                        let Connection { sender, timer } = &mut connection;
                        let sent = sender.send_request(req);
                        Connection::within(timer, deadline, sent)
                            .await?
                            .map_err(PoolError::Http)?
                    }
                    _ => return Err(PoolError::Http(e.into_error())),
                },
            };
            Ok((res, Lease(connection)))
        }
    }

    /// An idle connection that is still open, if there is one.
    async fn checkout(&self, deadline: Instant) -> Result<Option<Connection>, PoolError> {
        while let Some(Idle {
            mut connection,
            since,
        }) = self.idle.pop()
        {
            let Connection { sender, timer } = &mut connection;
            if sender.is_closed() || since.elapsed() > IDLE_TIMEOUT {
                continue;
            }
            // A connection comes back when its response body ended; hyper may still be finishing
            // that message, which takes no I/O, so this is ready at once or within a poll.
            if sender.is_ready()
                || Connection::within(timer, deadline, sender.ready())
                    .await?
                    .is_ok()
            {
                return Ok(Some(connection));
            }
        }
        Ok(None)
    }

    async fn connect(&self, deadline: Instant) -> Result<Connection, PoolError> {
        let dial = async {
            let mut connector = self.connector.clone();
            std::future::poll_fn(|cx| connector.poll_ready(cx))
                .await
                .map_err(PoolError::Connect)?;
            let io = connector
                .call(self.dial.clone())
                .await
                .map_err(PoolError::Connect)?;
            http1::Builder::new()
                .handshake(io)
                .await
                .map_err(PoolError::Http)
        };
        let (sender, conn) = tokio::time::timeout_at(deadline, dial)
            .await
            .map_err(|_| PoolError::TimedOut)??;
        tokio::spawn(async move {
            // The connection ends when the upstream closes it, the pool drops its sender, or it
            // became a tunnel that finished; none of those is an error worth a line.
            if let Err(e) = conn.with_upgrades().await {
                tracing::debug!(error = %e, "upstream connection ended");
            }
        });
        Ok(Connection {
            sender,
            timer: Box::pin(tokio::time::sleep_until(deadline)),
        })
    }

    fn put(&self, connection: Connection) {
        if connection.sender.is_closed() {
            return;
        }
        // A full pool closes the connection (the `Idle` is dropped).
        let _ = self.idle.push(Idle {
            connection,
            since: std::time::Instant::now(),
        });
    }
}
