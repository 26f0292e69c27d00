//! One test across builds, as the MCP App draws a test history: its summary and one strip, a
//! cell per build of its timeline (newest first), each linked to its build.

use super::grid::Outcome;
use super::page::link;
use crate::model::{HistoryResult, TestStatus};
use maud::{html, Markup};

/// The strip of `history`.
pub fn history_view(history: &HistoryResult) -> Markup {
    html! {
        h1 { (history.test_nodeid) }
        p class="headline" { (history.summary) }
        section id="strip" {
            h2 { "Builds, newest first" }
            table { tbody {
                tr { @for entry in &history.timeline { th class="build" { (entry.build_number) } } }
                tr data-test=(history.test_nodeid) {
                    @for entry in &history.timeline {
                        @let outcome = outcome(entry.test_status);
                        td class={"cell " (outcome.class())} { (link(&entry.build_url, outcome.symbol())) }
                    }
                }
            } }
        }
    }
}

/// A build's cell as the grid draws one.
fn outcome(status: TestStatus) -> Outcome {
    match status {
        TestStatus::Fail => Outcome::Failed,
        TestStatus::Pass => Outcome::Passed,
        TestStatus::Unknown => Outcome::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Assessment, Confidence, HistoryClass, HistoryStats, TimelineEntry};

    fn entry(build: u64, url: &str, status: TestStatus) -> TimelineEntry {
        TimelineEntry {
            build_number: build,
            build_url: url.into(),
            created_at: None,
            commit_sha: "abc".into(),
            test_found: true,
            test_status: status,
            jobs: Vec::new(),
        }
    }

    #[test]
    fn a_cell_per_build_linked_only_to_https() {
        let history = HistoryResult {
            test_nodeid: "tests/a.py::test_x<script>".into(),
            timeline: vec![
                entry(
                    2,
                    "https://buildkite.com/vllm/ci/builds/2",
                    TestStatus::Fail,
                ),
                entry(1, "javascript:alert(1)", TestStatus::Pass),
            ],
            assessment: Assessment {
                classification: HistoryClass::Regression,
                confidence: Confidence::Low,
                notes: Vec::new(),
                transition_build: None,
                transition: None,
            },
            summary: "failing since 2".into(),
            warnings: Vec::new(),
            stats: HistoryStats::default(),
        };
        let view = history_view(&history).into_string();
        assert_eq!(view.matches("class=\"cell ").count(), 2);
        assert!(view.contains("href=\"https://buildkite.com/vllm/ci/builds/2\""));
        assert!(!view.contains("javascript:") && !view.contains("<script>"));
    }
}
