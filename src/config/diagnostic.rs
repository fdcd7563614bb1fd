//! `Diagnostic`: one config problem at FILE:LINE:COL. Byte spans become 1-based line and column here.

use std::ops::Range;
use std::path::Path;

/// Error or warning.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Fails the config.
    Error,
    /// Printed, never fatal.
    Warning,
}

/// One problem, located.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub col: usize,
    /// Error or warning.
    pub severity: Severity,
    /// What is wrong and, where useful, what to write instead.
    pub message: String,
}

impl Diagnostic {
    /// Render as `FILE:LINE:COL: error: message`.
    pub fn render(&self, path: &Path) -> String {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        format!(
            "{}:{}:{}: {sev}: {}",
            path.display(),
            self.line,
            self.col,
            self.message
        )
    }
}

/// Collects diagnostics against one source text.
#[derive(Debug)]
pub(crate) struct Diagnostics<'t> {
    text: &'t str,
    /// Where each line starts, computed once: locating a diagnostic is then a binary search, so a
    /// file with thousands of warnings is not scanned from the top once per warning.
    lines: LineIndex,
    items: Vec<Diagnostic>,
}

impl<'t> Diagnostics<'t> {
    /// Start collecting for `text`.
    pub(crate) fn new(text: &'t str) -> Self {
        Self {
            text,
            lines: LineIndex::new(text),
            items: Vec::new(),
        }
    }

    /// An error at a byte span.
    pub(crate) fn error(&mut self, span: Range<usize>, message: impl Into<String>) {
        self.push(span.start, Severity::Error, message.into());
    }

    /// A warning at a byte span.
    pub(crate) fn warn(&mut self, span: Range<usize>, message: impl Into<String>) {
        self.push(span.start, Severity::Warning, message.into());
    }

    /// An error from serde inside the entry at `span`: point at the key it names when it names one.
    pub(crate) fn serde_error(&mut self, span: Range<usize>, message: &str) {
        let message = message.trim().replace('\n', " ");
        let at = key_named_in(&message)
            .and_then(|key| find_key(self.text, span.clone(), key))
            .unwrap_or(span.start);
        self.push(at, Severity::Error, message);
    }

    fn push(&mut self, offset: usize, severity: Severity, message: String) {
        let (line, col) = self.lines.line_col(self.text, offset);
        self.items.push(Diagnostic {
            line,
            col,
            severity,
            message,
        });
    }

    /// How many errors were recorded so far.
    pub(crate) fn error_count(&self) -> usize {
        self.items
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count()
    }

    /// Whether any error was recorded.
    pub(crate) fn has_errors(&self) -> bool {
        self.items.iter().any(|d| d.severity == Severity::Error)
    }

    /// All diagnostics, sorted by position.
    pub(crate) fn into_sorted(mut self) -> Vec<Diagnostic> {
        self.items.sort_by_key(|d| (d.line, d.col, d.severity));
        self.items
    }
}

/// The byte offset where each line of a text starts (line 1 at index 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    /// Index `text`: one pass over its bytes.
    pub(crate) fn new(text: &str) -> LineIndex {
        let newlines = text.bytes().enumerate().filter(|(_, b)| *b == b'\n');
        let starts = std::iter::once(0).chain(newlines.map(|(i, _)| i + 1));
        LineIndex {
            starts: starts.collect(),
        }
    }

    /// 1-based (line, column in chars) of a byte offset into the indexed `text`: a binary search
    /// for the line, then a count of the characters before `offset` on that line only.
    pub(crate) fn line_col(&self, text: &str, offset: usize) -> (usize, usize) {
        let offset = offset.min(text.len());
        // `starts[0] == 0 <= offset`, so the partition point is at least 1.
        let line = self.starts.partition_point(|&s| s <= offset);
        let start = self.starts.get(line.wrapping_sub(1)).copied().unwrap_or(0);
        let col = text
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count());
        (line.max(1), col + 1)
    }
}

/// 1-based (line, column in chars) of a byte offset. Indexes the text on every call: for many
/// lookups in one text, build a [`LineIndex`] once.
#[cfg(test)]
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    LineIndex::new(text).line_col(text, offset)
}

/// serde names the key in "unknown field `k`" and "... in `k`" messages.
fn key_named_in(message: &str) -> Option<&str> {
    let rest = if let Some(r) = message.strip_prefix("unknown field `") {
        r
    } else {
        let i = message.rfind("in `")?;
        &message[i + 4..]
    };
    rest.split('`').next().filter(|k| !k.is_empty())
}

/// The byte offset of `key` used as a key (`key =`) inside `span`.
fn find_key(text: &str, span: Range<usize>, key: &str) -> Option<usize> {
    let region = text.get(span.clone())?;
    let mut from = 0;
    while let Some(i) = region[from..].find(key) {
        let at = from + i;
        let before_ok = region[..at]
            .chars()
            .next_back()
            .is_none_or(|c| c.is_whitespace() || c == '{' || c == ',' || c == '"');
        let after = region[at + key.len()..].trim_start_matches(['"', ' ', '\t']);
        if before_ok && after.starts_with('=') {
            return Some(span.start + at);
        }
        from = at + key.len();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_become_one_based_line_and_column() {
        let t = "a = 1\nbé = 2\n";
        assert_eq!(line_col(t, 0), (1, 1));
        assert_eq!(line_col(t, 6), (2, 1));
        assert_eq!(line_col(t, t.find('=').unwrap()), (1, 3));
        assert_eq!(line_col(t, 10), (2, 4));
    }

    #[test]
    fn the_line_index_agrees_with_a_scan_from_the_top_at_every_offset() {
        let t = "a = 1\n\nbé = \"ü\"\r\n  [x]\nlast";
        let index = LineIndex::new(t);
        for offset in 0..=t.len() + 3 {
            let clamped = offset.min(t.len());
            let before = t.get(..clamped);
            let Some(before) = before else { continue };
            let line = before.matches('\n').count() + 1;
            let start = before.rfind('\n').map_or(0, |i| i + 1);
            let col = before[start..].chars().count() + 1;
            assert_eq!(index.line_col(t, offset), (line, col), "offset {offset}");
        }
        assert_eq!(LineIndex::new("").line_col("", 0), (1, 1));
        assert_eq!(LineIndex::new("\n").line_col("\n", 1), (2, 1));
    }

    #[test]
    fn a_diagnostics_collector_indexes_its_text_once_and_locates_by_search() {
        let text: String = (0..10_000).map(|i| format!("k{i} = {i}\n")).collect();
        let mut d = Diagnostics::new(&text);
        for i in (0..10_000).step_by(997) {
            let at = text.find(&format!("k{i} =")).unwrap();
            d.warn(at..at + 1, "w");
        }
        assert_eq!(d.lines.starts.len(), 10_001);
        let lines: Vec<usize> = d.into_sorted().iter().map(|x| x.line).collect();
        let want: Vec<usize> = (0..10_000).step_by(997).map(|i| i + 1).collect();
        assert_eq!(lines, want);
    }

    #[test]
    fn serde_errors_point_at_the_key_they_name() {
        let t = "[policies.a]\nallowed_origins = []\nbogus = 1\n";
        let mut d = Diagnostics::new(t);
        d.serde_error(0..t.len(), "unknown field `bogus`, expected one of ...");
        d.serde_error(
            0..t.len(),
            "invalid type: string, expected i64\nin `max_age`\n",
        );
        let items = d.into_sorted();
        assert_eq!((items[0].line, items[0].col), (1, 1));
        assert_eq!((items[1].line, items[1].col), (3, 1));
    }
}
