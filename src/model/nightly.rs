//! A nightly against the previous nightlies: each failure's trend and onset, the suspects of an
//! onset range, what was fixed, and the tracked issues both ways.

use super::shared::{IssueMatch, IssueState};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How a failure compares with the previous scheduled nightlies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Trend {
    /// The previous usable nightly ran it and it passed, and it did not fail earlier in the
    /// window.
    New,
    /// It failed in the previous usable nightly too.
    Continuing,
    /// It passed in the previous usable nightly but failed earlier in the window.
    Intermittent,
    /// No previous nightly could say (agent lost, cancelled, log missing, over budget).
    Unknown,
}

impl Trend {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::New => "new",
            Self::Continuing => "continuing",
            Self::Intermittent => "intermittent",
            Self::Unknown => "unknown",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FailureTrend {
    pub trend: Trend,
    /// Consecutive failing nightlies, this one included (nightlies that could not say are
    /// skipped, not counted).
    pub streak: u32,
    /// Every usable nightly of the window failed too: the streak began before the window.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub streak_reaches_past_window: bool,
    /// The oldest nightly of the streak (this build for a new failure).
    pub first_failed_build: u64,
    /// Nightlies of the window (this one excluded) where it failed; absent for none.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub failed_in_window: u32,
    /// Previous nightlies that gave a usable answer; absent for none.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub nightlies_compared: u32,
    /// What each compared nightly said, one letter each, newest first (the order of
    /// `nightly_comparison.compared_builds`): `F` failed, `P` passed, `N` had no such job, `?`
    /// could not say.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub runs: String,
    /// The compared nightlies' job ids in the order of `runs`, "" where none ran (`full`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub run_jobs: Vec<String>,
    /// What else to know: nightlies skipped and why, an error that changed (`full`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// Where a new failure began.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Onset {
    pub last_passed_build: u64,
    pub last_passed_commit: String,
    pub first_failed_build: u64,
    pub first_failed_commit: String,
    /// `https://github.com/{repo}/compare/{last passed}...{first failed}`.
    pub compare_url: String,
    /// Commits of the range, closest to the failure first.
    #[serde(default)]
    pub suspects: Vec<Suspect>,
    /// Set when the range could not be read in full (no GitHub access, too many commits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A commit of an onset range and why it ranks where it does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Suspect {
    pub sha: String,
    pub title: String,
    pub author: String,
    /// "touches vllm/x.py, named in the traceback", "touches the test file", …
    pub reason: String,
    /// 4 traceback file, 3 test file, 2 same directory, 1 same CODEOWNERS, 0 none.
    pub closeness: u8,
}

/// A failure of the previous nightly that passes now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FixedFailure {
    /// The pytest node id, or the job name for a job-level failure.
    pub test_name: String,
    pub job_name: String,
    /// The previous nightly, where it last failed.
    pub failed_in_build: u64,
    #[serde(default)]
    pub error_message: Option<String>,
    /// "the job passed" or "the test passed in its job".
    pub evidence: String,
    /// The issue that tracks it, to close.
    #[serde(default)]
    pub issue: Option<IssueMatch>,
}

/// A `ci-failure` issue as the compared nightlies see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TrackedIssue {
    pub number: u64,
    /// Left out where the result's `links.issue` builds it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub url: String,
    pub title: String,
    pub state: IssueState,
    pub status: TrackedStatus,
    /// What to do: nothing, close it, reopen it.
    pub suggestion: String,
    /// The tests (or jobs) it was matched to.
    pub tests: Vec<String>,
    /// The newest nightly where it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failed_build: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TrackedStatus {
    /// Open, and failing in this nightly.
    StillFailing,
    /// Open, and its tests ran and passed in the last 3 nightlies: suggest closing (vLLM's own
    /// CI control resolves a failure after 3 clean runs).
    Silent,
    /// Closed, and failing again: suggest reopening.
    FailingAgain,
}

/// Which previous nightlies a nightly scan was compared with.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct NightlyComparison {
    /// Previous scheduled nightlies, newest first.
    pub compared_builds: Vec<u64>,
    /// Counts over this scan's failures.
    pub new: usize,
    pub continuing: usize,
    pub intermittent: usize,
    pub unknown: usize,
    pub fixed: usize,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}
