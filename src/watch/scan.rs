//! Scanning one build: fetch it, plan which job logs to read, read them through the job-outcome
//! reader within the budgets, extract and classify failures, and assemble a [`ScanResult`] in which every failed
//! job appears — analysed, or listed with the reason it was not.

use super::call::{Enrichment, ScanCall, ScanOptions, Snapshot};
use super::compare::{compare_with_previous_nightlies, CurrentScan};
use super::failures::classify_job;
use super::issues::{advise_issues, apply_issue_match};
use super::select::{plan_jobs, JobPlan};
use super::{Budgets, Progress, WatchError};
use crate::buildkite::{Build, BuildKey, Job};
use crate::github::{Candidates, GitHubClient, IssueCandidate};
use crate::model::{
    BuildInfo, DetailLevel, FailedJob, FailureClassification, JobStatus, ScanResult, ScanStats,
};
use crate::owners::service::{Prepared, BLAME_CONFIDENCE, CODEOWNERS_CONFIDENCE};
use crate::owners::Owners;
use crate::pipeline::test_area;
use crate::reader::{JobRead, JobReader};
use std::collections::HashSet;

/// Scans one build: the build from the store or one request, then [`ScanCall::scan_fetched`].
pub async fn scan_build(
    reader: &JobReader<'_>,
    enrichment: Enrichment<'_>,
    key: &BuildKey,
    options: &ScanOptions,
    progress: &dyn Progress,
) -> Result<ScanResult, WatchError> {
    let scan = async {
        let before = Snapshot::take();
        let build = reader.build(key).await?;
        let call = ScanCall {
            reader,
            enrichment,
            key,
            options,
            progress,
        };
        call.scan_fetched(&build, before).await
    };
    crate::call::answered(scan, |r| &mut r.warnings).await
}

/// What a scan gathers at once: which jobs to read, their reads (in the plan's order), the
/// repository's CI-failure issues and its owners.
struct Gathered<'b> {
    plan: JobPlan<'b>,
    reads: Vec<JobRead>,
    issues: Option<Candidates>,
    owners: Option<Prepared>,
    left_for_later: LeftForLater,
}

impl Gathered<'_> {
    fn candidates(&self) -> &[IssueCandidate] {
        self.issues.as_ref().map_or(&[], |c| c.issues.as_slice())
    }
}

impl ScanCall<'_> {
    /// GitHub, when this scan searches it.
    fn github(&self) -> Option<&GitHubClient> {
        self.enrichment
            .github
            .filter(|_| self.options.search_github)
    }

    /// Scans a build already at hand (from a listing with jobs, or [`scan_build`]). Stored job
    /// outcomes are used without a request and do not count against `max_jobs`; the GitHub
    /// issues and CODEOWNERS are fetched while the logs are read.
    pub(super) async fn scan_fetched(
        &self,
        build: &Build,
        before: Snapshot,
    ) -> Result<ScanResult, WatchError> {
        let options = self.options;
        let gathered = self.gather(build).await;
        let mut warnings = Vec::new();
        let (jobs, mut failures) = list_jobs(build, &gathered, &options.budgets, &mut warnings);
        let unfinished = unfinished_jobs(build);
        if !build.is_finished() {
            warnings.insert(0, running_warning(build, &unfinished));
        }
        let mut seen = HashSet::new();
        failures.retain(|f: &FailureClassification| seen.insert(f.failure_key.clone()));
        let owners = self.enrichment.owners;
        enrich(&mut failures, &gathered, owners, build, &mut warnings).await;
        let mut result = self.new_result(build, &gathered.plan, jobs);
        result.total_failures = failures.len();
        result.failures = failures;
        result.warnings = warnings;
        for why in incompleteness(build, &unfinished, &result.jobs) {
            result.mark_incomplete(why);
        }
        self.compare_nightly(build, &gathered, &mut result).await;
        result.causes =
            crate::triage::cause::group_causes(&mut result.failures, &result.build_info.pipeline);
        let compared = match &options.compare_pipeline {
            Some(other) => {
                super::elsewhere::compare_elsewhere(self, build, other, &mut result).await;
                result.stats.compared_pipeline_requests
            }
            None => 0,
        };
        advise_issues(&mut result, gathered.candidates());
        result.stats = ScanStats {
            compared_pipeline_requests: compared,
            ..before.stats()
        };
        finish(&mut result, options);
        Ok(result)
    }

    /// A nightly's comparison with the previous nightlies (when asked for).
    async fn compare_nightly(
        &self,
        build: &Build,
        gathered: &Gathered<'_>,
        result: &mut ScanResult,
    ) {
        let (key, options) = (self.key, self.options);
        if options.compare_nightlies == 0 || !super::nightly::is_nightly(build) {
            return;
        }
        let current = CurrentScan {
            key,
            build,
            reads: gathered
                .plan
                .ordered
                .iter()
                .zip(&gathered.reads)
                .map(|(p, r)| (p.job.id.as_str(), r))
                .collect(),
            candidates: gathered.candidates(),
            codeowners: gathered.owners.as_ref().and_then(|p| p.codeowners()),
            repo: &options.repo,
            nightlies: options.compare_nightlies,
            budgets: &options.budgets,
        };
        compare_with_previous_nightlies(self.reader, self.github(), current, result).await;
    }

    /// Reads the planned jobs' logs: every stored outcome, free, and the first `max_jobs` of
    /// the others in reading order, requested. The budget counts what this call fetches, so a
    /// call after an incomplete one goes on where it stopped. The issues and owners are fetched
    /// while the logs are read.
    async fn gather<'b>(&self, build: &'b Build) -> Gathered<'b> {
        let (reader, key, options, progress) = (self.reader, self.key, self.options, self.progress);
        let (github, owners) = (self.github(), self.enrichment.owners);
        let plan = plan_jobs(build);
        let budgets = &options.budgets;
        let limits = budgets.limits();
        let planned_jobs: Vec<&Job> = plan.ordered.iter().map(|p| p.job).collect();
        let mut reads: Vec<Option<JobRead>> = reader.stored_all(&planned_jobs, &limits).await;
        let unstored: Vec<usize> = (0..reads.len()).filter(|&i| reads[i].is_none()).collect();
        let (to_fetch, left) = unstored.split_at(unstored.len().min(budgets.max_jobs));
        let fetch_jobs: Vec<(&BuildKey, &Job)> = to_fetch
            .iter()
            .map(|&i| (key, plan.ordered[i].job))
            .collect();
        let reading = format!(
            "reading {} job logs of build {}",
            fetch_jobs.len(),
            key.number
        );
        progress.report(0, fetch_jobs.len(), &reading);
        let issues = async {
            match github {
                Some(github) => Some(github.ci_failure_candidates(&options.repo).await),
                None => None,
            }
        };
        let owners = async {
            match owners {
                Some(owners) => Some(owners.prepare(&options.repo).await),
                None => None,
            }
        };
        let fetched = reader.jobs(&fetch_jobs, &limits, budgets.concurrency, progress);
        let (fetched, issues, owners) = futures::join!(fetched, issues, owners);
        for (&i, read) in to_fetch.iter().zip(fetched) {
            reads[i] = Some(read);
        }
        let left_for_later = LeftForLater {
            jobs: left.len(),
            max_jobs: budgets.max_jobs,
            resumable: reader.keeps_reads() && build.is_finished(),
        };
        let unread = JobRead {
            status: JobStatus::OverBudget,
            analysis: None,
            detail: Some(left_for_later.job_detail()),
            stored: false,
        };
        Gathered {
            plan,
            reads: reads
                .into_iter()
                .map(|r| r.unwrap_or_else(|| unread.clone()))
                .collect(),
            issues,
            owners,
            left_for_later,
        }
    }
}

/// The failed jobs a call left unread because it had requested its `max_jobs` logs, and how
/// the next call finishes them.
#[derive(Debug, Clone, Copy)]
struct LeftForLater {
    jobs: usize,
    max_jobs: usize,
    /// What this call read is stored, so the next call requests only what is left.
    resumable: bool,
}

impl LeftForLater {
    fn job_detail(&self) -> String {
        if self.resumable {
            format!(
                "not read in this call (it requested its max_jobs of {} logs): call again to read it",
                self.max_jobs
            )
        } else {
            format!(
                "not read (max_jobs of {} logs per call): raise max_jobs to read it",
                self.max_jobs
            )
        }
    }

    /// The warning that says how to finish the build, when jobs were left.
    fn warning(&self) -> Option<String> {
        let n = self.jobs;
        if n == 0 {
            return None;
        }
        Some(if self.resumable {
            let calls = n.div_ceil(self.max_jobs.max(1));
            let plural = if calls == 1 { "" } else { "s" };
            format!(
                "{n} failed jobs were not read: this call requested its max_jobs of {} logs (stored outcomes are free). Call again to go on where it stopped: {calls} more call{plural} at this max_jobs, or one with max_jobs={n}; they are listed in completeness.not_read",
                self.max_jobs
            )
        } else {
            format!(
                "{n} failed jobs were not read (max_jobs of {} logs per call, and nothing read here is kept for the next call); they are listed in completeness.not_read: raise max_jobs to {} to read them",
                self.max_jobs,
                self.max_jobs + n
            )
        })
    }
}

/// Every planned job as the result lists it, and the failures of its log.
fn list_jobs(
    build: &Build,
    gathered: &Gathered<'_>,
    budgets: &Budgets,
    warnings: &mut Vec<String>,
) -> (Vec<FailedJob>, Vec<FailureClassification>) {
    let (plan, left_for_later) = (&gathered.plan, &gathered.left_for_later);
    let mut jobs = Vec::new();
    let mut failures = Vec::new();
    for (planned, read) in plan.ordered.iter().zip(&gathered.reads) {
        let job_failures = classify_job(planned, read);
        if let (JobStatus::PartlyAnalyzed | JobStatus::FetchError, Some(detail)) =
            (read.status, &read.detail)
        {
            warnings.push(format!("{}: {detail}", planned.job.display_name()));
        }
        jobs.push(FailedJob {
            job_id: planned.job.id.clone(),
            job_name: planned.job.display_name().to_string(),
            job_url: job_url(build, planned.job),
            state: planned.job.job_state(),
            soft_failed: planned.job.is_soft_failed(),
            exit_status: planned.job.exit_status,
            retry_passed: planned.passed_retry.is_some(),
            status: read.status,
            failure_count: job_failures.len(),
            detail: read.detail.clone(),
        });
        failures.extend(job_failures);
    }
    // A job is unread either because the call had requested its `max_jobs` logs, or because
    // the jobs before it took the byte ceiling.
    warnings.extend(left_for_later.warning());
    let past_ceiling =
        count_status(&jobs, JobStatus::OverBudget).saturating_sub(left_for_later.jobs);
    if past_ceiling > 0 {
        warnings.push(format!(
            "{past_ceiling} failed jobs were not read: the reads before them took this call's {}-byte ceiling (one for all its phases, re-reads counted); they are listed in completeness.not_read: raise max_scan_bytes to read them",
            budgets.scan_byte_budget
        ));
    }
    (jobs, failures)
}

/// Each failure with the issue it matches and its owners.
async fn enrich(
    failures: &mut [FailureClassification],
    gathered: &Gathered<'_>,
    owners: Option<&Owners>,
    build: &Build,
    warnings: &mut Vec<String>,
) {
    if let Some(candidates) = &gathered.issues {
        warnings.extend(candidates.warnings.iter().cloned());
        for failure in failures.iter_mut() {
            apply_issue_match(failure, &candidates.issues);
        }
    }
    if let (Some(owners), Some(prepared)) = (owners, &gathered.owners) {
        warnings.extend(prepared.warnings.iter().cloned());
        for failure in failures.iter_mut() {
            let command = failure
                .job_id
                .as_deref()
                .and_then(|id| build.jobs().iter().find(|j| j.id == id))
                .and_then(|j| j.command.as_deref());
            apply_owners(failure, owners, prepared, command, warnings).await;
        }
    }
}

impl ScanCall<'_> {
    /// The result's frame: the build, its jobs and what was read of them (the failures and
    /// warnings go in after).
    fn new_result(&self, build: &Build, plan: &JobPlan<'_>, jobs: Vec<FailedJob>) -> ScanResult {
        let states = build
            .latest_attempts()
            .map(|job| job.state.as_deref().unwrap_or("unknown"));
        let completeness = crate::model::Completeness::of(states, &jobs);
        let build_info = build_info(build, &self.key.org, &self.key.pipeline);
        ScanResult {
            links: crate::model::Links::new(&build_info.build_url, &self.options.repo),
            build_info,
            completeness,
            total_jobs: plan.total_jobs,
            failed_jobs: plan.hard_failed + plan.soft_failed,
            hard_failed_jobs: plan.hard_failed,
            soft_failed_jobs: plan.soft_failed,
            total_failures: 0,
            counts: Default::default(),
            page: Default::default(),
            detail_shed: Vec::new(),
            causes: Vec::new(),
            failures: Vec::new(),
            jobs,
            selection: self.options.selection.clone(),
            warnings: Vec::new(),
            complete: true,
            incomplete: Vec::new(),
            scan_timestamp: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            stats: ScanStats::default(),
            fixed: Vec::new(),
            tracked_issues: Vec::new(),
            compared_nightly: None,
            comparison: None,
            daily_findings_text: None,
            standup_summary_text: None,
        }
    }
}

/// The report texts (at `full`), then the result fitted to the size cap.
fn finish(result: &mut ScanResult, options: &ScanOptions) {
    result.counts = crate::model::BuildCounts::of(&result.failures, &result.causes);
    if options.presentation.detail_level == DetailLevel::Full && options.render_reports {
        // The texts cover every unique failure, whatever page the result holds.
        result.daily_findings_text = Some(crate::report::daily_findings(result));
        result.standup_summary_text = Some(crate::report::standup_summary(result));
    }
    options.presentation.page(result);
}

fn count_status(jobs: &[FailedJob], status: JobStatus) -> usize {
    jobs.iter().filter(|j| j.status == status).count()
}

/// Script jobs (latest attempts) that have not finished.
fn unfinished_jobs(build: &Build) -> Vec<&Job> {
    build
        .latest_attempts()
        .filter(|j| !j.is_finished())
        .collect()
}

/// Names shown in a warning before "and N more".
const NAMED_JOBS: usize = 10;

fn running_warning(build: &Build, unfinished: &[&Job]) -> String {
    let mut names: Vec<String> = unfinished
        .iter()
        .take(NAMED_JOBS)
        .map(|j| format!("{} ({})", j.display_name(), j.state()))
        .collect();
    if unfinished.len() > NAMED_JOBS {
        names.push(format!("and {} more", unfinished.len() - NAMED_JOBS));
    }
    let jobs = if names.is_empty() {
        "no job is running yet, more may start".to_string()
    } else {
        format!(
            "{} jobs have not finished: {}",
            unfinished.len(),
            names.join(", ")
        )
    };
    format!(
        "build {} is still running (state {}): {jobs}. Their failures are not in this result, and nothing of this build is stored; scan again once it has finished",
        build.number,
        build.state()
    )
}

/// Why this scan's answer may miss failures, one short line each.
fn incompleteness(build: &Build, unfinished: &[&Job], jobs: &[FailedJob]) -> Vec<String> {
    let mut why = Vec::new();
    if !build.is_finished() {
        why.push(format!(
            "the build is still running ({}, {} jobs unfinished)",
            build.state(),
            unfinished.len()
        ));
    }
    for (status, what) in [
        (
            JobStatus::PartlyAnalyzed,
            "failed jobs whose log was read only in part",
        ),
        (JobStatus::OverBudget, "failed jobs not read (max_jobs)"),
        (
            JobStatus::FetchError,
            "failed jobs whose log could not be fetched",
        ),
        (JobStatus::NoLog, "failed jobs without a log"),
    ] {
        let n = count_status(jobs, status);
        if n > 0 {
            why.push(format!("{n} {what}"));
        }
    }
    why
}

/// Owners of the failing test's file (node id) or of the job's test area (its command), and
/// the last commit that touched the failing test function.
async fn apply_owners(
    failure: &mut FailureClassification,
    owners: &Owners,
    prepared: &Prepared,
    job_command: Option<&str>,
    warnings: &mut Vec<String>,
) {
    let test_name = failure.test_failure.test_name.clone();
    let (file, node_id) = match test_name.split_once("::") {
        Some((file, _)) => (file.to_string(), Some(test_name.as_str())),
        None => match job_command.and_then(test_area) {
            Some(area) => (area, None),
            None => return,
        },
    };
    let Some(lookup) = owners.lookup(prepared, &file, node_id, warnings).await else {
        return;
    };
    failure.owner.path = Some(lookup.path);
    failure.owner.source = lookup.source;
    match (lookup.owners.first(), &lookup.blame) {
        (Some(first), _) => {
            failure.owner.first = Some(first.clone());
            failure.owner.confidence = Some(CODEOWNERS_CONFIDENCE);
        }
        (None, Some(blame)) => {
            failure.owner.first = Some(blame.author_email.clone());
            failure.owner.confidence = Some(BLAME_CONFIDENCE);
        }
        (None, None) => {}
    }
    failure.owner.all = lookup.owners;
    failure.owner.blame = lookup.blame;
}

fn job_url(build: &Build, job: &Job) -> String {
    job.web_url
        .clone()
        .unwrap_or_else(|| format!("{}#{}", build.web_url.as_deref().unwrap_or(""), job.id))
}

fn build_info(build: &Build, org: &str, pipeline: &str) -> BuildInfo {
    BuildInfo {
        build_number: build.number.to_string(),
        build_url: build.web_url.clone().unwrap_or_else(|| {
            format!(
                "https://buildkite.com/{org}/{pipeline}/builds/{}",
                build.number
            )
        }),
        pipeline: format!("{org}/{pipeline}"),
        branch: build.branch.clone().unwrap_or_default(),
        commit: build.commit.clone().unwrap_or_default(),
        state: build.state().to_string(),
        message: build.message.clone(),
        source: build.source.clone(),
        created_at: build.created_at.clone(),
        finished_at: build.finished_at.clone(),
    }
}
