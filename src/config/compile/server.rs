//! `[server]` and `[log]`: listeners, TLS files, limits, timeouts, and the log settings.

use std::net::SocketAddr;
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use super::duration::duration;
use super::resolve_file;
use crate::config::diagnostic::Diagnostics;
use crate::config::raw::{Listen, RawLog, RawServer};
use crate::snapshot::{LogFormat, LogSettings, ServerSettings, TlsFiles};

/// More threads than this is a typo, not a machine.
const MAX_WORKER_THREADS: usize = 1024;

pub(super) fn default_server() -> ServerSettings {
    ServerSettings {
        listen: vec![SocketAddr::from(([0, 0, 0, 0], 8080))],
        admin: None,
        tls: None,
        header_read_timeout: Duration::from_secs(10),
        max_connections: 10_000,
        max_connections_per_ip: 0,
        idle_timeout: Duration::from_secs(60),
        worker_threads: 0,
        shutdown_grace: Duration::from_secs(30),
        watch_config: false,
    }
}

pub(super) fn default_log() -> LogSettings {
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

pub(super) fn compile_server(
    s: &RawServer,
    base: &Path,
    d: &mut Diagnostics<'_>,
) -> Option<ServerSettings> {
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
    let worker_threads = match &s.worker_threads {
        None => defaults.worker_threads,
        Some(m) => match usize::try_from(*m.get_ref()) {
            Ok(n) if n <= MAX_WORKER_THREADS => n,
            _ => {
                d.error(
                    m.span(),
                    format!("worker_threads must be 0 (the CPUs available) or 1 to {MAX_WORKER_THREADS}"),
                );
                0
            }
        },
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
        worker_threads,
        shutdown_grace: duration(s.shutdown_grace.as_ref(), defaults.shutdown_grace, false, d),
        watch_config: s.watch_config.unwrap_or(false),
    })
}

pub(super) fn compile_log(l: &RawLog, d: &mut Diagnostics<'_>) -> Option<LogSettings> {
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
