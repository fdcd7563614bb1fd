//! `FirstByteDeadline`: closes a connection that sends nothing within `header_read_timeout`.
//!
//! hyper's own HTTP/1 header timeout only starts once the auto builder has picked HTTP/1 or HTTP/2,
//! which it does on the first bytes; a client that connects and stays silent would otherwise hold
//! a `max_connections` slot forever.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// An IO that fails its reads with `TimedOut` if no byte arrived before the deadline.
#[derive(Debug)]
pub(crate) struct FirstByteDeadline<I> {
    io: I,
    /// Armed until the first byte is read.
    deadline: Option<Pin<Box<Sleep>>>,
}

impl<I> FirstByteDeadline<I> {
    pub(crate) fn new(io: I, timeout: Duration) -> Self {
        FirstByteDeadline {
            io,
            deadline: Some(Box::pin(tokio::time::sleep(timeout))),
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for FirstByteDeadline<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.deadline = None;
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => {
                let expired = match &mut this.deadline {
                    Some(d) => d.as_mut().poll(cx).is_ready(),
                    None => false,
                };
                if expired {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "no request within header_read_timeout",
                    )));
                }
                Poll::Pending
            }
            other => other,
        }
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for FirstByteDeadline<I> {
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
    async fn a_silent_peer_times_out_and_a_talking_one_does_not() {
        let deadline = Duration::from_millis(100);
        let (a, _keep) = tokio::io::duplex(64);
        let mut silent = FirstByteDeadline::new(a, deadline);
        let mut buf = [0u8; 8];
        let err = silent.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);

        let (a, mut b) = tokio::io::duplex(64);
        let mut talking = FirstByteDeadline::new(a, deadline);
        b.write_all(b"x").await.unwrap();
        assert_eq!(talking.read(&mut buf).await.unwrap(), 1);
        // Disarmed: a later quiet period is hyper's business, not this wrapper's.
        let read = tokio::time::timeout(deadline * 3, talking.read(&mut buf)).await;
        assert!(read.is_err(), "the read should still be pending");
    }
}
