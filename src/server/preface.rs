//! Choosing HTTP/1.1 or h2c on one port by the first bytes, without doubling hyper's read buffer.
//!
//! hyper-util's auto builder does the same sniffing, but hands hyper the sniffed bytes (up to 24)
//! as a read of their own. hyper's HTTP/1.1 reader then finds its 8 KiB buffer holding 24 bytes
//! and short of the 8 KiB it reserves per read, and `BytesMut` grows it to 16 KiB, which every
//! connection keeps for life (massif: 16,351 of the 18,360 bytes an idle keep-alive connection
//! cost). Here the sniffed bytes come back together with whatever the socket has in the same
//! read, so hyper parses the first head from one read and keeps its 8 KiB buffer. hyper-util's
//! `http1_only`/`http2_only` cannot help: they are ignored with upgrades, which the proxy needs.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

/// The HTTP/2 connection preface (RFC 9113, section 3.4).
const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Which protocol the client speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Protocol {
    Http1,
    Http2,
}

/// Read until the bytes either are the whole h2 preface or stop matching it (usually the first
/// byte: no HTTP/1.1 method but `PRI` starts with `PR`). The bytes read are handed back by the
/// returned [`Sniffed`]. An empty connection counts as HTTP/1.1, whose reader then sees the end.
pub(crate) async fn sniff<I: AsyncRead + Unpin>(mut io: I) -> io::Result<Sniffed<I>> {
    let mut prefix = [0u8; PREFACE.len()];
    let mut filled = 0;
    let protocol = loop {
        let n = io.read(&mut prefix[filled..]).await?;
        let start = filled;
        filled += n;
        if n == 0 || prefix[start..filled] != PREFACE[start..filled] {
            break Protocol::Http1;
        }
        if filled == PREFACE.len() {
            break Protocol::Http2;
        }
    };
    Ok(Sniffed {
        io,
        protocol,
        prefix,
        // `filled` is at most 24.
        start: 0,
        end: filled as u8,
        deferred: None,
    })
}

/// An IO whose first read returns the sniffed bytes followed by whatever the IO has ready.
#[derive(Debug)]
pub(crate) struct Sniffed<I> {
    io: I,
    protocol: Protocol,
    prefix: [u8; PREFACE.len()],
    start: u8,
    end: u8,
    /// An error the IO returned in the read that also handed out the prefix; the next read gets it.
    deferred: Option<io::Error>,
}

impl<I> Sniffed<I> {
    pub(crate) fn protocol(&self) -> Protocol {
        self.protocol
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Sniffed<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(e) = this.deferred.take() {
            return Poll::Ready(Err(e));
        }
        if this.start == this.end {
            return Pin::new(&mut this.io).poll_read(cx, buf);
        }
        let pending = &this.prefix[usize::from(this.start)..usize::from(this.end)];
        let n = pending.len().min(buf.remaining());
        buf.put_slice(&pending[..n]);
        // n <= 24.
        this.start += n as u8;
        if this.start == this.end && buf.remaining() > 0 {
            // Pending leaves the waker registered, which only costs a spurious wake-up later.
            if let Poll::Ready(Err(e)) = Pin::new(&mut this.io).poll_read(cx, buf) {
                this.deferred = Some(e);
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Sniffed<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
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

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    async fn sniffed(chunks: &[&[u8]]) -> (Protocol, Vec<u8>, usize) {
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        let chunks: Vec<Vec<u8>> = chunks.iter().map(|c| c.to_vec()).collect();
        let writer = tokio::spawn(async move {
            for c in chunks {
                client.write_all(&c).await.expect("write");
                tokio::task::yield_now().await;
            }
            client.shutdown().await.expect("shutdown");
        });
        let mut s = sniff(server).await.expect("sniff");
        writer.await.expect("writer");
        let protocol = s.protocol();
        let mut first = vec![0u8; 8192];
        let first_len = s.read(&mut first).await.expect("read");
        let mut all = first[..first_len].to_vec();
        s.read_to_end(&mut all).await.expect("read to end");
        (protocol, all, first_len)
    }

    #[tokio::test]
    async fn http1_head_comes_back_whole_in_the_first_read() {
        let head: &[u8] =
            b"GET /api HTTP/1.1\r\nHost: a\r\nOrigin: https://app.example.com\r\n\r\n";
        let (protocol, all, first) = sniffed(&[head]).await;
        assert_eq!(protocol, Protocol::Http1);
        assert_eq!(all, head);
        assert_eq!(first, head.len(), "sniffed bytes and the rest in one read");
    }

    #[tokio::test]
    async fn post_shares_the_preface_first_byte() {
        let (protocol, all, _) = sniffed(&[b"P", b"OST / HTTP/1.1\r\n\r\n"]).await;
        assert_eq!(protocol, Protocol::Http1);
        assert_eq!(all, b"POST / HTTP/1.1\r\n\r\n");
    }

    #[tokio::test]
    async fn preface_in_pieces_is_http2_and_nothing_is_lost() {
        let mut wire = PREFACE.to_vec();
        wire.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
        let (protocol, all, _) = sniffed(&[&wire[..3], &wire[3..20], &wire[20..]]).await;
        assert_eq!(protocol, Protocol::Http2);
        assert_eq!(all, wire);
    }

    #[tokio::test]
    async fn empty_connection_is_http1_at_its_end() {
        let (protocol, all, first) = sniffed(&[]).await;
        assert_eq!(protocol, Protocol::Http1);
        assert!(all.is_empty());
        assert_eq!(first, 0);
    }

    #[tokio::test]
    async fn small_reads_drain_the_prefix_first() {
        let (client, server) = tokio::io::duplex(1024);
        let mut client = client;
        client
            .write_all(b"GET / HTTP/1.1\r\n\r\n")
            .await
            .expect("write");
        drop(client);
        let mut s = sniff(server).await.expect("sniff");
        let mut two = [0u8; 2];
        s.read_exact(&mut two).await.expect("read");
        assert_eq!(&two, b"GE");
        let mut rest = Vec::new();
        s.read_to_end(&mut rest).await.expect("rest");
        assert_eq!(rest, b"T / HTTP/1.1\r\n\r\n");
    }
}
