//! The admin listener (`server.admin`), apart from the data port: `GET /healthz`, `/readyz` and
//! `/metrics`. HTTP/1.1 only; it serves operators and Prometheus, not browsers.
//!
//! Shutdown order matters for `/readyz`: at SIGTERM the server calls `Observer::set_ready(false)`
//! and drains the data listeners while this listener keeps answering 503, so load balancers see the
//! drain. Only then should the `shutdown` future given to [`serve`] complete.

use std::convert::Infallible;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{ALLOW, CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use crate::observe::Observer;
use crate::telemetry::OPENMETRICS_CONTENT_TYPE;

/// A slow client may not hold an admin connection open without sending a request head.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long in-flight admin requests may finish after `shutdown` completes.
const DRAIN: Duration = Duration::from_secs(5);
/// After an accept error (e.g. out of file descriptors), wait before accepting again rather than
/// spinning on the error.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serve the admin endpoints on `listener` until `shutdown` completes, then let open requests
/// finish (for at most a few seconds).
pub(crate) async fn serve(
    listener: TcpListener,
    observer: Arc<Observer>,
    shutdown: impl Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
    let mut shutdown = pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(error) => {
                tracing::warn!(%error, "admin listener: accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let observer = Arc::clone(&observer);
        let service = service_fn(move |req| {
            let response = respond(&observer, &req);
            async move { Ok::<_, Infallible>(response) }
        });
        let conn = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT)
            .serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(error) = conn.await {
                tracing::debug!(%error, "admin connection ended with an error");
            }
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(DRAIN) => {
            tracing::debug!("admin listener: drain timed out");
        }
    }
}

/// Route one admin request.
fn respond(observer: &Observer, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    if !matches!(path, "/healthz" | "/readyz" | "/metrics") {
        return text(StatusCode::NOT_FOUND, "not found\n");
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut resp = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        resp.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return resp;
    }
    match path {
        "/healthz" => text(StatusCode::OK, "ok\n"),
        "/readyz" if observer.is_ready() => text(StatusCode::OK, "ready\n"),
        "/readyz" => text(StatusCode::SERVICE_UNAVAILABLE, "not ready\n"),
        _ => metrics(observer),
    }
}

fn metrics(observer: &Observer) -> Response<Full<Bytes>> {
    match observer.encode_metrics() {
        Ok(body) => {
            let mut resp = Response::new(Full::new(Bytes::from(body)));
            let headers = resp.headers_mut();
            headers.insert(
                CONTENT_TYPE,
                HeaderValue::from_static(OPENMETRICS_CONTENT_TYPE),
            );
            headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            resp
        }
        Err(error) => {
            tracing::error!(%error, "encoding metrics failed");
            text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "metrics encoding failed\n",
            )
        }
    }
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *resp.status_mut() = status;
    let headers = resp.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}
