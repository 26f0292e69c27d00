//! One test across many builds: which jobs run it (from their commands), what each run said
//! (passed jobs count as passes without reading logs; failed jobs' log tails are searched for
//! the exact test id), and the assessment. Finished builds and parsed job outcomes come from the
//! on-disk cache when present, so a repeated history costs one listing request.

use super::{Progress, WatchError};
use crate::buildkite::{Build, BuildkiteClient, Job, ListBuilds};
use crate::cache::{Cache, Table};
use crate::logs;
use crate::model::{HistoryJob, HistoryResult, HistoryStats, TimelineEntry};
use crate::triage::history::{assess, Observation, TestStatus};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

/// Builds a history may look at; Buildkite lists 100 per page.
pub const MAX_LOOKBACK_BUILDS: usize = 300;

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
    /// Bytes read from the end of each log (the original's 200 KB, per log instead of in all).
    pub max_log_bytes: u64,
    pub concurrency: usize,
    /// `owner/name`, for compare URLs.
    pub repo: String,
}

/// A failed test as stored for a job.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct FailedTest {
    id: String,
    error_message: Option<String>,
    excerpt: Option<String>,
}

/// What a finished job's log said, parsed once and cached by job id.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct JobOutcome {
    failed: Vec<FailedTest>,
    passed: Vec<String>,
}

impl JobOutcome {
    fn from_analysis(analysis: logs::LogAnalysis) -> Self {
        Self {
            failed: analysis
                .tests
                .into_iter()
                .map(|t| FailedTest {
                    id: t.node_id,
                    error_message: t.error_message,
                    excerpt: t.excerpt,
                })
                .collect(),
            passed: analysis.passed,
        }
    }
}

/// A node id with the `tests/` prefix pytest's working directory adds or drops removed, so
/// `tests/a/test_b.py::t` and `a/test_b.py::t` compare equal — and nothing else does.
fn comparable(id: &str) -> &str {
    let id = id.trim().trim_start_matches("/vllm-workspace/");
    id.strip_prefix("tests/").unwrap_or(id)
}

pub async fn test_history(
    client: &BuildkiteClient,
    cache: Option<&Cache>,
    org: &str,
    pipeline: &str,
    test_nodeid: &str,
    options: &HistoryOptions,
    progress: &dyn Progress,
) -> Result<HistoryResult, WatchError> {
    let started = Instant::now();
    let requests_before = client.http().counters.requests.load(Ordering::Relaxed);
    let lookback = options.lookback_builds.clamp(1, MAX_LOOKBACK_BUILDS);
    let mut warnings = Vec::new();
    if options.lookback_builds > MAX_LOOKBACK_BUILDS {
        warnings.push(format!("lookback_builds capped at {MAX_LOOKBACK_BUILDS}"));
    }
    let wanted_pages = lookback.div_ceil(100) * if options.nightly_only { 4 } else { 1 };
    let filter = ListBuilds {
        branch: Some(options.branch.clone()),
        exclude_jobs: true,
        finished_only: true,
        ..Default::default()
    };
    let listed = client
        .list_builds(org, pipeline, &filter, wanted_pages.min(10))
        .await?;
    let chosen: Vec<&Build> = listed
        .iter()
        .filter(|b| !options.nightly_only || super::nightly::is_nightly(b))
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

    let test_file = test_nodeid.split("::").next().unwrap_or(test_nodeid);
    let file_paths = crate::owners::source::repo_path_candidates(test_file);
    let wanted = comparable(test_nodeid).to_string();
    let hits = AtomicUsize::new(0);
    let logs_read = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let bytes = AtomicU64::new(0);
    let total = chosen.len();

    // Futures are built up front (not in a stream closure) so the history future stays `Send`.
    let pending: Vec<_> = chosen
        .iter()
        .map(|listed| {
            let (hits, logs_read, done, bytes) = (&hits, &logs_read, &done, &bytes);
            let (file_paths, wanted) = (&file_paths, &wanted);
            async move {
                let entry = build_entry(
                    client, cache, org, pipeline, listed, file_paths, wanted, options, hits,
                    logs_read, bytes,
                )
                .await;
                let finished = done.fetch_add(1, Ordering::Relaxed) + 1;
                progress.report(finished, total, &format!("build {}", listed.number));
                entry
            }
        })
        .collect();
    let entries: Vec<(TimelineEntry, Vec<String>)> = futures::stream::iter(pending)
        .buffered(options.concurrency.max(1))
        .collect()
        .await;

    let mut timeline = Vec::with_capacity(entries.len());
    for (entry, entry_warnings) in entries {
        warnings.extend(entry_warnings);
        timeline.push(entry);
    }
    let observations: Vec<Observation> = timeline
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
        .collect();
    let assessment = assess(&observations, &options.repo);
    let summary = crate::report::history_summary(test_nodeid, &timeline, &assessment);
    let stats = HistoryStats {
        builds_considered: timeline.len(),
        builds_with_test: timeline.iter().filter(|e| e.test_found).count(),
        logs_read: logs_read.load(Ordering::Relaxed),
        log_bytes_fetched: bytes.load(Ordering::Relaxed),
        cache_hits: hits.load(Ordering::Relaxed),
        api_requests: client.http().counters.requests.load(Ordering::Relaxed) - requests_before,
        elapsed_ms: started.elapsed().as_millis() as u64,
    };
    Ok(HistoryResult {
        test_nodeid: test_nodeid.to_string(),
        timeline,
        assessment,
        summary,
        warnings,
        stats,
    })
}

#[allow(clippy::too_many_arguments)]
async fn build_entry(
    client: &BuildkiteClient,
    cache: Option<&Cache>,
    org: &str,
    pipeline: &str,
    listed: &Build,
    file_paths: &[String],
    wanted: &str,
    options: &HistoryOptions,
    hits: &AtomicUsize,
    logs_read: &AtomicUsize,
    bytes: &AtomicU64,
) -> (TimelineEntry, Vec<String>) {
    let mut warnings = Vec::new();
    let mut entry = TimelineEntry {
        build_number: listed.number,
        build_url: listed.web_url.clone().unwrap_or_default(),
        created_at: listed.created_at.clone(),
        commit_sha: listed.commit.clone().unwrap_or_default(),
        test_found: false,
        test_status: TestStatus::Unknown,
        jobs: Vec::new(),
    };
    let build_key = format!("{org}/{pipeline}/{}", listed.number);
    let build = match cache.and_then(|c| c.get::<Build>(Table::Builds, &build_key)) {
        Some(build) => {
            hits.fetch_add(1, Ordering::Relaxed);
            build
        }
        None => match client.get_build(org, pipeline, listed.number).await {
            Ok(build) => {
                if let (Some(cache), Some(_)) = (cache, build.finished_at.as_ref()) {
                    cache.put(Table::Builds, &build_key, &build);
                }
                build
            }
            Err(error) => {
                warnings.push(format!("build {}: {error}", listed.number));
                return (entry, warnings);
            }
        },
    };

    let relevant = relevant_jobs(&build, file_paths, options.job_filter.as_deref());
    let mut failed_read = 0usize;
    for job in relevant {
        let job_url = job.web_url.clone().unwrap_or_default();
        let record = |status, failure: Option<&FailedTest>| HistoryJob {
            job_name: job.display_name().to_string(),
            job_url: job_url.clone(),
            status,
            error_message: failure.and_then(|f| f.error_message.clone()),
            fingerprint: failure
                .and_then(|f| f.error_message.as_deref())
                .map(crate::triage::fingerprint),
            log_excerpt: failure
                .filter(|_| options.include_logs)
                .and_then(|f| f.excerpt.clone()),
        };
        match job.state() {
            "passed" => entry.jobs.push(record(TestStatus::Pass, None)),
            "failed" | "timed_out" if failed_read < options.max_jobs_per_build => {
                failed_read += 1;
                let Some(outcome) = job_outcome(
                    client,
                    cache,
                    org,
                    pipeline,
                    build.number,
                    job,
                    options,
                    hits,
                    logs_read,
                    bytes,
                    &mut warnings,
                )
                .await
                else {
                    continue;
                };
                if let Some(failure) = outcome.failed.iter().find(|f| comparable(&f.id) == wanted) {
                    entry.jobs.push(record(TestStatus::Fail, Some(failure)));
                } else if outcome.passed.iter().any(|p| comparable(p) == wanted) {
                    entry.jobs.push(record(TestStatus::Pass, None));
                }
            }
            "failed" | "timed_out" => warnings.push(format!(
                "build {}: more than {} failed jobs run the test; the rest were not read",
                build.number, options.max_jobs_per_build
            )),
            _ => {}
        }
    }
    entry.test_found = !entry.jobs.is_empty();
    entry.test_status = if entry.jobs.iter().any(|j| j.status == TestStatus::Fail) {
        TestStatus::Fail
    } else if entry.test_found {
        TestStatus::Pass
    } else {
        TestStatus::Unknown
    };
    (entry, warnings)
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

#[allow(clippy::too_many_arguments)]
async fn job_outcome(
    client: &BuildkiteClient,
    cache: Option<&Cache>,
    org: &str,
    pipeline: &str,
    number: u64,
    job: &Job,
    options: &HistoryOptions,
    hits: &AtomicUsize,
    logs_read: &AtomicUsize,
    bytes: &AtomicU64,
    warnings: &mut Vec<String>,
) -> Option<JobOutcome> {
    if let Some(outcome) = cache.and_then(|c| c.get::<JobOutcome>(Table::JobOutcomes, &job.id)) {
        hits.fetch_add(1, Ordering::Relaxed);
        return Some(outcome);
    }
    match client
        .job_log_tail(org, pipeline, number, &job.id, options.max_log_bytes)
        .await
    {
        Ok(tail) => {
            logs_read.fetch_add(1, Ordering::Relaxed);
            bytes.fetch_add(tail.bytes.len() as u64, Ordering::Relaxed);
            let outcome =
                JobOutcome::from_analysis(logs::analyze_log(&logs::clean_log(&tail.bytes)));
            if let Some(cache) = cache {
                cache.put(Table::JobOutcomes, &job.id, &outcome);
            }
            Some(outcome)
        }
        Err(error) => {
            warnings.push(format!(
                "build {number}, job {}: {error}",
                job.display_name()
            ));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_compare_without_prefix_confusion() {
        assert_eq!(
            comparable("tests/a/test_b.py::t[1]"),
            comparable("a/test_b.py::t[1]")
        );
        assert_ne!(
            comparable("a/test_b.py::t"),
            comparable("a/test_b.py::t[1]")
        );
        assert_ne!(comparable("a/test_b.py::t"), comparable("a/test_b.py::t_2"));
    }
}
