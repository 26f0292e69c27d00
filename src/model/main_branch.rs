//! What `ciwatch_analyze_main_branch` returns: failures recurring across main-branch builds.

use super::failure::FailureClassification;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A failure with where it recurred.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct RecurringFailure {
    #[serde(flatten)]
    pub failure: FailureClassification,
    /// Builds it failed in.
    pub occurrence_count: usize,
    /// Newest first; `seen_in_commits` is aligned with it, one commit per build.
    pub seen_in_builds: Vec<String>,
    pub seen_in_commits: Vec<String>,
    /// `occurrence_count / builds_scanned`, two decimals.
    pub recurrence_rate: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct AnalyzedBuild {
    pub build_number: String,
    /// First 8 characters.
    pub commit: String,
    pub state: String,
    pub created_at: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct AnalysisWindow {
    pub start_time: String,
    pub end_time: String,
    pub hours_lookback: u32,
    pub builds_scanned: usize,
    pub builds_analyzed: Vec<AnalyzedBuild>,
}

/// Counts over all unique failures, before `max_failures` is applied.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct RecurrenceSummary {
    pub total_builds_scanned: usize,
    pub builds_with_failures: usize,
    pub total_unique_failures: usize,
    /// Recurring in at least half of the scanned builds.
    pub persistent_failures: usize,
    pub intermittent_failures: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct MainBranchAnalysis {
    pub analysis_window: AnalysisWindow,
    pub summary: RecurrenceSummary,
    /// Most recurrent first: the page `page` says (`max_failures` from `failure_offset`).
    pub failures: Vec<RecurringFailure>,
    /// Which failures this result holds, of how many; `next_offset` is the next page's
    /// `failure_offset`.
    pub page: super::FailurePage,
    pub scan_timestamp: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis_text: Option<String>,
    pub warnings: Vec<String>,
}
