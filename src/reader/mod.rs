//! The reader: the only path from "this job of this build" to "what its log says", used by
//! every tool (scan, latest nightly, job drill-down, test history, main-branch analysis). Two
//! layers: [`log`], Buildkite's log mechanics apart from any policy (a body streamed line by
//! line and resumed where it broke, its text kept in indexed blocks, views that read only the
//! blocks they show); and vLLM's policy on top: [`plan`] (how each log is read, fixed from the
//! build before any read, and the byte ceiling in plan order), pytest and the job-level
//! extractors as the stream's line sink, [`coverage`], [`stored`] (what the store keeps of an
//! outcome and whether it answers).
//!
//! A finished build or job log never changes, so what is learned from it is stored (the
//! [`Store`]: the embedded redb file, or a Redis shared by replicas) and reused: a stored job
//! outcome costs no log read. One read however many ask: a log, and a build, is read by one
//! reader at a time (the store's lease, in this process and across replicas); the others wait
//! for what it stores. Running builds and jobs are never stored. Entries are kept per
//! Buildkite token (a digest of it), so a caller never reads what another caller's token could
//! see.
//!
//! Builds are not frozen: a job retried after the build finished gives it a new attempt and a
//! new `finished_at`. A stored build is therefore reused only within a short freshness window
//! ([`DEFAULT_BUILD_FRESHNESS`]), when a fresh listing shows it unchanged
//! ([`JobReader::build_as_listed`]), or when another caller fetched it while this one waited
//! (`builds.rs`).
//!
//! Reading a log: one request, as the plan says: the whole log for a job of several commands,
//! the tail for a job of one. Only a one-command job whose tail does not show the failure
//! that ended it is read once more, whole. A job whose log could not be read back to its
//! first command is `partly_analyzed`, with what was not read. An outcome records how much of
//! the log it saw, so a partial outcome is not reused as if it were the whole log when a
//! larger read is allowed.

mod builds;
pub mod coverage;
pub mod log;
pub mod plan;
mod read_result;
mod rebuild;
pub mod stored;

use crate::buildkite::{BuildKey, BuildkiteClient, BuildkiteError, Job};
use crate::logs::{LogAnalysis, LogAnalyzer};
use crate::model::JobStatus;
use crate::storage::Table;
use crate::storage::{Lease, Store};
use coverage::{command_count, covers_job};
use log::blocks::{BlockIndex, StoredText};
use log::stream::{self, LineSink};
use log::view::{block_key, BlockSource, LogView};
use plan::{Ceiling, Slot};
pub use plan::{ReadKind, ReadLimits, DEFAULT_MAX_WHOLE_LOG_BYTES, DEFAULT_SCAN_BYTE_CEILING};
use read_result::{
    analyzed, ceiling_stop, fetch_failed, over_ceiling, partial, partial_over_bound, reader_failed,
    reread_stop, Seen,
};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;
use stored::StoredOutcome;
use tokio::sync::Semaphore;

/// Log bodies open at once in this process, whatever calls and callers they serve. A read takes
/// its turn before it opens the body, so no body is ever open without one: each holds a 64 KiB
/// text block, the line window and its compressed text, and over HTTP/2 at most what its
/// stream's window lets the connection buffer (`crate::http::H2_STREAM_WINDOW`; the connection's
/// window is this many streams' worth, so bodies waiting for the ceiling cannot starve those
/// being read). One scan reads at most `Budgets::concurrency` (24) at once.
const STREAMS_PER_PROCESS: usize = 32;
static STREAMS: Semaphore = Semaphore::const_new(STREAMS_PER_PROCESS);

/// A read of a job's log: the pytest and job-level extractors' analysis.
type Streamed = stream::Streamed<LogAnalysis>;

/// pytest and the job-level extractors read a log's lines as they stream.
impl LineSink for LogAnalyzer {
    type Output = LogAnalysis;

    fn line(&mut self, line: &str) {
        LogAnalyzer::line(self, line);
    }

    fn finish(self) -> LogAnalysis {
        LogAnalyzer::finish(self)
    }
}

/// Receives progress of long work: `done` of `total` units (logs) finished.
pub trait Progress: Send + Sync {
    fn report(&self, done: usize, total: usize, message: &str);
}

/// How long a stored build is reused without asking Buildkite again
/// (`CIWATCH_BUILD_FRESHNESS_SECS`). By default not at all: a look at a build costs one request
/// and a job retried a moment ago shows up; a team that wants fewer requests may allow a few
/// minutes. Builds a listing shows unchanged are reused whatever the window.
pub const DEFAULT_BUILD_FRESHNESS: Duration = Duration::ZERO;

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
    /// Log requests sent (first reads, re-reads and resumed streams).
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
    /// Outcomes were stored since the last [`JobReader::flush`].
    unflushed: AtomicBool,
    /// Bytes this reader's earlier [`JobReader::jobs`] took from the call's byte ceiling: a
    /// reader serves one call, and the call has one ceiling for all its phases.
    spent: AtomicU64,
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
            unflushed: AtomicBool::new(false),
            spent: AtomicU64::new(0),
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

    /// Whether this reader keeps what it reads for the next call (it has a store).
    pub fn keeps_reads(&self) -> bool {
        self.store.is_some()
    }

    /// Whether what is read of `job` may be stored: the job and its build have finished.
    fn storable(&self, build: &BuildKey, job: &Job) -> bool {
        job.is_finished() && self.running.lock().is_ok_and(|r| !r.contains(build))
    }

    fn outcome_key(&self, job: &Job) -> String {
        format!("{}/{}", self.scope, job.id)
    }

    /// The stored outcome of `job`, when it answers a read with `limits`. No request.
    pub async fn stored(&self, job: &Job, limits: &ReadLimits) -> Option<JobRead> {
        self.stored_all(&[job], limits).await.pop().flatten()
    }

    /// The stored outcome of each of `jobs` that has one answering `limits`, in one store read.
    /// No request.
    pub async fn stored_all(&self, jobs: &[&Job], limits: &ReadLimits) -> Vec<Option<JobRead>> {
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

    /// `job`'s whole log, or its last `max_bytes` when it is larger, as a view that reads only
    /// the blocks it shows: kept by the scan that read it, else one streamed request, kept for
    /// a finished job, so every later view of it costs none. The view holds a turn among the
    /// process's log reads (`STREAMS`) while it lives. `fresh` reads the log again whatever is
    /// kept (a kept log was evicted under a view).
    pub async fn log_view(
        &self,
        build: &BuildKey,
        job: &Job,
        max_bytes: u64,
        fresh: bool,
    ) -> Result<ViewInTurn<'a>, BuildkiteError> {
        let turn = STREAMS.acquire().await.ok();
        if !fresh {
            let answers = |index: &BlockIndex| index.complete || index.bytes_read >= max_bytes;
            if let Some(view) = self.kept_log(job, answers).await {
                self.counters.stored_hits.fetch_add(1, Ordering::Relaxed);
                return Ok(ViewInTurn::new(view, turn));
            }
        }
        let key = self.outcome_key(job);
        let body = self.open(build, job, max_bytes).await?;
        let streamed = self.stream(build, job, body).await?;
        // A text the reader failed on is shown, never kept: a fixed reader reads it again.
        let keep = self.storable(build, job) && streamed.failed_at.is_none();
        let view = match (self.store, keep) {
            (Some(store), true) => {
                let StoredText { index, blocks } = streamed.text;
                store
                    .put_many_bytes(stored_text_values(&key, &index, blocks))
                    .await;
                LogView::new(index, BlockSource::Store { store, key })
            }
            _ => LogView::held(streamed.text),
        };
        Ok(ViewInTurn::new(view, turn))
    }

    /// `job`'s kept log, when the store holds one that `usable` accepts: its index read (a few
    /// bytes), its blocks only as the view asks for them.
    async fn kept_log(
        &self,
        job: &Job,
        usable: impl Fn(&BlockIndex) -> bool,
    ) -> Option<LogView<'a>> {
        let store = self.store?;
        let key = self.outcome_key(job);
        let index = store
            .get_bytes(Table::LogTexts, &key)
            .await
            .and_then(|bytes| BlockIndex::decode(&bytes))
            .filter(|index| usable(index))?;
        Some(LogView::new(index, BlockSource::Store { store, key }))
    }

    /// What `job`'s log says: stored, or read as the plan says and parsed as it streams; the
    /// outcome of a finished job is stored.
    pub async fn job(&self, build: &BuildKey, job: &Job, limits: &ReadLimits) -> JobRead {
        let read = self.job_in_plan(build, job, limits, None).await;
        self.flush().await;
        read
    }

    /// Makes what the reads stored durable: once per call, not once per job.
    async fn flush(&self) {
        if let (Some(store), true) = (self.store, self.unflushed.swap(false, Ordering::Relaxed)) {
            store.flush().await;
        }
    }

    async fn job_in_plan(
        &self,
        build: &BuildKey,
        job: &Job,
        limits: &ReadLimits,
        slot: Option<Slot<'_>>,
    ) -> JobRead {
        let key = self.outcome_key(job);
        let lease = match (self.store, self.storable(build, job)) {
            (Some(store), true) => {
                let look = |_| async { self.stored(job, limits).await };
                match wait_for_turn(store, &key, look).await {
                    // Stored reads take nothing from the ceiling: a later call goes further.
                    Ok(read) => return read,
                    Err(lease) => lease,
                }
            }
            _ => None,
        };
        let rebuilt = match self.storable(build, job) {
            true => self.rebuilt(job).await,
            false => None,
        };
        let (read, seen) = match rebuilt {
            Some(rebuilt) => rebuilt,
            None => self.fetch(build, job, limits, slot).await,
        };
        if let (Some(store), Some(seen)) = (self.store, seen) {
            if self.storable(build, job) {
                let outcome = StoredOutcome {
                    status: read.status,
                    analysis: read.analysis.clone(),
                    detail: read.detail.clone(),
                    bytes_seen: seen.bytes_seen,
                    total_size: seen.total_size,
                };
                // The outcome and the text it was read from, in one commit.
                let mut values: Vec<(Table, String, Vec<u8>)> = Vec::new();
                if let Some(StoredText { index, blocks }) = seen.text {
                    values = stored_text_values(&key, &index, blocks);
                }
                if let Ok(outcome) = serde_json::to_vec(&outcome) {
                    values.push((Table::JobOutcomes, key.clone(), outcome));
                }
                store.put_many_bytes(values).await;
                self.unflushed.store(true, Ordering::Relaxed);
            }
        }
        if let Some(lease) = lease {
            lease.release().await;
        }
        read
    }

    /// Reads and parses the log as planned. The second value is set when the read is an
    /// answer worth storing (not an error or a ceiling stop).
    async fn fetch(
        &self,
        build: &BuildKey,
        job: &Job,
        limits: &ReadLimits,
        mut slot: Option<Slot<'_>>,
    ) -> (JobRead, Option<Seen>) {
        let (kind, first_bytes) = limits.first_read(job);
        // The turn is held to the end of this read, the re-reads included (see `Ceiling`).
        if let Some(slot) = slot.as_ref() {
            slot.turns_before().await;
        }
        let _turn = STREAMS.acquire().await;
        if let Some(slot) = slot.as_ref() {
            slot.took_turn();
        }
        let mut body = match self.open(build, job, first_bytes).await {
            Ok(body) => body,
            Err(error) => return (fetch_failed(error), None),
        };
        if body.is_empty() {
            let read = JobRead::failed(JobStatus::NoLog, "the log is empty".into());
            return (
                read,
                Some(Seen {
                    bytes_seen: 0,
                    total_size: 0,
                    text: None,
                }),
            );
        }
        let mut stopped_by = None;
        if let Some(slot) = slot.as_mut() {
            let before = slot.taken_before().await;
            if !slot.fits(before, body.len()) {
                let tail = limits.max_log_bytes.min(body.total);
                if kind == ReadKind::Tail || !slot.fits(before, tail) {
                    return (over_ceiling(before, slot), None);
                }
                stopped_by = Some(ceiling_stop(body.len(), before, slot));
                drop(body);
                body = match self.open(build, job, tail).await {
                    Ok(body) => body,
                    Err(error) => return (fetch_failed(error), None),
                };
            }
            slot.settle(body.len());
        }
        let streamed = match self.stream(build, job, body).await {
            Ok(streamed) => streamed,
            Err(error) => return (fetch_failed(error), None),
        };
        let commands = command_count(job, &streamed.analysis);
        if let Some(line) = streamed.failed_at {
            return (reader_failed(streamed, line), None);
        }
        if covers_job(streamed.complete(), &streamed.analysis, commands) {
            return analyzed(streamed, 0);
        }
        if stopped_by.is_some() {
            return (partial(streamed, commands, stopped_by), None);
        }
        if kind == ReadKind::Whole || limits.largest_read() <= streamed.bytes_read() {
            return partial_over_bound(streamed, commands, limits.largest_read());
        }
        // The re-read counts toward the call's ceiling too.
        let whole = limits.largest_read().min(streamed.total_size());
        if let Some(slot) = slot.as_ref().filter(|slot| !slot.take_more(whole)) {
            let why = reread_stop(whole, slot);
            return (partial(streamed, commands, Some(why)), None);
        }
        self.read_whole_after_tail(build, job, limits, streamed)
            .await
    }

    /// The one re-read of a one-command job whose tail did not show what ended it: the whole
    /// log, up to the bound of one read.
    async fn read_whole_after_tail(
        &self,
        build: &BuildKey,
        job: &Job,
        limits: &ReadLimits,
        tail: Streamed,
    ) -> (JobRead, Option<Seen>) {
        let whole = match self.open(build, job, limits.largest_read()).await {
            Ok(body) => self.stream(build, job, body).await,
            Err(error) => Err(error),
        };
        let commands = command_count(job, &tail.analysis);
        match whole {
            Ok(whole) => {
                let commands = command_count(job, &whole.analysis);
                if let Some(line) = whole.failed_at {
                    return (reader_failed(whole, line), None);
                }
                if covers_job(whole.complete(), &whole.analysis, commands) {
                    return analyzed(whole, tail.breaks());
                }
                partial_over_bound(whole, commands, limits.largest_read())
            }
            Err(error) => {
                let why = format!("reading the whole log failed ({error})");
                (partial(tail, commands, Some(why)), None)
            }
        }
    }

    async fn open(
        &self,
        build: &BuildKey,
        job: &Job,
        bytes: u64,
    ) -> Result<crate::buildkite::LogBody, BuildkiteError> {
        self.counters.log_requests.fetch_add(1, Ordering::Relaxed);
        self.client.open_log(build, &job.id, bytes).await
    }

    /// Reads an opened body to its end; the caller holds a turn (`STREAMS`) from before the open.
    async fn stream(
        &self,
        build: &BuildKey,
        job: &Job,
        body: crate::buildkite::LogBody,
    ) -> Result<Streamed, BuildkiteError> {
        let streamed =
            stream::read_to_end::<LogAnalyzer>(self.client, build, &job.id, body).await?;
        self.counters
            .log_requests
            .fetch_add(streamed.requests - 1, Ordering::Relaxed);
        self.counters
            .log_bytes
            .fetch_add(streamed.bytes_read(), Ordering::Relaxed);
        Ok(streamed)
    }

    /// Reads `jobs` (each of its build; given in the plan's priority order) concurrently (at
    /// most `concurrency` in flight; the request budget paces them), reporting each as it
    /// finishes. The byte ceiling is applied in the given order. Results are in `jobs`' order.
    pub async fn jobs(
        &self,
        jobs: &[(&BuildKey, &Job)],
        limits: &ReadLimits,
        concurrency: usize,
        progress: &dyn Progress,
    ) -> Vec<JobRead> {
        use futures::StreamExt;
        let done = AtomicUsize::new(0);
        let total = jobs.len();
        let spent = self.spent.load(Ordering::Relaxed);
        let ceiling = Ceiling::after(limits.max_scan_bytes, spent, total);
        let ceiling = &ceiling;
        let done = &done;
        // Futures are built up front (not in a stream closure) so the caller's future stays `Send`.
        let reads: Vec<_> = jobs
            .iter()
            .enumerate()
            .map(|(index, &(build, job))| async move {
                // Without a ceiling no job waits for the ones before it.
                let slot = (limits.max_scan_bytes < u64::MAX).then(|| ceiling.slot(index));
                let read = self.job_in_plan(build, job, limits, slot).await;
                let finished = done.fetch_add(1, Ordering::Relaxed) + 1;
                progress.report(finished, total, job.display_name());
                read
            })
            .collect();
        let reads = futures::stream::iter(reads)
            .buffered(concurrency.max(1))
            .collect()
            .await;
        self.spent.store(ceiling.taken(), Ordering::Relaxed);
        self.flush().await;
        reads
    }
}

/// The stored value `look` finds, or this caller's turn to fetch it (`Err` with the lease;
/// without one when another caller kept it past [`crate::storage::LEASE`], so this one fetches
/// too). While another caller (this process or a replica) fetches the same key, waits for what
/// it stores instead of fetching it again; `look` is told whether this caller has waited.
async fn wait_for_turn<'s, T, F, Fut>(
    store: &'s Store,
    key: &str,
    look: F,
) -> Result<T, Option<crate::storage::LeaseGuard<'s>>>
where
    F: Fn(bool) -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    /// How often a replica's lease is looked at.
    const POLL: Duration = Duration::from_millis(100);
    const SIGNAL_TIMEOUT: Duration = Duration::from_secs(1);
    let deadline = tokio::time::Instant::now() + crate::storage::LEASE;
    let mut waited = false;
    loop {
        if let Some(found) = look(waited).await {
            return Ok(found);
        }
        match store.lease(key).await {
            Lease::Acquired(lease) => {
                // It may have been stored between the look and the lease.
                if let Some(found) = look(waited).await {
                    lease.release().await;
                    return Ok(found);
                }
                return Err(Some(lease));
            }
            Lease::Busy(_) if tokio::time::Instant::now() >= deadline => return Err(None),
            // A caller in this process wakes its waiters when it ends (the timeout covers a
            // wake-up missed between the look and the wait).
            Lease::Busy(Some(signal)) => {
                let _ = tokio::time::timeout(SIGNAL_TIMEOUT, signal.notified()).await;
            }
            Lease::Busy(None) => tokio::time::sleep(POLL).await,
        }
        waited = true;
    }
}

fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
/// A view of a job's log with its turn among the process's log reads: the turn is given back
/// when the view is dropped.
pub struct ViewInTurn<'a> {
    view: LogView<'a>,
    _turn: Option<tokio::sync::SemaphorePermit<'static>>,
}

impl<'a> ViewInTurn<'a> {
    fn new(view: LogView<'a>, turn: Option<tokio::sync::SemaphorePermit<'static>>) -> Self {
        Self { view, _turn: turn }
    }
}

impl<'a> std::ops::Deref for ViewInTurn<'a> {
    type Target = LogView<'a>;

    fn deref(&self) -> &LogView<'a> {
        &self.view
    }
}

/// What the store keeps of a log's text: its index under the job's key, each block under
/// `key#i`, written in one commit with whatever goes with them.
fn stored_text_values(
    key: &str,
    index: &BlockIndex,
    blocks: Vec<Vec<u8>>,
) -> Vec<(Table, String, Vec<u8>)> {
    let mut values = vec![(Table::LogTexts, key.to_string(), index.encode())];
    values.extend(
        blocks
            .into_iter()
            .enumerate()
            .map(|(i, block)| (Table::LogBlocks, block_key(key, i), block)),
    );
    values
}
