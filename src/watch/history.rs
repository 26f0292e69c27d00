//! One test across many builds: which jobs run it (from their commands), what each run said
//! (passed jobs count as passes without reading logs; failed jobs' logs, read through the
//! job-outcome reader, are searched for the exact test id), and the assessment. Jobs come with
//! the build listing; failed jobs are read where the job's state changes first, then newest
//! first, within a log budget. Stored outcomes cost nothing, so a repeated history costs one
//! listing request.

use super::{Progress, WatchError};
use crate::buildkite::{Build, BuildKey, Job, ListBuilds, PipelineKey};
use crate::input::{comparable, NodeId};
use crate::logs::PytestFailure;
use crate::model::{HistoryJob, HistoryResult, HistoryStats, TimelineEntry};
use crate::reader::{JobRead, JobReader, ReadLimits};
use crate::triage::history::{assess, Observation, TestStatus};
use futures::StreamExt;
use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::time::Instant;

/// Builds a history may look at; Buildkite lists 100 per page.
pub const MAX_LOOKBACK_BUILDS: usize = 300;

/// Failed-job logs one history reads by default (stored outcomes do not count): at Buildkite's
/// 50 requests a minute per user, this leaves room for the rest of a morning's routine.
pub const DEFAULT_HISTORY_LOGS: usize = 40;

#[derive(Debug, Clone)]
pub struct HistoryOptions {
    pub branch: String,
    pub lookback_builds: usize,
    /// Only scheduled nightly builds.
    pub nightly_only: bool,
    /// Case-insensitive substring of the job name; narrows the jobs found from commands, or
    /// replaces that search when no command names the test's file.
    pub job_filter: Option<String>,
    pub include_logs: bool,
    /// Failed jobs whose logs are read per build (the original's 20).
    pub max_jobs_per_build: usize,
    /// Failed-job logs read in all (stored outcomes are free); the rest are listed as not read.
    pub max_logs: usize,
    /// Bytes read from the end of each log (the original's 200 KB, per log instead of in all).
    pub max_log_bytes: u64,
    /// The largest log read whole (a multi-command job whose tail misses its first command).
    pub max_whole_log_bytes: u64,
    pub concurrency: usize,
    /// `owner/name`, for compare URLs.
    pub repo: String,
}

/// One failed job that runs the test, to be read: where it sits in the timeline.
struct PendingRead<'b> {
    entry: usize,
    job: &'b Job,
}

pub async fn test_history(
    reader: &JobReader<'_>,
    pipeline: &PipelineKey,
    test_nodeid: &NodeId,
    options: &HistoryOptions,
    progress: &dyn Progress,
) -> Result<HistoryResult, WatchError> {
    let (org, pipeline) = (pipeline.org.as_str(), pipeline.pipeline.as_str());
    let work = async {
        let before = Counted::take(reader);
        let lookback = options.lookback_builds.clamp(1, MAX_LOOKBACK_BUILDS);
        let mut warnings = Vec::new();
        if options.lookback_builds > MAX_LOOKBACK_BUILDS {
            warnings.push(format!("lookback_builds capped at {MAX_LOOKBACK_BUILDS}"));
        }
        let call = HistoryCall {
            reader,
            org,
            pipeline,
            options,
            progress,
        };
        let builds = chosen_builds(&call, lookback, &mut warnings).await?;
        let file_paths = crate::owners::source::repo_path_candidates(test_nodeid.file());
        let (mut timeline, pending) =
            runs_without_logs(&builds, &file_paths, options, &mut warnings);
        let keys: Vec<BuildKey> = builds
            .iter()
            .map(|b| BuildKey::new(org, pipeline, b.number))
            .collect();
        let (reads, logs_read) = read_pending(&call, &keys, &timeline, &pending).await;
        let (read_builds, not_read) = record_reads(
            &mut timeline,
            pending.iter().zip(reads).collect(),
            test_nodeid.comparable(),
            options,
            &mut warnings,
        );
        for entry in &mut timeline {
            settle(entry);
        }
        let observations = observations(&timeline);
        let assessment = assess(&observations, &options.repo);
        let summary = crate::report::history_summary(test_nodeid.as_str(), &timeline, &assessment);
        let stats = HistoryStats {
            builds_considered: timeline.len(),
            builds_with_test: timeline.iter().filter(|e| e.test_found).count(),
            logs_read,
            builds_read: read_builds.into_iter().rev().collect(),
            builds_not_read: not_read.into_iter().rev().collect(),
            ..before.since(reader)
        };
        Ok(HistoryResult {
            test_nodeid: test_nodeid.to_string(),
            timeline,
            assessment,
            summary,
            warnings,
            stats,
        })
    };
    crate::call::answered(work, |r| &mut r.warnings).await
}

/// One history call: what each of its steps reads.
#[derive(Clone, Copy)]
struct HistoryCall<'a> {
    reader: &'a JobReader<'a>,
    org: &'a str,
    pipeline: &'a str,
    options: &'a HistoryOptions,
    progress: &'a dyn Progress,
}

/// The reader's and the call's counters at the start of a history, so its stats count only
/// its own.
struct Counted {
    started: Instant,
    requests: u64,
    log_bytes: u64,
    stored_hits: usize,
}

impl Counted {
    fn take(reader: &JobReader<'_>) -> Self {
        Self {
            started: Instant::now(),
            requests: crate::call::call_totals().buildkite_requests,
            log_bytes: reader.counters.log_bytes.load(Ordering::Relaxed),
            stored_hits: reader.counters.stored_hits.load(Ordering::Relaxed),
        }
    }

    fn since(&self, reader: &JobReader<'_>) -> HistoryStats {
        HistoryStats {
            log_bytes_fetched: reader.counters.log_bytes.load(Ordering::Relaxed) - self.log_bytes,
            cache_hits: reader.counters.stored_hits.load(Ordering::Relaxed) - self.stored_hits,
            api_requests: crate::call::call_totals().buildkite_requests - self.requests,
            elapsed_ms: self.started.elapsed().as_millis() as u64,
            ..HistoryStats::default()
        }
    }
}

/// What each build's jobs say without a log (passed jobs that run the file are passes), and
/// the failed jobs that run it, to be read.
fn runs_without_logs<'b>(
    builds: &'b [Build],
    file_paths: &[String],
    options: &HistoryOptions,
    warnings: &mut Vec<String>,
) -> (Vec<TimelineEntry>, Vec<PendingRead<'b>>) {
    let mut timeline: Vec<TimelineEntry> = builds.iter().map(timeline_entry).collect();
    let mut pending: Vec<PendingRead<'_>> = Vec::new();
    let mut ran_jobs = std::collections::BTreeSet::new();
    for (index, build) in builds.iter().enumerate() {
        let relevant = relevant_jobs(build, file_paths, options.job_filter.as_deref());
        if relevant.is_empty() {
            ran_jobs.extend(
                build
                    .latest_attempts()
                    .map(|j| j.display_name().to_string()),
            );
        }
        let mut failed = 0usize;
        for job in relevant {
            if job.is_passed() {
                timeline[index]
                    .jobs
                    .push(history_job(job, TestStatus::Pass, None, options));
            } else if job.is_failed() {
                failed += 1;
                if failed <= options.max_jobs_per_build {
                    pending.push(PendingRead { entry: index, job });
                } else {
                    warnings.push(format!(
                        "build {}: more than {} failed jobs run the test; the rest were not read",
                        build.number, options.max_jobs_per_build
                    ));
                }
            }
        }
    }
    if timeline.iter().all(|e| e.jobs.is_empty()) && pending.is_empty() {
        let names: Vec<String> = ran_jobs.into_iter().take(30).collect();
        warnings.push(format!(
            "no job's command runs {} in these {} builds{}; pass job_filter with a job name to search failed jobs' logs instead. Jobs that ran: {}",
            file_paths.join(" or "),
            builds.len(),
            options.job_filter.as_deref().map(|f| format!(" (job_filter {f:?})")).unwrap_or_default(),
            names.join(", ")
        ));
    }
    (timeline, pending)
}

/// Reads the pending jobs: stored outcomes (free), then up to `max_logs` logs in
/// [`read_order`]. `None` for a job left unread; also the number of logs read.
async fn read_pending(
    call: &HistoryCall<'_>,
    keys: &[BuildKey],
    timeline: &[TimelineEntry],
    pending: &[PendingRead<'_>],
) -> (Vec<Option<JobRead>>, usize) {
    let (reader, options, progress) = (call.reader, call.options, call.progress);
    let limits = ReadLimits {
        max_log_bytes: options.max_log_bytes,
        max_whole_log_bytes: options.max_whole_log_bytes,
        max_scan_bytes: u64::MAX,
    };
    let order = read_order(timeline, pending);
    let pending_jobs: Vec<&Job> = pending.iter().map(|p| p.job).collect();
    let mut reads: Vec<Option<JobRead>> = reader.stored_all(&pending_jobs, &limits).await;
    let to_fetch: Vec<usize> = order
        .into_iter()
        .filter(|&i| reads[i].is_none())
        .take(options.max_logs)
        .collect();
    let total = to_fetch.len();
    progress.report(0, total, &format!("reading {total} failed-job logs"));
    let to_read: Vec<(&BuildKey, &Job)> = to_fetch
        .iter()
        .map(|&i| (&keys[pending[i].entry], pending[i].job))
        .collect();
    let fetched = reader
        .jobs(&to_read, &limits, options.concurrency, progress)
        .await;
    let logs_read = fetched.len();
    for (i, read) in to_fetch.into_iter().zip(fetched) {
        reads[i] = Some(read);
    }
    (reads, logs_read)
}

/// Puts what each read log says about the test (`wanted`, comparable) on the timeline.
/// Returns the builds read and the builds with a failed job left unread.
fn record_reads(
    timeline: &mut [TimelineEntry],
    reads: Vec<(&PendingRead<'_>, Option<JobRead>)>,
    wanted: &str,
    options: &HistoryOptions,
    warnings: &mut Vec<String>,
) -> (BTreeSet<u64>, BTreeSet<u64>) {
    let mut not_read = BTreeSet::new();
    let mut read_builds = BTreeSet::new();
    for (pending, read) in reads {
        let entry = &mut timeline[pending.entry];
        let Some(read) = read else {
            not_read.insert(entry.build_number);
            entry
                .jobs
                .push(history_job(pending.job, TestStatus::Unknown, None, options));
            continue;
        };
        read_builds.insert(entry.build_number);
        let Some(analysis) = read.analysis else {
            warnings.push(format!(
                "build {}, job {}: {}",
                entry.build_number,
                pending.job.display_name(),
                read.detail.as_deref().unwrap_or("no log")
            ));
            continue;
        };
        if let Some(failure) = analysis
            .tests
            .iter()
            .find(|f| comparable(&f.node_id) == wanted)
        {
            entry.jobs.push(history_job(
                pending.job,
                TestStatus::Fail,
                Some(failure),
                options,
            ));
        } else if analysis.passed.iter().any(|p| comparable(p) == wanted) {
            entry
                .jobs
                .push(history_job(pending.job, TestStatus::Pass, None, options));
        }
    }
    if !not_read.is_empty() {
        warnings.push(format!(
            "{} builds have failed jobs that run the test whose logs were not read (budget of {} logs; raise max_logs): {}",
            not_read.len(),
            options.max_logs,
            not_read.iter().rev().map(|n| n.to_string()).collect::<Vec<_>>().join(", ")
        ));
    }
    (read_builds, not_read)
}

/// A build's word on the test from its jobs': failed when any run failed, passed when runs
/// only passed.
fn settle(entry: &mut TimelineEntry) {
    entry.test_found = entry.jobs.iter().any(|j| j.status != TestStatus::Unknown);
    entry.test_status = if entry.jobs.iter().any(|j| j.status == TestStatus::Fail) {
        TestStatus::Fail
    } else if entry.jobs.iter().any(|j| j.status == TestStatus::Pass) {
        TestStatus::Pass
    } else {
        TestStatus::Unknown
    };
}

/// The builds to follow, newest first, each with its jobs. Every build's jobs come with the
/// listing (one request per 100 builds) — except for nightly-only histories, whose nightlies
/// are a few among hundreds of builds: those are listed without jobs and each nightly read
/// through the store (a request only the first time).
async fn chosen_builds(
    call: &HistoryCall<'_>,
    lookback: usize,
    warnings: &mut Vec<String>,
) -> Result<Vec<Build>, WatchError> {
    let (reader, org, pipeline, options) = (call.reader, call.org, call.pipeline, call.options);
    let client = reader.client();
    let filter = ListBuilds {
        branch: Some(options.branch.clone()),
        exclude_jobs: options.nightly_only,
        finished_only: true,
        per_page: if options.nightly_only {
            100
        } else {
            lookback.min(100)
        },
        ..Default::default()
    };
    let wanted = |b: &Build| !options.nightly_only || super::nightly::is_nightly(b);
    let pages = if options.nightly_only {
        super::nightly::pages_for_nightlies(lookback)
    } else {
        lookback.div_ceil(100)
    };
    let listing = client
        .list_builds(&PipelineKey::new(org, pipeline), &filter, pages, |builds| {
            builds.iter().filter(|b| wanted(b)).count() >= lookback
        })
        .await?;
    let kind = if options.nightly_only {
        "nightlies"
    } else {
        "builds"
    };
    warnings.extend(listing.cut_warning(&format!(
        "{lookback} {kind} on {} of {org}/{pipeline}",
        options.branch
    )));
    let chosen: Vec<Build> = listing
        .builds
        .into_iter()
        .filter(wanted)
        .take(lookback)
        .collect();
    if chosen.is_empty() {
        let kind = if options.nightly_only {
            "nightly builds"
        } else {
            "finished builds"
        };
        return Err(WatchError::NotFound(format!(
            "no {kind} found on branch {} of {org}/{pipeline}",
            options.branch
        )));
    }
    if !options.nightly_only {
        for build in &chosen {
            reader
                .remember_build(&BuildKey::new(org, pipeline, build.number), build)
                .await;
        }
        return Ok(chosen);
    }
    Ok(nightlies_with_jobs(call, chosen, warnings).await)
}

/// Nightlies listed without jobs, each with its jobs: from the store while the listing shows
/// it unchanged, else one request. A build that cannot be read stays as listed, with a warning.
async fn nightlies_with_jobs(
    call: &HistoryCall<'_>,
    chosen: Vec<Build>,
    warnings: &mut Vec<String>,
) -> Vec<Build> {
    let (reader, org, pipeline, options) = (call.reader, call.org, call.pipeline, call.options);
    let fetches: Vec<_> = chosen
        .iter()
        .map(|b| async move {
            reader
                .build_as_listed(&BuildKey::new(org, pipeline, b.number), b)
                .await
        })
        .collect();
    let fetched: Vec<_> = futures::stream::iter(fetches)
        .buffered(options.concurrency.max(1))
        .collect()
        .await;
    let mut builds = Vec::with_capacity(chosen.len());
    for (listed, fetched) in chosen.into_iter().zip(fetched) {
        match fetched {
            Ok(build) => builds.push(build),
            Err(error) => {
                warnings.push(format!("build {}: {error}", listed.number));
                builds.push(listed);
            }
        }
    }
    builds
}

fn timeline_entry(build: &Build) -> TimelineEntry {
    TimelineEntry {
        build_number: build.number,
        build_url: build.web_url.clone().unwrap_or_default(),
        created_at: build.created_at.clone(),
        commit_sha: build.commit.clone().unwrap_or_default(),
        test_found: false,
        test_status: TestStatus::Unknown,
        jobs: Vec::new(),
    }
}

fn history_job(
    job: &Job,
    status: TestStatus,
    failure: Option<&PytestFailure>,
    options: &HistoryOptions,
) -> HistoryJob {
    HistoryJob {
        job_name: job.display_name().to_string(),
        job_url: job.web_url.clone().unwrap_or_default(),
        status,
        error_message: failure.and_then(|f| f.error_message.clone()),
        fingerprint: failure
            .and_then(|f| f.error_message.as_deref())
            .map(crate::triage::fingerprint),
        log_excerpt: failure
            .filter(|_| options.include_logs)
            .and_then(|f| f.excerpt.clone()),
    }
}

/// Which failed jobs to read first: where the job's state changes between neighbouring builds
/// (a regression's or fix's transition sits there), then newest first. Indexes into `pending`.
fn read_order(timeline: &[TimelineEntry], pending: &[PendingRead<'_>]) -> Vec<usize> {
    let failed_at: std::collections::HashSet<usize> = pending.iter().map(|p| p.entry).collect();
    let state = |i: usize| failed_at.contains(&i);
    let at_transition = |i: usize| {
        let changed = |j: usize| j < timeline.len() && !timeline[j].jobs.is_empty() && !state(j);
        (i > 0 && changed(i - 1)) || changed(i + 1)
    };
    let mut order: Vec<usize> = (0..pending.len()).collect();
    // Timeline entries are newest first, so a smaller entry index is newer.
    order.sort_by_key(|&i| (!at_transition(pending[i].entry), pending[i].entry));
    order
}

/// The assessment's input: one observation per build and outcome.
fn observations(timeline: &[TimelineEntry]) -> Vec<Observation> {
    timeline
        .iter()
        .flat_map(|entry| {
            // A build where the test failed and also passed (a retry) gives both outcomes on
            // one commit, which the assessment reads as flaky.
            let statuses: Vec<TestStatus> = [TestStatus::Fail, TestStatus::Pass]
                .into_iter()
                .filter(|s| entry.jobs.iter().any(|j| j.status == *s))
                .collect();
            let fingerprints: Vec<String> = entry
                .jobs
                .iter()
                .filter_map(|j| j.fingerprint.clone())
                .collect();
            let statuses = if statuses.is_empty() {
                vec![TestStatus::Unknown]
            } else {
                statuses
            };
            statuses.into_iter().map(move |status| Observation {
                build_number: entry.build_number,
                commit: entry.commit_sha.clone(),
                status,
                fingerprints: if status == TestStatus::Fail {
                    fingerprints.clone()
                } else {
                    Vec::new()
                },
            })
        })
        .collect()
}

/// Script jobs that run the test's file according to their commands, narrowed by `job_filter`;
/// with a filter and no command naming the file, the filter alone decides.
fn relevant_jobs<'b>(
    build: &'b Build,
    file_paths: &[String],
    job_filter: Option<&str>,
) -> Vec<&'b Job> {
    let scripts = || build.jobs().iter().filter(|j| j.is_script());
    let name_ok = |job: &Job| {
        job_filter.is_none_or(|f| {
            job.display_name()
                .to_lowercase()
                .contains(&f.to_lowercase())
        })
    };
    let by_command: Vec<&Job> = scripts()
        .filter(|job| {
            job.command.as_deref().is_some_and(|cmd| {
                file_paths
                    .iter()
                    .any(|path| crate::pipeline::runs_test_file(cmd, path))
            })
        })
        .filter(|job| name_ok(job))
        .collect();
    if !by_command.is_empty() || job_filter.is_none() {
        return by_command;
    }
    scripts().filter(|job| name_ok(job)).collect()
}
