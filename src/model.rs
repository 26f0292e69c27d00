//! The result types every layer shares: what a scan returns, what reports render, what MCP tools
//! publish as their output schema. Plain data: no I/O, no client types.
//!
//! Field names follow the original Python server's results (`build_info`, `failures`,
//! `test_failure`, `failure_key`, …) so existing prompts keep working; fields it lacked
//! (`jobs`, `warnings`, `infra_kind`, `evidence`, `soft_failed`, …) are additions.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The scanned build, from the API's own metadata.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct BuildInfo {
    pub build_number: String,
    pub build_url: String,
    /// `org/pipeline`.
    pub pipeline: String,
    pub branch: String,
    pub commit: String,
    pub state: String,
    #[serde(default)]
    pub message: Option<String>,
    /// `schedule`, `webhook`, `api`, `ui` or `trigger_job`.
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub finished_at: Option<String>,
}

/// One failure as extracted from a log.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct TestFailure {
    /// The pytest node id, or the job name for a job-level failure (no `::`).
    pub test_name: String,
    pub job_name: String,
    #[serde(default)]
    pub error_message: Option<String>,
    /// The failure's traceback excerpt (the `E` block, or the lines that explain a job failure).
    #[serde(default)]
    pub stack_trace: Option<String>,
    #[serde(default)]
    pub log_snippet: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Category {
    KnownTracked,
    InfraSuspected,
    FlakySuspected,
    /// A failure the previous nightly did not have (nightly scans), or one no earlier nightly
    /// could be compared with; in other scans, an untracked failure with no known pattern.
    NewRegression,
    /// Failing in earlier nightlies too, and no issue tracks it (nightly scans).
    ContinuingUntracked,
    NeedsHumanTriage,
}

impl Category {
    /// Report order: what needs action first.
    pub const REPORT_ORDER: [Category; 6] = [
        Category::NewRegression,
        Category::ContinuingUntracked,
        Category::FlakySuspected,
        Category::InfraSuspected,
        Category::KnownTracked,
        Category::NeedsHumanTriage,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::KnownTracked => "KNOWN_TRACKED",
            Self::InfraSuspected => "INFRA_SUSPECTED",
            Self::FlakySuspected => "FLAKY_SUSPECTED",
            Self::NewRegression => "NEW_REGRESSION",
            Self::ContinuingUntracked => "CONTINUING_UNTRACKED",
            Self::NeedsHumanTriage => "NEEDS_HUMAN_TRIAGE",
        }
    }
}

/// A classified failure.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct FailureClassification {
    /// Stable id: sha256 of job name, test name and first error line (first 16 hex digits).
    pub failure_key: String,
    pub test_failure: TestFailure,
    pub category: Category,
    /// URL of the matching GitHub issue.
    #[serde(default)]
    pub github_issue: Option<String>,
    /// The matching issue's number, title, state and what matched. A closed issue means the
    /// failure may have come back after a fix.
    #[serde(default)]
    pub issue: Option<IssueMatch>,
    pub confidence: f64,
    /// Why this category, citing the evidence. Null at `detail_level=minimal`.
    #[serde(default)]
    pub reason: Option<String>,
    /// First owner (CODEOWNERS), or the last committer's email when only blame knows.
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    pub owner_confidence: Option<f64>,
    /// Every owner of the failing file by CODEOWNERS (GitHub's rules: last match wins).
    #[serde(default)]
    pub owners: Vec<String>,
    #[serde(default)]
    pub owner_source: Option<OwnerSource>,
    /// The repository path owners were looked up for.
    #[serde(default)]
    pub owner_path: Option<String>,
    /// The most recent commit that touched the failing test function (a weaker owner signal).
    #[serde(default)]
    pub blame: Option<BlameCommit>,
    /// Set for INFRA_SUSPECTED: which kind of infrastructure trouble.
    #[serde(default)]
    pub infra_kind: Option<InfraKind>,
    /// The log line or job field that proves the category, when there is one.
    #[serde(default)]
    pub evidence: Option<String>,
    /// Where the deciding evidence came from: job-level signals outrank the failure's own
    /// error lines, which outrank what the test printed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<EvidenceSource>,
    /// The error message normalised for grouping across builds.
    #[serde(default)]
    pub fingerprint: Option<String>,
    /// True when the job is allowed to fail (`soft_fail`); rendered in the soft section.
    #[serde(default)]
    pub soft_failed: bool,
    #[serde(default)]
    pub job_id: Option<String>,
    #[serde(default)]
    pub job_url: Option<String>,
    /// Compared with the previous scheduled nightlies (nightly scans only): new, continuing,
    /// intermittent or unknown, since when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trend: Option<FailureTrend>,
    /// For a new failure: the last nightly where it passed, the first where it failed, the
    /// commits between them ranked by how close each is to the failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub onset: Option<Onset>,
    /// The `cause_id` of the root cause this failure belongs to (see `causes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause_id: Option<String>,
}

/// Where a job runs.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    Cuda,
    Rocm,
    Xpu,
    Npu,
    Cpu,
}

/// One root cause: the failures that share a signature (exception type, normalised message,
/// innermost `vllm/` frame), across parametrisations, shards, hardware and pipelines.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Cause {
    /// Stable id of the signature (16 hex digits).
    pub cause_id: String,
    /// `ExceptionType: normalised message @ vllm/file.py in function`, or `job: <error line>`.
    pub signature: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exception: Option<String>,
    /// The member failures' `failure_key`s.
    pub failure_keys: Vec<String>,
    /// Member tests, parametrisations folded (`file.py::test_x[...] ×4`).
    pub tests: Vec<String>,
    pub jobs: Vec<String>,
    /// The jobs' test areas with hardware, shards and the `AMD:` prefix stripped.
    pub clusters: Vec<String>,
    /// Hardware the jobs name (`B200`, `H100`, `mi300`, `2 GPUs`).
    pub hardware: Vec<String>,
    pub platforms: Vec<Platform>,
    /// The strongest category of its members (what needs action first).
    pub category: Category,
    /// New when every member is new; continuing when any is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trend: Option<Trend>,
    /// The first member's closest suspect commit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspect: Option<Suspect>,
    pub owners: Vec<String>,
    /// The issue that tracks a member, when one does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issue: Option<IssueMatch>,
    /// Its state in the matching nightly of the compared pipeline (the AMD nightly).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elsewhere: Option<Elsewhere>,
    /// Where it fails: everywhere, only on CUDA, only on ROCm (unknown when the compared
    /// nightly did not run it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parity: Option<Parity>,
    /// For an untracked cause: file a new issue, or the issue that already covers it (an open
    /// one to comment on, a closed one to reopen).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issue_advice: Option<IssueAdvice>,
    /// At `full`, when a new issue is advised: the draft `[CI Failure]` issue in vLLM's form,
    /// every member test and job in it (ciwatch_render with format "draft_issue" and the
    /// cause_id gives it at any level). The server never writes to GitHub.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub draft_issue: Option<String>,
}

/// What to do about an untracked cause on GitHub.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct IssueAdvice {
    pub action: IssueAction,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issue: Option<IssueRef>,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum IssueAction {
    /// No issue covers it: file the draft.
    FileNew,
    /// An open issue already names its test file and exception: add to it, file nothing new.
    UseOpen,
    /// A closed issue has its signature: reopen it instead of filing a duplicate.
    ReopenClosed,
}

/// An issue named in a result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct IssueRef {
    pub number: u64,
    pub url: String,
    pub title: String,
    pub state: IssueState,
}

/// A cause's state in the compared pipeline's nightly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Elsewhere {
    /// `org/pipeline` and build number of the nightly compared with.
    pub pipeline: String,
    pub build_number: u64,
    pub state: ElsewhereState,
    /// The jobs there that run the cause's tests or areas.
    #[serde(default)]
    pub jobs: Vec<String>,
    /// Why it reads as it does.
    pub evidence: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ElsewhereState {
    FailingThere,
    PassingThere,
    NotRunThere,
    /// It ran there but its log could not say (not read, read in part).
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Parity {
    Universal,
    CudaOnly,
    RocmOnly,
}

/// Where a verdict's evidence came from, strongest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EvidenceSource {
    /// The job itself: its state (`timed_out`), exit status (-1) or signal reason.
    Job,
    /// A later attempt of the job passed in the same build.
    Retry,
    /// The failure's error message, traceback or the lines that explain the job.
    ErrorLines,
    /// What the test printed while it ran: anyone's text, so it weighs least.
    TestOutput,
}

/// Characters of a commit sha shown in reports and results, everywhere.
pub const SHORT_SHA_LEN: usize = 8;

/// The first [`SHORT_SHA_LEN`] characters of `sha` (all of it when shorter).
pub fn short_sha(sha: &str) -> &str {
    sha.get(..SHORT_SHA_LEN).unwrap_or(sha)
}

/// How a failure compares with the previous scheduled nightlies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Trend {
    /// The previous usable nightly ran it and it passed, and it did not fail earlier in the
    /// window.
    New,
    /// It failed in the previous usable nightly too.
    Continuing,
    /// It passed in the previous usable nightly but failed earlier in the window.
    Intermittent,
    /// No previous nightly could say (agent lost, cancelled, log missing, over budget).
    Unknown,
}

impl Trend {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::New => "new",
            Self::Continuing => "continuing",
            Self::Intermittent => "intermittent",
            Self::Unknown => "unknown",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FailureTrend {
    pub trend: Trend,
    /// Consecutive failing nightlies, this one included (nightlies that could not say are
    /// skipped, not counted).
    pub streak: u32,
    /// Every usable nightly of the window failed too: the streak began before the window.
    pub streak_reaches_past_window: bool,
    /// The oldest nightly of the streak (this build for a new failure).
    pub first_failed_build: u64,
    /// Nightlies of the window (this one excluded) where it failed.
    pub failed_in_window: u32,
    /// Previous nightlies that gave a usable answer.
    pub nightlies_compared: u32,
    /// What else to know: nightlies skipped and why, an error that changed.
    #[serde(default)]
    pub notes: Vec<String>,
}

/// Where a new failure began.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Onset {
    pub last_passed_build: u64,
    pub last_passed_commit: String,
    pub first_failed_build: u64,
    pub first_failed_commit: String,
    /// `https://github.com/{repo}/compare/{last passed}...{first failed}`.
    pub compare_url: String,
    /// Commits of the range, closest to the failure first.
    #[serde(default)]
    pub suspects: Vec<Suspect>,
    /// Set when the range could not be read in full (no GitHub access, too many commits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A commit of an onset range and why it ranks where it does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Suspect {
    pub sha: String,
    pub title: String,
    pub author: String,
    /// "touches vllm/x.py, named in the traceback", "touches the test file", …
    pub reason: String,
    /// 4 traceback file, 3 test file, 2 same directory, 1 same CODEOWNERS, 0 none.
    pub closeness: u8,
}

/// A failure of the previous nightly that passes now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FixedFailure {
    /// The pytest node id, or the job name for a job-level failure.
    pub test_name: String,
    pub job_name: String,
    /// The previous nightly, where it last failed.
    pub failed_in_build: u64,
    #[serde(default)]
    pub error_message: Option<String>,
    /// "the job passed" or "the test passed in its job".
    pub evidence: String,
    /// The issue that tracks it, to close.
    #[serde(default)]
    pub issue: Option<IssueMatch>,
}

/// A `ci-failure` issue as the compared nightlies see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TrackedIssue {
    pub number: u64,
    pub url: String,
    pub title: String,
    pub state: IssueState,
    pub status: TrackedStatus,
    /// What to do: nothing, close it, reopen it.
    pub suggestion: String,
    /// The tests (or jobs) it was matched to.
    pub tests: Vec<String>,
    /// The newest nightly where it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failed_build: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TrackedStatus {
    /// Open, and failing in this nightly.
    StillFailing,
    /// Open, and its tests ran and passed in the last 3 nightlies: suggest closing (vLLM's own
    /// CI control resolves a failure after 3 clean runs).
    Silent,
    /// Closed, and failing again: suggest reopening.
    FailingAgain,
}

/// Which previous nightlies a nightly scan was compared with.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct NightlyComparison {
    /// Previous scheduled nightlies, newest first.
    pub compared_builds: Vec<u64>,
    /// Counts over this scan's failures.
    pub new: usize,
    pub continuing: usize,
    pub intermittent: usize,
    pub unknown: usize,
    pub fixed: usize,
}

/// What happened to a failed job during the scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// Its log was read and its failures are in `failures`.
    Analyzed,
    /// Its log was read only in part (a tail) and may miss earlier failures; see `warnings`.
    PartlyAnalyzed,
    /// Not read: the `max_jobs` budget was spent on higher-priority jobs.
    OverBudget,
    /// The job has no log (never ran, or Buildkite returned 404/416).
    NoLog,
    /// The log could not be fetched; `detail` says why.
    FetchError,
}

impl JobStatus {
    /// How the report names the status.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Analyzed => "analysed",
            Self::PartlyAnalyzed => "log read in part",
            Self::OverBudget => "not read (over budget)",
            Self::NoLog => "no log",
            Self::FetchError => "log fetch failed",
        }
    }
}

/// A failed job of the build (latest attempt, or a failed attempt whose retry passed).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct FailedJob {
    pub job_id: String,
    pub job_name: String,
    pub job_url: String,
    /// `failed` or `timed_out`.
    pub state: String,
    pub soft_failed: bool,
    #[serde(default)]
    pub exit_status: Option<i64>,
    /// A later attempt of this job passed: a flake signal, not a standing failure.
    #[serde(default)]
    pub retry_passed: bool,
    pub status: JobStatus,
    /// Failures found in its log.
    pub failure_count: usize,
    #[serde(default)]
    pub detail: Option<String>,
}

/// How the scan went: requests, bytes and time.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct ScanStats {
    /// Buildkite requests.
    pub api_requests: u64,
    #[serde(default)]
    pub github_requests: u64,
    pub log_bytes_fetched: u64,
    pub elapsed_ms: u64,
    /// Buildkite requests of the compared pipeline's nightly (included in `api_requests`).
    #[serde(default)]
    pub compared_pipeline_requests: u64,
}

/// The result of scanning one build.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ScanResult {
    pub build_info: BuildInfo,
    /// Jobs of the build (latest attempts of script jobs).
    pub total_jobs: usize,
    /// Failed jobs (latest attempts, hard and soft).
    pub failed_jobs: usize,
    #[serde(default)]
    pub hard_failed_jobs: usize,
    #[serde(default)]
    pub soft_failed_jobs: usize,
    /// Unique failures: all of them, unless `page` says the result holds one page of them.
    pub failures: Vec<FailureClassification>,
    /// Unique failures of the build, whatever the page holds.
    #[serde(default)]
    pub total_failures: usize,
    /// Which failures this result holds: all, unless `max_failures` or `failure_offset` asked
    /// for a page, or their identities alone were over the size cap (`next_offset` is then
    /// the `failure_offset` of the next page).
    #[serde(default)]
    pub page: FailurePage,
    /// Detail left out to keep the result under the size cap, and how to get each back.
    /// Failures are never left out for size: they are paged.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub detail_shed: Vec<String>,
    /// Root causes, the strongest first: failures grouped by signature.
    #[serde(default)]
    pub causes: Vec<Cause>,
    /// Every failed job and what the scan did with it.
    #[serde(default)]
    pub jobs: Vec<FailedJob>,
    /// Why this build was chosen (nightly selection).
    #[serde(default)]
    pub selection: Option<String>,
    /// Partial results: budgets hit, logs missing, fetch errors.
    #[serde(default)]
    pub warnings: Vec<String>,
    /// False when this answer may miss failures: the build is still running, a failed job's
    /// log was not read or read only in part, or the failures are paged. `incomplete` says
    /// which; a quiet complete answer means a quiet build.
    #[serde(default = "complete_by_default")]
    pub complete: bool,
    /// Why the answer is incomplete, one short line each (the details are in `warnings`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub incomplete: Vec<String>,
    /// UTC, RFC 3339.
    pub scan_timestamp: String,
    #[serde(default)]
    pub stats: ScanStats,
    /// Failures of the previous nightly that pass now (nightly scans only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fixed: Vec<FixedFailure>,
    /// The `ci-failure` issues matched in the compared nightlies: still failing, silent for 3
    /// nightlies (close it?), or closed and failing again (reopen it?).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tracked_issues: Vec<TrackedIssue>,
    /// The previous nightlies this nightly was compared with, and the counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comparison: Option<NightlyComparison>,
    /// Present when `detail_level=full`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily_findings_text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub standup_summary_text: Option<String>,
}

/// A page of a scan's failures.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FailurePage {
    /// Failures before this page.
    pub offset: usize,
    /// Failures in this page.
    pub returned: usize,
    /// Failures in all.
    pub total: usize,
    /// The `failure_offset` of the next page; null on the last.
    #[serde(default)]
    pub next_offset: Option<usize>,
}

fn complete_by_default() -> bool {
    true
}

impl ScanResult {
    /// Records why the answer is incomplete.
    pub fn mark_incomplete(&mut self, why: String) {
        self.complete = false;
        self.incomplete.push(why);
    }
}

/// How much of each failure a result carries; the token budget knob.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DetailLevel {
    /// Category, key, job, test name, confidence and first owner only; messages, traces,
    /// reasons, evidence, fingerprints and blame are left out.
    Minimal,
    /// Error messages and reasons; snippets cut to 200 characters, no stack traces, no draft
    /// issue texts (ciwatch_render with format "draft_issue" gives one per cause).
    #[default]
    Summary,
    /// Everything, plus `daily_findings_text` and `standup_summary_text`.
    Full,
}

/// Characters of `log_snippet` kept at `detail_level=summary`.
const SUMMARY_SNIPPET_CHARS: usize = 200;

impl FailureClassification {
    /// This failure as shown at `level`.
    pub fn at_detail(mut self, level: DetailLevel) -> Self {
        /// Suspect commits kept at `summary`; `full` keeps all.
        const SUMMARY_SUSPECTS: usize = 5;
        match level {
            DetailLevel::Minimal => {
                let tf = &mut self.test_failure;
                tf.error_message = None;
                tf.stack_trace = None;
                tf.log_snippet = None;
                self.github_issue = None;
                self.issue = None;
                self.reason = None;
                self.evidence = None;
                self.fingerprint = None;
                self.owners = Vec::new();
                self.owner_path = None;
                self.blame = None;
                if let Some(onset) = &mut self.onset {
                    onset.suspects.truncate(1);
                }
            }
            DetailLevel::Summary => {
                let tf = &mut self.test_failure;
                tf.stack_trace = None;
                tf.log_snippet = tf
                    .log_snippet
                    .take()
                    .map(|s| crate::text::bounded_text(&s, SUMMARY_SNIPPET_CHARS + 3));
                if let Some(onset) = &mut self.onset {
                    onset.suspects.truncate(SUMMARY_SUSPECTS);
                }
            }
            DetailLevel::Full => {}
        }
        self
    }
}

// Test history (ciwatch_test_history).

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

// Recurring failures across main-branch builds (ciwatch_analyze_main_branch).

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
    /// Most recurrent first.
    pub failures: Vec<RecurringFailure>,
    pub scan_timestamp: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis_text: Option<String>,
    pub warnings: Vec<String>,
}

// Types the layers below share (defined here so that `model` imports no layer above it).

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum IssueState {
    Open,
    Closed,
}

/// The issue a failure matched and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct IssueMatch {
    pub number: u64,
    pub url: String,
    pub title: String,
    pub state: IssueState,
    pub score: f64,
    /// What matched: "test id in title", "job name in title", …
    pub matched_on: String,
    /// Whether it counts as tracking: labelled `ci-failure` or opened by the project's members
    /// or collaborators. An issue by anyone else is only linked ("mentioned in").
    #[serde(default = "counts_as_tracking")]
    pub tracking: bool,
}

fn counts_as_tracking() -> bool {
    true
}

/// What kind of infrastructure trouble a failure shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum InfraKind {
    /// The agent disappeared (`exit_status` -1, "agent lost").
    AgentLost,
    /// Buildkite stopped the job at its `timeout_in_minutes`.
    JobTimeout,
    /// A test hung: faulthandler or pytest-timeout fired.
    Hang,
    /// The job was cancelled.
    Cancelled,
    /// Network, Hugging Face Hub or registry errors.
    NetworkOrHub,
    Disk,
    /// The host ran out of memory (not CUDA memory inside a test).
    HostOom,
    /// Docker image or pip install failed before tests ran.
    ImageBuild,
    /// The GPU faulted (Xid, ECC, illegal address, device unavailable).
    GpuFault,
}

impl InfraKind {
    pub fn describe(self) -> &'static str {
        match self {
            Self::AgentLost => "agent lost",
            Self::JobTimeout => "job timed out",
            Self::Hang => "test hang",
            Self::Cancelled => "job cancelled",
            Self::NetworkOrHub => "network or Hugging Face Hub error",
            Self::Disk => "disk full",
            Self::HostOom => "host out of memory",
            Self::ImageBuild => "image or dependency build failed",
            Self::GpuFault => "GPU fault",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OwnerSource {
    Codeowners,
    Blame,
}

/// The most recent commit that touched the blamed lines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BlameCommit {
    pub sha: String,
    pub short_sha: String,
    pub author: String,
    pub author_email: String,
    /// RFC 3339, UTC.
    pub date: String,
    pub summary: String,
    /// The blamed lines, 1-based inclusive.
    pub lines: (u32, u32),
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

// Results of the job drill-down and the Test Engine tools.

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
