//! What changed since the previous nightlies: a nightly scan's failures compared with the
//! previous scheduled nightlies of the same pipeline and branch (new, continuing,
//! intermittent, unknown), the previous nightly's failures that pass now (fixed), and the onset
//! range and ranked suspect commits of new failures.
//!
//! Previous nightlies are read through the job-outcome reader, so a second comparison costs
//! the listing only. A previous nightly whose job could not say (agent lost, cancelled, no log,
//! not read) is no baseline.

use super::select::plan_jobs;
use crate::buildkite::{Build, BuildKey, Job, ListBuilds};
use crate::github::{best_match, GitHubClient, IssueCandidate};
use crate::model::{
    FailureClassification, FixedFailure, JobStatus, NightlyComparison, Onset, ScanResult, Trend,
};
use crate::owners::CodeOwners;
use crate::reader::{JobRead, JobReader};
use crate::triage::nightly::{
    failures_shown, fixed_evidence, job_says, retell, Identity, LogWord, PreviousRun, RunNow,
};
use crate::triage::suspects::{
    rank_suspects, repo_path, traceback_files, FailureSite, RangeCommit,
};
use crate::triage::trend::{assess_trend, Baseline, NightlyBaseline};
use futures::StreamExt;
use std::collections::{HashMap, HashSet};

/// Previous nightlies compared by default: a working week.
pub const DEFAULT_COMPARE_NIGHTLIES: usize = 5;
/// The most previous nightlies a scan compares with.
pub const MAX_COMPARE_NIGHTLIES: usize = 14;
/// Logs of previous nightlies read per comparison (stored outcomes are free): the previous
/// nightly's failed jobs (20 by default) and the older runs of today's failed jobs.
const COMPARE_LOG_BUDGET: usize = 40;
/// Commits of an onset range whose files are read (one request each, cached by sha); past
/// this, commits are ranked without their files.
const MAX_SUSPECT_COMMITS: usize = 50;

/// What the comparison needs of the scan it extends.
pub(super) struct CurrentScan<'a> {
    pub key: &'a BuildKey,
    pub build: &'a Build,
    /// What each read failed job's log said, by job id.
    pub reads: HashMap<&'a str, &'a JobRead>,
    pub candidates: &'a [IssueCandidate],
    pub codeowners: Option<&'a CodeOwners>,
    pub repo: &'a str,
    pub nightlies: usize,
    pub budgets: &'a super::Budgets,
}

/// Extends `result` (every failure, before `max_failures`) with trends, fixed failures, onsets
/// and draft issues. Problems become `warnings`.
pub(super) async fn compare_with_previous_nightlies(
    reader: &JobReader<'_>,
    github: Option<&GitHubClient>,
    current: CurrentScan<'_>,
    result: &mut ScanResult,
) {
    let previous = match previous_nightlies(reader, &current, &mut result.warnings).await {
        Ok(previous) => previous,
        Err(warning) => {
            result.warnings.push(warning);
            return;
        }
    };
    if previous.is_empty() {
        result.warnings.push(format!(
            "no earlier scheduled nightly of {}/{} on {} found to compare with; trends are unknown",
            current.key.org,
            current.key.pipeline,
            current.build.branch.as_deref().unwrap_or("the branch")
        ));
    }
    let reads = read_previous(reader, &current, &previous, result).await;
    let nightlies: Vec<Nightly<'_>> = previous.iter().map(Nightly::of).collect();
    let failures = std::mem::take(&mut result.failures);
    let mut failures: Vec<FailureClassification> = failures
        .into_iter()
        .map(|failure| with_trend(failure, &nightlies, &reads, current.build.number))
        .collect();
    let fixed = fixed_failures(&current, &failures, nightlies.first(), &reads);
    let warnings = onsets(github, &current, &nightlies, &reads, &mut failures).await;
    result.warnings.extend(warnings);
    let count = |trend: Trend| {
        failures
            .iter()
            .filter(|f| f.since.trend.as_ref().is_some_and(|t| t.trend == trend))
            .count()
    };
    result.comparison = Some(NightlyComparison {
        compared_builds: previous.iter().map(|b| b.number).collect(),
        new: count(Trend::New),
        continuing: count(Trend::Continuing),
        intermittent: count(Trend::Intermittent),
        unknown: count(Trend::Unknown),
        fixed: fixed.len(),
    });
    let previous_reads: HashMap<&str, &JobRead> =
        reads.iter().map(|(id, read)| (id.as_str(), read)).collect();
    let views: Vec<super::tracked::NightlyView<'_>> = std::iter::once(current.build)
        .chain(previous.iter())
        .enumerate()
        .map(|(i, build)| super::tracked::NightlyView {
            build,
            reads: if i == 0 {
                &current.reads
            } else {
                &previous_reads
            },
        })
        .collect();
    result.tracked_issues = super::tracked::tracked_issues(&views, &failures, current.candidates);
    result.failures = failures;
    result.fixed = fixed;
}

/// The previous scheduled nightlies of the same pipeline and branch, newest first, with their
/// jobs (from the store, or one request each the first time).
async fn previous_nightlies(
    reader: &JobReader<'_>,
    current: &CurrentScan<'_>,
    warnings: &mut Vec<String>,
) -> Result<Vec<Build>, String> {
    let wanted = current.nightlies.clamp(1, MAX_COMPARE_NIGHTLIES);
    let since = current
        .build
        .created_at
        .as_deref()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&chrono::Utc) - chrono::Duration::days(wanted as i64 + 2));
    let filter = ListBuilds {
        branch: current.build.branch.clone(),
        created_from: since.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        exclude_jobs: true,
        ..Default::default()
    };
    let key = current.key;
    let baseline = |b: &&Build| {
        b.number < current.build.number && super::nightly::is_nightly(b) && b.is_finished()
    };
    let pages = super::nightly::pages_for_nightlies(wanted + 1);
    let listing = reader
        .client()
        .list_builds(&key.pipeline_key(), &filter, pages, |builds| {
            builds.iter().filter(baseline).count() >= wanted
        })
        .await
        .map_err(|e| {
            format!("the previous nightlies could not be listed ({e}); trends are unknown")
        })?;
    warnings.extend(listing.cut_warning(&format!(
        "{wanted} previous nightlies of {}/{}",
        key.org, key.pipeline
    )));
    let chosen: Vec<&Build> = listing
        .builds
        .iter()
        .filter(baseline)
        .take(wanted)
        .collect();
    // A stored nightly is reused while the listing shows it unchanged (a retry changes it).
    let fetches: Vec<_> = chosen
        .iter()
        .map(|listed| async move {
            reader
                .build_as_listed(
                    &BuildKey::new(&key.org, &key.pipeline, listed.number),
                    listed,
                )
                .await
        })
        .collect();
    let fetched: Vec<_> = futures::stream::iter(fetches)
        .buffered(current.budgets.concurrency.max(1))
        .collect()
        .await;
    fetched
        .into_iter()
        .collect::<Result<Vec<Build>, _>>()
        .map_err(|e| format!("a previous nightly could not be read ({e}); trends are unknown"))
}

/// A previous nightly with its jobs indexed by name, built once per comparison.
struct Nightly<'b> {
    build: &'b Build,
    jobs: HashMap<&'b str, &'b Job>,
}

impl<'b> Nightly<'b> {
    fn of(build: &'b Build) -> Self {
        Self {
            build,
            jobs: latest_by_name(build),
        }
    }
}

/// The latest attempt of each script job, by name.
fn latest_by_name(build: &Build) -> HashMap<&str, &Job> {
    build
        .latest_attempts()
        .map(|j| (j.display_name(), j))
        .collect()
}

/// Reads the logs the comparison needs: the previous nightly's failed jobs (for the fixed
/// list) and, in every previous nightly, the failed runs of today's failed jobs. Newest
/// nightly first, within [`COMPARE_LOG_BUDGET`]; stored outcomes are free.
async fn read_previous(
    reader: &JobReader<'_>,
    current: &CurrentScan<'_>,
    previous: &[Build],
    result: &mut ScanResult,
) -> HashMap<String, JobRead> {
    let today: HashSet<&str> = result
        .failures
        .iter()
        .map(|f| f.test_failure.job_name.as_str())
        .collect();
    let mut wanted: Vec<(BuildKey, &Job)> = Vec::new();
    let mut seen = HashSet::new();
    for (index, build) in previous.iter().enumerate() {
        let key = BuildKey::new(&current.key.org, &current.key.pipeline, build.number);
        let mut jobs: Vec<&Job> = latest_by_name(build)
            .into_iter()
            .filter(|(name, job)| today.contains(name) && job.is_failed())
            .map(|(_, job)| job)
            .collect();
        if index == 0 {
            jobs.extend(
                plan_jobs(build)
                    .ordered
                    .into_iter()
                    .filter(|p| p.passed_retry.is_none())
                    .take(current.budgets.max_jobs)
                    .map(|p| p.job),
            );
        }
        jobs.sort_by(|a, b| a.id.cmp(&b.id));
        for job in jobs {
            if seen.insert(job.id.clone()) {
                wanted.push((key.clone(), job));
            }
        }
    }
    // The comparison's reads have a byte budget of their own, the size of a scan's.
    let limits = current.budgets.limits();
    let mut reads: HashMap<String, JobRead> = HashMap::new();
    let mut to_fetch = Vec::new();
    let wanted_jobs: Vec<&Job> = wanted.iter().map(|&(_, job)| job).collect();
    let stored = reader.stored_all(&wanted_jobs, &limits).await;
    for ((key, job), stored) in wanted.into_iter().zip(stored) {
        match stored {
            Some(read) => {
                reads.insert(job.id.clone(), read);
            }
            None => to_fetch.push((key, job)),
        }
    }
    let left_out = to_fetch.len().saturating_sub(COMPARE_LOG_BUDGET);
    to_fetch.truncate(COMPARE_LOG_BUDGET);
    if left_out > 0 {
        result.warnings.push(format!(
            "{left_out} logs of older nightlies were not read (budget of {COMPARE_LOG_BUDGET}); failures that depend on them may show trend unknown"
        ));
    }
    let wanted: Vec<(&BuildKey, &Job)> = to_fetch.iter().map(|(key, job)| (key, *job)).collect();
    let fetched = reader
        .jobs(
            &wanted,
            &limits,
            current.budgets.concurrency,
            &super::NoProgress,
        )
        .await;
    let fetched = to_fetch.iter().map(|(_, job)| job.id.clone()).zip(fetched);
    reads.extend(fetched);
    reads
}

/// What one previous nightly says about `identity`.
fn baseline(
    identity: &Identity,
    nightly: &Nightly<'_>,
    reads: &HashMap<String, JobRead>,
) -> Baseline {
    let run = nightly
        .jobs
        .get(identity.job.as_str())
        .map(|job| previous_run(job, reads));
    job_says(identity, run.as_ref())
}

/// A previous nightly's job as the comparison's decisions take it.
fn previous_run<'a>(job: &'a Job, reads: &'a HashMap<String, JobRead>) -> PreviousRun<'a> {
    let log = match reads.get(&job.id) {
        None => LogWord::NotRead,
        Some(read) => match &read.analysis {
            None => LogWord::Unreadable(read.detail.as_deref().unwrap_or("no log")),
            Some(analysis) => LogWord::Read {
                analysis,
                complete: read.status == JobStatus::Analyzed,
            },
        },
    };
    PreviousRun {
        state: job.job_state(),
        state_name: job.state(),
        started: job.started_at.is_some(),
        exit_status: job.exit_status,
        signal_reason: job.signal_reason.as_deref(),
        log,
    }
}

/// The failure with its trend over `nightlies`.
fn with_trend(
    failure: FailureClassification,
    nightlies: &[Nightly<'_>],
    reads: &HashMap<String, JobRead>,
    current_build: u64,
) -> FailureClassification {
    let identity = Identity::of(&failure);
    let observed: Vec<NightlyBaseline> = nightlies
        .iter()
        .map(|nightly| NightlyBaseline {
            build_number: nightly.build.number,
            baseline: baseline(&identity, nightly, reads),
            job_id: nightly
                .jobs
                .get(identity.job.as_str())
                .map(|job| job.id.clone()),
        })
        .collect();
    let trend = assess_trend(current_build, failure.fingerprint.as_deref(), &observed);
    retell(failure, trend)
}

/// Failures of the previous nightly that pass now: its job passed, or its test passed in its
/// job (the job's log was read in full and does not name it).
fn fixed_failures(
    current: &CurrentScan<'_>,
    failures: &[FailureClassification],
    previous: Option<&Nightly<'_>>,
    reads: &HashMap<String, JobRead>,
) -> Vec<FixedFailure> {
    let Some(previous) = previous else {
        return Vec::new();
    };
    let failing_now: HashSet<Identity> = failures.iter().map(Identity::of).collect();
    let jobs_now = latest_by_name(current.build);
    let mut fixed = Vec::new();
    let mut listed = HashSet::new();
    for (&name, &job) in &previous.jobs {
        let Some(analysis) = reads.get(&job.id).and_then(|r| r.analysis.as_ref()) else {
            continue;
        };
        let Some(now) = jobs_now.get(name) else {
            continue;
        };
        let now = if now.is_passed() {
            RunNow::Passed
        } else {
            RunNow::NotPassed {
                complete_read: current
                    .reads
                    .get(now.id.as_str())
                    .filter(|r| r.status == JobStatus::Analyzed)
                    .and_then(|r| r.analysis.as_ref()),
            }
        };
        for shown in failures_shown(name, analysis) {
            if failing_now.contains(&shown.identity) || !listed.insert(shown.identity.clone()) {
                continue;
            }
            let Some(evidence) = fixed_evidence(&shown.identity, now) else {
                continue;
            };
            let issue = best_match(&shown.test_name, name, current.candidates);
            fixed.push(FixedFailure {
                test_name: shown.test_name,
                job_name: name.to_string(),
                failed_in_build: previous.build.number,
                error_message: shown.error_message,
                evidence: evidence.to_string(),
                issue,
            });
        }
    }
    fixed.sort_by(|a, b| (&a.job_name, &a.test_name).cmp(&(&b.job_name, &b.test_name)));
    fixed
}

/// Onset ranges and suspects of new failures: the last nightly where each passed, this build,
/// and the commits between, ranked. One compare per range and one request per commit, cached.
/// Returns what could not be read, as warnings.
async fn onsets(
    github: Option<&GitHubClient>,
    current: &CurrentScan<'_>,
    nightlies: &[Nightly<'_>],
    reads: &HashMap<String, JobRead>,
    failures: &mut [FailureClassification],
) -> Vec<String> {
    let mut warnings = Vec::new();
    let head = current.build.commit.clone().unwrap_or_default();
    let mut ranges: HashMap<String, Result<Vec<RangeCommit>, String>> = HashMap::new();
    for failure in failures.iter_mut() {
        if failure.since.trend.as_ref().map(|t| t.trend) != Some(Trend::New) {
            continue;
        }
        let identity = Identity::of(failure);
        let Some(last_passed) = nightlies
            .iter()
            .find(|nightly| baseline(&identity, nightly, reads) == Baseline::Passed)
            .map(|nightly| nightly.build)
        else {
            continue;
        };
        let base = last_passed.commit.clone().unwrap_or_default();
        let mut onset = Onset {
            last_passed_build: last_passed.number,
            last_passed_commit: base.clone(),
            first_failed_build: current.build.number,
            first_failed_commit: head.clone(),
            compare_url: format!(
                "https://github.com/{}/compare/{base}...{head}",
                current.repo
            ),
            suspects: Vec::new(),
            note: None,
        };
        let Some(github) = github else {
            onset.note = Some("GitHub was not searched (search_github=false): no suspects".into());
            failure.since.onset = Some(onset);
            continue;
        };
        if !ranges.contains_key(&base) {
            let range = range_commits(github, current.repo, &base, &head).await;
            if let Err(warning) = &range {
                warnings.push(warning.clone());
            }
            ranges.insert(base.clone(), range);
        }
        match &ranges[&base] {
            Ok(commits) => {
                let site = failure_site(failure, current);
                let owners_of = |file: &str| -> Vec<String> {
                    current
                        .codeowners
                        .and_then(|c| c.owners_of(file))
                        .map(|o| o.owners.to_vec())
                        .unwrap_or_default()
                };
                onset.suspects = rank_suspects(commits, &site, &owners_of);
                if commits.iter().any(|c| c.files.is_none()) {
                    onset.note = Some(format!(
                        "files read for the newest {MAX_SUSPECT_COMMITS} commits of the range only"
                    ));
                }
            }
            Err(warning) => onset.note = Some(warning.clone()),
        }
        failure.since.onset = Some(onset);
    }
    warnings
}

async fn range_commits(
    github: &GitHubClient,
    repo: &str,
    base: &str,
    head: &str,
) -> Result<Vec<RangeCommit>, String> {
    let (commits, total) = github
        .compare(repo, base, head)
        .await
        .map_err(|e| format!("suspects not ranked: {e}"))?;
    let read_from = commits.len().saturating_sub(MAX_SUSPECT_COMMITS);
    // Futures are built up front (not in a stream closure) so the scan future stays `Send`.
    let reads: Vec<_> = commits
        .iter()
        .enumerate()
        .map(|(i, commit)| async move {
            if i < read_from {
                return None;
            }
            github.commit_files(repo, &commit.sha).await.ok()
        })
        .collect();
    let files: Vec<Option<Vec<String>>> = futures::stream::iter(reads).buffered(8).collect().await;
    let mut ranged: Vec<RangeCommit> = commits
        .into_iter()
        .zip(files)
        .map(|(c, files)| RangeCommit {
            sha: c.sha,
            title: c.title,
            author: c.author,
            files,
        })
        .collect();
    if total > ranged.len() {
        // GitHub's compare lists the oldest 250; the rest are not suspects we can see.
        ranged.push(RangeCommit {
            sha: String::new(),
            title: format!(
                "… and {} later commits not listed by GitHub's compare",
                total - ranged.len()
            ),
            author: String::new(),
            files: None,
        });
    }
    Ok(ranged)
}

fn failure_site(failure: &FailureClassification, current: &CurrentScan<'_>) -> FailureSite {
    let tf = &failure.test_failure;
    let text = [
        tf.stack_trace.as_deref(),
        tf.log_snippet.as_deref(),
        tf.error_message.as_deref(),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join("\n");
    let test_file = match tf.test_name.split_once("::") {
        Some((file, _)) => repo_path(file),
        None => failure
            .job_id
            .as_deref()
            .and_then(|id| current.build.jobs().iter().find(|j| j.id == id))
            .and_then(|j| j.command.as_deref())
            .and_then(crate::pipeline::test_area),
    };
    let test_owners = test_file
        .as_deref()
        .and_then(|f| current.codeowners.and_then(|c| c.owners_of(f)))
        .map(|o| o.owners.to_vec())
        .unwrap_or_default();
    FailureSite {
        traceback_files: traceback_files(&text),
        test_file,
        test_owners,
    }
}
