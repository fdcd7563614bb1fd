//! `[upstreams.NAME]`: the URL's parts, the CA file, the timeouts.

use std::path::Path;
use std::time::Duration;

use super::duration::duration;
use super::resolve_file;
use crate::config::diagnostic::Diagnostics;
use crate::config::raw::RawUpstream;
use crate::snapshot::Upstream;

pub(super) fn compile_upstream(
    name: &str,
    u: &RawUpstream,
    base: &Path,
    d: &mut Diagnostics<'_>,
) -> Option<Upstream> {
    let errors = d.error_count();
    let url = u.url.get_ref();
    let uri: Option<http::Uri> = match url.parse::<http::Uri>() {
        Ok(uri) => Some(uri),
        Err(e) => {
            d.error(u.url.span(), format!("invalid upstream url {url:?}: {e}"));
            None
        }
    };
    let (scheme, authority, base_path) = match uri.map(http::Uri::into_parts) {
        Some(parts) => {
            let scheme = parts
                .scheme
                .filter(|s| *s == http::uri::Scheme::HTTP || *s == http::uri::Scheme::HTTPS);
            let pq = parts.path_and_query;
            if scheme.is_none() || parts.authority.is_none() {
                d.error(
                    u.url.span(),
                    format!(
                        "upstream url {url:?} must be http://host[:port] or https://host[:port]"
                    ),
                );
            } else if parts
                .authority
                .as_ref()
                .is_some_and(|a| a.as_str().contains('@'))
            {
                d.error(u.url.span(), "an upstream url has no userinfo");
            } else if pq.as_ref().is_some_and(|p| p.query().is_some()) {
                d.error(u.url.span(), "an upstream url has no query");
            }
            let path = pq
                .as_ref()
                .map_or("", |p| p.path())
                .trim_end_matches('/')
                .to_owned();
            (scheme, parts.authority, path)
        }
        None => (None, None, String::new()),
    };
    let ca_file = u.ca_file.as_ref().map(|c| {
        if scheme.as_ref() != Some(&http::uri::Scheme::HTTPS) {
            d.error(c.span(), "ca_file only applies to an https upstream");
        }
        let path = resolve_file(c, base, d);
        if let Err(e) = crate::tls::client_config(Some(&path)) {
            d.error(c.span(), e.to_string());
        }
        path
    });
    let connect_timeout = duration(u.connect_timeout.as_ref(), Duration::from_secs(2), true, d);
    let timeout = duration(u.timeout.as_ref(), Duration::from_secs(30), true, d);
    if d.error_count() > errors {
        return None;
    }
    Some(Upstream {
        name: name.to_owned(),
        scheme: scheme?,
        authority: authority?,
        base_path,
        connect_timeout,
        timeout,
        ca_file,
        preserve_host: u.preserve_host.unwrap_or(false),
    })
}
