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

use std::time::{Duration, Instant};

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
}

impl PoolError {
    /// Whether the error arose while connecting.
    pub(crate) fn is_connect(&self) -> bool {
        matches!(self, PoolError::Connect(_))
    }
}

/// An idle connection and since when.
struct Idle {
    sender: SendRequest<Incoming>,
    since: Instant,
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
pub(crate) struct Lease(SendRequest<Incoming>);

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
    /// response head. A request that a reused connection closed before taking is sent again on a
    /// fresh connection: the upstream never saw it, and its keep-alive timeout can close an idle
    /// connection at any moment.
    pub(crate) async fn send(
        &self,
        req: Request<Incoming>,
    ) -> Result<(Response<Incoming>, Lease), PoolError> {
        let (mut sender, reused) = match self.checkout().await {
            Some(sender) => (sender, true),
            None => (self.connect().await?, false),
        };
        let res = match sender.try_send_request(req).await {
            Ok(res) => res,
            Err(mut e) => match e.take_message() {
                Some(req) if reused => {
                    sender = self.connect().await?;
                    sender.send_request(req).await.map_err(PoolError::Http)?
                }
                _ => return Err(PoolError::Http(e.into_error())),
            },
        };
        Ok((res, Lease(sender)))
    }

    /// An idle connection that is still open, if there is one.
    async fn checkout(&self) -> Option<SendRequest<Incoming>> {
        while let Some(Idle { mut sender, since }) = self.idle.pop() {
            if sender.is_closed() || since.elapsed() > IDLE_TIMEOUT {
                continue;
            }
            // A connection comes back when its response body ended; hyper may still be finishing
            // that message, which takes no I/O, so this is ready at once or within a poll.
            if sender.ready().await.is_ok() {
                return Some(sender);
            }
        }
        None
    }

    async fn connect(&self) -> Result<SendRequest<Incoming>, PoolError> {
        let mut connector = self.connector.clone();
        std::future::poll_fn(|cx| connector.poll_ready(cx))
            .await
            .map_err(PoolError::Connect)?;
        let io = connector
            .call(self.dial.clone())
            .await
            .map_err(PoolError::Connect)?;
        let (sender, conn) = http1::Builder::new()
            .handshake(io)
            .await
            .map_err(PoolError::Http)?;
        tokio::spawn(async move {
            // The connection ends when the upstream closes it, the pool drops its sender, or it
            // became a tunnel that finished; none of those is an error worth a line.
            if let Err(e) = conn.with_upgrades().await {
                tracing::debug!(error = %e, "upstream connection ended");
            }
        });
        Ok(sender)
    }

    fn put(&self, sender: SendRequest<Incoming>) {
        if sender.is_closed() {
            return;
        }
        // A full pool closes the connection (the `Idle` is dropped).
        let _ = self.idle.push(Idle {
            sender,
            since: Instant::now(),
        });
    }
}
