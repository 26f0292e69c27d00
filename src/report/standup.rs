//! The one-line Standup summary.

use super::{code_span, short_test_name};
use crate::model::{BuildState, Category, ScanResult};

/// Categories counted in the standup line, in the original's order.
const COUNTED: [Category; 4] = [
    Category::NewRegression,
    Category::ContinuingUntracked,
    Category::FlakySuspected,
    Category::InfraSuspected,
];
/// At most this many NEW_REGRESSION tests are named.
const KEY_TESTS: usize = 3;

pub fn standup_summary(result: &ScanResult) -> String {
    let info = &result.build_info;
    let kind = if info.source.as_deref() == Some("schedule") {
        "Nightly build"
    } else {
        "Build"
    };
    let hard: Vec<_> = result.failures.iter().filter(|f| !f.soft_failed).collect();
    let soft: Vec<_> = result.failures.iter().filter(|f| f.soft_failed).collect();
    let parts = |list: &[&crate::model::FailureClassification]| -> Vec<String> {
        COUNTED
            .iter()
            .filter_map(|&c| {
                let n = list.iter().filter(|f| f.category == c).count();
                (n > 0).then(|| format!("{n} {}", c.as_str()))
            })
            .collect()
    };
    let mut pieces = Vec::new();
    if info.build_state() == BuildState::Passed && hard.is_empty() && !soft.is_empty() {
        let mut text = format!(
            "{kind} [{}]({}) PASSED with {} soft-failed (optional) tests",
            info.build_number,
            info.build_url,
            soft.len()
        );
        let soft_parts = parts(&soft);
        if !soft_parts.is_empty() {
            text.push_str(&format!(": {}", soft_parts.join(", ")));
        }
        pieces.push(text);
    } else {
        let mut text = format!(
            "{kind} [{}]({}) {} with {} unique failures",
            info.build_number,
            info.build_url,
            info.state.to_uppercase(),
            result.failures.len()
        );
        if !result.failures.is_empty() {
            text.push_str(&format!(" ({} hard / {} soft)", hard.len(), soft.len()));
        }
        let hard_parts = parts(&hard);
        if !hard_parts.is_empty() {
            text.push_str(&format!(": {}.", hard_parts.join(", ")));
        }
        pieces.push(text);
    }
    if let Some(counts) = super::cause_counts(result) {
        pieces.push(format!("{counts}."));
    }
    let key: Vec<String> = hard
        .iter()
        .filter(|f| f.category == Category::NewRegression)
        .take(KEY_TESTS)
        .map(|f| code_span(short_test_name(&f.test_failure.test_name)))
        .collect();
    if !key.is_empty() {
        pieces.push(format!("Key NEW_REGRESSION tests: {}", key.join(", ")));
    }
    if let Some(c) = &result.comparison {
        pieces.push(format!(
            "Since the last nightly: {} new, {} continuing, {} fixed.",
            c.new, c.continuing, c.fixed
        ));
    }
    let count = |status| {
        result
            .tracked_issues
            .iter()
            .filter(|t| t.status == status)
            .count()
    };
    let (silent, again) = (
        count(crate::model::TrackedStatus::Silent),
        count(crate::model::TrackedStatus::FailingAgain),
    );
    if silent + again > 0 {
        pieces.push(format!(
            "Issues: {silent} silent (close?), {again} failing again (reopen?)."
        ));
    }
    if !result.complete {
        pieces.push(format!("INCOMPLETE: {}.", result.incomplete.join("; ")));
    }
    pieces.join(" ")
}
