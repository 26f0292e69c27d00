//! The test-history summary (markdown), in the original's layout with the transition range.

use super::code_span;
use crate::model::TimelineEntry;
use crate::triage::history::{Assessment, HistoryClass, TestStatus, Transition};
use std::fmt::Write;

/// Newest builds listed at the end of the summary.
const RECENT_BUILDS: usize = 5;

pub fn history_summary(
    test_nodeid: &str,
    timeline: &[TimelineEntry],
    assessment: &Assessment,
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "## Test History: {}\n", code_span(test_nodeid));
    let confidence = serde_json::to_value(assessment.confidence)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let class = serde_json::to_value(assessment.classification)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "**Classification:** {class} (confidence: {confidence})\n"
    );
    if !assessment.notes.is_empty() {
        let _ = writeln!(out, "**Analysis:**");
        for note in &assessment.notes {
            let _ = writeln!(out, "- {note}");
        }
        let _ = writeln!(out);
    }
    if let Some(change) = &assessment.transition {
        transition(&mut out, timeline, assessment.classification, change);
    }
    recent(&mut out, timeline);
    out.trim_end().to_string() + "\n"
}

/// Where it regressed (or was fixed): the last good and first bad builds and the range.
fn transition(
    out: &mut String,
    timeline: &[TimelineEntry],
    classification: HistoryClass,
    change: &Transition,
) {
    let title = if classification == HistoryClass::Fixed {
        "Fixed at"
    } else {
        "Regression introduced at"
    };
    let url = |number: u64| {
        timeline
            .iter()
            .find(|e| e.build_number == number)
            .map(|e| e.build_url.clone())
            .unwrap_or_default()
    };
    let _ = writeln!(out, "**{title}:**");
    for (side, build, commit) in [
        (
            "Last good",
            change.last_good_build,
            &change.last_good_commit,
        ),
        (
            "First bad",
            change.first_bad_build,
            &change.first_bad_commit,
        ),
    ] {
        let _ = writeln!(
            out,
            "- {side}: build [{build}]({}) (commit {})",
            url(build),
            code_span(crate::model::short_sha(commit))
        );
    }
    if let Some(compare) = &change.compare_url {
        let _ = writeln!(out, "- Commits in between: {compare}");
    }
    let _ = writeln!(out);
}

/// The builds that ran the test, counted, and the newest of them.
fn recent(out: &mut String, timeline: &[TimelineEntry]) {
    let found: Vec<&TimelineEntry> = timeline.iter().filter(|e| e.test_found).collect();
    if !found.is_empty() {
        let passed = found
            .iter()
            .filter(|e| e.test_status == TestStatus::Pass)
            .count();
        let _ = writeln!(out, "**Timeline summary:** {} builds scanned", found.len());
        let _ = writeln!(out, "- Passed: {passed}");
        let _ = writeln!(out, "- Failed: {}\n", found.len() - passed);
        let _ = writeln!(out, "**Recent builds:**");
        for entry in found.iter().take(RECENT_BUILDS) {
            let mark = if entry.test_status == TestStatus::Pass {
                "✅"
            } else {
                "❌"
            };
            let _ = writeln!(
                out,
                "- {mark} Build [{}]({}) (commit {})",
                entry.build_number,
                entry.build_url,
                code_span(crate::model::short_sha(&entry.commit_sha))
            );
        }
    }
}
