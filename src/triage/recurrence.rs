//! Grouping failures of several builds by failure key: how often each recurs. Pure.

use crate::model::{FailureClassification, RecurrenceSummary, RecurringFailure};
use std::collections::HashMap;

/// A failure is persistent when it recurs in at least this share of builds (the original's 0.5).
pub const PERSISTENT_THRESHOLD: f64 = 0.5;

/// The failures of one scanned build.
pub struct BuildFailures {
    pub build_number: String,
    pub commit: String,
    pub failures: Vec<FailureClassification>,
}

/// Groups by failure key in first-seen order (builds newest first), then sorts by recurrence
/// (stable). `seen_in_builds` and `seen_in_commits` stay aligned and ordered.
pub fn aggregate(builds: &[BuildFailures]) -> (Vec<RecurringFailure>, RecurrenceSummary) {
    let scanned = builds.len();
    let mut order: Vec<RecurringFailure> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for build in builds {
        for failure in &build.failures {
            let at = *index.entry(failure.failure_key.clone()).or_insert_with(|| {
                order.push(RecurringFailure {
                    failure: failure.clone(),
                    occurrence_count: 0,
                    seen_in_builds: Vec::new(),
                    seen_in_commits: Vec::new(),
                    recurrence_rate: 0.0,
                });
                order.len() - 1
            });
            let entry = &mut order[at];
            if entry.seen_in_builds.last() != Some(&build.build_number) {
                entry.seen_in_builds.push(build.build_number.clone());
                entry.seen_in_commits.push(build.commit.clone());
            }
        }
    }
    for entry in &mut order {
        entry.occurrence_count = entry.seen_in_builds.len();
        entry.recurrence_rate = if scanned == 0 {
            0.0
        } else {
            (entry.occurrence_count as f64 / scanned as f64 * 100.0).round() / 100.0
        };
    }
    order.sort_by(|a, b| {
        b.recurrence_rate
            .total_cmp(&a.recurrence_rate)
            .then(b.occurrence_count.cmp(&a.occurrence_count))
    });
    let persistent = order
        .iter()
        .filter(|f| f.recurrence_rate >= PERSISTENT_THRESHOLD)
        .count();
    let summary = RecurrenceSummary {
        total_builds_scanned: scanned,
        builds_with_failures: builds.iter().filter(|b| !b.failures.is_empty()).count(),
        total_unique_failures: order.len(),
        persistent_failures: persistent,
        intermittent_failures: order.len() - persistent,
    };
    (order, summary)
}
