//! One cause or one failure in full, as text: what `ciwatch_render` format "details" returns
//! beside the structured details, for clients that show only text.

use super::{code_span, suspect_line};
use crate::model::{Cause, FailureClassification};
use std::fmt::Write;

/// The cause's verdict, then each failure with its links, error, evidence, reason, how its error
/// line and kind were chosen, owners, blame, onset and traceback.
pub fn details_text(cause: &Cause, failures: &[FailureClassification]) -> String {
    let mut out = format!(
        "Cause `{}` ({}, {} failures): {}\n",
        cause.cause_id,
        cause.category.as_str(),
        cause.failure_count,
        code_span(&cause.signature)
    );
    if let Some(advice) = &cause.issue_advice {
        let _ = writeln!(out, "GitHub: {}", advice.reason);
    }
    for failure in failures {
        out.push_str(&failure_text(failure));
    }
    out
}

fn failure_text(failure: &FailureClassification) -> String {
    let tf = &failure.test_failure;
    let mut out = format!(
        "\n### `{}` {} in {}\n{}\n",
        failure.failure_key,
        code_span(&tf.test_name),
        code_span(&tf.job_name),
        failure.category.as_str()
    );
    let mut line = |label: &str, value: Option<String>| {
        if let Some(value) = value {
            let _ = writeln!(out, "- {label}: {value}");
        }
    };
    line("job", failure.job_url.clone());
    line("issue", failure.issue.url.clone());
    line("error", tf.error_message.as_deref().map(code_span));
    line("evidence", failure.evidence.as_deref().map(code_span));
    line("reason", failure.reason.clone());
    line(
        "decided by",
        failure.decision.as_ref().map(|d| d.describe()),
    );
    let owners = (!failure.owner.all.is_empty()).then(|| failure.owner.all.join(" "));
    line("owners", owners.as_deref().map(code_span));
    line(
        "blame",
        failure.owner.blame.as_ref().map(|b| {
            format!(
                "{} {} by {} ({})",
                code_span(&b.short_sha),
                code_span(&b.summary),
                code_span(&b.author),
                b.date
            )
        }),
    );
    if let Some(onset) = &failure.since.onset {
        line(
            "began",
            Some(format!(
                "between build {} and {} ({})",
                onset.last_passed_build, onset.first_failed_build, onset.compare_url
            )),
        );
        for suspect in &onset.suspects {
            line("suspect", Some(suspect_line(suspect)));
        }
        line("bisect", Some(super::bisect_hint(&failure.failure_key)));
    }
    for (label, text) in [("traceback", &tf.stack_trace), ("log", &tf.log_snippet)] {
        if let Some(text) = text {
            let fence = "~".repeat(
                text.split(|c| c != '~')
                    .map(str::len)
                    .max()
                    .unwrap_or(0)
                    .max(2)
                    + 1,
            );
            let _ = writeln!(out, "{label}:\n{fence}\n{text}\n{fence}");
        }
    }
    out
}
