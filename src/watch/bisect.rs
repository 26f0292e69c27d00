//! A bisect plan for one new failure, from runs main already has: the onset range's commits
//! from GitHub's compare (merge order), main's builds of that time window from one listing
//! (never a request per commit), each commit's run of the failing job read off the build
//! (passed, failed, blocked behind its block step, not in the build, no build), and failed
//! runs' logs read through the reader only where the state changes (the first failures after
//! the last pass), until one fails with the failure's signature. The narrowing itself is pure
//! (`triage::bisect`). Nothing is unblocked or started: the next runs are suggestions.

use super::WatchError;
use crate::buildkite::{Build, BuildKey, Job, JobState, ListBuilds, PipelineKey};
use crate::github::{CompareCommit, GitHubClient};
use crate::input::{comparable, NodeId};
use crate::logs::LogAnalysis;
use crate::model::{
    BisectCommit, BisectPlan, BisectRun, BisectStats, BisectStatus, BlockStep, Category,
    NarrowedRange, NextAction, NextRun, RunVerdict, Suspect,
};
use crate::reader::{JobRead, JobReader, ReadLimits};
use crate::triage::bisect as narrowing;
use crate::triage::signature::{signature, Signature};
use crate::triage::{classify, FailureText};
use std::time::Instant;

/// Failed-job logs one plan reads by default (stored outcomes are free).
pub const DEFAULT_BISECT_LOGS: usize = 8;

/// Pages of main's builds one plan lists at most (100 builds a page, with their jobs).
const MAX_LISTING_PAGES: usize = 3;

/// Builds are created when a commit lands; the window around the range's commits allows for
/// the merge-to-build delay and for builds of a commit made later the same day.
const WINDOW_BEFORE: chrono::TimeDelta = chrono::TimeDelta::hours(1);
const WINDOW_AFTER: chrono::TimeDelta = chrono::TimeDelta::hours(12);

/// The failure to bisect.
#[derive(Debug, Clone)]
pub struct BisectTarget {
    /// The pytest node id; `None` for a job-level failure.
    pub test: Option<NodeId>,
    pub job_name: String,
    /// The failure's error line and traceback, which give its signature; `None`: any failure
    /// of the test (or job) counts against its commit.
    pub error_message: Option<String>,
    pub stack_trace: Option<String>,
    /// The last good and the first bad nightly's commits.
    pub good_commit: String,
    pub bad_commit: String,
    /// The cause also fails on AMD: a retry reruns the AMD mirror too.
    pub also_on_amd: bool,
    /// The onset's ranked suspects (a scan's), kept when inside the narrowed range.
    pub suspects: Vec<Suspect>,
}

impl BisectTarget {
    /// The test id, or the job's name for a job-level failure.
    fn name(&self) -> &str {
        self.test.as_ref().map_or(&self.job_name, NodeId::as_str)
    }
}

#[derive(Debug, Clone)]
pub struct BisectOptions {
    pub pipeline: PipelineKey,
    pub branch: String,
    /// `owner/name` on GitHub.
    pub repo: String,
    /// Failed-job logs fetched at most (stored outcomes are free).
    pub max_logs: usize,
    pub limits: ReadLimits,
}

/// One run of the job at a commit, before and after its log is read.
struct Run<'b> {
    build: &'b Build,
    job: Option<&'b Job>,
    found: BisectRun,
}

pub async fn bisect_plan(
    reader: &JobReader<'_>,
    github: &GitHubClient,
    target: &BisectTarget,
    options: &BisectOptions,
) -> Result<BisectPlan, WatchError> {
    let work = async {
        let started = Instant::now();
        let mut warnings = Vec::new();
        let (commits, total) = github
            .compare(&options.repo, &target.good_commit, &target.bad_commit)
            .await
            .map_err(WatchError::Unavailable)?;
        if commits.is_empty() {
            return Err(WatchError::NotFound(format!(
                "no commits between {} and {}: give the last good commit first, then the first bad one",
                target.good_commit, target.bad_commit
            )));
        }
        if total > commits.len() {
            warnings.push(format!(
                "GitHub's compare lists the oldest {} of the range's {total} commits: the plan covers those only",
                commits.len()
            ));
        }
        let builds = main_builds(reader, &commits, options, &mut warnings).await?;
        let mut runs: Vec<Vec<Run<'_>>> = commits
            .iter()
            .map(|commit| runs_at(&builds, &commit.sha, &target.job_name))
            .collect();
        let bisecting = Bisecting::new(target, options);
        let logs_read =
            read_where_the_state_changes(reader, &bisecting, &mut runs, &mut warnings).await;
        let mut plan = plan_of(&bisecting, &commits, runs, warnings);
        let totals = crate::call::call_totals();
        plan.stats = BisectStats {
            buildkite_requests: totals.buildkite_requests,
            github_requests: totals.github_requests,
            logs_read,
            builds_listed: builds.len(),
            elapsed_ms: started.elapsed().as_millis() as u64,
        };
        Ok(plan)
    };
    crate::call::answered(work, |r| &mut r.warnings).await
}

/// main's builds of the range's time window, in one listing with their jobs.
async fn main_builds(
    reader: &JobReader<'_>,
    commits: &[CompareCommit],
    options: &BisectOptions,
    warnings: &mut Vec<String>,
) -> Result<Vec<Build>, WatchError> {
    let dates: Option<Vec<_>> = commits.iter().map(|c| c.committed_at).collect();
    let window = dates.as_deref().and_then(|dates| {
        let first = dates.iter().min()?;
        let last = dates.iter().max()?;
        Some((*first - WINDOW_BEFORE, *last + WINDOW_AFTER))
    });
    let iso =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let filter = ListBuilds {
        branch: Some(options.branch.clone()),
        created_from: window.map(|(from, _)| iso(from)),
        created_to: window.map(|(_, to)| iso(to)),
        per_page: 100,
        ..Default::default()
    };
    let shas: Vec<&str> = commits.iter().map(|c| c.sha.as_str()).collect();
    let listing = reader
        .client()
        .list_builds(&options.pipeline, &filter, MAX_LISTING_PAGES, |builds| {
            // Without commit dates the window is unknown: stop once every commit has a build.
            window.is_none()
                && shas
                    .iter()
                    .all(|sha| builds.iter().any(|b| b.commit.as_deref() == Some(*sha)))
        })
        .await?;
    warnings.extend(listing.cut_warning(&format!(
        "the builds of {} of {} in the range's window",
        options.branch,
        options.pipeline.slug()
    )));
    Ok(listing.builds)
}

/// The runs of `job_name` at `sha`, oldest build first, as the builds show them.
fn runs_at<'b>(builds: &'b [Build], sha: &str, job_name: &str) -> Vec<Run<'b>> {
    let mut runs: Vec<Run<'b>> = builds
        .iter()
        .filter(|b| b.commit.as_deref() == Some(sha))
        .map(|build| run_in(build, job_name))
        .collect();
    runs.sort_by_key(|r| r.build.number);
    runs
}

/// The job's run in one build, read off its state and its block step.
fn run_in<'b>(build: &'b Build, job_name: &str) -> Run<'b> {
    let same_name = |name: &str| {
        name == job_name || narrowing::strip_queue(name) == narrowing::strip_queue(job_name)
    };
    let job = build
        .latest_attempts()
        .filter(|j| j.is_script())
        .find(|j| same_name(j.display_name()));
    let block = block_step(build, job_name);
    let (verdict, detail) = match job.map(|j| (j, j.job_state())) {
        Some((_, JobState::Passed)) => (RunVerdict::Passed, None),
        Some((j, JobState::TimedOut | JobState::Canceled)) if j.is_failed() => (
            RunVerdict::FailedOther,
            Some(format!("{}: no evidence either way", j.state())),
        ),
        Some((j, _)) if j.is_failed() => (RunVerdict::FailedUnread, None),
        Some((j, _)) if j.is_blocked() || block.is_some() && j.started_at.is_none() => {
            (RunVerdict::Blocked, None)
        }
        Some((j, _)) => (RunVerdict::NotRun, Some(format!("it is {}", j.state()))),
        None if block.is_some() => (RunVerdict::Blocked, None),
        None => (RunVerdict::NotInBuild, None),
    };
    let blocked = verdict == RunVerdict::Blocked;
    Run {
        build,
        job,
        found: BisectRun {
            build_number: build.number,
            build_url: build.web_url.clone().unwrap_or_default(),
            verdict,
            detail,
            block: block.filter(|_| blocked),
        },
    }
}

/// The block step in front of `job_name`: by the key the pipeline generator gives it, or by
/// its label (`Run <job name>`).
fn block_step(build: &Build, job_name: &str) -> Option<BlockStep> {
    let key = narrowing::block_key_of(job_name);
    let label = format!("Run {}", narrowing::strip_queue(job_name));
    build
        .jobs()
        .iter()
        .filter(|j| j.is_block_step() && j.is_blocked())
        .find(|j| {
            j.step_key.as_deref() == Some(key.as_str())
                || j.label
                    .as_deref()
                    .is_some_and(|l| l.eq_ignore_ascii_case(&label))
        })
        .map(|j| BlockStep {
            step_key: j.step_key.clone().unwrap_or(key),
            unblock_url: j.unblock_url.clone(),
        })
}

/// What one bisect asks: the failure, where to look, and the failure's signature when its error
/// is known (a failed run shows the failure when its log gives the same).
struct Bisecting<'a> {
    target: &'a BisectTarget,
    options: &'a BisectOptions,
    reference: Option<Signature>,
}

impl<'a> Bisecting<'a> {
    fn new(target: &'a BisectTarget, options: &'a BisectOptions) -> Self {
        let reference = target.error_message.as_deref().map(|error| {
            signature(
                target.name(),
                &target.job_name,
                Some(error),
                target.stack_trace.as_deref(),
            )
        });
        Self {
            target,
            options,
            reference,
        }
    }
}

/// Reads failed runs' logs where the boundary may move (see [`narrowing::next_to_read`]), one
/// commit at a time, until a run fails with the signature or the budget is spent. Returns the
/// logs fetched.
async fn read_where_the_state_changes(
    reader: &JobReader<'_>,
    bisecting: &Bisecting<'_>,
    runs: &mut [Vec<Run<'_>>],
    warnings: &mut Vec<String>,
) -> usize {
    let options = bisecting.options;
    let mut fetched = 0;
    while let Some(at) = narrowing::next_to_read(&verdicts(runs)) {
        for run in runs[at]
            .iter_mut()
            .filter(|r| r.found.verdict == RunVerdict::FailedUnread)
        {
            let Some(job) = run.job else { continue };
            let read = match reader.stored(job, &options.limits).await {
                Some(read) => read,
                None if fetched < options.max_logs => {
                    fetched += 1;
                    let pipeline = &options.pipeline;
                    let key = BuildKey::new(&pipeline.org, &pipeline.pipeline, run.build.number);
                    reader.job(&key, job, &options.limits).await
                }
                None => {
                    warnings.push(format!(
                        "failed runs of the range were left unread at max_logs={}: ask again with a larger max_logs (stored logs are free)",
                        options.max_logs
                    ));
                    return fetched;
                }
            };
            let (verdict, detail) = read_verdict(&read, job, bisecting);
            run.found.verdict = verdict;
            run.found.detail = detail;
        }
    }
    fetched
}

fn verdicts(runs: &[Vec<Run<'_>>]) -> Vec<RunVerdict> {
    runs.iter()
        .map(|at| {
            narrowing::commit_verdict(&at.iter().map(|r| r.found.verdict).collect::<Vec<_>>())
        })
        .collect()
}

/// What a failed run's log says: the signature, another error, the host, or a pass of the
/// test inside a job that failed on others.
fn read_verdict(
    read: &JobRead,
    job: &Job,
    bisecting: &Bisecting<'_>,
) -> (RunVerdict, Option<String>) {
    let (target, reference) = (bisecting.target, bisecting.reference.as_ref());
    let Some(analysis) = &read.analysis else {
        let why = read
            .detail
            .as_deref()
            .unwrap_or("its log could not be read");
        return (
            RunVerdict::FailedOther,
            Some(format!("{why}: no evidence either way")),
        );
    };
    let signals = super::failures::job_signals(job, None);
    let (error, excerpt) = match failure_of(analysis, target) {
        Ok(failure) => failure,
        Err(other) => return other,
    };
    let verdict = classify(
        FailureText {
            error_message: error,
            excerpt,
            output: &[],
        },
        signals,
    );
    let line = error.unwrap_or("no error line").to_string();
    if verdict.category == Category::InfraSuspected {
        return (
            RunVerdict::FailedOther,
            Some(format!(
                "the host or a service failed ({line}): no evidence either way"
            )),
        );
    }
    let same = reference
        .is_none_or(|r| signature(target.name(), &target.job_name, error, excerpt).same_cause(r));
    if same {
        (RunVerdict::FailedSame, Some(line))
    } else {
        (
            RunVerdict::FailedOther,
            Some(format!("another error: {line}")),
        )
    }
}

type FailureLines<'a> = (Option<&'a str>, Option<&'a str>);

/// The target's failure in a read log (its error line and excerpt), or the verdict when the
/// log does not show it failing.
fn failure_of<'a>(
    analysis: &'a LogAnalysis,
    target: &BisectTarget,
) -> Result<FailureLines<'a>, (RunVerdict, Option<String>)> {
    let elsewhere = || {
        analysis
            .tests
            .first()
            .map(|t| t.node_id.clone())
            .or_else(|| {
                analysis
                    .job_level
                    .as_ref()
                    .and_then(|j| j.error_message.clone())
            })
            .unwrap_or_else(|| "no failure shown".into())
    };
    match &target.test {
        Some(test) => {
            let wanted = test.comparable();
            if let Some(failure) = analysis
                .tests
                .iter()
                .find(|t| comparable(&t.node_id) == wanted)
            {
                return Ok((failure.error_message.as_deref(), failure.excerpt.as_deref()));
            }
            if analysis.passed.iter().any(|p| comparable(p) == wanted) {
                return Err((
                    RunVerdict::Passed,
                    Some(format!(
                        "the test passed; the job failed on {}",
                        elsewhere()
                    )),
                ));
            }
            Err((
                RunVerdict::FailedOther,
                Some(format!(
                    "the test did not fail here; the job failed on {}",
                    elsewhere()
                )),
            ))
        }
        None if !analysis.tests.is_empty() => Err((
            RunVerdict::FailedOther,
            Some(format!("tests failed instead: {}", elsewhere())),
        )),
        None => Ok(analysis.job_level.as_ref().map_or((None, None), |j| {
            (j.error_message.as_deref(), Some(j.excerpt.as_str()))
        })),
    }
}

/// The plan from the runs as read: the narrowed range, the next runs, the suspects inside.
fn plan_of(
    bisecting: &Bisecting<'_>,
    commits: &[CompareCommit],
    runs: Vec<Vec<Run<'_>>>,
    warnings: Vec<String>,
) -> BisectPlan {
    let (target, options) = (bisecting.target, bisecting.options);
    let verdicts = verdicts(&runs);
    let narrowed = narrowing::narrow(&verdicts);
    let candidates = narrowed.map(|n| n.candidates());
    let sha = |i: Option<usize>| i.map_or(target.good_commit.clone(), |i| commits[i].sha.clone());
    let mut notes = Vec::new();
    let retry_keys = retry_keys(&runs, target, &mut notes);
    let next = narrowed
        .and_then(|n| narrowing::halving_commit(&verdicts, &n))
        .and_then(|at| next_run(&commits[at].sha, verdicts[at], &runs[at], &retry_keys))
        .into_iter()
        .collect();
    let (bisect_commits, no_evidence) =
        commit_rows(commits, runs, &verdicts, candidates, &retry_keys);
    notes.extend(no_evidence);
    let in_range = |s: &Suspect| {
        bisect_commits
            .iter()
            .any(|c| c.in_narrowed_range && c.sha == s.sha)
    };
    let status = match narrowed {
        Some(n) if n.is_confirmed() => BisectStatus::Confirmed,
        Some(_) => BisectStatus::Narrowed,
        None => BisectStatus::Inconclusive,
    };
    let mut plan = BisectPlan {
        test: target.name().to_string(),
        job_name: target.job_name.clone(),
        signature: bisecting.reference.as_ref().map(Signature::text),
        pipeline: options.pipeline.slug(),
        last_good_commit: target.good_commit.clone(),
        first_bad_commit: target.bad_commit.clone(),
        compare_url: format!(
            "https://github.com/{}/compare/{}...{}",
            options.repo, target.good_commit, target.bad_commit
        ),
        status,
        culprit: narrowed
            .filter(|n| n.is_confirmed())
            .map(|n| commits[n.first_failed].sha.clone()),
        narrowed: narrowed.map(|n| NarrowedRange {
            after_commit: sha(n.last_passed),
            through_commit: sha(Some(n.first_failed)),
            commits: n.commits(),
        }),
        runs_to_confirm: narrowed.map_or(0, |n| narrowing::runs_to_confirm(n.commits())),
        next,
        suspects: target
            .suspects
            .iter()
            .filter(|s| in_range(s))
            .cloned()
            .collect(),
        commits: bisect_commits,
        summary: String::new(),
        notes,
        warnings,
        stats: BisectStats::default(),
    };
    plan.summary = crate::report::bisect_summary(&plan);
    plan
}

/// The step keys a `/ci retry` of the job takes: its key as a build shows it, else as the
/// pipeline generator derives it; none (and a note why) for a setup step.
fn retry_keys(
    runs: &[Vec<Run<'_>>],
    target: &BisectTarget,
    notes: &mut Vec<String>,
) -> Vec<String> {
    let job_key = runs
        .iter()
        .flatten()
        .find_map(|r| r.job.and_then(|j| j.step_key.clone()))
        .unwrap_or_else(|| narrowing::job_key_of(&target.job_name));
    narrowing::retry_step_keys(&job_key, target.also_on_amd).unwrap_or_else(|why| {
        notes.push(why);
        Vec::new()
    })
}

/// Every commit with its runs and whether the culprit may be it; the notes of runs that are no
/// evidence.
fn commit_rows(
    commits: &[CompareCommit],
    runs: Vec<Vec<Run<'_>>>,
    verdicts: &[RunVerdict],
    candidates: Option<std::ops::RangeInclusive<usize>>,
    retry_keys: &[String],
) -> (Vec<BisectCommit>, Vec<String>) {
    let mut notes = Vec::new();
    let rows = commits
        .iter()
        .zip(runs)
        .zip(verdicts)
        .enumerate()
        .map(|(i, ((commit, at), verdict))| {
            let runs: Vec<BisectRun> = at.into_iter().map(|r| r.found).collect();
            notes.extend(no_evidence(&commit.sha, &runs));
            let in_narrowed_range = candidates.as_ref().is_some_and(|c| c.contains(&i));
            let never_ran = matches!(verdict, RunVerdict::NoBuild | RunVerdict::NotInBuild);
            BisectCommit {
                sha: commit.sha.clone(),
                title: commit.title.clone(),
                author: commit.author.clone(),
                verdict: *verdict,
                in_narrowed_range,
                retry_step_keys: if in_narrowed_range && never_ran {
                    retry_keys.to_vec()
                } else {
                    Vec::new()
                },
                runs,
            }
        })
        .collect();
    (rows, notes)
}

/// The run to start at the halving commit: unblock an existing build's block step, else a
/// `/ci retry` of the job's step keys there (none when the job is a setup step).
fn next_run(
    sha: &str,
    verdict: RunVerdict,
    runs: &[Run<'_>],
    retry_keys: &[String],
) -> Option<NextRun> {
    let halves = "halves the narrowed range";
    let blocked = runs.iter().find(|r| r.found.block.is_some());
    match blocked.filter(|_| verdict == RunVerdict::Blocked) {
        Some(run) => Some(NextRun {
            commit: sha.to_string(),
            action: NextAction::Unblock,
            build_number: Some(run.build.number),
            build_url: Some(run.found.build_url.clone()),
            block: run.found.block.clone(),
            retry_step_keys: Vec::new(),
            why: format!("the job is blocked in this commit's build, which {halves}"),
        }),
        None if retry_keys.is_empty() => None,
        None => Some(NextRun {
            commit: sha.to_string(),
            action: NextAction::Retry,
            build_number: None,
            build_url: None,
            block: None,
            retry_step_keys: retry_keys.to_vec(),
            why: format!("no build ran the job with evidence at this commit, which {halves}"),
        }),
    }
}

/// Notes for runs that count for nothing, so a reader sees why a failure did not move the
/// boundary.
fn no_evidence(sha: &str, runs: &[BisectRun]) -> Vec<String> {
    runs.iter()
        .filter(|r| r.verdict == RunVerdict::FailedOther)
        .map(|r| {
            format!(
                "build {} at {}: {}",
                r.build_number,
                crate::model::short_sha(sha),
                r.detail
                    .as_deref()
                    .unwrap_or("failed for another reason: no evidence either way")
            )
        })
        .collect()
}
