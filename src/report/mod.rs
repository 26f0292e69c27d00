//! Pure rendering: scan results to the markdown the person on watch pastes into Slack.
//!
//! Everything that came from a log (test ids, error lines, evidence) is untrusted: it is put in
//! code spans by [`code_span`] so it cannot open links, headings or mentions in the report.

mod bisect;
pub(crate) mod causes;
mod daily;
mod details;
mod digest;
mod draft;
mod history;
mod main_branch;
mod standup;

pub(crate) use bisect::bisect_hint;
pub use bisect::{bisect_summary, bisect_text, verdict_name};
pub use causes::cause_counts;
pub(crate) use causes::{issue_state_name, parity_name};
pub use daily::daily_findings;
pub use details::details_text;
pub use digest::scan_digest;
pub use draft::draft_issue;
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

/// Suspect commits shown in reports: the closest three that touch something near the failure.
pub(crate) fn shown_suspects(
    onset: &crate::model::Onset,
) -> impl Iterator<Item = &crate::model::Suspect> {
    onset.suspects.iter().filter(|s| s.closeness > 0).take(3)
}

/// One suspect as reports print it: `` `sha` `title` by `author`: reason ``.
pub(crate) fn suspect_line(suspect: &crate::model::Suspect) -> String {
    format!(
        "{} {} by {}: {}",
        code_span(crate::model::short_sha(&suspect.sha)),
        code_span(&suspect.title),
        code_span(&suspect.author),
        suspect.reason
    )
}

/// A job-log view as text: one `n: line` per line, then the notes.
pub fn job_log_text(result: &crate::model::JobLogResult) -> String {
    let mut out = format!(
        "{} ({}), {} lines shown{}\n",
        result.job_info.job_name,
        result.job_info.job_url,
        result.lines.len(),
        if result.truncated { ", truncated" } else { "" }
    );
    for line in &result.lines {
        out.push_str(&format!("{:>6}: {}\n", line.n, line.text));
    }
    for note in &result.notes {
        out.push_str(&format!("note: {note}\n"));
    }
    out
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
