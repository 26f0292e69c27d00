//! Draft text of a `[CI Failure]` issue in vLLM's form (`.github/ISSUE_TEMPLATE/450-ci-failure.yml`),
//! one per cause, its fields as headings so a person can paste them into the form. The server
//! never files it. Log text is untrusted: it sits in fenced blocks and code spans only.

use super::code_span;
use crate::model::{BuildInfo, Cause, FailureClassification};
use std::fmt::Write;

/// Traceback lines kept in the draft; the full text is in the scan result.
const TRACEBACK_LINES: usize = 40;
/// Suspect authors and owners named in the CC list.
const CC_PEOPLE: usize = 6;

/// The draft of one cause: every member test and job, the platforms, the lead member's error
/// and traceback (the first member with an onset, else the first), its history and suspects.
pub fn draft_issue(cause: &Cause, members: &[&FailureClassification], build: &BuildInfo) -> String {
    let Some(lead) = members
        .iter()
        .find(|f| f.since.onset.is_some())
        .or(members.first())
        .copied()
    else {
        return String::new();
    };
    let files = unique(members.iter().map(|f| {
        f.test_failure
            .test_name
            .split("::")
            .next()
            .unwrap_or(&f.test_failure.test_name)
    }));
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Title: [CI Failure]: {} - {}\n",
        one_line(&shortened(&cause.jobs)),
        one_line(&files.join(", "))
    );
    failing_tests(&mut out, members);
    describe(&mut out, cause, members, lead, build);
    history(&mut out, lead, build);
    cc_list(&mut out, cause, lead);
    out
}

/// The form's "Name of failing test" and "Basic information".
fn failing_tests(out: &mut String, members: &[&FailureClassification]) {
    let tests = unique(members.iter().map(|f| f.test_failure.test_name.as_str()));
    let _ = writeln!(out, "### Name of failing test\n");
    for test in &tests {
        let _ = writeln!(out, "{}", code_span(test));
    }
    let _ = writeln!(out, "\n### Basic information\n");
    let flaky = members.iter().any(|f| {
        f.since
            .trend
            .as_ref()
            .is_some_and(|t| t.trend == crate::model::Trend::Intermittent)
    });
    let _ = writeln!(out, "- [{}] Flaky test", if flaky { "x" } else { " " });
    let _ = writeln!(out, "- [ ] Can reproduce locally");
    let _ = writeln!(
        out,
        "- [ ] Caused by external libraries (e.g. bug in `transformers`)\n"
    );
}

/// "Describe the failing test": where it fails, its signature, the lead's error, traceback and
/// the logs.
fn describe(
    out: &mut String,
    cause: &Cause,
    members: &[&FailureClassification],
    lead: &FailureClassification,
    build: &BuildInfo,
) {
    let _ = writeln!(out, "### 🧪 Describe the failing test\n");
    let jobs: Vec<String> = cause.jobs.iter().map(|j| code_span(j)).collect();
    let platforms: Vec<&str> = cause
        .platforms
        .iter()
        .map(|p| super::causes::platform_name(*p))
        .collect();
    let hardware = if cause.hardware.is_empty() {
        String::new()
    } else {
        format!("; {}", cause.hardware.join(", "))
    };
    let _ = writeln!(
        out,
        "{} failures in {} of nightly [{}]({}) (commit {}), on {}{hardware}.\n",
        members.len(),
        jobs.join(", "),
        build.build_number,
        build.build_url,
        code_span(crate::model::short_sha(&build.commit)),
        platforms.join(", ")
    );
    let _ = writeln!(out, "Signature: {}\n", code_span(&cause.signature));
    if let Some(elsewhere) = &cause.elsewhere {
        let _ = writeln!(
            out,
            "In {} #{}: {:?} ({}).\n",
            elsewhere.pipeline,
            elsewhere.build_number,
            elsewhere.state,
            code_span(&elsewhere.evidence)
        );
    }
    let tf = &lead.test_failure;
    if let Some(message) = &tf.error_message {
        let _ = writeln!(out, "Error: {}\n", code_span(message));
    }
    if let Some(trace) = tf.stack_trace.as_deref().or(tf.log_snippet.as_deref()) {
        let lines: Vec<&str> = trace.lines().collect();
        let start = lines.len().saturating_sub(TRACEBACK_LINES);
        let _ = writeln!(out, "{}", fenced(&lines[start..].join("\n")));
    }
    for url in unique(members.iter().filter_map(|f| f.job_url.as_deref())) {
        let _ = writeln!(out, "Log: {url}");
    }
    let _ = writeln!(out);
}

/// "History of failing test": the onset range and suspects, or the streak.
fn history(out: &mut String, failure: &FailureClassification, build: &BuildInfo) {
    let _ = writeln!(out, "### 📝 History of failing test\n");
    match (&failure.since.trend, &failure.since.onset) {
        (_, Some(onset)) => {
            let _ = writeln!(
                out,
                "- First failing nightly: {} ({})\n- Last passing nightly: {} ({})\n- Range: {}",
                onset.first_failed_build,
                code_span(crate::model::short_sha(&onset.first_failed_commit)),
                onset.last_passed_build,
                code_span(crate::model::short_sha(&onset.last_passed_commit)),
                onset.compare_url
            );
            for suspect in super::shown_suspects(onset) {
                let _ = writeln!(out, "- Suspect {}", super::suspect_line(suspect));
            }
            let _ = writeln!(
                out,
                "- Bisect: {}",
                super::bisect_hint(&failure.failure_key)
            );
        }
        (Some(trend), None) => {
            let _ = writeln!(
                out,
                "- Failing since nightly {}: {} consecutive nightlies{}",
                trend.first_failed_build,
                trend.streak,
                if trend.streak_reaches_past_window {
                    ", and before the nightlies compared"
                } else {
                    ""
                }
            );
        }
        (None, None) => {
            let _ = writeln!(out, "- Seen in nightly {}", build.build_number);
        }
    }
    let _ = writeln!(
        out,
        "- Test Engine: https://buildkite.com/organizations/vllm/analytics/suites/ci-1/tests?branch=main\n"
    );
}

/// "CC List": the closest suspects' authors and the owners, well-formed handles only.
fn cc_list(out: &mut String, cause: &Cause, failure: &FailureClassification) {
    let mut cc: Vec<String> = Vec::new();
    let suspects = failure.since.onset.iter().flat_map(|o| o.suspects.iter());
    for person in suspects
        .filter(|s| s.closeness > 0)
        .map(|s| format!("@{}", s.author))
        .chain(cause.owners.iter().cloned())
    {
        // Only well-formed handles (`@login`, `@org/team`) are mentioned; anything else is
        // dropped rather than pasted raw.
        let handle = person.len() > 1
            && person.starts_with('@')
            && person[1..]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '/'));
        if handle && !cc.contains(&person) && cc.len() < CC_PEOPLE {
            cc.push(person);
        }
    }
    let _ = writeln!(out, "### CC List.\n");
    let _ = writeln!(
        out,
        "{}",
        if cc.is_empty() {
            "(none found)".to_string()
        } else {
            cc.join(" ")
        }
    );
}

/// Values in first-seen order, each once.
fn unique<'a>(values: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut seen: Vec<&str> = Vec::new();
    for value in values {
        if !seen.contains(&value) {
            seen.push(value);
        }
    }
    seen
}

/// Jobs for a title: the first three, then how many more.
fn shortened(jobs: &[String]) -> String {
    const IN_TITLE: usize = 3;
    let mut text = jobs
        .iter()
        .take(IN_TITLE)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if jobs.len() > IN_TITLE {
        text.push_str(&format!(" and {} more", jobs.len() - IN_TITLE));
    }
    text
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A fenced block that the text cannot close: the fence is longer than any backtick run in it.
fn fenced(text: &str) -> String {
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest.max(2) + 1);
    format!("{fence}text\n{text}\n{fence}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fence_cannot_be_closed_from_inside() {
        let block = fenced("a\n```\nb");
        assert!(block.starts_with("````text\n"), "{block}");
        assert!(block.ends_with("\n````\n"));
    }
}
