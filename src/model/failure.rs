//! One classified failure and how much of it a result carries (`DetailLevel`). Its fields are
//! grouped where they belong together (who owns it, which issue tracks it, when it began); the
//! groups are flattened, so the published fields are the original's.

use super::nightly::{FailureTrend, Onset};
use super::shared::{
    BlameCommit, Category, Decision, EvidenceSource, InfraKind, IssueMatch, OwnerSource,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One failure as extracted from a log.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct TestFailure {
    /// The pytest node id, or the job name for a job-level failure (no `::`).
    pub test_name: String,
    pub job_name: String,
    /// The first error line; at `summary` cut to 140 characters (the cut marked with `…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    /// The failure's traceback excerpt (the `E` block, or the lines that explain a job failure).
    /// At `full`, or on demand (ciwatch_render format "details").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack_trace: Option<String>,
    /// The log lines around the error. At `full`, or on demand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
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
    /// How sure the category is, 0 to 1 (`full`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
    /// Why this category, citing the evidence. Null at `detail_level=minimal`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(flatten)]
    pub owner: Ownership,
    /// Set for INFRA_SUSPECTED: which kind of infrastructure trouble.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub infra_kind: Option<InfraKind>,
    /// The log line or job field that proves the category, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<String>,
    /// Where the deciding evidence came from: job-level signals outrank the failure's own
    /// error lines, which outrank what the test printed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<EvidenceSource>,
    /// The error message normalised for grouping across builds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// True when the job is allowed to fail (`soft_fail`); rendered in the soft section.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub soft_failed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_url: Option<String>,
    #[serde(flatten)]
    pub since: Since,
    /// The `cause_id` of the root cause this failure belongs to (see `causes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause_id: Option<String>,
    /// How the error line and the category were chosen (the rule, the line's number). At
    /// `full`, or on demand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
}

/// The GitHub issue a failure matched, if any.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct IssueLink {
    /// URL of the matching GitHub issue.
    #[serde(
        default,
        rename = "github_issue",
        skip_serializing_if = "Option::is_none"
    )]
    pub url: Option<String>,
    /// The matching issue's number, title, state and what matched. A closed issue means the
    /// failure may have come back after a fix.
    #[serde(default, rename = "issue", skip_serializing_if = "Option::is_none")]
    pub matched: Option<IssueMatch>,
}

/// Who owns a failure: CODEOWNERS first, blame as the weaker signal.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Ownership {
    /// First owner (CODEOWNERS), or the last committer's email when only blame knows.
    #[serde(default, rename = "owner", skip_serializing_if = "Option::is_none")]
    pub first: Option<String>,
    #[serde(
        default,
        rename = "owner_confidence",
        skip_serializing_if = "Option::is_none"
    )]
    pub confidence: Option<f64>,
    /// Every owner of the failing file by CODEOWNERS (GitHub's rules: last match wins).
    #[serde(default, rename = "owners", skip_serializing_if = "Vec::is_empty")]
    pub all: Vec<String>,
    #[serde(
        default,
        rename = "owner_source",
        skip_serializing_if = "Option::is_none"
    )]
    pub source: Option<OwnerSource>,
    /// The repository path owners were looked up for.
    #[serde(
        default,
        rename = "owner_path",
        skip_serializing_if = "Option::is_none"
    )]
    pub path: Option<String>,
    /// The most recent commit that touched the failing test function (a weaker owner signal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
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
    /// Each failure's key, test, job, category, cause, first owner, issue number and trend.
    Minimal,
    /// Each failure's identity (key, test, job, category, cause, first error line cut to 140
    /// characters, its first 3 owners, issue number, trend) and each cause; the rest comes on demand
    /// (ciwatch_render with format "details" and a failure_key or cause_id). Held to 35,000
    /// characters, paged past it.
    #[default]
    Summary,
    /// Everything: evidence, reasons, tracebacks, snippets, blame, suspects, every job, the
    /// draft issues, `daily_findings_text` and `standup_summary_text`.
    Full,
}

/// Owners a failure names below `full` (its cause names up to 6; `full` and details on
/// demand name every one).
const SUMMARY_OWNERS: usize = 3;

/// Characters of the first error line kept at `summary` and `minimal`.
const SUMMARY_ERROR_CHARS: usize = 140;

impl FailureClassification {
    /// This failure as shown at `level`. Below `full` a failure is its identity: key, test,
    /// job, category, cause, first error line (cut, the cut marked), owners, issue number and
    /// trend. Its evidence, reason, fingerprint, traceback, snippet, blame and onset come on
    /// demand (ciwatch_render format "details" with its `failure_key`).
    pub fn at_detail(mut self, level: DetailLevel) -> Self {
        match level {
            DetailLevel::Minimal => {
                self.identity_only();
                self.test_failure.error_message = None;
                self.owner.all.truncate(1);
            }
            DetailLevel::Summary => self.identity_only(),
            DetailLevel::Full => {}
        }
        self
    }

    /// Without the URLs the result's `links` build from its ids.
    pub fn without_derivable_urls(&mut self) {
        self.job_url = None;
        self.issue.url = None;
        if let Some(issue) = &mut self.issue.matched {
            issue.url.clear();
        }
    }

    /// The URLs [`Self::without_derivable_urls`] left out, built again from `links`.
    pub fn with_urls_from(&mut self, links: &super::Links) {
        if let (None, Some(id)) = (&self.job_url, &self.job_id) {
            self.job_url = Some(links.job.replace("{job_id}", id));
        }
        if let Some(issue) = &mut self.issue.matched {
            if issue.url.is_empty() {
                issue.url = links.issue.replace("{number}", &issue.number.to_string());
            }
            if self.issue.url.is_none() {
                self.issue.url = Some(issue.url.clone());
            }
        }
    }

    fn identity_only(&mut self) {
        let tf = &mut self.test_failure;
        tf.stack_trace = None;
        tf.log_snippet = None;
        tf.error_message = tf.error_message.take().map(|message| {
            let first = message.lines().next().unwrap_or_default();
            crate::text::bounded_text(first, SUMMARY_ERROR_CHARS)
        });
        self.reason = None;
        self.confidence = None;
        self.evidence = None;
        self.fingerprint = None;
        self.decided_by = None;
        self.decision = None;
        if let Some(issue) = &mut self.issue.matched {
            issue.title.clear();
            issue.matched_on.clear();
        }
        // One field for owners: CODEOWNERS' first few, else the last committer blame names.
        let owner = &mut self.owner;
        if let (true, Some(first)) = (owner.all.is_empty(), owner.first.take()) {
            owner.all.push(first);
        }
        owner.all.truncate(SUMMARY_OWNERS);
        owner.first = None;
        owner.confidence = None;
        owner.source = None;
        owner.path = None;
        owner.blame = None;
        self.since.onset = None;
        if let Some(trend) = &mut self.since.trend {
            trend.notes.clear();
            trend.run_jobs.clear();
        }
    }
}
