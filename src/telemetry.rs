//! Telemetry plumbing behind [`crate::observe::Observer`]: the tracing subscriber (`log.format`,
//! `log.level`, `RUST_LOG`), the Prometheus registry, a lock-free histogram and the per-route log rate
//! limiter.
//!
//! Logs go to stderr so that commands printing machine-readable output on stdout (`explain --json`)
//! stay parseable when telemetry is initialised.

pub(crate) mod events;
mod histogram;
mod json;
pub(crate) mod metrics;
mod ratelimit;

pub(crate) use metrics::OPENMETRICS_CONTENT_TYPE;
pub(crate) use ratelimit::{Admit, LogLimiter};

use std::io::{BufWriter, IsTerminal};

use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};

use tracing::Dispatch;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

use crate::snapshot::{LogFormat, LogSettings};

/// Target of the per-request access event (INFO).
pub(crate) const ACCESS_TARGET: &str = "corsgate::access";
/// Target of the rate-limited denial lines (WARN).
pub(crate) const DENIAL_TARGET: &str = "corsgate::denial";
/// Target of the rate-limited report-only mismatch lines (WARN).
pub(crate) const MISMATCH_TARGET: &str = "corsgate::mismatch";
/// Target of the rate-limited upstream failure lines (WARN).
pub(crate) const UPSTREAM_TARGET: &str = "corsgate::upstream";

/// Why the subscriber could not be installed.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// `log.level` or `RUST_LOG` is not a valid filter.
    #[error("invalid log filter {filter:?} (from {source_name}): {error}")]
    Filter {
        /// The directive string.
        filter: String,
        /// `log.level` or `RUST_LOG`.
        source_name: &'static str,
        /// The parser's message.
        error: tracing_subscriber::filter::ParseError,
    },
    /// A global subscriber is already installed.
    #[error("a global tracing subscriber is already installed")]
    AlreadyInstalled,
}

/// Keeps the log writer thread running; dropping it writes out every line still queued. Hold it
/// until the process has logged its last line (`WorkerGuard` is `#[must_use]` itself).
pub(crate) type LogGuard = WorkerGuard;

/// Lines queued for the writer thread before a request that logs waits for room: a burst this
/// large is absorbed without slowing requests; past it, logging slows them rather than losing lines.
const QUEUED_LINES: usize = 64 * 1024;

/// Install the global subscriber for the binary: `settings.format` and `settings.level`, with a
/// non-empty `RUST_LOG` overriding the level. Logs go to stderr through a writer thread: a request
/// only formats its line and queues it, and the thread writes whatever has queued in one buffered
/// write, so an access log costs no system call per request.
pub(crate) fn init(settings: &LogSettings) -> Result<LogGuard, TelemetryError> {
    let rust_log = std::env::var("RUST_LOG").ok();
    let ansi = std::io::stderr().is_terminal();
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(false)
        .buffered_lines_limit(QUEUED_LINES)
        .thread_name("corsgate-log")
        .finish(BufWriter::with_capacity(64 * 1024, std::io::stderr()));
    let dispatch = dispatch(settings, rust_log.as_deref(), ansi, writer)?;
    tracing::dispatcher::set_global_default(dispatch)
        .map_err(|_| TelemetryError::AlreadyInstalled)?;
    if settings.format == LogFormat::Json {
        // The default hook writes plain text; a panicking connection task must not put a line on
        // stderr that a collector cannot parse.
        std::panic::set_hook(Box::new(|info| {
            tracing::error!(target: "corsgate::panic", panic = %info, "panic");
        }));
    }
    Ok(guard)
}

/// Report the error that stops the binary: through the subscriber once it is installed (so that in
/// `json` format it is a JSON object like every other stderr line), else as a plain line (the
/// config, and with it the format, could not be read).
pub(crate) fn fatal(error: &dyn std::fmt::Display) {
    if tracing::dispatcher::has_been_set() {
        tracing::error!(target: "corsgate", error = %error, "corsgate stopped");
    } else {
        eprintln!("corsgate: {error}");
    }
}

/// Build a subscriber writing to `writer` without installing it; tests capture the output with
/// `tracing::dispatcher::with_default` or `set_default`. `override_filter` plays the part of
/// `RUST_LOG` (ignored when empty). `ansi` only affects the pretty format.
pub fn dispatch<W>(
    settings: &LogSettings,
    override_filter: Option<&str>,
    ansi: bool,
    writer: W,
) -> Result<Dispatch, TelemetryError>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = filter(&settings.level, override_filter)?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    Ok(match settings.format {
        // One flat JSON object a line: timestamp, level, target, message and the event's fields at
        // the top level, so log pipelines see stable field names without span nesting.
        LogFormat::Json => Dispatch::new(builder.event_format(json::JsonLines).finish()),
        LogFormat::Pretty => Dispatch::new(builder.with_ansi(ansi).finish()),
    })
}

/// The filter: a non-empty override (RUST_LOG) wins over `level`.
fn filter(level: &str, override_filter: Option<&str>) -> Result<EnvFilter, TelemetryError> {
    let (text, source_name) = match override_filter.map(str::trim) {
        Some(o) if !o.is_empty() => (o, "RUST_LOG"),
        _ => (level, "log.level"),
    };
    EnvFilter::builder()
        .parse(text)
        .map_err(|error| TelemetryError::Filter {
            filter: text.to_owned(),
            source_name,
            error,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_log_overrides_the_configured_level_and_empty_rust_log_does_not() {
        let f = filter("info", Some("corsgate=debug")).unwrap();
        assert_eq!(f.to_string(), "corsgate=debug");
        let f = filter("warn", Some("  ")).unwrap();
        assert_eq!(f.to_string(), "warn");
        let f = filter("warn", None).unwrap();
        assert_eq!(f.to_string(), "warn");
    }

    #[test]
    fn an_invalid_level_names_where_it_came_from() {
        let err = filter("loud=[", None).unwrap_err();
        assert!(err.to_string().contains("log.level"), "{err}");
        let err = filter("info", Some("x=[")).unwrap_err();
        assert!(err.to_string().contains("RUST_LOG"), "{err}");
    }
}
