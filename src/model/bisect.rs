//! What `ciwatch_bisect_plan` returns: a new failure's range of commits, what main's own builds
//! already ran there, the range narrowed from that evidence, and the runs that would narrow it
//! further (suggested, never started).

use super::Suspect;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What one run of the failing job (or, for a commit, all of its runs) says about the failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunVerdict {
    /// It failed with the failure's signature: the culprit is at or before this commit.
    FailedSame,
    /// It passed (or, for a test, the test passed in its job): the culprit is after it.
    Passed,
    /// It failed and its log was not read (the call's log budget): not evidence yet.
    FailedUnread,
    /// It failed with another signature, was killed by the host, or timed out: no evidence
    /// either way.
    FailedOther,
    /// Its block step was never unblocked.
    Blocked,
    /// In the build, but it never ran (skipped, broken, expired) or has not finished.
    NotRun,
    /// The build has no such job.
    NotInBuild,
    /// No build of the pipeline ran at this commit (commits only).
    NoBuild,
}

/// How far the evidence took the range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BisectStatus {
    /// A passing run and a run failing with the signature sit at adjacent commits: the later
    /// one is the culprit.
    Confirmed,
    /// The culprit is one of `narrowed.commits` commits.
    Narrowed,
    /// The evidence contradicts itself (the first bad commit's own build passed): the failure
    /// may be flaky; nothing is narrowed.
    Inconclusive,
}

/// A block step that holds the job back in one build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BlockStep {
    /// `block-<job-name-kebab>`.
    pub step_key: String,
    /// The API URL that unblocks it (`PUT`, with a token that may unblock).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unblock_url: Option<String>,
}

/// One build's run of the failing job at a commit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BisectRun {
    pub build_number: u64,
    pub build_url: String,
    pub verdict: RunVerdict,
    /// The error line it failed with, or why it is no evidence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block: Option<BlockStep>,
}

/// One commit of the range, in merge order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BisectCommit {
    pub sha: String,
    pub title: String,
    pub author: String,
    /// What its runs say together: a failure with the signature outweighs a pass, a pass any
    /// run that is no evidence.
    pub verdict: RunVerdict,
    /// Among the commits the culprit may still be.
    pub in_narrowed_range: bool,
    /// For a commit of the narrowed range where no build ran the job: `VLLM_CI_ONLY_STEP_KEYS`
    /// for a `/ci retry` there (see [`NextRun::retry_step_keys`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retry_step_keys: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runs: Vec<BisectRun>,
}

/// The commits the culprit may be: after `after_commit`, through `through_commit`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct NarrowedRange {
    /// The last commit whose run passed (the last good nightly's commit when none did).
    pub after_commit: String,
    /// The first commit whose run failed with the signature (the first bad nightly's commit
    /// when none did before it).
    pub through_commit: String,
    /// How many commits the culprit may be.
    pub commits: usize,
}

/// What to do to a run next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NextAction {
    /// Unblock the job's block step on an existing build (never create a new build).
    Unblock,
    /// No build ran the job at that commit: `/ci retry` with `retry_step_keys`.
    Retry,
}

/// A run that would halve the narrowed range: a suggestion, the server starts nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct NextRun {
    pub commit: String,
    pub action: NextAction,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_number: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_url: Option<String>,
    /// For `unblock`: the block step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block: Option<BlockStep>,
    /// For `retry`: `VLLM_CI_ONLY_STEP_KEYS` for `/ci retry` at the commit: the job's key, and
    /// `amd-<key>` when the cause also fails on AMD; never `bootstrap` or an image build.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retry_step_keys: Vec<String>,
    pub why: String,
}

/// What the plan cost.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BisectStats {
    pub buildkite_requests: u64,
    pub github_requests: u64,
    /// Failed-job logs fetched (stored outcomes are free).
    pub logs_read: usize,
    /// Builds of the window the listing returned.
    pub builds_listed: usize,
    pub elapsed_ms: u64,
}

/// A bisect plan for one failure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BisectPlan {
    /// The pytest node id, or the job name for a job-level failure.
    pub test: String,
    pub job_name: String,
    /// The signature a run must fail with to count against its commit; `None` when any
    /// failure of the test does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    /// `org/pipeline` whose main-branch builds were read.
    pub pipeline: String,
    pub last_good_commit: String,
    pub first_bad_commit: String,
    pub compare_url: String,
    pub status: BisectStatus,
    /// The culprit, when `confirmed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub culprit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub narrowed: Option<NarrowedRange>,
    /// Runs that would confirm the culprit at most (a binary search of the narrowed range).
    pub runs_to_confirm: u32,
    /// The runs to start next, at the commit that halves the narrowed range.
    #[serde(default)]
    pub next: Vec<NextRun>,
    /// Every commit of the range, oldest first, with what main ran there.
    pub commits: Vec<BisectCommit>,
    /// The onset's suspects inside the narrowed range, closest first, with their reasons.
    #[serde(default)]
    pub suspects: Vec<Suspect>,
    /// One paragraph: status, range, next step.
    pub summary: String,
    /// Evidence that counted for nothing, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// What the call left out or could not read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    pub stats: BisectStats,
}
