//! A scan as the text content of its tool result: what a client that shows only text, or a
//! model that reads only text, needs first. Whether the answer is whole, the causes, then every
//! failure of the page as a table row; details stay in the structured content and on demand.

use super::code_span;
use crate::model::{Cause, FailureClassification, ScanResult};
use std::fmt::Write;

/// Characters of a cause's signature in its line (the structured cause has more).
const SIGNATURE_CHARS: usize = 100;

/// The completeness line, the standup line, the causes, and the failures as a table.
pub fn scan_digest(result: &ScanResult) -> String {
    let mut out = completeness_line(result);
    out.push_str(&super::standup_summary(result));
    out.push('\n');
    if !result.causes.is_empty() {
        let _ = writeln!(out, "\nCauses ({}):", result.causes.len());
        for cause in &result.causes {
            out.push_str(&cause_line(cause));
        }
    }
    if !result.failures.is_empty() {
        let page = &result.page;
        let _ = writeln!(
            out,
            "\nFailures {} to {} of {}:\n| key | category | test, or job | cause |\n|---|---|---|---|",
            page.offset + 1,
            page.offset + result.failures.len(),
            result.total_failures
        );
        for failure in &result.failures {
            out.push_str(&failure_row(failure));
        }
    }
    if !result.warnings.is_empty() {
        let _ = writeln!(out, "\n{} warnings: see `warnings`.", result.warnings.len());
    }
    out
}

fn completeness_line(result: &ScanResult) -> String {
    let c = &result.completeness;
    let states: Vec<String> = c
        .jobs_by_state
        .iter()
        .map(|(state, n)| format!("{n} {state}"))
        .collect();
    let verdict = if result.complete {
        "Complete: every failure of the build is in this answer".to_string()
    } else {
        format!("INCOMPLETE: {}", result.incomplete.join("; "))
    };
    format!(
        "{verdict}. Jobs: {}. Failed jobs read whole: {}, in part: {}, not read: {}.\n",
        states.join(", "),
        c.failed_jobs_read,
        c.read_in_part.len(),
        c.not_read.len()
    )
}

fn cause_line(cause: &Cause) -> String {
    let mut line = format!(
        "- `{}` {} ×{}",
        cause.cause_id,
        cause.category.as_str(),
        cause.failure_count
    );
    if let Some(trend) = &cause.trend {
        let _ = write!(line, " {}", trend.as_str());
    }
    let _ = write!(
        line,
        ": {}",
        code_span(&crate::text::bounded_text(
            &cause.signature,
            SIGNATURE_CHARS
        ))
    );
    if let Some(issue) = &cause.issue {
        let _ = write!(
            line,
            "; issue #{} ({})",
            issue.number,
            super::causes::issue_state_name(issue.state)
        );
    }
    if !cause.owners.is_empty() {
        let _ = write!(line, "; owners {}", code_span(&cause.owners.join(" ")));
    }
    if let Some(suspect) = &cause.suspect {
        let _ = write!(
            line,
            "; suspect {} {}",
            code_span(crate::model::short_sha(&suspect.sha)),
            code_span(&suspect.title)
        );
    }
    if let Some(parity) = &cause.parity {
        let _ = write!(line, "; {}", super::causes::parity_name(*parity));
    }
    line.push('\n');
    line
}

/// A failure's row; its error line is in the structured content (and its cause's signature
/// above says what broke).
fn failure_row(failure: &FailureClassification) -> String {
    let tf = &failure.test_failure;
    let soft = if failure.soft_failed { " (soft)" } else { "" };
    // A pytest failure is named by its test (its job is in the structured content), a
    // job-level failure by its job (its "test").
    format!(
        "| `{}` | {}{soft} | {} | `{}` |\n",
        failure.failure_key,
        failure.category.as_str(),
        code_span(&tf.test_name).replace('|', "\\|"),
        failure.cause_id.as_deref().unwrap_or("-"),
    )
}
