//! `ProxyBody`: the one response body type the proxy sends, either the upstream's streamed body or a
//! small body built locally. An enum, not a boxed trait object, so a response allocates nothing for
//! its body.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use crate::live::LiveUpstream;
use crate::observe::{Observer, UpstreamErrorKind};
use crate::pool::Lease;

/// A response body: streamed from the upstream, or local and complete.
#[derive(Debug)]
pub(crate) struct ProxyBody {
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    /// The upstream's body, passed through frame by frame. An error from it (the upstream broke
    /// mid-body) is counted, then returned to hyper. hyper then aborts the client's connection or
    /// stream instead of ending a truncated body as if it were complete.
    Upstream {
        body: Incoming,
        /// Taken at the body's end (the connection goes back to the pool) or at its first
        /// failure (counted; the connection is closed); a body dropped before either closes it.
        exchange: Option<Exchange>,
    },
    /// A body built by the proxy; `None` once sent (or for an empty body).
    Local(Option<Bytes>),
}

/// What a streamed upstream body still owes: its connection back to the upstream's pool, or a
/// mid-body failure reported to the observer.
#[derive(Debug)]
pub(crate) struct Exchange {
    pub(crate) lease: Lease,
    pub(crate) observer: Arc<Observer>,
    pub(crate) upstream: Arc<LiveUpstream>,
}

impl ProxyBody {
    /// An empty body.
    pub(crate) fn empty() -> ProxyBody {
        ProxyBody {
            kind: Kind::Local(None),
        }
    }

    /// A complete body of static text.
    pub(crate) fn text(text: &'static str) -> ProxyBody {
        ProxyBody {
            kind: Kind::Local(Some(Bytes::from_static(text.as_bytes()))),
        }
    }

    /// The upstream's body, streamed, for `exchange`.
    pub(crate) fn upstream(body: Incoming, exchange: Exchange) -> ProxyBody {
        ProxyBody {
            kind: Kind::Upstream {
                body,
                exchange: Some(exchange),
            },
        }
    }
}

fn release(exchange: &mut Option<Exchange>) {
    if let Some(e) = exchange.take() {
        e.lease.release(&e.upstream.pool);
    }
}

/// hyper stops polling a body that says it has ended (a `HEAD`, a 204, the last frame of a
/// known-length body): the connection goes back to the pool here then.
impl Drop for ProxyBody {
    fn drop(&mut self) {
        if let Kind::Upstream { body, exchange } = &mut self.kind {
            if body.is_end_stream() {
                release(exchange);
            }
        }
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match &mut self.get_mut().kind {
            Kind::Upstream { body, exchange } => {
                let polled = Pin::new(&mut *body).poll_frame(cx);
                match &polled {
                    Poll::Ready(Some(Err(_))) => {
                        if let Some(e) = exchange.take() {
                            let kind = UpstreamErrorKind::Reset;
                            e.observer.upstream_error(&e.upstream.metrics, kind);
                        }
                    }
                    Poll::Ready(None) => release(exchange),
                    Poll::Ready(Some(Ok(_))) if body.is_end_stream() => release(exchange),
                    _ => {}
                }
                polled
            }
            Kind::Local(data) => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Upstream { body, .. } => body.is_end_stream(),
            Kind::Local(data) => data.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Upstream { body, .. } => body.size_hint(),
            Kind::Local(data) => SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64)),
        }
    }
}
