//! The one-line Standup summary.

use super::{code_span, short_test_name};
use crate::model::{BuildState, Category, FailureClassification, ScanResult};

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
    let hard: Vec<_> = result.failures.iter().filter(|f| !f.soft_failed).collect();
    let soft: Vec<_> = result.failures.iter().filter(|f| f.soft_failed).collect();
    let mut pieces = vec![headline(result, &hard, &soft)];
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
    pieces.extend(issues_to_act_on(result));
    if !result.complete {
        pieces.push(format!("INCOMPLETE: {}.", result.incomplete.join("; ")));
    }
    pieces.join(" ")
}

/// The build, its state and the counts by category (of the soft failures when only those
/// failed in a passed build).
fn headline(
    result: &ScanResult,
    hard: &[&FailureClassification],
    soft: &[&FailureClassification],
) -> String {
    let info = &result.build_info;
    let kind = if info.source.as_deref() == Some("schedule") {
        "Nightly build"
    } else {
        "Build"
    };
    let parts = |list: &[&FailureClassification]| -> Vec<String> {
        COUNTED
            .iter()
            .filter_map(|&c| {
                let n = list.iter().filter(|f| f.category == c).count();
                (n > 0).then(|| format!("{n} {}", c.as_str()))
            })
            .collect()
    };
    if info.build_state() == BuildState::Passed && hard.is_empty() && !soft.is_empty() {
        let mut text = format!(
            "{kind} [{}]({}) PASSED with {} soft-failed (optional) tests",
            info.build_number,
            info.build_url,
            soft.len()
        );
        let soft_parts = parts(soft);
        if !soft_parts.is_empty() {
            text.push_str(&format!(": {}", soft_parts.join(", ")));
        }
        text
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
        let hard_parts = parts(hard);
        if !hard_parts.is_empty() {
            text.push_str(&format!(": {}.", hard_parts.join(", ")));
        }
        text
    }
}

/// Silent issues to close and closed ones failing again.
fn issues_to_act_on(result: &ScanResult) -> Option<String> {
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
    (silent + again > 0)
        .then(|| format!("Issues: {silent} silent (close?), {again} failing again (reopen?)."))
}
