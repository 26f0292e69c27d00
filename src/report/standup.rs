//! The one-line Standup summary.

use super::{code_span, short_test_name};
use crate::model::{BuildCounts, BuildState, Category, ScanResult};

/// At most this many NEW_REGRESSION tests are named.
const KEY_TESTS: usize = 3;

pub fn standup_summary(result: &ScanResult) -> String {
    let counts = result.build_counts();
    let mut pieces = vec![headline(result, &counts)];
    if let Some(causes) = super::cause_counts(result) {
        pieces.push(format!("{causes}."));
    }
    let key: Vec<String> = result
        .failures
        .iter()
        .filter(|f| !f.soft_failed && f.category == Category::NewRegression)
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

/// The build, its state and its failures by category (every failure of the build, so the
/// categories add up to the total).
fn headline(result: &ScanResult, counts: &BuildCounts) -> String {
    let info = &result.build_info;
    let kind = if info.source.as_deref() == Some("schedule") {
        "Nightly build"
    } else {
        "Build"
    };
    let categories: Vec<String> = counts
        .by_category
        .iter()
        .map(|c| format!("{} {}", c.failures, c.category.as_str()))
        .collect();
    let mut text =
        if info.build_state() == BuildState::Passed && counts.hard == 0 && counts.soft > 0 {
            format!(
                "{kind} [{}]({}) PASSED with {} soft-failed (optional) tests",
                info.build_number, info.build_url, counts.soft
            )
        } else {
            let total = counts.hard + counts.soft;
            let mut text = format!(
                "{kind} [{}]({}) {} with {total} unique failures",
                info.build_number,
                info.build_url,
                info.state.to_uppercase(),
            );
            if total > 0 {
                text.push_str(&format!(" ({} hard / {} soft)", counts.hard, counts.soft));
            }
            text
        };
    if !categories.is_empty() {
        text.push_str(&format!(": {}.", categories.join(", ")));
    }
    text
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
