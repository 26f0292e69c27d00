//! Root causes: failures grouped by signature, with what to do about each on GitHub and how
//! it stands in the compared pipeline.

use super::nightly::{Suspect, Trend};
use super::shared::{Category, IssueMatch, IssueState, Platform};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One root cause: the failures that share a signature (exception type, normalised message,
/// innermost `vllm/` frame), across parametrisations, shards, hardware and pipelines.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Cause {
    /// Stable id of the signature (16 hex digits).
    pub cause_id: String,
    /// `ExceptionType: normalised message @ vllm/file.py in function`, or `job: <error line>`.
    pub signature: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exception: Option<String>,
    /// Below `full`: the error line every member shares, given once here and left out of the
    /// members (each member's own is on it otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    /// How many failures it holds, in the whole build (a page may show fewer).
    #[serde(default)]
    pub failure_count: usize,
    /// The member failures' `failure_key`s (`full`; below it each failure names its
    /// `cause_id`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failure_keys: Vec<String>,
    /// Member tests, parametrisations folded (`file.py::test_x[...] ×4`) (`full`; below it
    /// each failure names its test and its `cause_id`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tests: Vec<String>,
    /// Member jobs (`full`; below it each failure names its job).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub jobs: Vec<String>,
    /// The jobs' test areas with hardware, shards and the `AMD:` prefix stripped (`full`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clusters: Vec<String>,
    /// Hardware the jobs name (`B200`, `H100`, `mi300`, `2 GPUs`) (`full`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hardware: Vec<String>,
    /// `full`; below it `parity` says where it fails.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<Platform>,
    /// The strongest category of its members (what needs action first).
    pub category: Category,
    /// New when every member is new; continuing when any is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trend: Option<Trend>,
    /// The first member's closest suspect commit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspect: Option<Suspect>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub owners: Vec<String>,
    /// The issue that tracks a member, when one does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issue: Option<IssueMatch>,
    /// Its state in the matching nightly of the compared pipeline (the AMD nightly).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elsewhere: Option<Elsewhere>,
    /// Where it fails: everywhere, only on CUDA, only on ROCm (unknown when the compared
    /// nightly did not run it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parity: Option<Parity>,
    /// For an untracked cause: file a new issue, or the issue that already covers it (an open
    /// one to comment on, a closed one to reopen).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issue_advice: Option<IssueAdvice>,
    /// At `full`, when a new issue is advised: the draft `[CI Failure]` issue in vLLM's form,
    /// every member test and job in it (ciwatch_render with format "draft_issue" and the
    /// cause_id gives it at any level). The server never writes to GitHub.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub draft_issue: Option<String>,
}

/// Characters of a signature kept below `full`.
const SUMMARY_SIGNATURE_CHARS: usize = 160;

impl Cause {
    /// Whether `failure` is one of its members (at every detail level).
    pub fn holds(&self, failure: &super::FailureClassification) -> bool {
        failure.cause_id.as_deref() == Some(self.cause_id.as_str())
    }

    /// This cause as shown at `level`. Below `full`: what broke, how many members, category,
    /// trend, first suspect, owners, issue and parity, and what to do on GitHub; its tests and
    /// jobs (each member failure names them), areas, hardware,
    /// platforms, the prose behind each verdict and the draft come on demand (ciwatch_render
    /// format "details" or "draft_issue" with its `cause_id`).
    pub fn at_detail(&mut self, level: super::DetailLevel) {
        if level == super::DetailLevel::Full {
            return;
        }
        self.signature = crate::text::bounded_text(&self.signature, SUMMARY_SIGNATURE_CHARS);
        self.exception = None;
        self.failure_keys.clear();
        self.tests.clear();
        self.jobs.clear();
        self.clusters.clear();
        self.hardware.clear();
        self.platforms.clear();
        self.draft_issue = None;
        if let Some(advice) = &mut self.issue_advice {
            advice.reason.clear();
        }
        if let Some(elsewhere) = &mut self.elsewhere {
            elsewhere.pipeline.clear();
            elsewhere.build_number = 0;
            elsewhere.jobs.clear();
            elsewhere.evidence.clear();
        }
        if let Some(issue) = &mut self.issue {
            issue.url.clear();
            issue.matched_on.clear();
        }
    }
}

/// What to do about an untracked cause on GitHub.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct IssueAdvice {
    pub action: IssueAction,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issue: Option<IssueRef>,
    /// Why (`full`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum IssueAction {
    /// No issue covers it: file the draft.
    FileNew,
    /// An open issue already names its test file and exception: add to it, file nothing new.
    UseOpen,
    /// A closed issue has its signature: reopen it instead of filing a duplicate.
    ReopenClosed,
}

/// An issue named in a result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct IssueRef {
    pub number: u64,
    pub url: String,
    pub title: String,
    pub state: IssueState,
}

/// A cause's state in the compared pipeline's nightly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Elsewhere {
    /// `org/pipeline` and build number of the nightly compared with (`full`; below it the
    /// result's `compared_nightly` says it once).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pipeline: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub build_number: u64,
    pub state: ElsewhereState,
    /// The jobs there that run the cause's tests or areas (`full`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub jobs: Vec<String>,
    /// Why it reads as it does (`full`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub evidence: String,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The compared pipeline's nightly, named once for every cause's `elsewhere`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ComparedNightly {
    /// `org/pipeline`.
    pub pipeline: String,
    pub build_number: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ElsewhereState {
    FailingThere,
    PassingThere,
    NotRunThere,
    /// It ran there but its log could not say (not read, read in part).
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Parity {
    Universal,
    CudaOnly,
    RocmOnly,
}
