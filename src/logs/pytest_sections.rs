//! The `FAILURES` and `ERRORS` sections of a pytest run: each test's section as the scanner
//! reads it (a window of its lines, its `E` line), and each closed section given to the failure
//! its head names, or made a failure of its own when no summary or verbose line named it.

use super::prefix;
use super::pytest_failure::{
    truncate_message, Located, PytestFailure, MAX_EXCERPT_CHARS, MAX_EXCERPT_LINES,
};
use super::pytest_lines::{head_line, test_of, Outcome};
use crate::model::ErrorSource;
use std::collections::HashMap;

/// Lines of a section kept after its first `E` line: the excerpt takes
/// [`MAX_EXCERPT_LINES`] non-blank ones from just above it.
const SECTION_LINES_AFTER_E: usize = 200;

/// Where pytest says a traceback's frame is: `tests/a.py:12: in test_x`, `a.py:12: AssertionError`.
static LOCATION: std::sync::LazyLock<regex::Regex> =
    std::sync::LazyLock::new(|| crate::text::log_regex(r"^\S+:\d+:(?: |$)").expect("valid"));

/// A section that has ended, as a failure needs it.
pub(super) struct ClosedSection {
    head: String,
    excerpt: Option<String>,
    error: Option<Located>,
}

pub(super) struct Section {
    head: String,
    lines: Vec<String>,
    /// First exception-looking `E` line, else the first non-blank `E` line.
    error: Option<Located>,
    first_e_index: Option<usize>,
    /// The section showed where the test failed (the `>` source line, a location, the head of
    /// a traceback or of a fixture's error): its `E` margin can only come after. Above it, a
    /// line that starts with `E` is a value's repr (a DataFrame's index).
    failing_line_shown: bool,
}

impl Section {
    pub(super) fn new(head: &str) -> Self {
        Self {
            head: test_of(head).to_string(),
            lines: Vec::new(),
            error: None,
            first_e_index: None,
            failing_line_shown: false,
        }
    }

    pub(super) fn push(&mut self, line: &str, line_no: u64) {
        let located = |text: &str| Located {
            message: truncate_message(text),
            source: ErrorSource::TestELines,
            line: Some(line_no),
        };
        // A module that failed to import says so above its `E` lines, which may be cut.
        if line
            .trim_start()
            .starts_with("ImportError while importing test module")
        {
            self.error.get_or_insert_with(|| located(line.trim()));
        }
        let trimmed = line.trim_start();
        self.failing_line_shown |= trimmed.starts_with('>')
            || trimmed.starts_with("file ")
            || trimmed.starts_with("Traceback")
            || LOCATION.is_match(trimmed);
        if let Some(e_text) = prefix::e_margin(line).filter(|_| self.failing_line_shown) {
            self.first_e_index.get_or_insert(self.lines.len());
            let candidate = e_text.trim();
            let better = match &self.error {
                None => !candidate.is_empty(),
                Some(current) => {
                    !super::looks_like_exception(&current.message)
                        && super::looks_like_exception(candidate)
                }
            };
            if better {
                self.error = Some(located(candidate));
            }
        }
        // Keep a window: the interesting part of a section is its end (E block, location),
        // and the excerpt starts just above the first E line.
        match self.first_e_index {
            None if self.lines.len() >= 400 => {
                self.lines.drain(..200);
            }
            Some(e) if self.lines.len() > e + SECTION_LINES_AFTER_E => return,
            _ => {}
        }
        self.lines.push(super::bounded_line(line));
    }

    /// What is kept of a section once it ends: its head, excerpt and error line.
    pub(super) fn close(self) -> ClosedSection {
        ClosedSection {
            excerpt: self.excerpt(),
            head: self.head,
            error: self.error,
        }
    }

    fn excerpt(&self) -> Option<String> {
        if self.lines.is_empty() {
            return None;
        }
        // Start just above the E block (the failing source line), else show the section's end.
        let start = match self.first_e_index {
            Some(e) => e.saturating_sub(3),
            None => self.lines.len().saturating_sub(MAX_EXCERPT_LINES),
        };
        let chosen: Vec<&str> = self.lines[start..]
            .iter()
            .map(String::as_str)
            .filter(|l| !l.trim().is_empty())
            .take(MAX_EXCERPT_LINES)
            .collect();
        Some(super::bounded_text(&chosen.join("\n"), MAX_EXCERPT_CHARS))
    }
}

/// Gives each failure its section. A section whose test was never named by a summary or
/// verbose line (the summary fell outside the tail) becomes a failure of its own, named by its
/// head line, so the failure is not lost.
pub(super) fn attach_sections(failures: &mut Vec<PytestFailure>, sections: Vec<ClosedSection>) {
    let mut order: Vec<String> = Vec::new();
    let mut by_head: HashMap<String, Vec<ClosedSection>> = HashMap::new();
    for section in sections {
        if !by_head.contains_key(&section.head) {
            order.push(section.head.clone());
        }
        by_head
            .entry(section.head.clone())
            .or_default()
            .push(section);
    }
    for failure in failures.iter_mut() {
        let mut head = head_line(&failure.node_id);
        // A module's path as the summary gives it (`test_x.py`) and as its collection error's
        // head gives it from another root (`third_party/ops/test/test_x.py`): one module.
        if !by_head.contains_key(&head) {
            if let Some(same) = order.iter().find(|k| same_module(k, &head)) {
                head = same.clone();
            }
        }
        let Some(candidates) = by_head.get_mut(&head) else {
            continue;
        };
        if candidates.is_empty() {
            continue;
        }
        let section = candidates.remove(0);
        failure.excerpt = section.excerpt;
        if failure.error_message.is_none() {
            failure.set_error(section.error);
        }
    }
    // "test session" (a collection error outside any module) names no test: the job tells it.
    for head in order.into_iter().filter(|head| head != "test session") {
        for section in by_head.remove(&head).unwrap_or_default() {
            let mut failure = PytestFailure {
                node_id: section.head.clone(),
                outcome: Outcome::Failed,
                excerpt: section.excerpt,
                error_message: None,
                output_tail: Vec::new(),
                error_source: None,
                error_line: None,
            };
            failure.set_error(section.error);
            failures.push(failure);
        }
    }
}

/// Two paths of one test module, one below the other's root.
fn same_module(a: &str, b: &str) -> bool {
    let below = |long: &str, short: &str| {
        long.strip_suffix(short)
            .is_some_and(|root| root.ends_with('/'))
    };
    a.ends_with(".py") && b.ends_with(".py") && (below(a, b) || below(b, a))
}
