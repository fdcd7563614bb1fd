//! The `log.format = "json"` line formatter: one flat JSON object per event, the same object
//! tracing-subscriber's own `json().flatten_event(true)` writes (`timestamp`, `level`, the event's
//! fields with `message` among them, `target`), written straight into the subscriber's reused line
//! buffer.
//!
//! Written by hand because the stock formatter goes through serde and a map visitor per event and
//! formats the timestamp from scratch: about 26,000 instructions for one access line, more than
//! the proxy spends answering a preflight. This one escapes only what JSON requires, formats
//! integers with `itoa`, floats with `ryu`, and the timestamp's date and time once per second per
//! thread: about a tenth of that (`cargo bench --bench allocations` and docs/performance.md).

use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The JSON event formatter.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        // Built in a plain `String` (inlined pushes) and handed to the writer once: the writer is a
        // `dyn fmt::Write`, a virtual call per piece.
        LINE.with(|cell| {
            let mut line = cell.borrow_mut();
            line.clear();
            render(&mut line, event, SystemTime::now());
            writer.write_str(&line)
        })
    }
}

thread_local! {
    /// This thread's line buffer, reused from event to event.
    static LINE: RefCell<String> = const { RefCell::new(String::new()) };
}

/// One event as a JSON line.
fn render(line: &mut String, event: &Event<'_>, now: SystemTime) {
    let meta = event.metadata();
    line.push_str("{\"timestamp\":\"");
    push_timestamp(line, now);
    line.push_str("\",\"level\":\"");
    line.push_str(meta.level().as_str());
    line.push('"');
    event.record(&mut Fields(line));
    line.push_str(",\"target\":");
    push_string(line, meta.target());
    line.push_str("}\n");
}

/// Writes each field as `,"name":value`.
struct Fields<'a>(&'a mut String);

impl Fields<'_> {
    fn name(&mut self, field: &Field) -> &mut String {
        // Field names are Rust identifiers from the event macros: nothing in them needs escaping.
        self.0.push_str(",\"");
        self.0.push_str(field.name());
        self.0.push_str("\":");
        self.0
    }
}

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        push_string(self.name(field), value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.name(field).push_str(itoa::Buffer::new().format(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.name(field).push_str(itoa::Buffer::new().format(value));
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        self.name(field).push_str(itoa::Buffer::new().format(value));
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        self.name(field).push_str(itoa::Buffer::new().format(value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        let out = self.name(field);
        // JSON has no NaN or infinity; serde_json writes them as null too.
        match value.is_finite() {
            true => out.push_str(ryu::Buffer::new().format_finite(value)),
            false => out.push_str("null"),
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.name(field)
            .push_str(if value { "true" } else { "false" });
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let out = self.name(field);
        out.push('"');
        // Writing into a String cannot fail.
        let _ = write!(Escaped(out), "{value:?}");
        out.push('"');
    }
}

/// A `fmt::Write` that JSON-escapes what passes through it (the inside of a string literal).
struct Escaped<'a>(&'a mut String);

impl fmt::Write for Escaped<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        push_escaped(self.0, s);
        Ok(())
    }
}

/// `s` as a JSON string literal.
fn push_string(out: &mut String, s: &str) {
    out.push('"');
    push_escaped(out, s);
    out.push('"');
}

fn needs_any_escape(s: &[u8]) -> bool {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    // A byte of `x` is zero: the classic test, exact for the "any byte" question.
    let has_zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS != 0;
    let mut chunks = s.chunks_exact(8);
    for chunk in chunks.by_ref() {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let w = u64::from_ne_bytes(word);
        // Bytes below 0x20 are those whose top three bits are all clear.
        let control = has_zero(w & u64::from_ne_bytes([0xe0; 8]));
        let quote = has_zero(w ^ u64::from_ne_bytes([b'"'; 8]));
        let backslash = has_zero(w ^ u64::from_ne_bytes([b'\\'; 8]));
        if control | quote | backslash {
            return true;
        }
    }
    chunks.remainder().iter().any(|&b| needs_escape(b))
}

fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

/// RFC 8259 §7: `"`, `\` and the control characters U+0000..U+001F must be escaped; everything
/// else, non-ASCII included, may be written as it is. Nearly every value needs no escape at all,
/// which one pass over the bytes finds; only then is the string walked escape by escape.
fn push_escaped(out: &mut String, s: &str) {
    // Eight bytes a step: a byte needs escaping when it is below 0x20, or equals `"` or `\`,
    // which three word-wide tests find for all eight at once (byte by byte, the scan was 1,400
    // instructions of an access line).
    if !needs_any_escape(s.as_bytes()) {
        out.push_str(s);
        return;
    }
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        if !needs_escape(b) {
            continue;
        }
        // Every byte that stops the scan is ASCII, so these slices fall on char boundaries.
        out.push_str(&s[start..i]);
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            _ => {
                let _ = write!(out, "\\u{b:04x}");
            }
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
}

thread_local! {
    /// The second last formatted on this thread, and its `YYYY-MM-DDTHH:MM:SS` text.
    static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

/// RFC 3339 in UTC with microseconds, as tracing-subscriber writes it: `2026-12-02T01:02:55.824077Z`.
fn push_timestamp(out: &mut String, now: SystemTime) {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    SECOND.with(|cell| {
        let mut cached = cell.borrow_mut();
        if cached.0 != secs {
            *cached = (secs, civil(secs));
        }
        out.push_str(&cached.1);
    });
    let mut micros = itoa::Buffer::new();
    let micros = micros.format(since.subsec_micros());
    out.push('.');
    out.push_str(&"000000"[micros.len()..]);
    out.push_str(micros);
    out.push('Z');
}

/// `YYYY-MM-DDTHH:MM:SS` of a Unix time, via the `time` crate's calendar.
fn civil(secs: u64) -> String {
    let at = i64::try_from(secs)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(f: impl FnOnce(&mut String)) -> String {
        let mut s = String::new();
        f(&mut s);
        s
    }

    #[test]
    fn the_word_wide_scan_finds_every_byte_that_needs_escaping() {
        for len in 0..20 {
            for at in 0..len {
                for b in 0..=255u8 {
                    let mut s = vec![b'a'; len];
                    s[at] = b;
                    assert_eq!(
                        needs_any_escape(&s),
                        needs_escape(b),
                        "{b:#x} at {at} of {len}"
                    );
                }
            }
        }
    }

    #[test]
    fn strings_are_escaped_as_json_requires_and_parse_back() {
        for s in [
            "plain",
            "quote \" backslash \\ slash /",
            "line\nfeed\rtab\t",
            "\u{0}\u{1f} control",
            "é ünï 日本 😀",
            "",
        ] {
            let out = render(|w| push_string(w, s));
            let back: String = serde_json::from_str(&out).unwrap();
            assert_eq!(back, s, "{out}");
        }
    }

    #[test]
    fn the_timestamp_is_rfc3339_utc_with_microseconds() {
        let at = UNIX_EPOCH + std::time::Duration::from_micros(1_796_173_375_824_077);
        let out = render(|w| push_timestamp(w, at));
        assert_eq!(out, "2026-12-02T01:02:55.824077Z");
        // Cached per second: the next micro-second in the same second reuses the date text.
        let out = render(|w| push_timestamp(w, at + std::time::Duration::from_micros(1)));
        assert_eq!(out, "2026-12-02T01:02:55.824078Z");
        let out = render(|w| push_timestamp(w, UNIX_EPOCH + std::time::Duration::from_micros(7)));
        assert_eq!(out, "1970-01-01T00:00:00.000007Z");
    }
}
