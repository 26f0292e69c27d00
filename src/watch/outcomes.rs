//! The one reader of job outcomes: the only path from "this job of this build" to "what its log
//! says", used by every tool (scan, latest nightly, job drill-down, test history, main-branch
//! analysis).
//!
//! A finished build or job log never changes, so what is learned from it is stored (the
//! [`Store`]: the embedded redb file, or a Redis shared by replicas) and reused: a stored job
//! outcome costs no log read. A job's log is read by one reader at a time (the store's lease):
//! others wait for its outcome. Running builds and jobs are never stored. Entries are kept per Buildkite token (a
//! digest of it), so a caller never reads what another caller's token could see.
//!
//! Builds are not frozen: a job retried after the build finished gives it a new attempt and a new
//! `finished_at`. A stored build is therefore reused only within a short freshness window
//! ([`DEFAULT_BUILD_FRESHNESS`]), or when a fresh listing shows it unchanged
//! ([`JobReader::build_as_listed`]). Job outcomes are stored by job id: a finished job's log
//! never changes. Nothing of a build that is still running is stored, its finished jobs
//! included.
//!
//! Reading a log: the tail (`max_log_bytes`) first; when it does not answer for the whole job
//! (see [`covers_job`]) one larger read follows. Buildkite serves only suffix ranges, so a larger
//! read holds the bytes already read; it is therefore sized from the log's total size (the first
//! answer's `Content-Range`) so that it is the only re-read: the whole log, up to
//! `max_whole_log_bytes` and what is left of the call's byte budget. A job whose log could not
//! be read back to its first command is `partly_analyzed`, with what was not read. An outcome
//! records how much of the log it saw, so a partial outcome is not reused as if it were the
//! whole log when a larger read is allowed.

use super::coverage::{command_count, covers_job, partial_detail};
pub use super::stored::LogText;
use super::stored::{StoredBuild, StoredOutcome};
use super::Progress;
pub use crate::buildkite::BuildKey;
use crate::buildkite::{Build, BuildkiteClient, BuildkiteError, Job};
use crate::cache::Table;
use crate::http::HttpError;
use crate::logs::{self, LogAnalysis};
use crate::model::JobStatus;
use crate::store::{Lease, Store};
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// The largest log read whole by default (`CIWATCH_MAX_WHOLE_LOG_BYTES`): vLLM's longest
/// multi-command jobs write tens of megabytes.
pub const DEFAULT_MAX_WHOLE_LOG_BYTES: u64 = 64 * 1024 * 1024;

/// How long a stored build is reused without asking Buildkite again
/// (`CIWATCH_BUILD_FRESHNESS_SECS`). By default not at all: a look at a build costs one request
/// and a job retried a moment ago shows up; a team that wants fewer requests may allow a few
/// minutes. Builds a listing shows unchanged are reused whatever the window.
pub const DEFAULT_BUILD_FRESHNESS: Duration = Duration::ZERO;

/// What one read of a job may spend.
pub struct ReadLimits<'a> {
    /// Bytes of the first read, from the log's end.
    pub max_log_bytes: u64,
    /// Bytes left for the whole call (scan, history), re-reads included; shared by its reads.
    pub byte_budget: &'a AtomicU64,
    /// The largest read of one log: the cap of the one re-read.
    pub max_whole_log_bytes: u64,
}

impl ReadLimits<'_> {
    pub(super) fn largest_read(&self) -> u64 {
        self.max_whole_log_bytes.max(self.max_log_bytes)
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
    store: Option<&'a Store>,
    /// The token's scope in the store (see [`BuildkiteClient::token_scope`]).
    scope: String,
    /// How long a stored build is reused without a request.
    build_freshness: Duration,
    /// Builds this reader saw unfinished: nothing of them is stored.
    running: Mutex<HashSet<BuildKey>>,
    pub counters: ReadCounters,
}

impl<'a> JobReader<'a> {
    pub fn new(client: &'a BuildkiteClient, store: Option<&'a Store>) -> Self {
        Self {
            client,
            store,
            scope: client.token_scope(),
            build_freshness: DEFAULT_BUILD_FRESHNESS,
            running: Mutex::default(),
            counters: ReadCounters::default(),
        }
    }

    /// Reuses stored builds for at most `freshness` (zero: every look asks Buildkite).
    pub fn with_build_freshness(mut self, freshness: Duration) -> Self {
        self.build_freshness = freshness;
        self
    }

    pub fn client(&self) -> &'a BuildkiteClient {
        self.client
    }

    /// A build with every job (retried attempts included): from the store when it was fetched
    /// within the freshness window, else one request (stored when finished).
    pub async fn build(&self, key: &BuildKey) -> Result<Build, BuildkiteError> {
        self.build_holding(key, |_| true).await
    }

    /// [`JobReader::build`], asking Buildkite again when the stored build does not satisfy
    /// `holds` (a job id it does not have may be a retry made since it was stored).
    pub async fn build_holding(
        &self,
        key: &BuildKey,
        holds: impl Fn(&Build) -> bool,
    ) -> Result<Build, BuildkiteError> {
        let window = i64::try_from(self.build_freshness.as_secs()).unwrap_or(i64::MAX);
        let fresh = |stored: &StoredBuild| {
            now_unix().saturating_sub(stored.fetched_at) < window && holds(&stored.build)
        };
        self.build_where(key, fresh).await
    }

    /// A build a listing just showed: the stored one while the listing shows it unchanged (same
    /// state and `finished_at`: a retried job changes both), else one request.
    pub async fn build_as_listed(
        &self,
        key: &BuildKey,
        listed: &Build,
    ) -> Result<Build, BuildkiteError> {
        let unchanged = |stored: &StoredBuild| {
            listed.is_finished()
                && stored.build.state == listed.state
                && stored.build.finished_at == listed.finished_at
        };
        self.build_where(key, unchanged).await
    }

    async fn build_where(
        &self,
        key: &BuildKey,
        reusable: impl Fn(&StoredBuild) -> bool,
    ) -> Result<Build, BuildkiteError> {
        if let Some(store) = self.store {
            let stored: Option<StoredBuild> = store
                .get(Table::Builds, &build_store_key(&self.scope, key))
                .await;
            if let Some(stored) = stored.filter(|stored| reusable(stored)) {
                self.counters.stored_hits.fetch_add(1, Ordering::Relaxed);
                return Ok(stored.build);
            }
        }
        let build = self.client.get_build(key).await?;
        self.remember_build(key, &build).await;
        Ok(build)
    }

    /// Stores a finished build that came with its jobs (a listing with retried jobs), so a
    /// later look at it within the freshness window costs nothing. A build still running is
    /// noted instead: none of its job outcomes will be stored either.
    pub async fn remember_build(&self, key: &BuildKey, build: &Build) {
        if !build.is_finished() {
            if let Ok(mut running) = self.running.lock() {
                running.insert(key.clone());
            }
            return;
        }
        if let (Some(store), true) = (self.store, build.jobs.is_some()) {
            let store_key = build_store_key(&self.scope, key);
            // Without a freshness window the time of the fetch does not matter: a build this
            // process stored unchanged (same state, end and jobs) is not written again.
            let version = format!(
                "{:?}/{:?}/{}",
                build.state,
                build.finished_at,
                build.jobs().len()
            );
            if self.build_freshness.is_zero() && store.holds_version(&store_key, &version) {
                return;
            }
            let stored = StoredBuild {
                fetched_at: now_unix(),
                build: build.clone(),
            };
            store.put(Table::Builds, &store_key, &stored).await;
            store.note_version(&store_key, version);
        }
    }

    /// Whether what is read of `job` may be stored: the job and its build have finished.
    fn storable(&self, build: &BuildKey, job: &Job) -> bool {
        job.is_finished() && self.running.lock().is_ok_and(|r| !r.contains(build))
    }

    fn outcome_key(&self, job: &Job) -> String {
        format!("{}/{}", self.scope, job.id)
    }

    /// The stored outcome of `job`, when it answers a read with `limits`. No request.
    pub async fn stored(&self, job: &Job, limits: &ReadLimits<'_>) -> Option<JobRead> {
        self.stored_all(&[job], limits).await.pop().flatten()
    }

    /// The stored outcome of each of `jobs` that has one answering `limits`, in one store read.
    /// No request.
    pub async fn stored_all(&self, jobs: &[&Job], limits: &ReadLimits<'_>) -> Vec<Option<JobRead>> {
        let Some(store) = self.store else {
            return vec![None; jobs.len()];
        };
        let keys: Vec<String> = jobs.iter().map(|job| self.outcome_key(job)).collect();
        let outcomes: Vec<Option<StoredOutcome>> = store.get_many(Table::JobOutcomes, &keys).await;
        outcomes
            .into_iter()
            .map(|outcome| {
                let outcome = outcome.filter(|o| o.answers(limits))?;
                self.counters.stored_hits.fetch_add(1, Ordering::Relaxed);
                Some(outcome.into_read())
            })
            .collect()
    }

    /// The cleaned text of `job`'s whole log, or of its last `max_bytes` when it is larger:
    /// one request, stored compressed for a finished job, so every later view of it costs none.
    pub async fn log_text(
        &self,
        build: &BuildKey,
        job: &Job,
        max_bytes: u64,
    ) -> Result<LogText, BuildkiteError> {
        let key = self.outcome_key(job);
        if let Some(store) = self.store {
            if let Some(stored) = store
                .get_bytes(Table::LogTexts, &key)
                .await
                .and_then(|bytes| LogText::decode(&bytes))
                .filter(|t| t.complete || t.bytes_read >= max_bytes)
            {
                self.counters.stored_hits.fetch_add(1, Ordering::Relaxed);
                return Ok(stored);
            }
        }
        let tail = self.tail(build, job, max_bytes).await?;
        let text = LogText {
            text: logs::clean_log(&tail.bytes),
            bytes_read: tail.bytes.len() as u64,
            total_size: tail.total_size,
            complete: tail.is_complete(),
        };
        if let (Some(store), true) = (self.store, self.storable(build, job)) {
            store.put_bytes(Table::LogTexts, &key, &text.encode()).await;
        }
        Ok(text)
    }

    /// What `job`'s log says: stored, or read (tail, then at most one larger read) and parsed
    /// once; the outcome of a finished job is stored.
    pub async fn job(&self, build: &BuildKey, job: &Job, limits: &ReadLimits<'_>) -> JobRead {
        let key = self.outcome_key(job);
        let lease = match (self.store, self.storable(build, job)) {
            (Some(store), true) => match self.wait_for_turn(store, job, &key, limits).await {
                Ok(read) => return read,
                Err(lease) => lease,
            },
            _ => None,
        };
        let (read, seen) = self.fetch(build, job, limits).await;
        if let (Some(store), Some((bytes_seen, total_size))) = (self.store, seen) {
            if self.storable(build, job) {
                let outcome = StoredOutcome {
                    status: read.status,
                    analysis: read.analysis.clone(),
                    detail: read.detail.clone(),
                    bytes_seen,
                    total_size,
                };
                store.put(Table::JobOutcomes, &key, &outcome).await;
            }
        }
        if let Some(lease) = lease {
            lease.release().await;
        }
        read
    }

    /// The stored outcome, or this reader's turn to read the log (`Err` with the lease; without
    /// one when another reader kept it past [`crate::store::LEASE`], so this one reads too).
    /// While another reader (this process or a replica) reads the same log, waits for its
    /// outcome instead of reading it again.
    async fn wait_for_turn<'s>(
        &self,
        store: &'s Store,
        job: &Job,
        key: &str,
        limits: &ReadLimits<'_>,
    ) -> Result<JobRead, Option<crate::store::LeaseGuard<'s>>> {
        /// How often a replica's lease is looked at.
        const POLL: Duration = Duration::from_millis(100);
        const SIGNAL_TIMEOUT: Duration = Duration::from_secs(1);
        let deadline = tokio::time::Instant::now() + crate::store::LEASE;
        loop {
            if let Some(read) = self.stored(job, limits).await {
                return Ok(read);
            }
            match store.lease(key).await {
                Lease::Acquired(lease) => {
                    // It may have been stored between the look and the lease.
                    if let Some(read) = self.stored(job, limits).await {
                        lease.release().await;
                        return Ok(read);
                    }
                    return Err(Some(lease));
                }
                Lease::Busy(_) if tokio::time::Instant::now() >= deadline => return Err(None),
                // A reader in this process wakes its waiters when it ends (the timeout covers a
                // wake-up missed between the look and the wait).
                Lease::Busy(Some(signal)) => {
                    let _ = tokio::time::timeout(SIGNAL_TIMEOUT, signal.notified()).await;
                }
                Lease::Busy(None) => tokio::time::sleep(POLL).await,
            }
        }
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
        let analysis = logs::analyze_log(&logs::clean_log(&tail.bytes));
        let commands = command_count(job, &analysis);
        let seen = tail.bytes.len() as u64;
        if covers_job(tail.is_complete(), &analysis, commands) {
            return analyzed(analysis, seen, tail.total_size);
        }
        let first = FirstRead {
            analysis,
            seen,
            total_size: tail.total_size,
            commands,
        };
        self.read_whole(build, job, limits, first).await
    }

    /// The one re-read after a tail that did not answer for the whole job: the whole log, up
    /// to the bound of one read and what is left of the byte budget. Partly analysed when even
    /// that does not reach the job's first command.
    async fn read_whole(
        &self,
        build: &BuildKey,
        job: &Job,
        limits: &ReadLimits<'_>,
        first: FirstRead,
    ) -> (JobRead, Option<(u64, u64)>) {
        let FirstRead {
            mut analysis,
            mut seen,
            total_size,
            commands,
        } = first;
        let larger = total_size.min(limits.largest_read());
        let mut stopped_by = None;
        if larger <= seen {
            stopped_by = Some(format!(
                "the log is over the {}-byte bound of one read (CIWATCH_MAX_WHOLE_LOG_BYTES)",
                limits.largest_read()
            ));
        } else if !reserve(limits.byte_budget, larger) {
            stopped_by = Some(format!(
                "reading the {larger} bytes it needs would pass this call's byte budget (raise CIWATCH_SCAN_BYTE_BUDGET)"
            ));
        } else {
            match self.tail(build, job, larger).await {
                Ok(bigger) => {
                    analysis = logs::analyze_log(&logs::clean_log(&bigger.bytes));
                    seen = bigger.bytes.len() as u64;
                    if covers_job(bigger.is_complete(), &analysis, commands) {
                        return analyzed(analysis, seen, total_size);
                    }
                }
                Err(error) => {
                    stopped_by = Some(format!("reading the whole log failed ({error})"));
                }
            }
        }
        let detail = partial_detail(&analysis, commands, seen, total_size, stopped_by);
        let read = JobRead {
            status: JobStatus::PartlyAnalyzed,
            analysis: Some(analysis),
            detail: Some(detail),
            stored: false,
        };
        // A read cut by the budget or an error is not stored: a later call may read it all.
        let storable = seen >= total_size.min(limits.largest_read());
        (read, storable.then_some((seen, total_size)))
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

/// What the first read (the tail) learnt, for the re-read.
struct FirstRead {
    analysis: LogAnalysis,
    /// Bytes of the tail.
    seen: u64,
    /// The log's size.
    total_size: u64,
    commands: Option<u32>,
}

/// An analysed read, worth storing with how much of the log it saw.
fn analyzed(analysis: LogAnalysis, seen: u64, total_size: u64) -> (JobRead, Option<(u64, u64)>) {
    let read = JobRead {
        status: JobStatus::Analyzed,
        analysis: Some(analysis),
        detail: None,
        stored: false,
    };
    (read, Some((seen, total_size)))
}

fn now_unix() -> i64 {
    chrono::Utc::now().timestamp()
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
