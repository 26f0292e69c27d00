//! Pure rendering: scan results to the markdown the person on watch pastes into Slack.
//!
//! Everything that came from a log (test ids, error lines, evidence) is untrusted: it is put in
//! code spans by [`code_span`] so it cannot open links, headings or mentions in the report.

mod daily;
mod history;
mod main_branch;
mod standup;

pub use daily::daily_findings;
pub use history::history_summary;
pub use main_branch::main_branch_text;
pub use standup::standup_summary;

/// `text` as one inline code span: newlines and control characters become spaces, and the
/// fence is longer than any backtick run inside, so the span cannot be closed from within.
pub fn code_span(text: &str) -> String {
    let flat: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let flat = flat.trim();
    if flat.is_empty() {
        return "` `".to_string();
    }
    let longest_run = flat.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest_run + 1);
    let pad = if flat.starts_with('`') || flat.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{flat}{pad}{fence}")
}

/// The test's short name for one-line summaries: the last `::` segment.
pub(crate) fn short_test_name(test_name: &str) -> &str {
    test_name.rsplit("::").next().unwrap_or(test_name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_spans_cannot_be_escaped() {
        assert_eq!(code_span("a`b"), "``a`b``");
        assert_eq!(code_span("`x`"), "`` `x` ``");
        assert_eq!(code_span("line1\nline2"), "`line1 line2`");
        assert_eq!(
            code_span("[x](http://evil) @here"),
            "`[x](http://evil) @here`"
        );
        assert_eq!(code_span(""), "` `");
    }
}
