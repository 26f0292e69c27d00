//! Scanning one build: fetch it, plan which job logs to read, read them through the job-outcome
//! reader within the budgets, extract and classify failures, and assemble a [`ScanResult`] in which every failed
//! job appears — analysed, or listed with the reason it was not.

use super::compare::{compare_with_previous_nightlies, CurrentScan};
use super::outcomes::{BuildKey, JobRead, JobReader};
use super::select::{plan_jobs, PlannedJob};
use super::{Budgets, Progress, WatchError};
use crate::buildkite::{Build, Job};
use crate::github::{best_match, GitHubClient, IssueCandidate, IssueState};
use crate::logs;
use crate::model::{
    BuildInfo, DetailLevel, FailedJob, FailureClassification, IssueLink, JobStatus, Ownership,
    ScanResult, ScanStats, Since, TestFailure,
};
use crate::owners::service::{Prepared, BLAME_CONFIDENCE, CODEOWNERS_CONFIDENCE};
use crate::owners::Owners;
use crate::pipeline::test_area;
use crate::triage::{self, FailureText, JobSignals};
use std::collections::HashSet;
use std::sync::atomic::AtomicU64;
use std::time::Instant;

/// Characters of `log_snippet`, as in the original.
const SNIPPET_CHARS: usize = 500;

#[derive(Debug, Clone)]
pub struct ScanOptions {
    pub detail_level: DetailLevel,
    /// Failures from this one on are in the result (paging).
    pub failure_offset: usize,
    /// Most failures in the result (a page); `usize::MAX` for all.
    pub max_failures: usize,
    pub budgets: Budgets,
    /// Why this build was chosen, when the caller chose it (nightly selection).
    pub selection: Option<String>,
    /// GitHub repository (`owner/name`) of the code under test: its CI-failure issues are
    /// matched and its CODEOWNERS read.
    pub repo: String,
    /// Match failures to the repository's CI-failure issues.
    pub search_github: bool,
    /// Previous scheduled nightlies a nightly build is compared with (0: no comparison; other
    /// builds are never compared).
    pub compare_nightlies: usize,
    /// The second pipeline whose matching nightly each cause is looked up in (the AMD one).
    pub compare_pipeline: Option<super::elsewhere::ComparedPipeline>,
}

/// The services that add to a scan beyond Buildkite; each is optional.
#[derive(Clone, Copy, Default)]
pub struct Enrichment<'a> {
    pub github: Option<&'a GitHubClient>,
    pub owners: Option<&'a Owners>,
}

/// Scans one build: the build from the store or one request, then [`scan_fetched`].
pub async fn scan_build(
    reader: &JobReader<'_>,
    enrichment: Enrichment<'_>,
    key: &BuildKey,
    options: &ScanOptions,
    progress: &dyn Progress,
) -> Result<ScanResult, WatchError> {
    crate::http::within_call(async {
        let before = Snapshot::take();
        let build = reader.build(key).await?;
        scan_fetched(reader, enrichment, key, &build, options, progress, before).await
    })
    .await
}

/// This call's request and byte counts at the start of a scan, so its `stats` count only its
/// own (a main-branch analysis runs several scans in one call).
#[derive(Clone, Copy)]
pub(super) struct Snapshot {
    started: Instant,
    totals: crate::http::CallTotals,
}

impl Snapshot {
    pub(super) fn take() -> Self {
        Self {
            started: Instant::now(),
            totals: crate::http::call_totals(),
        }
    }

    /// What the call sent since the snapshot.
    pub(super) fn stats(&self) -> ScanStats {
        let now = crate::http::call_totals();
        ScanStats {
            api_requests: now.buildkite_requests - self.totals.buildkite_requests,
            github_requests: now.github_requests - self.totals.github_requests,
            log_bytes_fetched: now.log_bytes - self.totals.log_bytes,
            elapsed_ms: self.started.elapsed().as_millis() as u64,
            compared_pipeline_requests: 0,
        }
    }
}

/// Scans a build already at hand (from a listing with jobs, or [`scan_build`]). Stored job
/// outcomes are used without a request, within the `max_jobs` budget and beyond it; the GitHub
/// issues and CODEOWNERS are fetched while the logs are read.
pub(super) async fn scan_fetched(
    reader: &JobReader<'_>,
    enrichment: Enrichment<'_>,
    key: &BuildKey,
    build: &Build,
    options: &ScanOptions,
    progress: &dyn Progress,
    before: Snapshot,
) -> Result<ScanResult, WatchError> {
    let plan = plan_jobs(build);
    let budgets = &options.budgets;
    let byte_budget = AtomicU64::new(budgets.scan_byte_budget);
    let limits = budgets.limits(&byte_budget);

    // The first `max_jobs` jobs in reading order are read, from the store when their outcome
    // is there; a stored outcome beyond the budget is free and used too, so a second look at a
    // build gives the same answer without a request.
    let planned_jobs: Vec<&Job> = plan.ordered.iter().map(|p| p.job).collect();
    let mut reads: Vec<Option<JobRead>> = reader.stored_all(&planned_jobs, &limits).await;
    let to_fetch: Vec<usize> = (0..plan.ordered.len().min(budgets.max_jobs))
        .filter(|&i| reads[i].is_none())
        .collect();
    let fetch_jobs: Vec<(&BuildKey, &Job)> = to_fetch
        .iter()
        .map(|&i| (key, plan.ordered[i].job))
        .collect();
    progress.report(
        0,
        fetch_jobs.len(),
        &format!(
            "reading {} job logs of build {}",
            fetch_jobs.len(),
            key.number
        ),
    );

    let github = enrichment.github.filter(|_| options.search_github);
    let issues = async {
        match github {
            Some(github) => Some(github.ci_failure_candidates(&options.repo).await),
            None => None,
        }
    };
    let owners_prepared = async {
        match enrichment.owners {
            Some(owners) => Some(owners.prepare(&options.repo).await),
            None => None,
        }
    };
    let fetched = reader.jobs(&fetch_jobs, &limits, budgets.concurrency, progress);
    let (fetched, issues, owners_prepared) = futures::join!(fetched, issues, owners_prepared);
    for (i, read) in to_fetch.into_iter().zip(fetched) {
        reads[i] = Some(read);
    }
    let reads: Vec<JobRead> = reads
        .into_iter()
        .map(|read| {
            read.unwrap_or_else(|| JobRead {
                status: JobStatus::OverBudget,
                analysis: None,
                detail: Some(format!(
                    "over the budget of {} job logs per build (raise max_jobs)",
                    budgets.max_jobs
                )),
                stored: false,
            })
        })
        .collect();

    let mut warnings = Vec::new();
    let mut jobs = Vec::new();
    let mut failures = Vec::new();
    for (planned, read) in plan.ordered.iter().zip(&reads) {
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
    let over_budget = count_status(&jobs, JobStatus::OverBudget);
    if over_budget > 0 {
        warnings.push(format!(
            "{over_budget} failed jobs were not read (budget of {} logs per build); they are listed in jobs: raise max_jobs to read them",
            budgets.max_jobs
        ));
    }
    let unfinished = unfinished_jobs(build);
    if !build.is_finished() {
        warnings.insert(0, running_warning(build, &unfinished));
    }

    let mut seen = HashSet::new();
    failures.retain(|f: &FailureClassification| seen.insert(f.failure_key.clone()));

    if let Some(candidates) = &issues {
        warnings.extend(candidates.warnings.iter().cloned());
        for failure in &mut failures {
            apply_issue_match(failure, &candidates.issues);
        }
    }
    if let (Some(owners), Some(prepared)) = (enrichment.owners, &owners_prepared) {
        warnings.extend(prepared.warnings.iter().cloned());
        for failure in &mut failures {
            let command = failure
                .job_id
                .as_deref()
                .and_then(|id| build.jobs().iter().find(|j| j.id == id))
                .and_then(|j| j.command.as_deref());
            apply_owners(failure, owners, prepared, command, &mut warnings).await;
        }
    }

    let mut result = ScanResult {
        build_info: build_info(build, &key.org, &key.pipeline),
        total_jobs: plan.total_jobs,
        failed_jobs: plan.hard_failed + plan.soft_failed,
        hard_failed_jobs: plan.hard_failed,
        soft_failed_jobs: plan.soft_failed,
        total_failures: failures.len(),
        page: Default::default(),
        detail_shed: Vec::new(),
        causes: Vec::new(),
        failures,
        jobs,
        selection: options.selection.clone(),
        warnings,
        complete: true,
        incomplete: Vec::new(),
        scan_timestamp: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        stats: ScanStats::default(),
        fixed: Vec::new(),
        tracked_issues: Vec::new(),
        comparison: None,
        daily_findings_text: None,
        standup_summary_text: None,
    };
    for why in incompleteness(build, &unfinished, &result.jobs) {
        result.mark_incomplete(why);
    }
    if options.compare_nightlies > 0 && super::nightly::is_nightly(build) {
        let current = CurrentScan {
            key,
            build,
            reads: plan
                .ordered
                .iter()
                .zip(&reads)
                .map(|(p, r)| (p.job.id.as_str(), r))
                .collect(),
            candidates: issues.as_ref().map_or(&[], |c| c.issues.as_slice()),
            codeowners: owners_prepared.as_ref().and_then(|p| p.codeowners()),
            repo: &options.repo,
            nightlies: options.compare_nightlies,
            budgets,
        };
        compare_with_previous_nightlies(reader, github, current, &mut result).await;
    }
    result.causes =
        crate::triage::cause::group_causes(&mut result.failures, &result.build_info.pipeline);
    let candidates = issues.as_ref().map_or(&[][..], |c| c.issues.as_slice());
    let compared = match &options.compare_pipeline {
        Some(other) => {
            super::elsewhere::compare_elsewhere(reader, key, build, other, budgets, &mut result)
                .await;
            result.stats.compared_pipeline_requests
        }
        None => 0,
    };
    advise_issues(&mut result, candidates);
    result.stats = ScanStats {
        compared_pipeline_requests: compared,
        ..before.stats()
    };
    if options.detail_level == DetailLevel::Full {
        // The texts cover every unique failure, whatever page the result holds.
        result.daily_findings_text = Some(crate::report::daily_findings(&result));
        result.standup_summary_text = Some(crate::report::standup_summary(&result));
    }
    crate::fit::page_failures(
        &mut result,
        options.detail_level,
        options.failure_offset,
        options.max_failures,
    );
    Ok(result)
}

/// For each untracked cause worth an issue: the issue that already covers it (no duplicate),
/// else the draft of a new one.
fn advise_issues(result: &mut ScanResult, candidates: &[IssueCandidate]) {
    use crate::model::{Category, IssueAction, IssueAdvice, IssueRef};
    for cause in &mut result.causes {
        let tracked = cause
            .issue
            .as_ref()
            .is_some_and(|i| i.tracking && i.state == IssueState::Open);
        // Flaky and infrastructure causes, and logs that could not be read, are not the
        // code's failures to file.
        let worth_an_issue = matches!(
            cause.category,
            Category::NewRegression | Category::ContinuingUntracked
        );
        if tracked || !worth_an_issue {
            continue;
        }
        let members: Vec<&FailureClassification> = result
            .failures
            .iter()
            .filter(|f| cause.failure_keys.contains(&f.failure_key))
            .collect();
        let Some(lead) = members.first() else {
            continue;
        };
        let tf = &lead.test_failure;
        let signature = triage::cause::signature(
            &tf.test_name,
            &tf.job_name,
            tf.error_message.as_deref(),
            tf.stack_trace.as_deref(),
        );
        let files: Vec<&str> = members
            .iter()
            .filter_map(|f| {
                f.test_failure
                    .test_name
                    .split_once("::")
                    .map(|(file, _)| file)
            })
            .collect();
        // A closed issue the matching already linked to a member (its test in the title)
        // is the one to reopen; else one that names the file and exception, or the signature.
        let linked_closed = cause
            .issue
            .as_ref()
            .filter(|i| i.state == IssueState::Closed)
            .and_then(|i| candidates.iter().find(|c| c.number == i.number))
            .map(|issue| (IssueAction::ReopenClosed, issue));
        let covered = linked_closed.or_else(|| {
            crate::github::matching::issue_for_cause(
                &files,
                signature.exception.as_deref(),
                &signature.message,
                candidates,
            )
        });
        cause.issue_advice = Some(match covered {
            Some((action, issue)) => IssueAdvice {
                action,
                issue: Some(IssueRef {
                    number: issue.number,
                    url: issue.url.clone(),
                    title: issue.title.clone(),
                    state: issue.state,
                }),
                reason: match action {
                    IssueAction::ReopenClosed => format!(
                        "closed #{} covers it: reopen it instead of filing a new one",
                        issue.number
                    ),
                    _ => format!(
                        "open #{} names its test file and {}: add to it",
                        issue.number,
                        signature.exception.as_deref().unwrap_or("exception")
                    ),
                },
            },
            None => {
                cause.draft_issue = Some(crate::report::draft_issue(
                    cause,
                    &members,
                    &result.build_info,
                ));
                IssueAdvice {
                    action: IssueAction::FileNew,
                    issue: None,
                    reason: "no open or closed issue covers it: file the draft".into(),
                }
            }
        });
    }
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

fn classify_job(planned: &PlannedJob<'_>, read: &JobRead) -> Vec<FailureClassification> {
    let job = planned.job;
    let signals = JobSignals {
        timed_out: job.job_state() == crate::buildkite::JobState::TimedOut,
        exit_status: job.exit_status,
        signal_reason: job.signal_reason.as_deref(),
        passed_retry: planned.passed_retry,
    };
    let job_name = job.display_name();
    let Some(analysis) = &read.analysis else {
        let mut failure = make_failure(planned, job_name.to_string(), None, None, &[], signals);
        if failure.category == crate::model::Category::NeedsHumanTriage {
            failure.reason = Some(format!(
                "Log not read: {}",
                read.detail.as_deref().unwrap_or("unknown reason")
            ));
        }
        return vec![failure];
    };
    if let Some(level) = &analysis.job_level {
        let mut failure = make_failure(
            planned,
            job_name.to_string(),
            level.error_message.clone(),
            Some(level.excerpt.clone()).filter(|e| !e.is_empty()),
            &[],
            signals,
        );
        if read.status == JobStatus::PartlyAnalyzed {
            let reason = failure.reason.take().unwrap_or_default();
            failure.reason = Some(format!("{reason} (log read only in part)"));
        }
        return vec![failure];
    }
    analysis
        .tests
        .iter()
        .map(|test| {
            make_failure(
                planned,
                test.node_id.clone(),
                test.error_message.clone(),
                test.excerpt.clone(),
                &test.output_tail,
                signals,
            )
        })
        .collect()
}

fn make_failure(
    planned: &PlannedJob<'_>,
    test_name: String,
    error_message: Option<String>,
    excerpt: Option<String>,
    output: &[String],
    signals: JobSignals<'_>,
) -> FailureClassification {
    let job = planned.job;
    let verdict = triage::classify(
        FailureText {
            error_message: error_message.as_deref(),
            excerpt: excerpt.as_deref(),
            output,
        },
        signals,
    );
    let snippet_source = excerpt
        .clone()
        .or_else(|| (!output.is_empty()).then(|| output.join("\n")));
    FailureClassification {
        failure_key: triage::failure_key(job.display_name(), &test_name, error_message.as_deref()),
        fingerprint: error_message.as_deref().map(triage::fingerprint),
        test_failure: TestFailure {
            test_name,
            job_name: job.display_name().to_string(),
            error_message,
            stack_trace: excerpt,
            log_snippet: snippet_source.map(|s| logs::bounded_text(&s, SNIPPET_CHARS)),
        },
        category: verdict.category,
        issue: IssueLink::default(),
        confidence: verdict.confidence,
        reason: Some(verdict.reason),
        owner: Ownership::default(),
        infra_kind: verdict.infra_kind,
        evidence: verdict.evidence,
        decided_by: verdict.decided_by,
        soft_failed: job.is_soft_failed(),
        job_id: Some(job.id.clone()),
        job_url: job.web_url.clone(),
        since: Since::default(),
        cause_id: None,
    }
}

/// KNOWN_TRACKED when an open issue matches (it outranks every other category, as in the
/// original); a closed issue that matches is linked, and the failure keeps its category with
/// a "possibly regressed after fix" reason.
fn apply_issue_match(failure: &mut FailureClassification, candidates: &[IssueCandidate]) {
    let Some(found) = best_match(
        &failure.test_failure.test_name,
        &failure.test_failure.job_name,
        candidates,
    ) else {
        return;
    };
    failure.issue.url = Some(found.url.clone()).filter(|u| !u.is_empty());
    match found.state {
        IssueState::Open if !found.tracking => {
            let earlier = failure.reason.take().unwrap_or_default();
            failure.reason = Some(format!(
                "{earlier}; mentioned in #{} {} ({}), opened outside the project and not labelled ci-failure: not counted as tracking",
                found.number, found.title, found.matched_on
            ));
        }
        IssueState::Open => {
            failure.category = crate::model::Category::KnownTracked;
            failure.confidence = found.score;
            failure.reason = Some(format!(
                "Tracked in #{}: {} ({})",
                found.number, found.title, found.matched_on
            ));
        }
        IssueState::Closed => {
            let earlier = failure.reason.take().unwrap_or_default();
            failure.reason = Some(format!(
                "{earlier}; possibly regressed after fix: matches closed #{} {} ({})",
                found.number, found.title, found.matched_on
            ));
        }
    }
    failure.issue.matched = Some(found);
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
