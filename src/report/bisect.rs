//! A bisect plan as text: its status and range in one paragraph, then every commit of the
//! range with what main ran there, the next runs and the notes (markdown).

use super::code_span;
use crate::model::{short_sha, BisectPlan, BisectStatus, NextAction, RunVerdict};
use std::fmt::Write;

/// How to narrow a new failure's onset range with main's own builds: the call that plans it.
pub(crate) fn bisect_hint(failure_key: &str) -> String {
    format!(
        "narrow the range with main's own builds: `ciwatch_bisect_plan` with failure_key {}",
        code_span(failure_key)
    )
}

/// The plan's one-paragraph summary: status, range, next step.
pub fn bisect_summary(plan: &BisectPlan) -> String {
    let mut out = match (&plan.status, &plan.narrowed, &plan.culprit) {
        (BisectStatus::Confirmed, _, Some(culprit)) => format!(
            "Confirmed: {} is the culprit (main's run passed at the commit before it and failed with the signature at it).",
            short_sha(culprit)
        ),
        (BisectStatus::Inconclusive, _, _) => format!(
            "Inconclusive: the job passed in main's own build of the first bad commit {}; the failure may be flaky, nothing is narrowed.",
            short_sha(&plan.first_bad_commit)
        ),
        (_, Some(range), _) => format!(
            "Narrowed to {} of {} commits: after {}, through {}{}.",
            range.commits,
            plan.commits.len(),
            short_sha(&range.after_commit),
            short_sha(&range.through_commit),
            if range.through_commit == plan.first_bad_commit {
                " (known bad from the nightly only)"
            } else {
                ""
            }
        ),
        _ => "No range.".to_string(),
    };
    if let Some(next) = plan.next.first() {
        let _ = write!(out, " Next: {}.", next_text(next));
    }
    if plan.runs_to_confirm > 0 {
        let _ = write!(
            out,
            " At most {} more run{} confirm the culprit.",
            plan.runs_to_confirm,
            if plan.runs_to_confirm == 1 { "" } else { "s" }
        );
    }
    out
}

fn next_text(next: &crate::model::NextRun) -> String {
    match (next.action, &next.block) {
        (NextAction::Unblock, Some(block)) => format!(
            "unblock `{}` on build {} (commit {})",
            block.step_key,
            next.build_number.unwrap_or_default(),
            short_sha(&next.commit)
        ),
        _ => format!(
            "`/ci retry` at commit {} with VLLM_CI_ONLY_STEP_KEYS={}",
            short_sha(&next.commit),
            next.retry_step_keys.join(",")
        ),
    }
}

/// The whole plan as markdown: summary, the commits with their runs, notes and warnings.
pub fn bisect_text(plan: &BisectPlan) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## Bisect plan: {} in {}\n\n{}\n",
        code_span(&plan.test),
        code_span(&plan.job_name),
        plan.summary
    );
    if let Some(signature) = &plan.signature {
        let _ = writeln!(out, "Signature: {}\n", code_span(signature));
    }
    let _ = writeln!(out, "Range: {}\n", plan.compare_url);
    for commit in &plan.commits {
        let marker = if commit.in_narrowed_range { "→" } else { " " };
        let runs: Vec<String> = commit
            .runs
            .iter()
            .map(|r| format!("#{} {}", r.build_number, verdict_name(r.verdict)))
            .collect();
        let _ = writeln!(
            out,
            "- {marker} `{}` {} — {}{}",
            short_sha(&commit.sha),
            code_span(&commit.title),
            verdict_name(commit.verdict),
            if runs.is_empty() {
                String::new()
            } else {
                format!(" ({})", runs.join(", "))
            }
        );
    }
    for note in plan.notes.iter().chain(&plan.warnings) {
        let _ = writeln!(out, "\nNote: {}", code_span(note));
    }
    out
}

/// What a run's (or a commit's) verdict says, in words.
pub fn verdict_name(verdict: RunVerdict) -> &'static str {
    match verdict {
        RunVerdict::FailedSame => "failed with the signature",
        RunVerdict::Passed => "passed",
        RunVerdict::FailedUnread => "failed (log not read)",
        RunVerdict::FailedOther => "failed otherwise (no evidence)",
        RunVerdict::Blocked => "blocked",
        RunVerdict::NotRun => "did not run",
        RunVerdict::NotInBuild => "not in the build",
        RunVerdict::NoBuild => "no build",
    }
}
