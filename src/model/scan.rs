//! What `ciwatch_scan_build` and `ciwatch_scan_nightly` return: the build, its failed jobs and
//! what the scan did with each, the failures (paged, never dropped), the causes and the stats.

use super::cause::Cause;
use super::failure::FailureClassification;
use super::nightly::{FixedFailure, NightlyComparison, TrackedIssue};
use super::state::{BuildState, JobState};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

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
    /// Left out of tool results (`links.job` builds it from `job_id`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub job_url: String,
    /// `failed`, `timed_out` or `canceled` (after it started).
    pub state: JobState,
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

/// How much of the build an answer covers: read it first. Counts are of the whole build,
/// whatever page of failures the answer holds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Completeness {
    /// Every failure of the build is in this answer (the same as `complete`); when false,
    /// `incomplete` says why.
    pub complete: bool,
    /// The build's jobs (latest attempts of script jobs) by Buildkite state.
    pub jobs_by_state: std::collections::BTreeMap<String, usize>,
    /// Failed jobs whose log was read back to their first command: their failures are whole.
    pub failed_jobs_read: usize,
    /// Failed jobs whose log was read only in part, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub read_in_part: Vec<JobNote>,
    /// Failed jobs whose log was not read, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_read: Vec<JobNote>,
}

/// A job the answer does not cover whole.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct JobNote {
    pub job_id: String,
    pub job_name: String,
    pub status: JobStatus,
    pub reason: String,
}

impl Completeness {
    /// From the build's latest attempts and what the scan did with its failed jobs.
    pub fn of<'a>(states: impl Iterator<Item = &'a str>, jobs: &[FailedJob]) -> Self {
        let mut jobs_by_state = std::collections::BTreeMap::new();
        for state in states {
            *jobs_by_state.entry(state.to_string()).or_insert(0) += 1;
        }
        let note = |job: &FailedJob| JobNote {
            job_id: job.job_id.clone(),
            job_name: job.job_name.clone(),
            status: job.status,
            reason: job
                .detail
                .clone()
                .unwrap_or_else(|| job.status.describe().into()),
        };
        Self {
            complete: true,
            jobs_by_state,
            failed_jobs_read: jobs
                .iter()
                .filter(|j| j.status == JobStatus::Analyzed)
                .count(),
            read_in_part: jobs
                .iter()
                .filter(|j| j.status == JobStatus::PartlyAnalyzed)
                .map(note)
                .collect(),
            not_read: jobs
                .iter()
                .filter(|j| !matches!(j.status, JobStatus::Analyzed | JobStatus::PartlyAnalyzed))
                .map(note)
                .collect(),
        }
    }
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
    /// This call joined the same scan another caller with the same token had under way: the
    /// requests above are that scan's, made once for both.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub joined: bool,
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
    /// Whether this answer is whole, the build's jobs by state, and the failed jobs it read
    /// only in part or not at all, with why. Read it first.
    #[serde(default)]
    pub completeness: Completeness,
    /// Links every id here can be put in: `{job_id}` and `{number}` are replaced.
    #[serde(default)]
    pub links: Links,
    /// Unique failures: all of them, unless `page` says the result holds one page of them.
    pub failures: Vec<FailureClassification>,
    /// Unique failures of the build, whatever the page holds.
    #[serde(default)]
    pub total_failures: usize,
    /// Counts over every failure of the build, whatever `page` holds.
    #[serde(default)]
    pub counts: BuildCounts,
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
    /// Every failed job and what the scan did with it (in tool results at `full` only; below
    /// it, `completeness` lists the jobs not read whole).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
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
    /// Below `full`: the compared pipeline's nightly that every cause's `elsewhere` refers to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compared_nightly: Option<super::ComparedNightly>,
    /// The previous nightlies this nightly was compared with, and the counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comparison: Option<NightlyComparison>,
    /// Present when `detail_level=full`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily_findings_text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub standup_summary_text: Option<String>,
}

/// URL templates, given once instead of a URL per failure.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Links {
    /// A job of this build: replace `{job_id}`.
    pub job: String,
    /// An issue of the repository matched against: replace `{number}`.
    pub issue: String,
}

impl Links {
    pub fn new(build_url: &str, repo: &str) -> Self {
        Self {
            job: format!("{build_url}#{{job_id}}"),
            issue: format!("https://github.com/{repo}/issues/{{number}}"),
        }
    }
}

/// Counts over every failure of the build, whatever page the result holds: what the standup
/// and cause lines say.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BuildCounts {
    /// Failures of hard-failed jobs and of failed attempts retried into a pass.
    pub hard: usize,
    /// Failures of soft-failed (optional) jobs.
    pub soft: usize,
    /// Failures by category, in report order (categories with none left out).
    pub by_category: Vec<CategoryCount>,
    pub causes: usize,
    /// Jobs with a failure.
    pub jobs: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CategoryCount {
    pub category: super::Category,
    pub failures: usize,
}

impl BuildCounts {
    pub fn of(failures: &[FailureClassification], causes: &[Cause]) -> Self {
        let soft = failures.iter().filter(|f| f.soft_failed).count();
        let by_category = super::Category::REPORT_ORDER
            .into_iter()
            .map(|category| CategoryCount {
                category,
                failures: failures.iter().filter(|f| f.category == category).count(),
            })
            .filter(|c| c.failures > 0)
            .collect();
        let jobs: std::collections::HashSet<&str> = failures
            .iter()
            .map(|f| f.test_failure.job_name.as_str())
            .collect();
        Self {
            hard: failures.len() - soft,
            soft,
            by_category,
            causes: causes.len(),
            jobs: jobs.len(),
        }
    }
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

impl FailurePage {
    /// `returned` failures from `offset`, of `total`.
    pub fn new(offset: usize, returned: usize, total: usize) -> Self {
        let end = offset + returned;
        Self {
            offset,
            returned,
            total,
            next_offset: (end < total).then_some(end),
        }
    }

    /// The page is not all of the failures.
    pub fn is_partial(&self) -> bool {
        self.offset > 0 || self.next_offset.is_some()
    }

    /// What a result says about its page: which failures it holds, and the next page's offset.
    pub fn note(&self) -> String {
        let next = self
            .next_offset
            .map(|n| format!("; ask again with failure_offset={n} for the next page"))
            .unwrap_or_default();
        format!(
            "{} failures {} to {} of {}{next}",
            Self::MARK,
            self.offset + usize::from(self.returned > 0),
            self.offset + self.returned,
            self.total
        )
    }

    /// How a page note starts (to replace an earlier one).
    pub const MARK: &'static str = "failures are paged: this result holds";
}

fn complete_by_default() -> bool {
    true
}

impl BuildInfo {
    pub fn build_state(&self) -> BuildState {
        BuildState::parse(&self.state)
    }
}

impl ScanResult {
    /// Without the URLs `links` builds from ids (the answer a tool returns).
    pub fn without_derivable_urls(&mut self) {
        // Without a template nothing could build them again.
        if self.links.job.is_empty() {
            return;
        }
        for failure in &mut self.failures {
            failure.without_derivable_urls();
        }
        for job in &mut self.jobs {
            job.job_url.clear();
        }
        for issue in &mut self.tracked_issues {
            issue.url.clear();
        }
    }

    /// Counts of the whole build (an older result without them: of the failures it holds).
    pub fn build_counts(&self) -> BuildCounts {
        if self.counts == BuildCounts::default() {
            BuildCounts::of(&self.failures, &self.causes)
        } else {
            self.counts.clone()
        }
    }

    /// The URLs [`Self::without_derivable_urls`] left out, built again (a result handed back
    /// to be rendered), and each cause's count where an older result lacks it.
    pub fn restore_derived(&mut self) {
        for cause in &mut self.causes {
            if cause.failure_count == 0 {
                cause.failure_count = self.failures.iter().filter(|f| cause.holds(f)).count();
            }
        }
        if self.links.job.is_empty() {
            return;
        }
        for failure in &mut self.failures {
            failure.with_urls_from(&self.links);
        }
        for job in &mut self.jobs {
            if job.job_url.is_empty() {
                job.job_url = self.links.job.replace("{job_id}", &job.job_id);
            }
        }
        for issue in &mut self.tracked_issues {
            if issue.url.is_empty() {
                issue.url = self
                    .links
                    .issue
                    .replace("{number}", &issue.number.to_string());
            }
        }
    }

    /// Records why the answer is incomplete.
    pub fn mark_incomplete(&mut self, why: String) {
        self.complete = false;
        self.completeness.complete = false;
        self.incomplete.push(why);
    }
}
