//! `HeadDeadline` and `Activity`: what keeps a connection from holding a slot without making progress.
//!
//! The version sniff (`preface.rs`) waits for the first bytes with no timeout of its own, hyper's
//! HTTP/1 header timer is not used (it would cost a timer per request), and HTTP/2 has no header
//! timeout at all. So one deadline, armed when the socket is accepted, covers
//! everything before the first complete request head: the TLS handshake, the version sniff, the h2
//! preface and SETTINGS, and the head itself. It disarms only when the service sees a request, never
//! on mere bytes, so a client that trickles bytes gains nothing.
//!
//! After the first request `Activity` tells the connection driver whether requests are in flight,
//! and since when it has been idle, for `idle_timeout`.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// One connection's request activity, shared by its driver (which reads it) and its service (which
/// marks every request). Three atomics: no lock per request.
#[derive(Debug)]
pub(crate) struct Activity {
    opened: Instant,
    head_seen: AtomicBool,
    in_flight: AtomicUsize,
    /// When the connection last became idle, in milliseconds since `opened`.
    idle_since_ms: AtomicU64,
}

impl Activity {
    pub(crate) fn new(opened: Instant) -> Arc<Activity> {
        Arc::new(Activity {
            opened,
            head_seen: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
            idle_since_ms: AtomicU64::new(0),
        })
    }

    /// A request head is complete and its handling starts; the returned guard ends it.
    pub(crate) fn request(self: &Arc<Self>) -> InFlight {
        self.head_seen.store(true, Ordering::Release);
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(Arc::clone(self))
    }

    /// Whether a complete request head has arrived on this connection.
    pub(super) fn head_seen(&self) -> bool {
        self.head_seen.load(Ordering::Acquire)
    }

    /// How long the connection has been without a request in flight at `now`; `None` while one is.
    pub(crate) fn idle_for(&self, now: Instant) -> Option<Duration> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        let since = Duration::from_millis(self.idle_since_ms.load(Ordering::Acquire));
        Some(now.saturating_duration_since(self.opened + since))
    }
}

/// A request in flight on its connection; dropping it (answered, or abandoned by the client) marks
/// the connection idle from now if it was the last one.
#[derive(Debug)]
pub(crate) struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let a = &self.0;
        let ms = Instant::now()
            .saturating_duration_since(a.opened)
            .as_millis();
        a.idle_since_ms
            .store(u64::try_from(ms).unwrap_or(u64::MAX), Ordering::Release);
        a.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// An IO whose reads fail with `TimedOut` once the deadline passes, until the connection's first
/// request head is complete.
#[derive(Debug)]
pub(crate) struct HeadDeadline<I> {
    io: I,
    activity: Arc<Activity>,
    /// Armed until the first request; dropped then, so later reads cost one branch.
    deadline: Option<Pin<Box<Sleep>>>,
}

impl<I> HeadDeadline<I> {
    pub(crate) fn new(io: I, deadline: Instant, activity: Arc<Activity>) -> Self {
        HeadDeadline {
            io,
            activity,
            deadline: Some(Box::pin(tokio::time::sleep_until(deadline))),
        }
    }

    /// `Err` once the deadline has passed before any request; registers the waker otherwise.
    fn check(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        let Some(deadline) = &mut self.deadline else {
            return Ok(());
        };
        if self.activity.head_seen() {
            self.deadline = None;
            return Ok(());
        }
        if deadline.as_mut().poll(cx).is_ready() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "no complete request head within header_read_timeout",
            ));
        }
        Ok(())
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for HeadDeadline<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        // Checked before every read, whatever the last one returned: a peer that sends one byte at a
        // time never leaves the read pending, and must time out all the same.
        if let Err(e) = this.check(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut this.io).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for HeadDeadline<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn bytes_do_not_disarm_the_deadline_and_a_request_does() {
        let timeout = Duration::from_millis(100);
        let (a, mut b) = tokio::io::duplex(64);
        let activity = Activity::new(Instant::now());
        let mut io = HeadDeadline::new(a, Instant::now() + timeout, Arc::clone(&activity));
        let mut buf = [0u8; 8];
        b.write_all(b"P").await.unwrap();
        assert_eq!(io.read(&mut buf).await.unwrap(), 1);
        let err = io.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);

        let (a, mut b) = tokio::io::duplex(64);
        let activity = Activity::new(Instant::now());
        let mut io = HeadDeadline::new(a, Instant::now() + timeout, Arc::clone(&activity));
        b.write_all(b"x").await.unwrap();
        assert_eq!(io.read(&mut buf).await.unwrap(), 1);
        let _request = activity.request();
        // Disarmed: a later quiet period is the idle timer's business, not this wrapper's.
        let read = tokio::time::timeout(timeout * 3, io.read(&mut buf)).await;
        assert!(read.is_err(), "the read should still be pending");
    }

    #[tokio::test]
    async fn idle_time_counts_from_the_end_of_the_last_request() {
        let opened = Instant::now();
        let activity = Activity::new(opened);
        let later = opened + Duration::from_secs(5);
        assert!(activity.idle_for(later).unwrap() >= Duration::from_secs(5));
        let request = activity.request();
        assert_eq!(activity.idle_for(later), None);
        drop(request);
        assert!(activity.idle_for(Instant::now()).unwrap() < Duration::from_secs(1));
    }
}
