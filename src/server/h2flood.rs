//! `FloodGuard`: a bound on HTTP/2 control frames that the h2 crate answers without limit.
//!
//! h2 0.4 acknowledges every SETTINGS frame and answers every PING (`proto/ping_pong.rs` keeps one
//! pending pong and reads the next frame as soon as it is written), and it has no counter for
//! either; its own abuse limits cover resets (`max_pending_accept_reset_streams`,
//! `max_local_error_reset_streams`), CONTINUATION and header-list size only. So a client could
//! keep a connection, and a share of a core, busy for ever with 200,000 PINGs.
//!
//! This wrapper sits between the connection's IO (after TLS) and hyper. It sniffs the HTTP/2
//! connection preface, by the same rule `preface.rs` uses to choose h2; on any other first
//! bytes it steps aside for good (one branch per read). On an h2 connection it reads the 9-byte
//! header of every frame the client sends (length, type, flags), skipping payloads, and counts
//! SETTINGS and PING frames that are not ACKs. More than [`CONTROL_FRAMES_PER_WINDOW`] of them
//! within [`WINDOW`] and the connection is ended: a GOAWAY with ENHANCE_YOUR_CALM (0xb) is written
//! (when the server's own output is at a frame boundary, which the wrapper tracks the same way),
//! and the read fails, which fails hyper's connection. Envoy and nginx do the same.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// SETTINGS and PING frames (ACKs excluded) a client may send per window. Browsers send one
/// SETTINGS per connection and an occasional PING, so this is far above any real client.
pub(crate) const CONTROL_FRAMES_PER_WINDOW: u32 = 1000;
/// The window for [`CONTROL_FRAMES_PER_WINDOW`].
pub(crate) const WINDOW: Duration = Duration::from_secs(10);

const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const FRAME_HEADER: usize = 9;
const TYPE_HEADERS: u8 = 0x1;
const TYPE_SETTINGS: u8 = 0x4;
const TYPE_PING: u8 = 0x6;
const TYPE_GOAWAY: u8 = 0x7;
const FLAG_ACK: u8 = 0x1;
const ENHANCE_YOUR_CALM: u32 = 0xb;

/// Where a byte stream of frames is: inside a frame header (`filled` of its 9 bytes) or inside a
/// payload (`skip` bytes of it left).
#[derive(Debug, Default)]
struct Frames {
    header: [u8; FRAME_HEADER],
    filled: usize,
    skip: usize,
}

impl Frames {
    /// Consume `bytes`, calling `on_header` with each complete frame header.
    fn feed(&mut self, mut bytes: &[u8], mut on_header: impl FnMut(&[u8; FRAME_HEADER])) {
        while !bytes.is_empty() {
            if self.skip > 0 {
                let n = self.skip.min(bytes.len());
                self.skip -= n;
                bytes = &bytes[n..];
                continue;
            }
            let n = (FRAME_HEADER - self.filled).min(bytes.len());
            self.header[self.filled..self.filled + n].copy_from_slice(&bytes[..n]);
            self.filled += n;
            bytes = &bytes[n..];
            if self.filled == FRAME_HEADER {
                self.filled = 0;
                let h = self.header;
                self.skip = usize::from(h[0]) << 16 | usize::from(h[1]) << 8 | usize::from(h[2]);
                on_header(&h);
            }
        }
    }

    fn at_boundary(&self) -> bool {
        self.filled == 0 && self.skip == 0
    }
}

#[derive(Debug)]
enum Mode {
    /// `matched` bytes of the preface seen so far; nothing written yet.
    Sniffing { matched: usize },
    /// Not HTTP/2: pass everything through.
    Off,
    /// HTTP/2: counting.
    H2(Box<H2State>),
    /// Over the bound: `goaway[sent..]` still to write, then every read and write fails.
    Tripped { goaway: [u8; 17], sent: usize },
    /// The GOAWAY is out (or could not be sent).
    Failed,
}

#[derive(Debug)]
struct H2State {
    /// The client's frames, after the preface.
    read: Frames,
    /// The server's frames (it has no preface of its own).
    write: Frames,
    window_start: Instant,
    in_window: u32,
    /// The highest stream the client opened, for the GOAWAY's last-stream-id.
    last_stream: u32,
    over: bool,
}

/// See the module documentation.
#[derive(Debug)]
pub(crate) struct FloodGuard<I> {
    io: I,
    mode: Mode,
}

fn flood_error() -> io::Error {
    io::Error::other("HTTP/2 control frame flood: ENHANCE_YOUR_CALM")
}

impl<I> FloodGuard<I> {
    pub(crate) fn new(io: I) -> Self {
        FloodGuard {
            io,
            mode: Mode::Sniffing { matched: 0 },
        }
    }

    /// Look at bytes the client sent; `true` when they push it over the bound.
    fn inspect(&mut self, bytes: &[u8]) -> bool {
        let mut bytes = bytes;
        if let Mode::Sniffing { matched } = &mut self.mode {
            let n = (PREFACE.len() - *matched).min(bytes.len());
            if bytes[..n] != PREFACE[*matched..*matched + n] {
                self.mode = Mode::Off;
                return false;
            }
            *matched += n;
            bytes = &bytes[n..];
            if *matched < PREFACE.len() {
                return false;
            }
            self.mode = Mode::H2(Box::new(H2State {
                read: Frames::default(),
                write: Frames::default(),
                window_start: Instant::now(),
                in_window: 0,
                last_stream: 0,
                over: false,
            }));
        }
        let Mode::H2(h2) = &mut self.mode else {
            return false;
        };
        let H2State {
            read,
            window_start,
            in_window,
            last_stream,
            over,
            ..
        } = &mut **h2;
        read.feed(bytes, |h| {
            let (kind, flags) = (h[3], h[4]);
            let stream = u32::from_be_bytes([h[5] & 0x7f, h[6], h[7], h[8]]);
            if kind == TYPE_HEADERS {
                *last_stream = (*last_stream).max(stream);
            }
            if (kind == TYPE_SETTINGS || kind == TYPE_PING) && flags & FLAG_ACK == 0 {
                *in_window += 1;
                // The clock is read once per CONTROL_FRAMES_PER_WINDOW frames, not per frame.
                if *in_window > CONTROL_FRAMES_PER_WINDOW {
                    let now = Instant::now();
                    if now.duration_since(*window_start) < WINDOW {
                        *over = true;
                    } else {
                        *window_start = now;
                        *in_window = 1;
                    }
                }
            }
        });
        if !h2.over {
            return false;
        }
        let goaway_ok = h2.write.at_boundary();
        let last = h2.last_stream.to_be_bytes();
        let code = ENHANCE_YOUR_CALM.to_be_bytes();
        self.mode = if goaway_ok {
            let mut goaway = [0u8; 17];
            goaway[..9].copy_from_slice(&[0, 0, 8, TYPE_GOAWAY, 0, 0, 0, 0, 0]);
            goaway[9..13].copy_from_slice(&last);
            goaway[13..].copy_from_slice(&code);
            Mode::Tripped { goaway, sent: 0 }
        } else {
            Mode::Failed
        };
        true
    }
}

impl<I: AsyncWrite + Unpin> FloodGuard<I> {
    /// Write what is left of the GOAWAY and flush; then the connection is `Failed`. Errors end it
    /// all the same.
    fn poll_goaway(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            let Mode::Tripped { goaway, sent } = &mut self.mode else {
                return Poll::Ready(());
            };
            if *sent < goaway.len() {
                match ready!(Pin::new(&mut self.io).poll_write(cx, &goaway[*sent..])) {
                    Ok(n) if n > 0 => *sent += n,
                    _ => self.mode = Mode::Failed,
                }
                continue;
            }
            let _ = ready!(Pin::new(&mut self.io).poll_flush(cx));
            self.mode = Mode::Failed;
        }
    }

    /// `Some` once the connection is over the bound: pending until the GOAWAY is out, then the
    /// error every later read and write gets.
    fn poll_tripped(&mut self, cx: &mut Context<'_>) -> Option<Poll<io::Error>> {
        match self.mode {
            Mode::Tripped { .. } => Some(self.poll_goaway(cx).map(|()| flood_error())),
            Mode::Failed => Some(Poll::Ready(flood_error())),
            _ => None,
        }
    }

    /// Note bytes the server wrote, to know where its frames start.
    fn wrote(&mut self, bytes: &[u8]) {
        match &mut self.mode {
            Mode::H2(h2) => h2.write.feed(bytes, |_| {}),
            // A write before the preface was complete means this is not h2 (nothing is
            // written while the version is sniffed); stop watching rather than misread frames later.
            Mode::Sniffing { .. } if !bytes.is_empty() => self.mode = Mode::Off,
            _ => {}
        }
    }
}

impl<I: AsyncRead + AsyncWrite + Unpin> AsyncRead for FloodGuard<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Mode::Off = this.mode {
            return Pin::new(&mut this.io).poll_read(cx, buf);
        }
        if let Some(tripped) = this.poll_tripped(cx) {
            return tripped.map(Err);
        }
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.io).poll_read(cx, buf))?;
        if !this.inspect(&buf.filled()[before..]) {
            return Poll::Ready(Ok(()));
        }
        // Over the bound: whatever was just read is not handed on.
        buf.set_filled(before);
        tracing::debug!(
            limit = CONTROL_FRAMES_PER_WINDOW,
            window = ?WINDOW,
            "HTTP/2 SETTINGS/PING flood: GOAWAY ENHANCE_YOUR_CALM"
        );
        match this.poll_tripped(cx) {
            Some(tripped) => tripped.map(Err),
            None => Poll::Ready(Err(flood_error())),
        }
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for FloodGuard<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Some(tripped) = this.poll_tripped(cx) {
            return tripped.map(Err);
        }
        let n = ready!(Pin::new(&mut this.io).poll_write(cx, buf))?;
        this.wrote(&buf[..n]);
        Poll::Ready(Ok(n))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Some(tripped) = this.poll_tripped(cx) {
            return tripped.map(Err);
        }
        let mut n = ready!(Pin::new(&mut this.io).poll_write_vectored(cx, bufs))?;
        let written = n;
        for b in bufs {
            if n == 0 {
                break;
            }
            let take = n.min(b.len());
            this.wrote(&b[..take]);
            n -= take;
        }
        Poll::Ready(Ok(written))
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(tripped) = this.poll_tripped(cx) {
            return tripped.map(Err);
        }
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Mode::Tripped { .. } = this.mode {
            ready!(this.poll_goaway(cx));
        }
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const PING: [u8; 17] = [0, 0, 8, 6, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8];

    #[tokio::test]
    async fn a_ping_flood_gets_goaway_enhance_your_calm_and_a_failed_read() {
        let (a, mut client) = tokio::io::duplex(1 << 20);
        let mut guard = FloodGuard::new(a);
        let mut flood = PREFACE.to_vec();
        flood.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
        for _ in 0..=CONTROL_FRAMES_PER_WINDOW {
            flood.extend_from_slice(&PING);
        }
        client.write_all(&flood).await.unwrap();
        let mut sink = vec![0u8; 1 << 20];
        let err = loop {
            match guard.read(&mut sink).await {
                Ok(n) => assert!(n > 0, "EOF before the bound"),
                Err(e) => break e,
            }
        };
        assert!(err.to_string().contains("ENHANCE_YOUR_CALM"), "{err}");
        let mut goaway = [0u8; 17];
        client.read_exact(&mut goaway).await.unwrap();
        assert_eq!(goaway[3], TYPE_GOAWAY);
        assert_eq!(&goaway[13..], &[0, 0, 0, 0xb]);
        assert!(guard.write(b"x").await.is_err());
    }

    #[tokio::test]
    async fn http1_and_acks_are_not_counted() {
        let (a, mut client) = tokio::io::duplex(1 << 20);
        let mut guard = FloodGuard::new(a);
        // Ping frames inside an HTTP/1.1 body are just bytes.
        let mut bytes = b"POST / HTTP/1.1\r\nHost: a\r\n\r\n".to_vec();
        for _ in 0..2000 {
            bytes.extend_from_slice(&PING);
        }
        client.write_all(&bytes).await.unwrap();
        drop(client);
        let mut out = Vec::new();
        guard.read_to_end(&mut out).await.unwrap();
        assert_eq!(out, bytes);

        let (a, mut client) = tokio::io::duplex(1 << 20);
        let mut guard = FloodGuard::new(a);
        let mut bytes = PREFACE.to_vec();
        let mut ack = PING;
        ack[4] = FLAG_ACK;
        for _ in 0..2000 {
            bytes.extend_from_slice(&ack);
        }
        // A DATA frame whose payload looks like PINGs is skipped whole.
        let payload: Vec<u8> = (0..2000).flat_map(|_| PING).collect();
        let len = payload.len();
        bytes.extend_from_slice(&[
            (len >> 16) as u8,
            (len >> 8) as u8,
            len as u8,
            0,
            0,
            0,
            0,
            0,
            1,
        ]);
        bytes.extend_from_slice(&payload);
        client.write_all(&bytes).await.unwrap();
        drop(client);
        let mut out = Vec::new();
        guard.read_to_end(&mut out).await.unwrap();
        assert_eq!(out.len(), bytes.len());
    }
}
