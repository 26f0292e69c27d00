//! The use cases: scan a build, pick the latest nightly, follow a test, look at one job, find
//! what keeps failing on main. Every job log is read through `outcomes` (the one reader, with
//! the on-disk store); the pure `logs`/`triage`/`report` modules do the rest. It knows nothing
//! of MCP, so the CLI and the server run the same code.

mod analytics;
mod bisect;
mod call;
mod compare;
mod elsewhere;
mod failures;
mod history;
mod issues;
mod job_log;
mod jobs;
mod main_branch;
mod nightly;
mod scan;
mod select;
mod tracked;

pub use crate::reader::coverage::covers_job;
pub use crate::reader::{
    JobRead, JobReader, Progress, ReadLimits, DEFAULT_BUILD_FRESHNESS, DEFAULT_MAX_WHOLE_LOG_BYTES,
    DEFAULT_SCAN_BYTE_CEILING,
};
pub use analytics::{
    analytics_bulk, match_tests, AnalyticsBulkResult, AnalyticsMatch, Candidate, MAX_SUITE_PAGES,
};
pub use bisect::{bisect_plan, BisectOptions, BisectTarget, DEFAULT_BISECT_LOGS};
pub use call::{Enrichment, Presentation, ScanOptions};
pub use compare::{DEFAULT_COMPARE_NIGHTLIES, MAX_COMPARE_NIGHTLIES};
pub use elsewhere::DEFAULT_COMPARE_PIPELINE;
pub use history::{test_history, HistoryOptions, DEFAULT_HISTORY_LOGS, MAX_LOOKBACK_BUILDS};
pub use job_log::{
    job_log, LogView, DEFAULT_MAX_MATCHES, DEFAULT_TAIL_LINES, MAX_CONTEXT_LINES, MAX_MATCHES,
    MAX_TAIL_LINES,
};
pub use jobs::{
    job_test_failures, match_job, JobInfo, JobQuery, JobTestFailure, JobTestFailuresResult,
    MatchStrategy,
};
pub use main_branch::{analyze_main_branch, MainBranchOptions, MAX_HOURS_LOOKBACK};
pub use nightly::{is_nightly, latest_nightly, pick_nightly, NightlyChoice};
pub use scan::scan_build;
pub use select::{plan_jobs, JobPlan};

use crate::buildkite::BuildkiteError;

/// Read budgets of one scan.
#[derive(Debug, Clone)]
pub struct Budgets {
    /// Failed jobs whose logs are read.
    pub max_jobs: usize,
    /// Bytes read from the end of each log.
    pub max_log_bytes: u64,
    /// The ceiling on the first reads of a call's jobs, applied in plan order.
    pub scan_byte_budget: u64,
    /// The largest log read whole (a re-read, or the job-log tool's read).
    pub max_whole_log_bytes: u64,
    /// Log fetches in flight (the request budget paces them; this caps open connections).
    pub concurrency: usize,
}

impl Default for Budgets {
    fn default() -> Self {
        Self {
            max_jobs: 20,
            max_log_bytes: 200_000,
            scan_byte_budget: DEFAULT_SCAN_BYTE_CEILING,
            max_whole_log_bytes: DEFAULT_MAX_WHOLE_LOG_BYTES,
            concurrency: 24,
        }
    }
}

impl Budgets {
    /// The read limits of one call.
    pub fn limits(&self) -> ReadLimits {
        ReadLimits {
            max_log_bytes: self.max_log_bytes,
            max_whole_log_bytes: self.max_whole_log_bytes,
            max_scan_bytes: self.scan_byte_budget,
        }
    }
}

/// No progress wanted.
pub struct NoProgress;

impl Progress for NoProgress {
    fn report(&self, _: usize, _: usize, _: &str) {}
}

#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error(transparent)]
    Buildkite(#[from] BuildkiteError),
    #[error("{0}")]
    NotFound(String),
    /// A service the use case cannot do without (GitHub's compare) did not answer.
    #[error("{0}")]
    Unavailable(String),
}

impl From<crate::http::HttpError> for WatchError {
    fn from(error: crate::http::HttpError) -> Self {
        Self::Buildkite(BuildkiteError::Http(error))
    }
}
