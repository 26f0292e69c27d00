//! Buildkite's build and job states, parsed once: every decision on a state (finished, failed,
//! can still change) is made on these, never on the API's strings.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Every state Buildkite gives a job, with what each means here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Not started yet (`pending`, `waiting`, `scheduled`, `assigned`, `accepted`, `limiting`,
    /// `limited`, `blocked`, `unblocked` and their `_failed` forms): no result, no log to read.
    NotStarted,
    /// `running`, `canceling`, `timing_out`: the log still grows.
    Running,
    Passed,
    Failed,
    TimedOut,
    /// Cancelled; a failure when it had started (see `JobState::is_failure`).
    #[serde(alias = "cancelled")]
    Canceled,
    /// `skipped`, `broken` (a dependency failed), `expired` (no agent took it), `not_run`: it
    /// never ran, so it is no failure of its own.
    NeverRan,
    /// A state this version does not know: treated as not final, never stored.
    Unknown,
}

impl JobState {
    pub fn parse(state: &str) -> Self {
        match state {
            "passed" => Self::Passed,
            "failed" => Self::Failed,
            "timed_out" => Self::TimedOut,
            "canceled" | "cancelled" => Self::Canceled,
            "running" | "canceling" | "timing_out" => Self::Running,
            "skipped" | "broken" | "expired" | "not_run" => Self::NeverRan,
            "pending" | "waiting" | "waiting_failed" | "scheduled" | "assigned" | "accepted"
            | "limiting" | "limited" | "blocked" | "blocked_failed" | "unblocked"
            | "unblocked_failed" => Self::NotStarted,
            _ => Self::Unknown,
        }
    }

    /// The job's command ran and did not succeed, so its log says why: `failed`, `timed_out`,
    /// or `canceled` after it `started` (a cancelled run is read and classified as such).
    pub fn is_failure(self, started: bool) -> bool {
        match self {
            Self::Failed | Self::TimedOut => true,
            Self::Canceled => started,
            _ => false,
        }
    }

    /// Final: nothing about the job changes any more.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Passed | Self::Failed | Self::TimedOut | Self::Canceled | Self::NeverRan
        )
    }
}

/// The states a build can be in, with what each means here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildState {
    /// `scheduled`, `creating`, `blocked` (waiting at a block step) and the like.
    NotStarted,
    Running,
    /// Running with a failed job already.
    Failing,
    Canceling,
    Passed,
    Failed,
    Canceled,
    Skipped,
    NotRun,
    Unknown,
}

impl BuildState {
    pub fn parse(state: &str) -> Self {
        match state {
            "running" => Self::Running,
            "failing" => Self::Failing,
            "canceling" => Self::Canceling,
            "passed" => Self::Passed,
            "failed" => Self::Failed,
            "canceled" | "cancelled" => Self::Canceled,
            "skipped" => Self::Skipped,
            "not_run" => Self::NotRun,
            "scheduled" | "creating" | "blocked" => Self::NotStarted,
            _ => Self::Unknown,
        }
    }

    /// Whether its failures can be read: it finished, or a job already failed.
    pub fn has_result(self) -> bool {
        matches!(
            self,
            Self::Passed | Self::Failed | Self::Failing | Self::Canceled
        )
    }

    /// A build whose jobs failed: `failed`, `failing`, `canceled`.
    pub fn has_failures(self) -> bool {
        matches!(self, Self::Failed | Self::Failing | Self::Canceled)
    }

    /// Final: no job can start or change any more.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Passed | Self::Failed | Self::Canceled | Self::Skipped | Self::NotRun
        )
    }
}
