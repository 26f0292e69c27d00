//! The read plan, fixed before any read from the build alone: how each failed job's log is
//! read (its tail, or the whole log at once when the job runs several commands), and the
//! safety ceiling on a call's bytes, applied in the plan's priority order.
//!
//! The ceiling never depends on which read got there first: a job's share is decided once
//! every job before it in the plan has said what its first read takes (known from the first
//! answer's `Content-Range`, before its body is read). So the same build and settings give
//! the same reads, the same stops and the same answer at any concurrency, in any process.

use crate::buildkite::Job;
use tokio::sync::watch;

/// The largest log read whole by default (`CIWATCH_MAX_WHOLE_LOG_BYTES`): vLLM's longest
/// multi-command jobs write tens of megabytes.
pub const DEFAULT_MAX_WHOLE_LOG_BYTES: u64 = 64 * 1024 * 1024;
/// The default ceiling on one call's log bytes (`CIWATCH_SCAN_BYTE_BUDGET`): a real night's
/// failed jobs read whole take 40–70 MB.
pub const DEFAULT_SCAN_BYTE_CEILING: u64 = 512 * 1024 * 1024;

/// What the reads of one call may take.
#[derive(Debug, Clone, Copy)]
pub struct ReadLimits {
    /// Bytes of a tail read, from the log's end.
    pub max_log_bytes: u64,
    /// The largest read of one log.
    pub max_whole_log_bytes: u64,
    /// The ceiling on the first reads of all the call's jobs, in plan order.
    pub max_scan_bytes: u64,
}

impl ReadLimits {
    pub fn largest_read(&self) -> u64 {
        self.max_whole_log_bytes.max(self.max_log_bytes)
    }

    /// How `job`'s log is read first, and how many bytes that read asks for.
    pub fn first_read(&self, job: &Job) -> (ReadKind, u64) {
        match ReadKind::of(job) {
            ReadKind::Tail => (ReadKind::Tail, self.max_log_bytes),
            ReadKind::Whole => (ReadKind::Whole, self.largest_read()),
        }
    }
}

/// How a job's log is read first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadKind {
    /// The end: a job of one command ends with the failure that ended it. When the tail does
    /// not show it, the whole log is read once more.
    Tail,
    /// The whole log in one request: a job of several commands goes on after a failing one
    /// (`|| CI_OVERALL_STATUS=1`), so its failures may sit anywhere.
    Whole,
}

impl ReadKind {
    /// From the job's `command` alone (vLLM's generated script echoes `Command (i/N)`).
    pub fn of(job: &Job) -> Self {
        match job
            .command
            .as_deref()
            .and_then(crate::pipeline::command_count)
        {
            Some(n) if n > 1 => Self::Whole,
            _ => Self::Tail,
        }
    }
}

/// Each planned job's first-read bytes as it settles them, in plan order, and which jobs have
/// taken their turn to stream.
///
/// A job takes its stream turn before it opens its body and may then wait, holding the turn,
/// for the jobs before it to settle. Turns are therefore taken in plan order: every job before
/// a waiting one already holds a turn (or needs none), so the first unsettled job never waits
/// for a turn and the call always moves on, however many calls share the process's turns.
pub struct Ceiling {
    limit: u64,
    /// Bytes taken outside the plan's first reads: the call's reads before these jobs (its
    /// earlier phases), and the re-reads of these jobs since.
    besides: std::sync::Mutex<u64>,
    settled: watch::Sender<Vec<Option<u64>>>,
    turns: watch::Sender<Vec<bool>>,
}

impl Ceiling {
    pub fn new(limit: u64, jobs: usize) -> Self {
        Self::after(limit, 0, jobs)
    }

    /// The ceiling of a call whose earlier reads took `spent` of its `limit` bytes: one
    /// ceiling for every phase of a call.
    pub fn after(limit: u64, spent: u64, jobs: usize) -> Self {
        Self {
            limit,
            besides: std::sync::Mutex::new(spent),
            settled: watch::Sender::new(vec![None; jobs]),
            turns: watch::Sender::new(vec![false; jobs]),
        }
    }

    fn besides(&self) -> std::sync::MutexGuard<'_, u64> {
        self.besides
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The first reads settled so far.
    fn settled(&self) -> u64 {
        self.settled.borrow().iter().flatten().sum()
    }

    /// Everything the call has taken: its earlier phases, the first reads settled, re-reads.
    pub fn taken(&self) -> u64 {
        *self.besides() + self.settled()
    }

    /// Takes `bytes` for a re-read when everything taken so far leaves room for them; a re-read
    /// comes after every first read in priority, so it counts what every job has settled.
    fn take_more(&self, bytes: u64) -> bool {
        let mut besides = self.besides();
        let fits = besides.saturating_add(self.settled()).saturating_add(bytes) <= self.limit;
        if fits {
            *besides += bytes;
        }
        fits
    }

    /// The slot of the job at `index` in plan order.
    pub fn slot(&self, index: usize) -> Slot<'_> {
        Slot {
            ceiling: self,
            index,
            settled: false,
        }
    }
}

/// One job's place under the ceiling. A slot dropped unsettled (an error, a cancelled call)
/// settles at zero bytes, so the jobs after it never wait for it.
pub struct Slot<'a> {
    ceiling: &'a Ceiling,
    index: usize,
    settled: bool,
}

impl Slot<'_> {
    /// Bytes the jobs before this one take, once each of them has settled, with what the call
    /// took besides (its earlier phases, re-reads).
    pub async fn taken_before(&self) -> u64 {
        let mut settled = self.ceiling.settled.subscribe();
        let index = self.index;
        let before = {
            let all = settled
                .wait_for(|costs| costs[..index].iter().all(Option::is_some))
                .await;
            all.map_or(0, |costs| costs[..index].iter().flatten().sum::<u64>())
        };
        before + *self.ceiling.besides()
    }

    /// Takes `bytes` for this job's re-read, when the call's ceiling has room for them.
    pub fn take_more(&self, bytes: u64) -> bool {
        self.ceiling.take_more(bytes)
    }

    /// What the call has taken so far.
    pub fn taken(&self) -> u64 {
        self.ceiling.taken()
    }

    /// Returns once every job before this one has taken its stream turn (or needs none).
    pub async fn turns_before(&self) {
        let index = self.index;
        let mut turns = self.ceiling.turns.subscribe();
        // The sender lives as long as the ceiling this slot borrows.
        let _ = turns
            .wait_for(|taken| taken[..index].iter().all(|t| *t))
            .await;
    }

    /// Says this job holds its stream turn; the job after it may take its own.
    pub fn took_turn(&self) {
        let index = self.index;
        self.ceiling
            .turns
            .send_if_modified(|taken| !std::mem::replace(&mut taken[index], true));
    }

    /// The ceiling's bytes.
    pub fn limit(&self) -> u64 {
        self.ceiling.limit
    }

    /// Whether `bytes` more fit under the ceiling after `taken_before`.
    pub fn fits(&self, taken_before: u64, bytes: u64) -> bool {
        taken_before.saturating_add(bytes) <= self.ceiling.limit
    }

    /// Says what this job's reads take; the jobs after it may then decide.
    pub fn settle(&mut self, bytes: u64) {
        if !self.settled {
            self.settled = true;
            self.took_turn();
            let index = self.index;
            self.ceiling
                .settled
                .send_modify(|costs| costs[index] = Some(bytes));
        }
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.settle(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_job_decides_after_every_job_before_it_whatever_order_they_finish() {
        let ceiling = Ceiling::new(100, 3);
        let (mut first, mut second, third) = (ceiling.slot(0), ceiling.slot(1), ceiling.slot(2));
        let third_decides = async {
            let before = third.taken_before().await;
            (before, third.fits(before, 30))
        };
        let others = async {
            tokio::task::yield_now().await;
            second.settle(40);
            tokio::task::yield_now().await;
            first.settle(50);
        };
        let ((before, fits), ()) = tokio::join!(third_decides, others);
        assert_eq!((before, fits), (90, false));
    }

    #[tokio::test]
    async fn turns_are_taken_in_plan_order_and_a_settled_or_dropped_job_needs_none() {
        let ceiling = Ceiling::new(100, 4);
        let (first, mut second, third, fourth) = (
            ceiling.slot(0),
            ceiling.slot(1),
            ceiling.slot(2),
            ceiling.slot(3),
        );
        let fourth_waits = fourth.turns_before();
        tokio::pin!(fourth_waits);
        assert!(futures::poll!(fourth_waits.as_mut()).is_pending());
        first.took_turn();
        second.settle(10);
        assert!(
            futures::poll!(fourth_waits.as_mut()).is_pending(),
            "the third has no turn"
        );
        drop(third);
        assert!(futures::poll!(fourth_waits.as_mut()).is_ready());
    }

    #[tokio::test]
    async fn one_ceiling_counts_earlier_phases_and_re_reads() {
        // An earlier phase took 60 of 100: the first job of this one sees them.
        let ceiling = Ceiling::after(100, 60, 2);
        let (mut first, second) = (ceiling.slot(0), ceiling.slot(1));
        assert_eq!(first.taken_before().await, 60);
        first.settle(20);
        assert!(!first.take_more(30), "60 + 20 + 30 is over 100");
        assert!(first.take_more(15));
        assert_eq!(
            second.taken_before().await,
            95,
            "the re-read counts for the next job"
        );
        assert_eq!(ceiling.taken(), 95);
    }

    #[tokio::test]
    async fn a_dropped_slot_settles_at_zero() {
        let ceiling = Ceiling::new(10, 2);
        drop(ceiling.slot(0));
        assert_eq!(ceiling.slot(1).taken_before().await, 0);
    }
}
