//! What the store keeps for the job-outcome reader: a job's parsed outcome with how much of its
//! log it saw, and a build with when it was fetched. Each knows whether it answers a read. (A
//! job's log text is kept in the log layer's blocks, `log::blocks`.)

use super::{JobRead, ReadLimits};
use crate::buildkite::Build;
use crate::logs::LogAnalysis;
use crate::model::JobStatus;
use serde::{Deserialize, Serialize};

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
