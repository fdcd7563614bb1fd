//! The access record the observer gets once per request (when the response head is ready), and the
//! small request measurements the service needs: header size, route index, authority syntax.

use std::time::{Duration, Instant};

use http::header::{HeaderMap, CONTENT_LENGTH, ORIGIN};
use http::request::Parts;
use http::Response;
use http_body::Body;

use super::body::ProxyBody;
use crate::live::Live;
use crate::observe::{AccessRecord, Observer};
use crate::snapshot::Evaluation;

/// What is known about a request before its response: borrowed from the request head.
pub(crate) struct Record<'a> {
    parts: &'a Parts,
    host: Option<&'a str>,
    start: Instant,
    /// Time until the upstream's response head.
    pub(crate) upstream_latency: Option<Duration>,
}

impl<'a> Record<'a> {
    pub(crate) fn new(parts: &'a Parts, host: Option<&'a str>, start: Instant) -> Record<'a> {
        Record {
            parts,
            host,
            start,
            upstream_latency: None,
        }
    }

    /// Hand the finished request to the observer and pass the response through.
    pub(crate) fn finish(
        &self,
        observer: &Observer,
        live: &Live,
        eval: &Evaluation<'_>,
        res: Response<ProxyBody>,
    ) -> Response<ProxyBody> {
        let routed = eval.routed();
        // A rate-limited request was refused before the policy's answer applied: it is logged
        // and counted as rate-limited only, never also as a denial.
        let denial = match eval {
            Evaluation::RateLimited(..) => None,
            _ => routed
                .and_then(|r| r.decision.denial())
                .map(|d| (d.reason, d.detail)),
        };
        let metrics = routed
            .and_then(|r| live.route(r.route))
            .map_or(&live.unmatched, |r| &r.metrics);
        let access_log = live.snapshot.log.access_log;
        if !access_log && denial.is_none() {
            // Nothing to log: count and time it without building the record.
            observer.count(metrics, eval.outcome(), self.start.elapsed());
            return res;
        }
        let origin = self.parts.headers.get(ORIGIN).and_then(|v| v.to_str().ok());
        let rec = AccessRecord {
            method: self.parts.method.as_str(),
            host: self.host,
            path: self.parts.uri.path(),
            origin,
            outcome: eval.outcome(),
            denial,
            rate_limit: match eval {
                Evaluation::RateLimited(r, _) => r.rate_limit.map(|l| l.name.as_str()),
                _ => None,
            },
            enforcement: routed.map(|r| r.policy.enforcement().as_str()),
            status: res.status().as_u16(),
            upstream_latency: self.upstream_latency,
            total: self.start.elapsed(),
            bytes_in: content_length(&self.parts.headers),
            bytes_out: res.body().size_hint().exact().unwrap_or(0),
        };
        observer.request(metrics, access_log, &rec);
        res
    }
}

/// The request body size as far as known before reading it: its `Content-Length`, else 0.
fn content_length(headers: &HeaderMap) -> u64 {
    headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The size of a header section as HTTP/1.1 would carry it: `name: value\r\n` per field.
pub(crate) fn header_bytes(headers: &HeaderMap) -> usize {
    headers
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len() + 4)
        .sum()
}
