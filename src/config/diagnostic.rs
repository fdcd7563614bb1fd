//! `Diagnostic`: one config problem at FILE:LINE:COL. Byte spans become 1-based line and column here.

use std::ops::Range;
use std::path::Path;

/// Error or warning.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Severity {
    /// Fails the config.
    Error,
    /// Printed, never fatal.
    Warning,
}

/// One problem, located.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Diagnostic {
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
    pub(crate) fn render(&self, path: &Path) -> String {
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
    items: Vec<Diagnostic>,
}

impl<'t> Diagnostics<'t> {
    /// Start collecting for `text`.
    pub(crate) fn new(text: &'t str) -> Self {
        Self {
            text,
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
        let (line, col) = line_col(self.text, offset);
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

/// 1-based (line, column in chars) of a byte offset.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before[line_start..].chars().count() + 1;
    (line, col)
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
