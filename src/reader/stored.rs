//! What the store keeps for the job-outcome reader: a job's parsed outcome with how much of its
//! log it saw, a build with when it was fetched, a job's whole log compressed. Each knows
//! whether it answers a read.

use super::{JobRead, ReadLimits};
use crate::buildkite::Build;
use crate::logs::LogAnalysis;
use crate::model::JobStatus;
use serde::{Deserialize, Serialize};

/// Cleaned text compressed at a time: each concurrent read holds at most this much
/// uncompressed (hundreds of reads run at once in a busy sidecar), and lz4 still shrinks
/// log text about tenfold in blocks this size.
const TEXT_BLOCK_BYTES: usize = 64 * 1024;

/// Cleaned text compressed in blocks as it grows: each block is its length (4 bytes,
/// big-endian) then lz4 with its size prepended.
#[derive(Default)]
pub struct TextBlocks {
    block: String,
    compressed: Vec<u8>,
}

impl TextBlocks {
    pub(super) fn push(&mut self, text: &str) {
        self.block.push_str(text);
        if self.block.len() >= TEXT_BLOCK_BYTES {
            self.flush();
        }
    }

    pub(super) fn flush(&mut self) {
        if self.block.is_empty() {
            return;
        }
        let block = lz4_flex::compress_prepend_size(self.block.as_bytes());
        self.compressed
            .extend_from_slice(&(block.len() as u32).to_be_bytes());
        self.compressed.extend_from_slice(&block);
        self.block.clear();
    }

    /// The compressed blocks.
    pub fn into_bytes(mut self) -> Vec<u8> {
        self.flush();
        self.compressed
    }

    /// The text of blocks written by [`TextBlocks`]; `None` for anything else.
    pub fn decode(mut bytes: &[u8]) -> Option<String> {
        let mut text = Vec::new();
        while !bytes.is_empty() {
            let len = u32::from_be_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
            let block = bytes.get(4..4 + len)?;
            text.extend(lz4_flex::decompress_size_prepended(block).ok()?);
            bytes = &bytes[4 + len..];
        }
        String::from_utf8(text).ok()
    }
}

/// A job's outcome as stored: the parsed log and how much of it was seen.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct StoredOutcome {
    pub(super) status: JobStatus,
    pub(super) analysis: Option<LogAnalysis>,
    pub(super) detail: Option<String>,
    /// Bytes of the log the analysis saw (its end).
    pub(super) bytes_seen: u64,
    /// The log's size.
    pub(super) total_size: u64,
}

impl StoredOutcome {
    /// Whether this outcome answers a read with `limits`: it is complete (the whole job was
    /// covered, or the log is empty), or a fresh read could not see more than it did.
    pub(super) fn answers(&self, limits: &ReadLimits) -> bool {
        match self.status {
            JobStatus::Analyzed | JobStatus::NoLog => true,
            JobStatus::PartlyAnalyzed => {
                self.bytes_seen >= self.total_size.min(limits.largest_read())
            }
            JobStatus::OverBudget | JobStatus::FetchError => false,
        }
    }

    pub(super) fn into_read(self) -> JobRead {
        JobRead {
            status: self.status,
            analysis: self.analysis,
            detail: self.detail,
            stored: true,
        }
    }
}

/// The cleaned text of a job log (its end when the log is over the read bound), as the job-log
/// views read it.
#[derive(Debug, Clone)]
pub struct LogText {
    pub text: String,
    pub bytes_read: u64,
    pub total_size: u64,
    /// `text` is the whole log: line 1 is the first line Buildkite serves.
    pub complete: bool,
}

impl LogText {
    /// The stored form: bytes read and total size (8 bytes each, big-endian), whether it is the
    /// whole log (1 byte), then the text as [`TextBlocks`] (lz4; logs shrink about tenfold).
    pub(super) fn encode(
        bytes_read: u64,
        total_size: u64,
        complete: bool,
        blocks: &[u8],
    ) -> Vec<u8> {
        let mut out = Vec::with_capacity(17 + blocks.len());
        out.extend_from_slice(&bytes_read.to_be_bytes());
        out.extend_from_slice(&total_size.to_be_bytes());
        out.push(u8::from(complete));
        out.extend_from_slice(blocks);
        out
    }

    /// `None` for anything [`LogText::encode`] did not write.
    pub(super) fn decode(bytes: &[u8]) -> Option<Self> {
        let number = |at: usize| Some(u64::from_be_bytes(bytes.get(at..at + 8)?.try_into().ok()?));
        Some(Self {
            bytes_read: number(0)?,
            total_size: number(8)?,
            complete: match *bytes.get(16)? {
                0 => false,
                1 => true,
                _ => return None,
            },
            text: TextBlocks::decode(bytes.get(17..)?)?,
        })
    }
}

/// What a look at a stored build reads first, a few bytes beside the build's megabyte: when it
/// was last fetched (for the freshness window, and so a caller that waited for another's fetch
/// takes what that fetch stored after it asked), and what a change of the build changes (a
/// retried job changes its state, `finished_at` and jobs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct BuildHead {
    pub(super) fetched_at_ms: i64,
    pub(super) state: Option<String>,
    pub(super) finished_at: Option<String>,
    pub(super) jobs: usize,
}

impl BuildHead {
    pub(super) fn of(build: &Build, fetched_at_ms: i64) -> Self {
        Self {
            fetched_at_ms,
            state: build.state.clone(),
            finished_at: build.finished_at.clone(),
            jobs: build.jobs.as_ref().map_or(0, Vec::len),
        }
    }

    /// The same build, whenever each was fetched.
    pub(super) fn same_build(&self, other: &Self) -> bool {
        (&self.state, &self.finished_at, self.jobs)
            == (&other.state, &other.finished_at, other.jobs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partial_outcome_answers_only_when_a_fresh_read_could_not_see_more() {
        let limits = ReadLimits {
            max_log_bytes: 100,
            max_scan_bytes: u64::MAX,
            max_whole_log_bytes: 1600,
        };
        let outcome = |bytes_seen, total_size| StoredOutcome {
            status: JobStatus::PartlyAnalyzed,
            analysis: None,
            detail: None,
            bytes_seen,
            total_size,
        };
        // Seen 1,600 of 10,000 bytes: the bound of one read was reached.
        assert!(outcome(1600, 10_000).answers(&limits));
        // Seen only the 100-byte tail of a 1,000-byte log: a fresh read sees it all.
        assert!(!outcome(100, 1000).answers(&limits));
        let larger = ReadLimits {
            max_log_bytes: 1000,
            max_scan_bytes: u64::MAX,
            max_whole_log_bytes: 16_000,
        };
        assert!(!outcome(1600, 10_000).answers(&larger));
    }
}
