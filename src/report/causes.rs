//! The root causes of a scan, as reports lead with them: a count line, then one entry per
//! cause (its signature, member tests and jobs, platforms, where else it fails, suspect,
//! owners, issue).

use super::code_span;
use crate::model::{Category, Cause, ElsewhereState, Parity, ScanResult, Trend};
use std::fmt::Write;

/// "11 causes across 37 failures in 16 jobs: 3 new, 2 continuing, …", of the whole build (the
/// causes by kind only when the result holds them all).
pub fn cause_counts(result: &ScanResult) -> Option<String> {
    if result.causes.is_empty() {
        return None;
    }
    let counts = result.build_counts();
    let (causes, failures, jobs) = (counts.causes, counts.hard + counts.soft, counts.jobs);
    let count = |keep: &dyn Fn(&Cause) -> bool| result.causes.iter().filter(|c| keep(c)).count();
    let mut parts = Vec::new();
    let kinds = [
        (count(&|c| c.trend == Some(Trend::New)), "new"),
        (count(&|c| c.trend == Some(Trend::Continuing)), "continuing"),
        (count(&|c| c.category == Category::FlakySuspected), "flaky"),
        (count(&|c| c.category == Category::InfraSuspected), "infra"),
        (count(&|c| c.category == Category::KnownTracked), "tracked"),
        (
            count(&|c| c.category == Category::NeedsHumanTriage),
            "to triage",
        ),
    ];
    // A page holds only its failures' causes: their kinds would not be the build's.
    if !result.page.is_partial() {
        for (n, what) in kinds {
            if n > 0 {
                parts.push(format!("{n} {what}"));
            }
        }
    }
    let plural = |n: usize, one: &str, many: &str| {
        if n == 1 {
            one.to_string()
        } else {
            many.to_string()
        }
    };
    let mut line = format!(
        "{causes} {} across {failures} {} in {jobs} {}",
        plural(causes, "cause", "causes"),
        plural(failures, "failure", "failures"),
        plural(jobs, "job", "jobs"),
    );
    if !parts.is_empty() {
        line.push_str(&format!(": {}", parts.join(", ")));
    }
    Some(line)
}

/// The Daily Findings' causes section.
pub fn causes_section(out: &mut String, result: &ScanResult) {
    let Some(counts) = cause_counts(result) else {
        return;
    };
    let _ = writeln!(out, "\n## Causes\n\n{counts}.\n");
    for (i, cause) in result.causes.iter().enumerate() {
        let trend = cause
            .trend
            .map(|t| format!(", {}", t.as_str()))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "{}. **{}**{trend}: {}",
            i + 1,
            cause.category.as_str(),
            code_span(&cause.signature)
        );
        let tests: Vec<String> = cause.tests.iter().map(|t| code_span(t)).collect();
        let _ = writeln!(out, "   - tests: {}", tests.join(", "));
        let jobs: Vec<String> = cause.jobs.iter().map(|j| code_span(j)).collect();
        let platforms: Vec<&str> = cause.platforms.iter().map(|p| platform_name(*p)).collect();
        let hardware = if cause.hardware.is_empty() {
            String::new()
        } else {
            format!(" on {}", cause.hardware.join(", "))
        };
        let _ = writeln!(
            out,
            "   - jobs: {} ({}{hardware})",
            jobs.join(", "),
            platforms.join(", ")
        );
        if let Some(elsewhere) = &cause.elsewhere {
            let parity = cause
                .parity
                .map(|p| format!(": {}", parity_name(p)))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "   - {} {}{parity}",
                elsewhere_name(elsewhere.state),
                format_args!("{} #{}", elsewhere.pipeline, elsewhere.build_number)
            );
        }
        if let Some(suspect) = &cause.suspect {
            let _ = writeln!(out, "   - suspect: {}", super::suspect_line(suspect));
        }
        if !cause.owners.is_empty() {
            let owners: Vec<String> = cause.owners.iter().map(|o| code_span(o)).collect();
            let _ = writeln!(out, "   - owners: {}", owners.join(", "));
        }
        if let Some(issue) = &cause.issue {
            let state = issue_state_name(issue.state);
            let kind = if issue.tracking {
                "tracking"
            } else {
                "mentioned"
            };
            let _ = writeln!(
                out,
                "   - issue: [#{}]({}) ({state}, {kind})",
                issue.number, issue.url
            );
        }
        if let Some(advice) = &cause.issue_advice {
            let _ = writeln!(out, "   - {}", advice.reason);
        }
    }
}

pub(crate) fn platform_name(platform: crate::model::Platform) -> &'static str {
    use crate::model::Platform;
    match platform {
        Platform::Cuda => "cuda",
        Platform::Rocm => "rocm",
        Platform::Xpu => "xpu",
        Platform::Npu => "npu",
        Platform::Cpu => "cpu",
    }
}

pub(crate) fn issue_state_name(state: crate::model::IssueState) -> &'static str {
    match state {
        crate::model::IssueState::Open => "open",
        crate::model::IssueState::Closed => "closed",
    }
}

pub(crate) fn parity_name(parity: Parity) -> &'static str {
    match parity {
        Parity::Universal => "universal",
        Parity::CudaOnly => "CUDA only",
        Parity::RocmOnly => "ROCm only",
    }
}

fn elsewhere_name(state: ElsewhereState) -> &'static str {
    match state {
        ElsewhereState::FailingThere => "failing in",
        ElsewhereState::PassingThere => "passing in",
        ElsewhereState::NotRunThere => "not run in",
        ElsewhereState::Unknown => "no answer from",
    }
}
