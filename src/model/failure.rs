//! One classified failure and how much of it a result carries (`DetailLevel`). Its fields are
//! grouped where they belong together (who owns it, which issue tracks it, when it began); the
//! groups are flattened, so the published fields are the original's.

use super::nightly::{FailureTrend, Onset};
use super::shared::{BlameCommit, Category, EvidenceSource, InfraKind, IssueMatch, OwnerSource};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One failure as extracted from a log.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct TestFailure {
    /// The pytest node id, or the job name for a job-level failure (no `::`).
    pub test_name: String,
    pub job_name: String,
    #[serde(default)]
    pub error_message: Option<String>,
    /// The failure's traceback excerpt (the `E` block, or the lines that explain a job failure).
    #[serde(default)]
    pub stack_trace: Option<String>,
    #[serde(default)]
    pub log_snippet: Option<String>,
}

/// A classified failure.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct FailureClassification {
    /// Stable id: sha256 of job name, test name and first error line (first 16 hex digits).
    pub failure_key: String,
    pub test_failure: TestFailure,
    pub category: Category,
    #[serde(flatten)]
    pub issue: IssueLink,
    pub confidence: f64,
    /// Why this category, citing the evidence. Null at `detail_level=minimal`.
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(flatten)]
    pub owner: Ownership,
    /// Set for INFRA_SUSPECTED: which kind of infrastructure trouble.
    #[serde(default)]
    pub infra_kind: Option<InfraKind>,
    /// The log line or job field that proves the category, when there is one.
    #[serde(default)]
    pub evidence: Option<String>,
    /// Where the deciding evidence came from: job-level signals outrank the failure's own
    /// error lines, which outrank what the test printed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<EvidenceSource>,
    /// The error message normalised for grouping across builds.
    #[serde(default)]
    pub fingerprint: Option<String>,
    /// True when the job is allowed to fail (`soft_fail`); rendered in the soft section.
    #[serde(default)]
    pub soft_failed: bool,
    #[serde(default)]
    pub job_id: Option<String>,
    #[serde(default)]
    pub job_url: Option<String>,
    #[serde(flatten)]
    pub since: Since,
    /// The `cause_id` of the root cause this failure belongs to (see `causes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause_id: Option<String>,
}

/// The GitHub issue a failure matched, if any.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct IssueLink {
    /// URL of the matching GitHub issue.
    #[serde(default, rename = "github_issue")]
    pub url: Option<String>,
    /// The matching issue's number, title, state and what matched. A closed issue means the
    /// failure may have come back after a fix.
    #[serde(default, rename = "issue")]
    pub matched: Option<IssueMatch>,
}

/// Who owns a failure: CODEOWNERS first, blame as the weaker signal.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Ownership {
    /// First owner (CODEOWNERS), or the last committer's email when only blame knows.
    #[serde(default, rename = "owner")]
    pub first: Option<String>,
    #[serde(default, rename = "owner_confidence")]
    pub confidence: Option<f64>,
    /// Every owner of the failing file by CODEOWNERS (GitHub's rules: last match wins).
    #[serde(default, rename = "owners")]
    pub all: Vec<String>,
    #[serde(default, rename = "owner_source")]
    pub source: Option<OwnerSource>,
    /// The repository path owners were looked up for.
    #[serde(default, rename = "owner_path")]
    pub path: Option<String>,
    /// The most recent commit that touched the failing test function (a weaker owner signal).
    #[serde(default)]
    pub blame: Option<BlameCommit>,
}

/// How a failure stands against the previous scheduled nightlies (nightly scans only).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Since {
    /// Compared with the previous scheduled nightlies (nightly scans only): new, continuing,
    /// intermittent or unknown, since when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trend: Option<FailureTrend>,
    /// For a new failure: the last nightly where it passed, the first where it failed, the
    /// commits between them ranked by how close each is to the failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub onset: Option<Onset>,
}

/// How much of each failure a result carries; the token budget knob.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DetailLevel {
    /// Category, key, job, test name, confidence and first owner only; messages, traces,
    /// reasons, evidence, fingerprints and blame are left out.
    Minimal,
    /// Error messages and reasons; snippets cut to 200 characters, no stack traces, no draft
    /// issue texts (ciwatch_render with format "draft_issue" gives one per cause).
    #[default]
    Summary,
    /// Everything, plus `daily_findings_text` and `standup_summary_text`.
    Full,
}

/// Characters of `log_snippet` kept at `detail_level=summary`.
const SUMMARY_SNIPPET_CHARS: usize = 200;

impl FailureClassification {
    /// This failure as shown at `level`.
    pub fn at_detail(mut self, level: DetailLevel) -> Self {
        /// Suspect commits kept at `summary`; `full` keeps all.
        const SUMMARY_SUSPECTS: usize = 5;
        match level {
            DetailLevel::Minimal => {
                let tf = &mut self.test_failure;
                tf.error_message = None;
                tf.stack_trace = None;
                tf.log_snippet = None;
                self.issue = IssueLink::default();
                self.reason = None;
                self.evidence = None;
                self.fingerprint = None;
                self.owner.all = Vec::new();
                self.owner.path = None;
                self.owner.blame = None;
                if let Some(onset) = &mut self.since.onset {
                    onset.suspects.truncate(1);
                }
            }
            DetailLevel::Summary => {
                let tf = &mut self.test_failure;
                tf.stack_trace = None;
                tf.log_snippet = tf
                    .log_snippet
                    .take()
                    .map(|s| crate::text::bounded_text(&s, SUMMARY_SNIPPET_CHARS + 3));
                if let Some(onset) = &mut self.since.onset {
                    onset.suspects.truncate(SUMMARY_SUSPECTS);
                }
            }
            DetailLevel::Full => {}
        }
        self
    }
}
