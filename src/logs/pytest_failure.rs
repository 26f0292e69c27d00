//! One failed or errored test as a log names it, and the error message it is given: what
//! chose the message and on which line, bounded to what a report keeps.

use super::pytest_lines::Outcome;
use crate::model::ErrorSource;

/// Longest error message kept (the original's `MAX_ERROR_MESSAGE_LENGTH`).
pub const MAX_ERROR_MESSAGE_CHARS: usize = 200;
/// Lines and characters kept of a failure section as its excerpt.
pub const MAX_EXCERPT_LINES: usize = 30;
pub const MAX_EXCERPT_CHARS: usize = 2000;

/// One failed or errored test as found in the log.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PytestFailure {
    pub node_id: String,
    pub outcome: Outcome,
    /// The exception line: from the summary line's ` - ` suffix or the section's `E   ` lines.
    pub error_message: Option<String>,
    /// The end of the test's failure section (its `E` block and location), bounded.
    pub excerpt: Option<String>,
    /// The test's own output between its verbose id line and its status, bounded; the classifier
    /// reads infrastructure evidence (HF Hub 504, …) from it.
    pub output_tail: Vec<String>,
    /// What chose `error_message`.
    #[serde(default)]
    pub error_source: Option<ErrorSource>,
    /// The 1-based number of the error line in the text read, when it is known.
    #[serde(default)]
    pub error_line: Option<u64>,
}

/// An error message with what chose it and where it stands.
#[derive(Debug, Clone)]
pub(crate) struct Located {
    pub(crate) message: String,
    pub(crate) source: ErrorSource,
    pub(crate) line: Option<u64>,
}

impl PytestFailure {
    /// Takes `error` as the failure's error message, with what chose it and its line.
    pub(crate) fn set_error(&mut self, error: Option<Located>) {
        // A message with no letter or digit (a summary cut to `...`) says nothing.
        let error = error.filter(|e| e.message.chars().any(char::is_alphanumeric));
        self.error_message = error.as_ref().map(|e| e.message.clone());
        self.error_source = error.as_ref().map(|e| e.source);
        self.error_line = error.and_then(|e| e.line);
    }
}

pub fn truncate_message(text: &str) -> String {
    super::bounded_text(text.trim(), MAX_ERROR_MESSAGE_CHARS)
}
