//! What `ciwatch_test_history` returns: one test across builds and the assessment of it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One job's word on the test in one build.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct HistoryJob {
    pub job_name: String,
    pub job_url: String,
    pub status: TestStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_excerpt: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct TimelineEntry {
    pub build_number: u64,
    pub build_url: String,
    pub created_at: Option<String>,
    pub commit_sha: String,
    pub test_found: bool,
    /// `fail` when any run failed, `pass` when runs only passed.
    pub test_status: TestStatus,
    pub jobs: Vec<HistoryJob>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct HistoryStats {
    pub builds_considered: usize,
    pub builds_with_test: usize,
    pub logs_read: usize,
    pub log_bytes_fetched: u64,
    pub cache_hits: usize,
    pub api_requests: u64,
    pub elapsed_ms: u64,
    /// Builds (newest first) whose failed jobs that run the test were read or stored.
    #[serde(default)]
    pub builds_read: Vec<u64>,
    /// Builds (newest first) with failed jobs that run the test left unread (log budget).
    #[serde(default)]
    pub builds_not_read: Vec<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct HistoryResult {
    pub test_nodeid: String,
    /// Newest build first.
    pub timeline: Vec<TimelineEntry>,
    pub assessment: Assessment,
    /// Markdown.
    pub summary: String,
    pub warnings: Vec<String>,
    pub stats: HistoryStats,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TestStatus {
    Pass,
    Fail,
    /// The test was not seen in this build (not run, or its log not read).
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HistoryClass {
    Regression,
    FlakeOnset,
    PersistentFail,
    Sporadic,
    Fixed,
    InsufficientData,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Confidence {
    #[serde(rename = "HIGH")]
    High,
    #[serde(rename = "MED")]
    Med,
    #[serde(rename = "LOW")]
    Low,
}

/// Where the outcome changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Transition {
    pub last_good_build: u64,
    pub last_good_commit: String,
    pub first_bad_build: u64,
    pub first_bad_commit: String,
    /// GitHub compare view of the commits between the two builds.
    pub compare_url: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Assessment {
    pub classification: HistoryClass,
    pub confidence: Confidence,
    pub notes: Vec<String>,
    /// The first failing build after the transition (REGRESSION) or first passing one (FIXED).
    pub transition_build: Option<u64>,
    pub transition: Option<Transition>,
}
