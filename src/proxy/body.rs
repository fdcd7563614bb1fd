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
        /// Whom to tell about a mid-body failure; taken on the first one.
        fault: Option<Fault>,
        /// The connection the body comes on: released to the pool at the body's end, closed if
        /// the body fails or is dropped before then.
        lease: Option<Lease>,
    },
    /// A body built by the proxy; `None` once sent (or for an empty body).
    Local(Option<Bytes>),
}

/// Where a mid-body upstream failure is reported.
#[derive(Debug)]
pub(crate) struct Fault {
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

    /// The upstream's body, streamed; a failure mid-body is reported to `fault`.
    pub(crate) fn upstream(body: Incoming, fault: Fault, lease: Lease) -> ProxyBody {
        ProxyBody {
            kind: Kind::Upstream {
                body,
                fault: Some(fault),
                lease: Some(lease),
            },
        }
    }
}

fn release(lease: &mut Option<Lease>) {
    if let Some(mut lease) = lease.take() {
        lease.release();
    }
}

/// hyper stops polling a body that says it has ended (a `HEAD`, a 204, the last frame of a
/// known-length body): the connection goes back to the pool here then.
impl Drop for ProxyBody {
    fn drop(&mut self) {
        if let Kind::Upstream { body, lease, .. } = &mut self.kind {
            if body.is_end_stream() {
                release(lease);
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
            Kind::Upstream { body, fault, lease } => {
                let polled = Pin::new(&mut *body).poll_frame(cx);
                match &polled {
                    Poll::Ready(Some(Err(_))) => {
                        *lease = None;
                        if let Some(f) = fault.take() {
                            let kind = UpstreamErrorKind::Reset;
                            f.observer.upstream_error(&f.upstream.metrics, kind);
                        }
                    }
                    Poll::Ready(None) => release(lease),
                    Poll::Ready(Some(Ok(_))) if body.is_end_stream() => release(lease),
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
