//! `ProxyBody`: the one response body type the proxy sends, either the upstream's streamed body or a
//! small body built locally. An enum instead of a boxed trait object: no allocation per response.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

/// A response body: streamed from the upstream, or local and complete.
#[derive(Debug)]
pub enum ProxyBody {
    /// The upstream's body, passed through frame by frame. An error from it (the upstream reset
    /// mid-body) is returned to hyper, which then aborts the client's connection or stream instead
    /// of ending a truncated body as if it were complete.
    Upstream(Incoming),
    /// A body built by the proxy; `None` once sent (or for an empty body).
    Local(Option<Bytes>),
}

impl ProxyBody {
    /// An empty body.
    pub fn empty() -> ProxyBody {
        ProxyBody::Local(None)
    }

    /// A complete body of static text.
    pub fn text(text: &'static str) -> ProxyBody {
        ProxyBody::Local(Some(Bytes::from_static(text.as_bytes())))
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            ProxyBody::Upstream(body) => Pin::new(body).poll_frame(cx),
            ProxyBody::Local(data) => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ProxyBody::Upstream(body) => body.is_end_stream(),
            ProxyBody::Local(data) => data.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ProxyBody::Upstream(body) => body.size_hint(),
            ProxyBody::Local(data) => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64))
            }
        }
    }
}
