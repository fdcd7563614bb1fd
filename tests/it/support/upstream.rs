//! The recording upstream: one hyper HTTP/1.1 server (plain or TLS) whose behaviour each request picks (see the
//! module docs of `support`).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode};
use http_body::{Body, Frame};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::WebSocketStream;

use super::bodies::Generated;
use super::PATIENCE;

/// One request as the upstream received it.
#[derive(Clone, Debug)]
pub struct Seen {
    /// Method.
    pub method: String,
    /// Path and query, exactly as received.
    pub target: String,
    /// Headers as received.
    pub headers: HeaderMap,
    /// Body bytes read (0 for streamed endpoints).
    pub body_len: u64,
}

/// The upstream's log of requests, with a counter tests can wait on.
#[derive(Default)]
struct Recorder {
    seen: Mutex<Vec<Seen>>,
    count: tokio::sync::watch::Sender<usize>,
}

impl Recorder {
    fn push(&self, s: Seen) {
        let mut seen = self.seen.lock().unwrap();
        seen.push(s);
        self.count.send_replace(seen.len());
    }
}

/// A recording upstream on 127.0.0.1:0.
pub struct Upstream {
    /// Where it listens.
    pub addr: SocketAddr,
    https: bool,
    rec: Arc<Recorder>,
    _stop: oneshot::Sender<()>,
}

impl Upstream {
    /// Start an upstream; it stops when dropped.
    pub async fn start() -> Upstream {
        Upstream::serve(None).await
    }

    /// Start an HTTPS upstream (HTTP/1.1 over TLS with `config`'s certificate); it stops when
    /// dropped. Its [`Upstream::url`] names `localhost`, for SNI and certificate checks.
    pub async fn start_tls(config: Arc<rustls::ServerConfig>) -> Upstream {
        Upstream::serve(Some(tokio_rustls::TlsAcceptor::from(config))).await
    }

    async fn serve(tls: Option<tokio_rustls::TlsAcceptor>) -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let rec = Arc::new(Recorder::default());
        let (stop, mut stopped) = oneshot::channel::<()>();
        let recorder = Arc::clone(&rec);
        let https = tls.is_some();
        tokio::spawn(async move {
            loop {
                let (stream, _) = tokio::select! {
                    _ = &mut stopped => return,
                    a = listener.accept() => match a { Ok(a) => a, Err(_) => continue },
                };
                let rec = Arc::clone(&recorder);
                let tls = tls.clone();
                tokio::spawn(async move {
                    let svc =
                        hyper::service::service_fn(move |req| upstream(Arc::clone(&rec), req));
                    let http1 = hyper::server::conn::http1::Builder::new();
                    let _ = match tls {
                        None => {
                            let io = TokioIo::new(stream);
                            http1.serve_connection(io, svc).with_upgrades().await
                        }
                        Some(acceptor) => {
                            let Ok(stream) = acceptor.accept(stream).await else {
                                return;
                            };
                            let io = TokioIo::new(stream);
                            http1.serve_connection(io, svc).with_upgrades().await
                        }
                    };
                });
            }
        });
        Upstream {
            addr,
            https,
            rec,
            _stop: stop,
        }
    }

    /// `http://127.0.0.1:PORT`, or `https://localhost:PORT` for a TLS upstream.
    pub fn url(&self) -> String {
        if self.https {
            format!("https://localhost:{}", self.addr.port())
        } else {
            format!("http://{}", self.addr)
        }
    }

    /// How many requests arrived (counted when their head arrived, or their body for `/upload`).
    pub fn hits(&self) -> usize {
        self.rec.seen.lock().unwrap().len()
    }

    /// The last request that arrived (panics if none did).
    pub fn last(&self) -> Seen {
        let seen = self.rec.seen.lock().unwrap();
        seen.last().cloned().expect("the upstream saw no request")
    }

    /// Wait until at least `n` requests have arrived.
    pub async fn wait_for_hits(&self, n: usize) {
        let mut rx = self.rec.count.subscribe();
        let wait = rx.wait_for(|c| *c >= n);
        tokio::time::timeout(PATIENCE, wait)
            .await
            .expect("the upstream never saw the request")
            .unwrap();
    }
}

type UpBody = http_body_util::combinators::BoxBody<Bytes, std::io::Error>;

fn full(text: impl Into<Bytes>) -> UpBody {
    Full::new(text.into())
        .map_err(|never| match never {})
        .boxed()
}

fn query_u64(req: &Request<Incoming>, key: &str) -> Option<u64> {
    req.uri().query()?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then(|| v.parse().ok())?
    })
}

async fn upstream(
    seen: Arc<Recorder>,
    mut req: Request<Incoming>,
) -> Result<Response<UpBody>, Infallible> {
    let target = req
        .uri()
        .path_and_query()
        .map_or("/".into(), |p| p.to_string());
    let mut record = Seen {
        method: req.method().to_string(),
        target,
        headers: req.headers().clone(),
        body_len: 0,
    };
    let path = req.uri().path().to_owned();
    if req.headers().contains_key("upgrade") {
        seen.push(record);
        return Ok(websocket_echo(&mut req));
    }
    let mut res = if path.ends_with("/upload") {
        let (mut len, mut sum) = (0u64, 0u64);
        let mut body = req.into_body();
        while let Some(frame) = body.frame().await {
            if let Some(d) = frame.ok().and_then(|f| f.into_data().ok()) {
                len += d.len() as u64;
                sum = d.iter().fold(sum, |s, b| s.wrapping_add(u64::from(*b)));
            }
        }
        record.body_len = len;
        seen.push(record.clone());
        Response::new(full(format!("{len} {sum}")))
    } else if path.ends_with("/download") {
        let n = query_u64(&req, "bytes").unwrap_or(0);
        seen.push(record.clone());
        Response::new(Generated::new(n).boxed())
    } else if path.ends_with("/reset") {
        let chunked = req.uri().query() == Some("chunked");
        seen.push(record.clone());
        let mut res = Response::new(Breaking::new().boxed());
        if !chunked {
            res.headers_mut()
                .insert("content-length", HeaderValue::from_static("100000"));
        }
        res
    } else if path.ends_with("/slow") {
        // Recorded on arrival, so a test can wait for the request to be in flight.
        seen.push(record.clone());
        let ms = query_u64(&req, "ms").unwrap_or(1000);
        tokio::time::sleep(Duration::from_millis(ms)).await;
        Response::new(full("slow done\n"))
    } else {
        let body = req.into_body().collect().await.map(|b| b.to_bytes());
        record.body_len = body.map_or(0, |b| b.len() as u64);
        seen.push(record.clone());
        let mut res = Response::new(full("hello from upstream\n"));
        res.headers_mut()
            .insert("content-type", HeaderValue::from_static("text/plain"));
        res
    };
    apply_reply_headers(&record.headers, &mut res);
    Ok(res)
}

fn apply_reply_headers(req: &HeaderMap, res: &mut Response<UpBody>) {
    if let Some(s) = req.get("x-reply-status").and_then(|v| v.to_str().ok()) {
        *res.status_mut() = s.parse().unwrap();
    }
    for v in req.get_all("x-reply-header") {
        let (n, v) = v.to_str().unwrap().split_once(':').unwrap();
        let name = HeaderName::from_bytes(n.trim().as_bytes()).unwrap();
        res.headers_mut()
            .append(name, HeaderValue::from_str(v.trim()).unwrap());
    }
}

fn websocket_echo(req: &mut Request<Incoming>) -> Response<UpBody> {
    let key = req.headers()["sec-websocket-key"].as_bytes().to_vec();
    let on_upgrade = hyper::upgrade::on(req);
    tokio::spawn(async move {
        let io = TokioIo::new(on_upgrade.await.unwrap());
        let mut ws = WebSocketStream::from_raw_socket(io, Role::Server, None).await;
        while let Some(Ok(msg)) = ws.next().await {
            if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
                break;
            }
        }
    });
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(&key);
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-accept", accept)
        .body(full(""))
        .unwrap()
}

/// Sends 1000 bytes, then (100 ms later, so the head and those bytes are surely on the wire) fails:
/// the upstream connection breaks mid-body.
struct Breaking {
    sent: bool,
    pause: Pin<Box<tokio::time::Sleep>>,
}

impl Breaking {
    fn new() -> Breaking {
        Breaking {
            sent: false,
            pause: Box::pin(tokio::time::sleep(Duration::from_millis(100))),
        }
    }
}

impl Body for Breaking {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        if !self.sent {
            self.sent = true;
            return Poll::Ready(Some(Ok(Frame::data(Bytes::from(vec![b'x'; 1000])))));
        }
        std::task::ready!(std::future::Future::poll(self.pause.as_mut(), cx));
        Poll::Ready(Some(Err(std::io::Error::other("upstream broke"))))
    }
}
