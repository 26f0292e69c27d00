//! What the job tools return (one job's failures, one job's log) and the Test Engine lookups.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How `job_name_or_id` is matched.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum MatchStrategy {
    /// The job's exact name (case-sensitive).
    Exact,
    /// A case-insensitive part of the name; an exact (case-insensitive) name wins among several.
    #[default]
    Fuzzy,
    /// The job id.
    Id,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct JobInfo {
    pub job_id: String,
    pub job_name: String,
    pub job_url: String,
    pub state: String,
    pub exit_status: Option<i64>,
    pub soft_failed: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct JobTestFailure {
    /// The pytest node id, or the job name for a job-level failure.
    pub test_nodeid: String,
    /// The file part of the node id (empty for a job-level failure).
    pub scope: String,
    /// The test part of the node id, as pytest's head line shows it.
    pub test_name: String,
    pub error_message: Option<String>,
    pub stack_trace: Option<String>,
    pub log_snippet: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct JobTestFailuresResult {
    pub job_info: JobInfo,
    pub test_failures: Vec<JobTestFailure>,
    pub total_failures: usize,
    /// Set when the log was read only in part or not at all.
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct AnalyticsMatch {
    pub test_nodeid: String,
    pub test_id: String,
    pub test_name: String,
    pub scope: String,
    pub location: String,
    pub web_url: String,
    /// Labelled `flaky` in Test Engine.
    pub is_flaky: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Candidate {
    pub id: String,
    pub name: String,
    pub scope: String,
    pub location: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct AnalyticsBulkResult {
    pub results: Vec<AnalyticsMatch>,
    /// Node ids with no suite test (within the tests read; see `warnings`).
    pub not_found: Vec<String>,
    /// Node ids that match several suite tests, with the candidates.
    pub multiple_matches: BTreeMap<String, Vec<Candidate>>,
    pub total_checked: usize,
    /// Suite tests read (all pages, or `MAX_SUITE_PAGES` of them).
    pub suite_tests_read: usize,
    pub warnings: Vec<String>,
}

/// One numbered line of a job log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LogLine {
    /// 1-based, from the log's first line as Buildkite serves it (for a log over the read
    /// bound, from the start of its end that was read; `whole_log` is then false).
    pub n: usize,
    pub text: String,
}

/// A bounded view of one job's log (`ciwatch_get_job_log`).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct JobLogResult {
    pub job_info: JobInfo,
    pub lines: Vec<LogLine>,
    /// Lines of the text read.
    pub total_lines: usize,
    /// The text read is the whole log (else its end, when the log is over
    /// `CIWATCH_MAX_WHOLE_LOG_BYTES`).
    pub whole_log: bool,
    /// Lines that matched a search, all of them (shown or not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matches: Option<usize>,
    /// The result was cut at 64 KB; `notes` says how to get the rest.
    pub truncated: bool,
    #[serde(default)]
    pub notes: Vec<String>,
}
