//! A read job's failures, classified: one per failing test its log names, or one for the job
//! when its log explains the failure without a test (or could not be read).

use super::select::PlannedJob;
use crate::logs;
use crate::model::{
    Category, FailureClassification, IssueLink, JobState, JobStatus, Ownership, Since, TestFailure,
};
use crate::reader::JobRead;
use crate::triage::{self, FailureText, JobSignals};

/// Characters of `log_snippet`, as in the original.
const SNIPPET_CHARS: usize = 500;

pub(super) fn classify_job(planned: &PlannedJob<'_>, read: &JobRead) -> Vec<FailureClassification> {
    let job = planned.job;
    let signals = JobSignals {
        timed_out: job.job_state() == JobState::TimedOut,
        exit_status: job.exit_status,
        signal_reason: job.signal_reason.as_deref(),
        passed_retry: planned.passed_retry,
    };
    let job_name = job.display_name();
    let Some(analysis) = &read.analysis else {
        let mut failure = make_failure(planned, job_name.to_string(), None, None, &[], signals);
        if failure.category == Category::NeedsHumanTriage {
            failure.reason = Some(format!(
                "Log not read: {}",
                read.detail.as_deref().unwrap_or("unknown reason")
            ));
        }
        return vec![failure];
    };
    if let Some(level) = &analysis.job_level {
        let mut failure = make_failure(
            planned,
            job_name.to_string(),
            level.error_message.clone(),
            Some(level.excerpt.clone()).filter(|e| !e.is_empty()),
            &[],
            signals,
        );
        if let Some(source) = level.error_source {
            let reason = failure.reason.take().unwrap_or_default();
            failure.reason = Some(format!("{reason}; error line: {}", source.describe()));
        }
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
            make_failure(
                planned,
                test.node_id.clone(),
                test.error_message.clone(),
                test.excerpt.clone(),
                &test.output_tail,
                signals,
            )
        })
        .collect()
}

fn make_failure(
    planned: &PlannedJob<'_>,
    test_name: String,
    error_message: Option<String>,
    excerpt: Option<String>,
    output: &[String],
    signals: JobSignals<'_>,
) -> FailureClassification {
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
        confidence: verdict.confidence,
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
    }
}
