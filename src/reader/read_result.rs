//! What one read of a job's log produced, as the reader returns it: analysed, partly
//! analysed (with what was not read and why), stopped by the ceiling, or failed; and what of
//! it is worth storing.

use super::coverage::partial_detail;
use super::log::blocks::StoredText;
use super::plan::Slot;
use super::{JobRead, Streamed};
use crate::buildkite::BuildkiteError;
use crate::http::HttpError;
use crate::model::JobStatus;

/// A read worth storing: what it saw of the log, and its text.
pub(super) struct Seen {
    pub(super) bytes_seen: u64,
    pub(super) total_size: u64,
    pub(super) text: Option<StoredText>,
}

pub(super) fn fetch_failed(error: BuildkiteError) -> JobRead {
    match error {
        BuildkiteError::Http(HttpError::NotFound(message)) => {
            JobRead::failed(JobStatus::NoLog, message)
        }
        error => JobRead::failed(JobStatus::FetchError, error.to_string()),
    }
}

/// A job the ceiling left unread: the jobs before it in plan order took too much.
pub(super) fn over_ceiling(before: u64, slot: &Slot<'_>) -> JobRead {
    JobRead::failed(
        JobStatus::OverBudget,
        format!(
            "not read: the reads before it (this call's earlier reads, then the jobs before it in priority order) take {before} of this call's {}-byte ceiling (raise max_scan_bytes or CIWATCH_SCAN_BYTE_BUDGET)",
            slot.limit()
        ),
    )
}

/// A one-command job whose tail did not show what ended it, whose whole log would pass the
/// call's ceiling.
pub(super) fn reread_stop(wanted: u64, slot: &Slot<'_>) -> String {
    format!(
        "its tail did not show what ended it, and reading its whole {wanted} bytes would pass this call's {}-byte ceiling after the {} bytes its reads took (raise max_scan_bytes or CIWATCH_SCAN_BYTE_BUDGET)",
        slot.limit(),
        slot.taken()
    )
}

pub(super) fn ceiling_stop(wanted: u64, before: u64, slot: &Slot<'_>) -> String {
    format!(
        "reading its {wanted} bytes would pass this call's {}-byte ceiling after the {before} bytes of the reads before it (this call's earlier reads, then the jobs before it in priority order) (raise max_scan_bytes or CIWATCH_SCAN_BYTE_BUDGET)",
        slot.limit()
    )
}

/// An analysed read, worth storing with how much of the log it saw. Streams that broke and
/// were resumed (this one's, and `earlier_breaks` of the job's reads before it) say so.
pub(super) fn analyzed(mut streamed: Streamed, earlier_breaks: usize) -> (JobRead, Option<Seen>) {
    let seen = seen(&mut streamed);
    let resumed = streamed.breaks() + earlier_breaks;
    let detail = (resumed > 0).then(|| {
        format!(
            "read whole after its stream broke {resumed} time(s): each time only the bytes not yet read were asked for again (at most {} times, each waiting at most the HTTP timeout for bytes)",
            super::log::stream::MAX_RESUMES
        )
    });
    let read = JobRead {
        status: JobStatus::Analyzed,
        analysis: Some(streamed.analysis),
        detail,
        stored: false,
    };
    (read, Some(seen))
}

/// A read whose reader failed on a line (a bug met on this log): what it found before the line
/// is kept, and the read is partial and not stored, so a fixed reader reads the job again.
pub(super) fn reader_failed(streamed: Streamed, line: u64) -> JobRead {
    JobRead {
        status: JobStatus::PartlyAnalyzed,
        analysis: Some(streamed.analysis),
        detail: Some(format!(
            "ciwatch-mcp's log reader failed at raw line {line} of what was read (a bug: please report this job); failures from that line on are not read"
        )),
        stored: false,
    }
}

/// A read that did not reach the job's first command.
pub(super) fn partial(streamed: Streamed, commands: Option<u32>, why: Option<String>) -> JobRead {
    let detail = partial_detail(
        &streamed.analysis,
        commands,
        streamed.bytes_read(),
        streamed.total_size(),
        why,
    );
    JobRead {
        status: JobStatus::PartlyAnalyzed,
        analysis: Some(streamed.analysis),
        detail: Some(detail),
        stored: false,
    }
}

/// A read that reached the bound of one read (`largest_read`) before the job's first
/// command: no later read with the same bound could see more, so it is stored.
pub(super) fn partial_over_bound(
    mut streamed: Streamed,
    commands: Option<u32>,
    largest_read: u64,
) -> (JobRead, Option<Seen>) {
    let seen = seen(&mut streamed);
    let why = format!(
        "the log is over the {largest_read}-byte bound of one read (CIWATCH_MAX_WHOLE_LOG_BYTES)"
    );
    (partial(streamed, commands, Some(why)), Some(seen))
}

/// What `streamed` saw, its text taken to be stored.
fn seen(streamed: &mut Streamed) -> Seen {
    let index = streamed.text.index.clone();
    Seen {
        bytes_seen: index.bytes_read,
        total_size: index.total_size,
        text: Some(StoredText {
            index,
            blocks: std::mem::take(&mut streamed.text.blocks),
        }),
    }
}
