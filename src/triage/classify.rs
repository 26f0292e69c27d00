//! Classification: one failure plus what is known about its job → category, confidence, reason.
//!
//! Priority (first hit wins), as in the original: KNOWN_TRACKED (GitHub matching, decided by the
//! caller), INFRA_SUSPECTED, FLAKY_SUSPECTED, NEW_REGRESSION, NEEDS_HUMAN_TRIAGE.
//!
//! * Infrastructure comes from the job's structure (`timed_out`, `exit_status` -1) or from a
//!   rule in [`super::rules`] matching an evidence line: the error message, the excerpt, the
//!   test's own output. Never from the test name.
//! * CUDA out-of-memory inside a test is **not** infrastructure: vLLM tests run alone on their
//!   GPU, so a test that now needs more memory than it did is a regression in the code or the
//!   test's settings. It is classified NEW_REGRESSION with the OOM line as evidence. Host OOM
//!   (the kernel killing the process) is infrastructure.
//! * A failed attempt whose retry passed in the same build is FLAKY_SUSPECTED (strong, 0.8);
//!   rerun markers from pytest-rerunfailures or `flaky` are weaker (0.6).

use super::rules::{find_infra, InfraKind};
use crate::model::{Category, EvidenceSource};
use regex::Regex;
use std::sync::LazyLock;

/// What the job tells about a failure, apart from its log.
#[derive(Debug, Clone, Copy, Default)]
pub struct JobSignals<'a> {
    /// Buildkite stopped the job at its time limit (state `timed_out`).
    pub timed_out: bool,
    pub exit_status: Option<i64>,
    /// Buildkite's `signal_reason` (`agent_stop`, `cancel`, `agent_refused`, …).
    pub signal_reason: Option<&'a str>,
    /// Id of a later attempt of this job that passed.
    pub passed_retry: Option<&'a str>,
}

/// The text a failure carries.
#[derive(Debug, Clone, Copy, Default)]
pub struct FailureText<'a> {
    pub error_message: Option<&'a str>,
    pub excerpt: Option<&'a str>,
    /// The test's own output lines (verbose `-s` runs), if any.
    pub output: &'a [String],
}

impl<'a> FailureText<'a> {
    fn lines(&self) -> impl Iterator<Item = &'a str> + Clone {
        self.error_lines().chain(self.output_lines())
    }

    /// The error message and the excerpt (the `E` block, the traceback, the job's error lines).
    fn error_lines(&self) -> impl Iterator<Item = &'a str> + Clone {
        let message = self.error_message.into_iter();
        let excerpt = self.excerpt.into_iter().flat_map(str::lines);
        message.chain(excerpt).map(str::trim_end)
    }

    /// What the test printed while it ran.
    fn output_lines(&self) -> impl Iterator<Item = &'a str> + Clone {
        self.output.iter().map(String::as_str).map(str::trim_end)
    }
}

/// How much less a rule's verdict weighs when its line was printed by the test itself: a test
/// can print "Connection reset by peer" about anything, the agent and the job state cannot lie.
const TEST_OUTPUT_DISCOUNT: f64 = 0.2;

#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub category: Category,
    pub confidence: f64,
    pub reason: String,
    pub infra_kind: Option<InfraKind>,
    pub evidence: Option<String>,
    pub decided_by: Option<EvidenceSource>,
    /// What chose the category: an infrastructure rule's name, or the structural reason.
    pub rule: &'static str,
}

static CUDA_OOM: LazyLock<Regex> = LazyLock::new(|| {
    crate::text::log_regex(r"CUDA out of memory|OutOfMemoryError|CUBLAS_STATUS_ALLOC_FAILED")
        .expect("valid")
});
/// pytest-rerunfailures prints `RERUN`; the `flaky` plugin prints "… failed; it passed …".
static CODE_BUILD: LazyLock<Regex> =
    LazyLock::new(|| crate::text::log_regex(super::rules::CODE_BUILD).expect("valid"));
static RERUN_MARKER: LazyLock<Regex> = LazyLock::new(|| {
    crate::text::log_regex(r"^(?:\S+::\S+ )?RERUN\b|\b\d+ rerun\b|(?i)\bflaky\b.*\bpassed\b")
        .expect("valid")
});

pub fn classify(text: FailureText<'_>, job: JobSignals<'_>) -> Verdict {
    if let Some(verdict) = structural_infra(job, text) {
        return verdict;
    }
    if let Some((rule, line)) = find_infra(text.error_lines()) {
        return infra(
            rule.kind,
            rule.confidence,
            line.trim().to_string(),
            rule.name,
        );
    }
    if let Some((rule, line)) = find_infra(text.output_lines()) {
        let mut verdict = infra(
            rule.kind,
            rule.confidence - TEST_OUTPUT_DISCOUNT,
            line.trim().to_string(),
            rule.name,
        );
        verdict
            .reason
            .push_str(" (printed by the test's own output, weaker than a job-level signal)");
        verdict.decided_by = Some(EvidenceSource::TestOutput);
        return verdict;
    }
    if let Some(line) = text.lines().find(|l| CODE_BUILD.is_match(l)) {
        return Verdict {
            category: Category::NewRegression,
            confidence: 0.6,
            reason: "The project itself failed to build or install: a build failure of the code (its requirements or compile step), not infrastructure".to_string(),
            infra_kind: None,
            evidence: Some(line.trim().to_string()),
            decided_by: Some(EvidenceSource::ErrorLines),
            rule: "code_build",
        };
    }
    code_or_triage(text, job)
}

/// A failure no infrastructure rule claims: flaky (a retry passed, a rerun marker), a regression
/// (an error line, CUDA out of memory among them), or for a person to triage (no error line).
fn code_or_triage(text: FailureText<'_>, job: JobSignals<'_>) -> Verdict {
    if let Some(retry) = job.passed_retry {
        return Verdict {
            category: Category::FlakySuspected,
            confidence: 0.8,
            reason: format!("Flaky: a retry of this job passed in the same build (job {retry})"),
            infra_kind: None,
            evidence: Some(format!("retry job {retry} passed")),
            decided_by: Some(EvidenceSource::Retry),
            rule: "retry",
        };
    }
    if let Some(line) = text.lines().find(|l| RERUN_MARKER.is_match(l)) {
        return Verdict {
            category: Category::FlakySuspected,
            confidence: 0.6,
            reason: "Flaky test indicator: the test was rerun".to_string(),
            infra_kind: None,
            evidence: Some(line.trim().to_string()),
            decided_by: Some(EvidenceSource::ErrorLines),
            rule: "rerun_marker",
        };
    }
    if let Some(message) = text.error_message.filter(|m| !m.trim().is_empty()) {
        if let Some(oom) = text.lines().find(|l| CUDA_OOM.is_match(l)) {
            return Verdict {
                category: Category::NewRegression,
                confidence: 0.5,
                reason: "CUDA out of memory inside the test: treated as a memory regression, not infrastructure".to_string(),
                infra_kind: None,
                evidence: Some(oom.trim().to_string()),
                decided_by: Some(EvidenceSource::ErrorLines),
                rule: "cuda_oom",
            };
        }
        return Verdict {
            category: Category::NewRegression,
            confidence: 0.5,
            reason: "New failure with no known pattern".to_string(),
            infra_kind: None,
            evidence: Some(message.trim().to_string()),
            decided_by: Some(EvidenceSource::ErrorLines),
            rule: "error_line",
        };
    }
    Verdict {
        category: Category::NeedsHumanTriage,
        confidence: 0.3,
        reason: "Insufficient data for automatic classification".to_string(),
        infra_kind: None,
        evidence: None,
        decided_by: None,
        rule: "no_error_line",
    }
}

fn structural_infra(job: JobSignals<'_>, text: FailureText<'_>) -> Option<Verdict> {
    let agent_line = || {
        text.lines()
            .filter(|l| l.starts_with("🚨 Error:"))
            .last()
            .map(str::to_string)
    };
    if job.timed_out {
        let evidence = agent_line().unwrap_or_else(|| "job state timed_out".to_string());
        return Some(job_infra(InfraKind::JobTimeout, 0.8, evidence));
    }
    if job.exit_status == Some(-1) {
        return Some(job_infra(
            InfraKind::AgentLost,
            0.8,
            "job exit_status -1 (agent lost)".to_string(),
        ));
    }
    match job.signal_reason {
        Some(
            reason @ ("agent_stop" | "agent_refused" | "agent_incompatible" | "process_run_error"),
        ) => Some(job_infra(
            InfraKind::AgentLost,
            0.7,
            format!("job signal_reason {reason}"),
        )),
        Some(reason @ "cancel") => Some(job_infra(
            InfraKind::Cancelled,
            0.7,
            format!("job signal_reason {reason}"),
        )),
        _ => None,
    }
}

fn infra(kind: InfraKind, confidence: f64, evidence: String, rule: &'static str) -> Verdict {
    Verdict {
        category: Category::InfraSuspected,
        confidence,
        reason: format!("Infrastructure issue detected: {}", kind.describe()),
        infra_kind: Some(kind),
        evidence: Some(evidence),
        decided_by: Some(EvidenceSource::ErrorLines),
        rule,
    }
}

/// An infrastructure verdict from the job's own fields.
fn job_infra(kind: InfraKind, confidence: f64, evidence: String) -> Verdict {
    Verdict {
        decided_by: Some(EvidenceSource::Job),
        ..infra(kind, confidence, evidence, "job_state")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tests_own_output_weighs_less_than_the_job() {
        let output =
            vec!["requests.exceptions.ConnectionError: Connection reset by peer".to_string()];
        let text = FailureText {
            error_message: Some("AssertionError: outputs differ"),
            excerpt: None,
            output: &output,
        };
        let from_output = classify(text, JobSignals::default());
        assert_eq!(from_output.category, Category::InfraSuspected);
        assert_eq!(from_output.decided_by, Some(EvidenceSource::TestOutput));
        assert!(
            (from_output.confidence - 0.5).abs() < 1e-9,
            "{}",
            from_output.confidence
        );
        assert!(from_output.reason.contains("test's own output"));
        let lost = classify(
            text,
            JobSignals {
                exit_status: Some(-1),
                ..JobSignals::default()
            },
        );
        assert_eq!(lost.decided_by, Some(EvidenceSource::Job));
        assert!(lost.confidence > from_output.confidence);
    }

    fn verdict(message: &str, excerpt: &str, job: JobSignals<'_>) -> Verdict {
        classify(
            FailureText {
                error_message: Some(message),
                excerpt: Some(excerpt),
                output: &[],
            },
            job,
        )
    }

    #[test]
    fn test_names_never_classify() {
        let v = classify(FailureText::default(), JobSignals::default());
        assert_eq!(v.category, Category::NeedsHumanTriage);
        let v = verdict(
            "AssertionError: outputs differ",
            "E   AssertionError: outputs differ",
            JobSignals::default(),
        );
        assert_eq!(v.category, Category::NewRegression);
    }

    #[test]
    fn structure_beats_log_lines() {
        let job = JobSignals {
            timed_out: true,
            ..Default::default()
        };
        let v = verdict(
            "x",
            "🚨 Error: The command was interrupted by a signal: signal: terminated",
            job,
        );
        assert_eq!(v.infra_kind, Some(InfraKind::JobTimeout));
        assert_eq!(
            v.evidence.as_deref(),
            Some("🚨 Error: The command was interrupted by a signal: signal: terminated")
        );
        let job = JobSignals {
            exit_status: Some(-1),
            ..Default::default()
        };
        assert_eq!(verdict("x", "", job).infra_kind, Some(InfraKind::AgentLost));
    }

    #[test]
    fn passed_retry_is_flaky_but_infra_evidence_wins() {
        let job = JobSignals {
            passed_retry: Some("019e"),
            ..Default::default()
        };
        let v = verdict("AssertionError: x", "", job);
        assert_eq!((v.category, v.confidence), (Category::FlakySuspected, 0.8));
        let v = verdict("OSError: [Errno 28] No space left on device", "", job);
        assert_eq!(v.infra_kind, Some(InfraKind::Disk));
    }

    #[test]
    fn cuda_oom_inside_a_test_is_a_regression() {
        let v = verdict(
            "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB.",
            "",
            JobSignals::default(),
        );
        assert_eq!(v.category, Category::NewRegression);
        assert!(v
            .evidence
            .unwrap_or_default()
            .contains("CUDA out of memory"));
    }
}
