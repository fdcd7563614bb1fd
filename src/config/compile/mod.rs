//! raw → `Snapshot`: resolve references, validate every value, collect every error and warning with
//! its position. The only way to a `Snapshot`.

mod policy;
mod regex_probe;

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use toml::Spanned;

use super::diagnostic::Diagnostics;
use super::raw::{Entry, Lenient, Listen, RawConfig, RawLog, RawRoute, RawServer, RawUpstream};
use crate::policy::Origin;
use crate::routes::{HostPattern, Route, RouteTable};
use crate::snapshot::{LogFormat, LogSettings, ServerSettings, Snapshot, TlsFiles, Upstream};

/// Compile a parsed file. `base` is the config file's directory for relative paths.
pub(super) fn compile(
    raw: RawConfig,
    source: &Path,
    base: &Path,
    d: &mut Diagnostics<'_>,
) -> Option<Snapshot> {
    let server = entry(raw.server.as_ref(), d).map_or_else(
        || Some(default_server()),
        |(s, _)| compile_server(s, base, d),
    );
    let log =
        entry(raw.log.as_ref(), d).map_or_else(|| Some(default_log()), |(l, _)| compile_log(l, d));

    let mut upstream_index = HashMap::new();
    let mut upstreams = Vec::new();
    for (name, e) in &raw.upstreams {
        if let Some((u, _)) = entry(Some(e), d) {
            if let Some(up) = compile_upstream(name.get_ref(), u, base, d) {
                upstream_index.insert(name.get_ref().as_str(), upstreams.len());
                upstreams.push(up);
            }
        }
    }
    let mut policy_index = HashMap::new();
    let mut policies = Vec::new();
    for (name, e) in &raw.policies {
        if let Some((p, span)) = entry(Some(e), d) {
            if let Some(p) = policy::compile_policy(name.get_ref(), p, span, d) {
                policy_index.insert(name.get_ref().as_str(), policies.len());
                policies.push(p);
            }
        }
    }
    let known = Known {
        upstreams: raw.upstreams.keys().map(|k| k.get_ref().as_str()).collect(),
        policies: raw.policies.keys().map(|k| k.get_ref().as_str()).collect(),
        upstream_index,
        policy_index,
    };
    let routes = compile_routes(&raw.routes, &known, d);
    warn_unused(&raw, d);
    if d.has_errors() {
        return None;
    }
    let server = server?;
    let tls = match &server.tls {
        None => None,
        Some(files) => match crate::tls::server_config(&files.cert, &files.key) {
            Ok(config) => Some(config),
            Err(e) => {
                let span = raw_tls_span(&raw).unwrap_or(0..0);
                d.error(span, e.to_string());
                return None;
            }
        },
    };
    Some(Snapshot {
        source: source.to_path_buf(),
        tls,
        server,
        log: log?,
        upstreams,
        policies,
        routes: routes?,
    })
}

fn raw_tls_span(raw: &RawConfig) -> Option<Range<usize>> {
    match raw.server.as_ref()?.get_ref() {
        Lenient::Ok(s) => s.tls.as_ref().map(Spanned::span),
        Lenient::Err(_) => None,
    }
}

/// Unwrap a lenient entry, recording its serde error.
fn entry<'r, T>(e: Option<&'r Entry<T>>, d: &mut Diagnostics<'_>) -> Option<(&'r T, Range<usize>)> {
    let e = e?;
    match e.get_ref() {
        Lenient::Ok(v) => Some((v, e.span())),
        Lenient::Err(msg) => {
            d.serde_error(e.span(), msg);
            None
        }
    }
}

/// Parse "500ms", "10s", "5m", "1h".
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("invalid duration {s:?}: write a whole number and a unit, like \"500ms\", \"10s\" or \"5m\""))?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        "h" => Duration::from_secs(n.saturating_mul(3600)),
        _ => {
            return Err(format!(
                "invalid duration {s:?}: the unit must be ms, s, m or h"
            ))
        }
    };
    Ok(d)
}

fn duration(
    v: Option<&Spanned<String>>,
    default: Duration,
    nonzero: bool,
    d: &mut Diagnostics<'_>,
) -> Duration {
    let Some(v) = v else { return default };
    match parse_duration(v.get_ref()) {
        Ok(x) if nonzero && x.is_zero() => {
            d.error(v.span(), "this duration must be greater than zero");
            default
        }
        Ok(x) => x,
        Err(e) => {
            d.error(v.span(), e);
            default
        }
    }
}

fn default_server() -> ServerSettings {
    ServerSettings {
        listen: vec![SocketAddr::from(([0, 0, 0, 0], 8080))],
        admin: None,
        tls: None,
        header_read_timeout: Duration::from_secs(10),
        max_connections: 10_000,
        max_connections_per_ip: 0,
        idle_timeout: Duration::from_secs(60),
        shutdown_grace: Duration::from_secs(30),
        watch_config: false,
    }
}

fn default_log() -> LogSettings {
    LogSettings {
        format: LogFormat::Pretty,
        level: "info".into(),
        access_log: true,
    }
}

fn addr(v: &str, span: Range<usize>, d: &mut Diagnostics<'_>) -> Option<SocketAddr> {
    match v.parse() {
        Ok(a) => Some(a),
        Err(_) => {
            d.error(span, format!("{v:?} is not an address: write IP:PORT, like \"0.0.0.0:8080\" or \"[::1]:8080\""));
            None
        }
    }
}

fn compile_server(s: &RawServer, base: &Path, d: &mut Diagnostics<'_>) -> Option<ServerSettings> {
    let defaults = default_server();
    let listen = match &s.listen {
        None => defaults.listen,
        Some(l) => {
            let list: Vec<&str> = match l.get_ref() {
                Listen::One(a) => vec![a.as_str()],
                Listen::Many(v) => v.iter().map(String::as_str).collect(),
            };
            if list.is_empty() {
                d.error(l.span(), "listen needs at least one address");
            }
            list.into_iter()
                .filter_map(|a| addr(a, l.span(), d))
                .collect()
        }
    };
    let admin = s
        .admin
        .as_ref()
        .and_then(|a| addr(a.get_ref(), a.span(), d));
    let tls = s.tls.as_ref().map(|t| {
        let files = TlsFiles {
            cert: resolve_file(&t.get_ref().cert, base, d),
            key: resolve_file(&t.get_ref().key, base, d),
        };
        (files, t.span())
    });
    let max_connections = match &s.max_connections {
        None => defaults.max_connections,
        Some(m) => match usize::try_from(*m.get_ref()) {
            Ok(n) if n > 0 => n,
            _ => {
                d.error(m.span(), "max_connections must be a positive number");
                1
            }
        },
    };
    let max_connections_per_ip = match &s.max_connections_per_ip {
        None => defaults.max_connections_per_ip,
        Some(m) => usize::try_from(*m.get_ref()).unwrap_or_else(|_| {
            d.error(
                m.span(),
                "max_connections_per_ip must be 0 (no cap) or a positive number",
            );
            0
        }),
    };
    Some(ServerSettings {
        listen,
        admin,
        tls: tls.map(|(files, _)| files),
        header_read_timeout: duration(
            s.header_read_timeout.as_ref(),
            defaults.header_read_timeout,
            true,
            d,
        ),
        max_connections,
        max_connections_per_ip,
        idle_timeout: duration(s.idle_timeout.as_ref(), defaults.idle_timeout, true, d),
        shutdown_grace: duration(s.shutdown_grace.as_ref(), defaults.shutdown_grace, false, d),
        watch_config: s.watch_config.unwrap_or(false),
    })
}

/// A path from the config, resolved against the config's directory; it must be a readable file.
fn resolve_file(p: &Spanned<String>, base: &Path, d: &mut Diagnostics<'_>) -> std::path::PathBuf {
    let path = base.join(p.get_ref());
    if let Err(e) = std::fs::File::open(&path) {
        d.error(p.span(), format!("cannot read {}: {e}", path.display()));
    }
    path
}

fn compile_log(l: &RawLog, d: &mut Diagnostics<'_>) -> Option<LogSettings> {
    let format = match l.format.as_ref() {
        None => LogFormat::Pretty,
        Some(f) => match f.get_ref().as_str() {
            "pretty" => LogFormat::Pretty,
            "json" => LogFormat::Json,
            other => {
                d.error(
                    f.span(),
                    format!("log format {other:?}: expected \"pretty\" or \"json\""),
                );
                LogFormat::Pretty
            }
        },
    };
    let level = match l.level.as_ref() {
        None => "info".to_owned(),
        Some(v) => {
            if let Err(e) = tracing_subscriber::EnvFilter::builder().parse(v.get_ref()) {
                d.error(
                    v.span(),
                    format!("invalid log level {:?}: {e}", v.get_ref()),
                );
            }
            v.get_ref().clone()
        }
    };
    Some(LogSettings {
        format,
        level,
        access_log: l.access_log.unwrap_or(true),
    })
}

fn compile_upstream(
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

struct Known<'r> {
    upstreams: Vec<&'r str>,
    policies: Vec<&'r str>,
    upstream_index: HashMap<&'r str, usize>,
    policy_index: HashMap<&'r str, usize>,
}

fn reference(
    v: &Spanned<String>,
    kind: &str,
    all: &[&str],
    index: &HashMap<&str, usize>,
    d: &mut Diagnostics<'_>,
) -> Option<usize> {
    let name = v.get_ref().as_str();
    if let Some(&i) = index.get(name) {
        return Some(i);
    }
    if !all.contains(&name) {
        let known = if all.is_empty() {
            "none are defined".to_owned()
        } else {
            format!("defined: {}", all.join(", "))
        };
        d.error(v.span(), format!("unknown {kind} {name:?} ({known})"));
    }
    None
}

fn compile_routes(
    raw: &[Entry<RawRoute>],
    known: &Known<'_>,
    d: &mut Diagnostics<'_>,
) -> Option<RouteTable> {
    let mut table = RouteTable::default();
    let mut names: BTreeSet<String> = BTreeSet::new();
    let mut ok = true;
    if raw.is_empty() {
        d.warn(0..0, "no [[routes]]: every request will get 404");
    }
    for e in raw {
        let Some((r, span)) = entry(Some(e), d) else {
            ok = false;
            continue;
        };
        let errors = d.error_count();
        let upstream = reference(
            &r.upstream,
            "upstream",
            &known.upstreams,
            &known.upstream_index,
            d,
        );
        let policy = reference(&r.policy, "policy", &known.policies, &known.policy_index, d);
        let host = r.host.as_ref().and_then(|h| host_pattern(h, d));
        let prefix = match &r.path_prefix {
            None => "/".to_owned(),
            Some(p) => {
                let v = p.get_ref();
                if !v.starts_with('/') || v.contains(['?', '#']) || v.contains("//") {
                    d.error(
                        p.span(),
                        format!("path_prefix {v:?} must start with / and hold no ?, # or //"),
                    );
                }
                let trimmed = v.trim_end_matches('/');
                if trimmed.is_empty() {
                    "/".to_owned()
                } else {
                    trimmed.to_owned()
                }
            }
        };
        let own_origins: Vec<Origin> = r
            .own_origins
            .iter()
            .filter_map(|o| match Origin::parse(o.get_ref()) {
                Ok(origin) => Some(origin),
                Err(err) => {
                    d.error(
                        o.span(),
                        format!("invalid own origin {:?}: {err}", o.get_ref()),
                    );
                    None
                }
            })
            .collect();
        let name = match &r.name {
            Some(n) => n.get_ref().clone(),
            None => format!(
                "{}{}",
                host.as_ref().map(ToString::to_string).unwrap_or_default(),
                prefix
            ),
        };
        if name == "unmatched" {
            d.error(
                r.name.as_ref().map_or(span.clone(), Spanned::span),
                "the route name \"unmatched\" is reserved: metrics label requests that match no route with it",
            );
        }
        if !names.insert(name.clone()) {
            d.error(r.name.as_ref().map_or(span.clone(), Spanned::span), format!("duplicate route name {name:?}: names label logs and metrics and must be unique"));
        }
        if d.error_count() > errors {
            ok = false;
            continue;
        }
        let (Some(upstream), Some(policy)) = (upstream, policy) else {
            ok = false;
            continue;
        };
        let route = Route {
            index: 0,
            name,
            host,
            path_prefix: prefix,
            strip_prefix: r.strip_prefix.unwrap_or(false),
            own_origins,
            upstream,
            policy,
        };
        if let Err(dup) = table.insert(route) {
            ok = false;
            d.error(span, format!("duplicate route: {dup}"));
        }
    }
    ok.then_some(table)
}

fn host_pattern(h: &Spanned<String>, d: &mut Diagnostics<'_>) -> Option<HostPattern> {
    let v = h.get_ref().to_ascii_lowercase();
    let (wild, body) = match v.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, v.as_str()),
    };
    let valid = !body.is_empty()
        && body.split('.').all(|l| {
            !l.is_empty()
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if !valid {
        d.error(
            h.span(),
            format!(
                "host {:?} must be a host name without port, optionally starting with \"*.\"",
                h.get_ref()
            ),
        );
        return None;
    }
    Some(if wild {
        HostPattern::Wildcard(body.to_owned())
    } else {
        HostPattern::Exact(body.to_owned())
    })
}

fn warn_unused(raw: &RawConfig, d: &mut Diagnostics<'_>) {
    let used = |pick: fn(&RawRoute) -> &str, name: &str| {
        raw.routes
            .iter()
            .any(|e| matches!(e.get_ref(), Lenient::Ok(r) if pick(r) == name))
    };
    for (name, e) in &raw.upstreams {
        if !used(|r| r.upstream.get_ref(), name.get_ref()) {
            d.warn(
                e.span(),
                format!("upstream {:?} is not used by any route", name.get_ref()),
            );
        }
    }
    for (name, e) in &raw.policies {
        if !used(|r| r.policy.get_ref(), name.get_ref()) {
            d.warn(
                e.span(),
                format!("policy {:?} is not used by any route", name.get_ref()),
            );
        }
    }
}
