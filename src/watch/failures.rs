//! A read job's failures, classified: one per failing test its log names, or one for the job
//! when its log explains the failure without a test (or could not be read).

use super::select::PlannedJob;
use crate::buildkite::Job;
use crate::logs;
use crate::model::{
    Category, Decision, ErrorSource, FailureClassification, IssueLink, JobState, JobStatus,
    Ownership, Since, TestFailure,
};
use crate::reader::JobRead;
use crate::triage::{self, FailureText, JobSignals};

/// Characters of `log_snippet`, as in the original.
const SNIPPET_CHARS: usize = 500;

/// What `job` itself says about its failure, apart from its log (`passed_retry`: a later
/// attempt of it that passed).
pub(super) fn job_signals<'a>(job: &'a Job, passed_retry: Option<&'a str>) -> JobSignals<'a> {
    JobSignals {
        timed_out: job.job_state() == JobState::TimedOut,
        exit_status: job.exit_status,
        signal_reason: job.signal_reason.as_deref(),
        passed_retry,
    }
}

pub(super) fn classify_job(planned: &PlannedJob<'_>, read: &JobRead) -> Vec<FailureClassification> {
    let job = planned.job;
    let signals = job_signals(job, planned.passed_retry);
    let job_name = job.display_name();
    let Some(analysis) = &read.analysis else {
        let mut failure = make_failure(planned, Found::nothing(job_name), signals);
        if failure.category == Category::NeedsHumanTriage {
            failure.reason = Some(format!(
                "Log not read: {}",
                read.detail.as_deref().unwrap_or("unknown reason")
            ));
        }
        return vec![failure];
    };
    if let Some(level) = &analysis.job_level {
        let found = Found {
            test_name: job_name.to_string(),
            error_message: level.error_message.clone(),
            excerpt: Some(level.excerpt.clone()).filter(|e| !e.is_empty()),
            output: &[],
            error_source: level.error_source,
            error_line: level.error_line,
        };
        let mut failure = make_failure(planned, found, signals);
        if read.status == JobStatus::PartlyAnalyzed {
            let reason = failure.reason.take().unwrap_or_default();
            failure.reason = Some(format!("{reason} (log read only in part)"));
        }
        return vec![failure];
    }
    analysis
        .tests
        .iter()
        .map(|test| {
            // One spelling of a test however its job ran pytest (`tests/v1/…` from the
            // repository, `v1/…` from `tests/`), so the answer and the keys agree.
            let found = Found {
                test_name: crate::input::comparable(&test.node_id).to_string(),
                error_message: test.error_message.clone(),
                excerpt: test.excerpt.clone(),
                output: &test.output_tail,
                error_source: test.error_source,
                error_line: test.error_line,
            };
            make_failure(planned, found, signals)
        })
        .collect()
}

/// What a job's log says of one failure: its name, its error line (what chose it, where it
/// stands) and the lines around it.
struct Found<'a> {
    test_name: String,
    error_message: Option<String>,
    excerpt: Option<String>,
    output: &'a [String],
    error_source: Option<ErrorSource>,
    error_line: Option<u64>,
}

impl Found<'_> {
    /// A job whose log says nothing (it was not read).
    fn nothing(job_name: &str) -> Self {
        Self {
            test_name: job_name.to_string(),
            error_message: None,
            excerpt: None,
            output: &[],
            error_source: None,
            error_line: None,
        }
    }
}

fn make_failure(
    planned: &PlannedJob<'_>,
    found: Found<'_>,
    signals: JobSignals<'_>,
) -> FailureClassification {
    let Found {
        test_name,
        error_message,
        excerpt,
        output,
        error_source,
        error_line,
    } = found;
    let job = planned.job;
    let verdict = triage::classify(
        FailureText {
            error_message: error_message.as_deref(),
            excerpt: excerpt.as_deref(),
            output,
        },
        signals,
    );
    let snippet_source = excerpt
        .clone()
        .or_else(|| (!output.is_empty()).then(|| output.join("\n")));
    FailureClassification {
        failure_key: triage::failure_key(job.display_name(), &test_name, error_message.as_deref()),
        fingerprint: error_message.as_deref().map(triage::fingerprint),
        test_failure: TestFailure {
            test_name,
            job_name: job.display_name().to_string(),
            error_message,
            stack_trace: excerpt,
            log_snippet: snippet_source.map(|s| logs::bounded_text(&s, SNIPPET_CHARS)),
        },
        category: verdict.category,
        issue: IssueLink::default(),
        confidence: Some(verdict.confidence),
        reason: Some(verdict.reason),
        owner: Ownership::default(),
        infra_kind: verdict.infra_kind,
        evidence: verdict.evidence,
        decided_by: verdict.decided_by,
        soft_failed: job.is_soft_failed(),
        job_id: Some(job.id.clone()),
        job_url: job.web_url.clone(),
        since: Since::default(),
        cause_id: None,
        decision: Some(Decision {
            error_source,
            error_line,
            kind_rule: verdict.rule.to_string(),
        }),
    }
}
