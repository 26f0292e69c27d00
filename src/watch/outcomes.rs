//! The one reader of job outcomes: the only path from "this job of this build" to "what its log
//! says", used by every tool (scan, latest nightly, job drill-down, test history, main-branch
//! analysis).
//!
//! A finished build or job log never changes, so what is learned from it is stored (the redb
//! [`Cache`]) and reused: a stored finished build costs no request, a stored job outcome no log
//! read. Running builds and jobs are never stored. Entries are kept per Buildkite token (a
//! digest of it), so a caller never reads what another caller's token could see.
//!
//! Reading a log: the tail (`max_log_bytes`) first; when it does not answer for the whole job
//! (see [`covers_job`]) one larger read follows. Buildkite serves only suffix ranges, so a larger
//! read holds the bytes already read; it is therefore sized from the log's total size (the first
//! answer's `Content-Range`) so that it is the only re-read: the whole log when it fits the
//! per-job cap, else the cap. An outcome records how much of the log it saw, so a tail-only
//! outcome is not reused as if it were the whole log when a larger read is allowed.

use super::Progress;
pub use crate::buildkite::BuildKey;
use crate::buildkite::{Build, BuildkiteClient, BuildkiteError, Job};
use crate::cache::{Cache, Table};
use crate::http::HttpError;
use crate::logs::{self, LogAnalysis};
use crate::model::JobStatus;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// A larger read of a log whose tail did not cover the job reads at most this many times the
/// tail (bounded by the log's size and the scan's byte budget): enough for the multi-megabyte
/// logs of vLLM's multi-command jobs without reading gigabyte logs whole.
pub const REREAD_FACTOR: u64 = 16;

/// What one read of a job may spend.
pub struct ReadLimits<'a> {
    /// Bytes of the first read, from the log's end.
    pub max_log_bytes: u64,
    /// Bytes left for the whole call (scan, history), re-reads included; shared by its reads.
    pub byte_budget: &'a AtomicU64,
}

impl ReadLimits<'_> {
    /// The largest read a job may get: the cap of the one re-read.
    fn largest_read(&self) -> u64 {
        self.max_log_bytes.saturating_mul(REREAD_FACTOR)
    }
}

/// What reading one job's log produced.
#[derive(Debug, Clone)]
pub struct JobRead {
    pub status: JobStatus,
    pub analysis: Option<LogAnalysis>,
    /// Why the log was not read, or read only in part.
    pub detail: Option<String>,
    /// Served from the store, without a request.
    pub stored: bool,
}

impl JobRead {
    fn failed(status: JobStatus, detail: String) -> Self {
        Self {
            status,
            analysis: None,
            detail: Some(detail),
            stored: false,
        }
    }
}

/// A job's outcome as stored: the parsed log and how much of it was seen.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredOutcome {
    status: JobStatus,
    analysis: Option<LogAnalysis>,
    detail: Option<String>,
    /// Bytes of the log the analysis saw (its end).
    bytes_seen: u64,
    /// The log's size.
    total_size: u64,
}

impl StoredOutcome {
    /// Whether this outcome answers a read with `limits`: it is complete (the whole job was
    /// covered, or the log is empty), or a fresh read could not see more than it did.
    fn answers(&self, limits: &ReadLimits<'_>) -> bool {
        match self.status {
            JobStatus::Analyzed | JobStatus::NoLog => true,
            JobStatus::PartlyAnalyzed => {
                self.bytes_seen >= self.total_size.min(limits.largest_read())
            }
            JobStatus::OverBudget | JobStatus::FetchError => false,
        }
    }

    fn into_read(self) -> JobRead {
        JobRead {
            status: self.status,
            analysis: self.analysis,
            detail: self.detail,
            stored: true,
        }
    }
}

/// The cleaned text of a job log's end, as the job-log views read it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogText {
    pub text: String,
    pub bytes_read: u64,
    pub total_size: u64,
    /// `text` is the whole log.
    pub complete: bool,
}

/// Counts of what the reader did, for results' `stats` and the tests.
#[derive(Debug, Default)]
pub struct ReadCounters {
    /// Builds and job outcomes served from the store.
    pub stored_hits: AtomicUsize,
    /// Log requests sent (first reads and re-reads).
    pub log_requests: AtomicUsize,
    /// Log bytes received.
    pub log_bytes: AtomicU64,
}

/// Reads builds and job outcomes through the store.
pub struct JobReader<'a> {
    client: &'a BuildkiteClient,
    store: Option<&'a Cache>,
    /// The token's scope in the store (see [`BuildkiteClient::token_scope`]).
    scope: String,
    pub counters: ReadCounters,
}

impl<'a> JobReader<'a> {
    pub fn new(client: &'a BuildkiteClient, store: Option<&'a Cache>) -> Self {
        Self {
            client,
            store,
            scope: client.token_scope(),
            counters: ReadCounters::default(),
        }
    }

    pub fn client(&self) -> &'a BuildkiteClient {
        self.client
    }

    /// A build with every job (retried attempts included): from the store when it finished
    /// earlier, else one request (stored when finished).
    pub async fn build(&self, key: &BuildKey) -> Result<Build, BuildkiteError> {
        if let Some(build) = self
            .store
            .and_then(|s| s.get::<Build>(Table::Builds, &build_store_key(&self.scope, key)))
        {
            self.counters.stored_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(build);
        }
        let build = self.client.get_build(key).await?;
        self.remember_build(key, &build);
        Ok(build)
    }

    /// Stores a finished build that came with its jobs (a listing with retried jobs), so a
    /// later look at it costs nothing.
    pub fn remember_build(&self, key: &BuildKey, build: &Build) {
        if let (Some(store), true) = (self.store, build.is_finished() && build.jobs.is_some()) {
            store.put(Table::Builds, &build_store_key(&self.scope, key), build);
        }
    }

    fn outcome_key(&self, job: &Job) -> String {
        format!("{}/{}", self.scope, job.id)
    }

    /// The stored outcome of `job`, when it answers a read with `limits`. No request.
    pub fn stored(&self, job: &Job, limits: &ReadLimits<'_>) -> Option<JobRead> {
        let stored = self
            .store?
            .get::<StoredOutcome>(Table::JobOutcomes, &self.outcome_key(job))
            .filter(|o| o.answers(limits))?;
        self.counters.stored_hits.fetch_add(1, Ordering::Relaxed);
        Some(stored.into_read())
    }

    /// The cleaned text of the last `max_bytes` of `job`'s log: stored for a finished job, so
    /// every later view of it costs no request.
    pub async fn log_text(
        &self,
        build: &BuildKey,
        job: &Job,
        max_bytes: u64,
    ) -> Result<LogText, BuildkiteError> {
        let key = self.outcome_key(job);
        if let Some(stored) = self
            .store
            .and_then(|s| s.get::<LogText>(Table::LogTexts, &key))
            .filter(|t| t.complete || t.bytes_read >= max_bytes)
        {
            self.counters.stored_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(stored);
        }
        let tail = self.tail(build, job, max_bytes).await?;
        let text = LogText {
            text: logs::clean_log(&tail.bytes),
            bytes_read: tail.bytes.len() as u64,
            total_size: tail.total_size,
            complete: tail.is_complete(),
        };
        if let (Some(store), true) = (self.store, job.is_finished()) {
            store.put(Table::LogTexts, &key, &text);
        }
        Ok(text)
    }

    /// What `job`'s log says: stored, or read (tail, then at most one larger read) and parsed
    /// once; the outcome of a finished job is stored.
    pub async fn job(&self, build: &BuildKey, job: &Job, limits: &ReadLimits<'_>) -> JobRead {
        if let Some(read) = self.stored(job, limits) {
            return read;
        }
        let (read, seen) = self.fetch(build, job, limits).await;
        if let (Some(store), Some((bytes_seen, total_size))) = (self.store, seen) {
            if job.is_finished() {
                let outcome = StoredOutcome {
                    status: read.status,
                    analysis: read.analysis.clone(),
                    detail: read.detail.clone(),
                    bytes_seen,
                    total_size,
                };
                store.put(Table::JobOutcomes, &self.outcome_key(job), &outcome);
            }
        }
        read
    }

    /// Reads and parses the log. The second value, `(bytes seen, total size)`, is set when the
    /// read is an answer worth storing (not an error or a budget stop).
    async fn fetch(
        &self,
        build: &BuildKey,
        job: &Job,
        limits: &ReadLimits<'_>,
    ) -> (JobRead, Option<(u64, u64)>) {
        if !reserve(limits.byte_budget, limits.max_log_bytes) {
            return (
                JobRead::failed(
                    JobStatus::OverBudget,
                    "the byte budget of this call was spent (raise CIWATCH_SCAN_BYTE_BUDGET)"
                        .into(),
                ),
                None,
            );
        }
        let tail = match self.tail(build, job, limits.max_log_bytes).await {
            Ok(tail) => tail,
            Err(BuildkiteError::Http(HttpError::NotFound(message))) => {
                return (JobRead::failed(JobStatus::NoLog, message), None)
            }
            Err(error) => {
                return (
                    JobRead::failed(JobStatus::FetchError, error.to_string()),
                    None,
                )
            }
        };
        if tail.bytes.is_empty() {
            let read = JobRead::failed(JobStatus::NoLog, "the log is empty".into());
            return (read, Some((0, 0)));
        }
        let commands = job
            .command
            .as_deref()
            .and_then(crate::pipeline::command_count);
        let mut analysis = logs::analyze_log(&logs::clean_log(&tail.bytes));
        let mut seen = tail.bytes.len() as u64;
        let analyzed = |analysis, seen| {
            let read = JobRead {
                status: JobStatus::Analyzed,
                analysis: Some(analysis),
                detail: None,
                stored: false,
            };
            (read, Some((seen, tail.total_size)))
        };
        if covers_job(tail.is_complete(), &analysis, commands) {
            return analyzed(analysis, seen);
        }
        let larger = tail.total_size.min(limits.largest_read());
        if larger > seen && reserve(limits.byte_budget, larger) {
            match self.tail(build, job, larger).await {
                Ok(bigger) => {
                    analysis = logs::analyze_log(&logs::clean_log(&bigger.bytes));
                    seen = bigger.bytes.len() as u64;
                    if covers_job(bigger.is_complete(), &analysis, commands) {
                        return analyzed(analysis, seen);
                    }
                }
                Err(error) => {
                    tracing::warn!(job = %job.id, %error, "re-reading a larger log tail failed")
                }
            }
        }
        let detail = format!(
            "read the last {seen} of {} log bytes without reaching the job's first command; failures in earlier commands may be missing",
            tail.total_size
        );
        let read = JobRead {
            status: JobStatus::PartlyAnalyzed,
            analysis: Some(analysis),
            detail: Some(detail),
            stored: false,
        };
        (read, Some((seen, tail.total_size)))
    }

    async fn tail(
        &self,
        build: &BuildKey,
        job: &Job,
        bytes: u64,
    ) -> Result<crate::buildkite::LogTail, BuildkiteError> {
        self.counters.log_requests.fetch_add(1, Ordering::Relaxed);
        let tail = self.client.job_log_tail(build, &job.id, bytes).await?;
        self.counters
            .log_bytes
            .fetch_add(tail.bytes.len() as u64, Ordering::Relaxed);
        Ok(tail)
    }

    /// Reads `jobs` (each of its build) concurrently (at most `concurrency` in flight; the
    /// request budget paces them), reporting each as it finishes. Results are in `jobs`' order.
    pub async fn jobs(
        &self,
        jobs: &[(&BuildKey, &Job)],
        limits: &ReadLimits<'_>,
        concurrency: usize,
        progress: &dyn Progress,
    ) -> Vec<JobRead> {
        use futures::StreamExt;
        let done = AtomicUsize::new(0);
        let total = jobs.len();
        // Futures are built up front (not in a stream closure) so the caller's future stays `Send`.
        let reads: Vec<_> = jobs
            .iter()
            .map(|&(build, job)| async {
                let read = self.job(build, job, limits).await;
                let finished = done.fetch_add(1, Ordering::Relaxed) + 1;
                progress.report(finished, total, job.display_name());
                read
            })
            .collect();
        futures::stream::iter(reads)
            .buffered(concurrency.max(1))
            .collect()
            .await
    }
}

/// Whether the text read answers for the whole job, so no earlier failure can be missing: it is
/// the whole log, reaches the first command header, shows test failures that explain the exit
/// status, or, for a job of one command, shows the error that ended it.
pub fn covers_job(complete: bool, analysis: &LogAnalysis, commands: Option<u32>) -> bool {
    complete
        || analysis.reaches_first_command()
        || !analysis.tests.is_empty()
        || (commands.is_some_and(|n| n <= 1)
            && analysis.job_level.as_ref().is_some_and(|l| l.explained))
}

fn build_store_key(scope: &str, key: &BuildKey) -> String {
    format!("{scope}/{}/{}/{}", key.org, key.pipeline, key.number)
}

fn reserve(budget: &AtomicU64, bytes: u64) -> bool {
    budget
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
            left.checked_sub(bytes)
        })
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn analysis_of(text: &str) -> LogAnalysis {
        logs::analyze_log(text)
    }

    #[test]
    fn coverage_of_a_tail() {
        let exit_only = analysis_of("noise\n🚨 Error: The command exited with status 1\n");
        assert!(!covers_job(false, &exit_only, Some(1)));
        assert!(covers_job(true, &exit_only, Some(1)));
        let error = analysis_of("noise\nRuntimeError: CUDA error: an illegal memory access\n🚨 Error: The command exited with status 1\n");
        // One command: its error is the failure that ended the job.
        assert!(covers_job(false, &error, Some(1)));
        // Several: an earlier command may have failed too.
        assert!(!covers_job(false, &error, Some(6)));
        assert!(!covers_job(false, &error, None));
        let first = analysis_of("+++ :test_tube: Command (1/6): pytest a\nRuntimeError: x\n");
        assert!(covers_job(false, &first, Some(6)));
    }

    #[test]
    fn a_partial_outcome_answers_only_when_a_fresh_read_could_not_see_more() {
        let budget = AtomicU64::new(u64::MAX);
        let limits = ReadLimits {
            max_log_bytes: 100,
            byte_budget: &budget,
        };
        let outcome = |bytes_seen, total_size| StoredOutcome {
            status: JobStatus::PartlyAnalyzed,
            analysis: None,
            detail: None,
            bytes_seen,
            total_size,
        };
        // Seen 1,600 of 10,000 bytes: the cap (16 x 100) was reached.
        assert!(outcome(1600, 10_000).answers(&limits));
        // Seen only the 100-byte tail of a 1,000-byte log: a fresh read sees it all.
        assert!(!outcome(100, 1000).answers(&limits));
        let larger = ReadLimits {
            max_log_bytes: 1000,
            byte_budget: &budget,
        };
        assert!(!outcome(1600, 10_000).answers(&larger));
    }
}
