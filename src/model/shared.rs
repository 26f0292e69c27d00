//! Enums and small records every result family and the layers below share: categories,
//! platforms, evidence sources, infrastructure kinds, issue matches and blame.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Category {
    KnownTracked,
    InfraSuspected,
    FlakySuspected,
    /// A failure the previous nightly did not have (nightly scans), or one no earlier nightly
    /// could be compared with; in other scans, an untracked failure with no known pattern.
    NewRegression,
    /// Failing in earlier nightlies too, and no issue tracks it (nightly scans).
    ContinuingUntracked,
    NeedsHumanTriage,
}

impl Category {
    /// Report order: what needs action first.
    pub const REPORT_ORDER: [Category; 6] = [
        Category::NewRegression,
        Category::ContinuingUntracked,
        Category::FlakySuspected,
        Category::InfraSuspected,
        Category::KnownTracked,
        Category::NeedsHumanTriage,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::KnownTracked => "KNOWN_TRACKED",
            Self::InfraSuspected => "INFRA_SUSPECTED",
            Self::FlakySuspected => "FLAKY_SUSPECTED",
            Self::NewRegression => "NEW_REGRESSION",
            Self::ContinuingUntracked => "CONTINUING_UNTRACKED",
            Self::NeedsHumanTriage => "NEEDS_HUMAN_TRIAGE",
        }
    }
}

/// Where a job runs.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    Cuda,
    Rocm,
    Xpu,
    Npu,
    Cpu,
}

/// Where a verdict's evidence came from, strongest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EvidenceSource {
    /// The job itself: its state (`timed_out`), exit status (-1) or signal reason.
    Job,
    /// A later attempt of the job passed in the same build.
    Retry,
    /// The failure's error message, traceback or the lines that explain the job.
    ErrorLines,
    /// What the test printed while it ran: anyone's text, so it weighs least.
    TestOutput,
}

/// Characters of a commit sha shown in reports and results, everywhere.
pub const SHORT_SHA_LEN: usize = 8;

/// The first [`SHORT_SHA_LEN`] characters of `sha` (all of it when shorter).
pub fn short_sha(sha: &str) -> &str {
    sha.get(..SHORT_SHA_LEN).unwrap_or(sha)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum IssueState {
    Open,
    Closed,
}

/// The issue a failure matched and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct IssueMatch {
    pub number: u64,
    /// Left out of a failure at `summary` (the result's `links.issue` builds it).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub url: String,
    /// Left out of a failure at `summary` (its cause carries it).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub title: String,
    pub state: IssueState,
    pub score: f64,
    /// What matched: "test id in title", "job name in title", …
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub matched_on: String,
    /// Whether it counts as tracking: labelled `ci-failure` or opened by the project's members
    /// or collaborators. An issue by anyone else is only linked ("mentioned in").
    #[serde(default = "counts_as_tracking")]
    pub tracking: bool,
}

fn counts_as_tracking() -> bool {
    true
}

/// What kind of infrastructure trouble a failure shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum InfraKind {
    /// The agent disappeared (`exit_status` -1, "agent lost").
    AgentLost,
    /// Buildkite stopped the job at its `timeout_in_minutes`.
    JobTimeout,
    /// A test hung: faulthandler or pytest-timeout fired.
    Hang,
    /// The job was cancelled.
    Cancelled,
    /// Network, Hugging Face Hub or registry errors.
    NetworkOrHub,
    Disk,
    /// The host ran out of memory (not CUDA memory inside a test).
    HostOom,
    /// Docker image or pip install failed before tests ran.
    ImageBuild,
    /// The GPU faulted (Xid, ECC, illegal address, device unavailable).
    GpuFault,
    /// The host was not ready for the job: an agent hook failed, or the GPUs were not free
    /// when the engine started (memory held by something else on the host).
    HostNotReady,
}

impl InfraKind {
    pub fn describe(self) -> &'static str {
        match self {
            Self::AgentLost => "agent lost",
            Self::JobTimeout => "job timed out",
            Self::Hang => "test hang",
            Self::Cancelled => "job cancelled",
            Self::NetworkOrHub => "network or Hugging Face Hub error",
            Self::Disk => "disk full",
            Self::HostOom => "host out of memory",
            Self::ImageBuild => "image or dependency build failed",
            Self::GpuFault => "GPU fault",
            Self::HostNotReady => "host not ready (agent hook failed, or GPU memory in use)",
        }
    }
}

/// What chose a failure's error line: the log's structure first, strongest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorSource {
    /// The exception that closes the last traceback, or the first exception of pytest's last
    /// `E` block.
    Exception,
    /// The root cause above one of vLLM's wrapper errors (`EngineDeadError`, "See root cause
    /// above").
    RootCause,
    /// The message on the test's pytest summary line (`FAILED id - message`).
    SummaryLine,
    /// The exception of the test's `E` lines in its `FAILURES` section.
    TestELines,
    /// The last error line a tool or a process printed.
    ErrorLine,
    /// A line that only says a build step or a process failed: nothing above it says why.
    OnlyFailed,
    /// A line that names trouble without being an error (a retry warning, agent lost).
    Trouble,
    /// The crash of the process that left the test without a message.
    Crash,
}

impl ErrorSource {
    pub fn describe(self) -> &'static str {
        match self {
            Self::Exception => "the exception that closes the last traceback",
            Self::RootCause => "the root cause above a wrapper error",
            Self::SummaryLine => "the message of the test's summary line",
            Self::TestELines => "the exception of the test's E lines",
            Self::ErrorLine => "the last error line",
            Self::OnlyFailed => {
                "a line that only says a step or process failed (nothing above says why)"
            }
            Self::Trouble => "a line that names trouble (no error line)",
            Self::Crash => "the crash that left the test without a message",
        }
    }
}

/// How a failure's error line and its category were chosen, so that a verdict can be audited
/// (a rule that fires on the wrong line is otherwise invisible).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Decision {
    /// What chose the error line; absent when no line of the log says why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_source: Option<ErrorSource>,
    /// The error line's 1-based number in the text read of the job's log: from the log's first
    /// line when the whole log was read, else from the first line of its tail (as
    /// `ciwatch_get_job_log` numbers them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_line: Option<u64>,
    /// What chose the category: an infrastructure rule's name (`hub_or_network`, `host_oom`,
    /// …), or `job_state`, `code_build`, `retry`, `rerun_marker`, `cuda_oom`, `error_line`,
    /// `no_error_line`.
    pub kind_rule: String,
}

impl Decision {
    /// `error line: the exception that closes the last traceback (line 1234); kind: rule
    /// hub_or_network`.
    pub fn describe(&self) -> String {
        let error = match (self.error_source, self.error_line) {
            (Some(source), Some(line)) => format!("{} (line {line})", source.describe()),
            (Some(source), None) => format!("{} (line not known)", source.describe()),
            (None, _) => "none (no line says why)".to_string(),
        };
        format!("error line: {error}; kind: rule {}", self.kind_rule)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OwnerSource {
    Codeowners,
    Blame,
}

/// The most recent commit that touched the blamed lines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BlameCommit {
    pub sha: String,
    pub short_sha: String,
    pub author: String,
    pub author_email: String,
    /// RFC 3339, UTC.
    pub date: String,
    pub summary: String,
    /// The blamed lines, 1-based inclusive.
    pub lines: (u32, u32),
}
