//! The Daily Findings report: summary, counts by category, hard failures in detail, soft
//! failures briefly, jobs that were not analysed, warnings.

use super::code_span;
use crate::model::{BuildState, Category, FailureClassification, JobStatus, ScanResult, Trend};
use std::fmt::Write;

/// Error messages are cut to this many characters in the report (the full one is in the JSON).
const REPORT_ERROR_CHARS: usize = 160;

pub fn daily_findings(result: &ScanResult) -> String {
    let (hard, soft): (Vec<&FailureClassification>, Vec<&FailureClassification>) =
        result.failures.iter().partition(|f| !f.soft_failed);
    let date = result
        .scan_timestamp
        .get(..10)
        .unwrap_or(&result.scan_timestamp);
    let mut out = String::new();
    let _ = writeln!(out, "# Daily Findings - {date}\n");
    summary(&mut out, result, &hard, &soft);
    super::causes::causes_section(&mut out, result);
    if let Some(comparison) = &result.comparison {
        what_changed(&mut out, result, comparison);
    }
    by_category(&mut out, result, &hard, &soft);
    section(
        &mut out,
        "Hard Failures (blocking builds)",
        &hard,
        detailed_item,
    );
    section(
        &mut out,
        "Soft Failures (optional tests, allowed to fail)",
        &soft,
        compact_item,
    );
    unread_jobs(&mut out, result);
    if !result.warnings.is_empty() {
        let _ = writeln!(out, "\n## Warnings\n");
        for warning in &result.warnings {
            let _ = writeln!(out, "- {}", code_span(warning));
        }
    }
    out.trim_end().to_string() + "\n"
}

/// The build, its counts, and whether the answer is complete.
fn summary(
    out: &mut String,
    result: &ScanResult,
    hard: &[&FailureClassification],
    soft: &[&FailureClassification],
) {
    let info = &result.build_info;
    if !result.complete {
        let _ = writeln!(
            out,
            "> **Incomplete**: {}. Failures may be missing; see Warnings.\n",
            result.incomplete.join("; ")
        );
    }
    let _ = writeln!(out, "## Summary\n");
    let _ = writeln!(
        out,
        "- **Build**: [{}]({}) ({})",
        info.build_number, info.build_url, info.pipeline
    );
    let _ = writeln!(out, "- **Branch**: {}", code_span(&info.branch));
    let _ = writeln!(
        out,
        "- **Commit**: {}",
        code_span(crate::model::short_sha(&info.commit))
    );
    let _ = writeln!(out, "- **State**: {}", info.state.to_uppercase());
    let _ = writeln!(
        out,
        "- **Total Jobs**: {}, **Failed**: {} ({} hard / {} soft)",
        result.total_jobs, result.failed_jobs, result.hard_failed_jobs, result.soft_failed_jobs
    );
    let shown = if result.total_failures > result.failures.len() {
        format!(
            " (showing {} of {})",
            result.failures.len(),
            result.total_failures
        )
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        "- **Unique Failures**: {} ({} hard / {} soft){shown}",
        result.failures.len(),
        hard.len(),
        soft.len()
    );
    if info.build_state() == BuildState::Passed && hard.is_empty() && !soft.is_empty() {
        let _ = writeln!(
            out,
            "- **Build Status**: PASSED (all failures are optional)"
        );
    }
    if result.complete {
        let _ = writeln!(
            out,
            "- **Complete**: every failed job's log was read ({} failed job attempts)",
            result.completeness.failed_jobs_read
        );
    }
    if let Some(selection) = &result.selection {
        let _ = writeln!(out, "- **Selected**: {selection}");
    }
}

fn by_category(
    out: &mut String,
    result: &ScanResult,
    hard: &[&FailureClassification],
    soft: &[&FailureClassification],
) {
    let _ = writeln!(out, "\n## Failures by Category\n");
    for category in Category::REPORT_ORDER {
        let count = |list: &[&FailureClassification]| {
            list.iter().filter(|f| f.category == category).count()
        };
        let (h, s) = (count(hard), count(soft));
        if h + s > 0 {
            let _ = writeln!(
                out,
                "- {}: {} ({h} hard / {s} soft)",
                category.as_str(),
                h + s
            );
        }
    }
    if result.failures.is_empty() {
        let _ = writeln!(out, "- (none)");
    }
}

/// The failed jobs whose logs were not read in full, and why.
fn unread_jobs(out: &mut String, result: &ScanResult) {
    let unread: Vec<_> = result
        .jobs
        .iter()
        .filter(|j| j.status != JobStatus::Analyzed)
        .collect();
    if !unread.is_empty() {
        let _ = writeln!(out, "\n## Jobs Not Fully Analysed ({})\n", unread.len());
        for job in unread {
            let detail = job
                .detail
                .as_deref()
                .map(|d| format!(": {d}"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "- [{}]({}) {}{detail}",
                escape_link_text(&job.job_name),
                job.job_url,
                job.status.describe()
            );
        }
    }
}

/// What changed since the previous nightly, first: new failures (with their most likely
/// commit), continuing untracked ones, and what was fixed (issues to close).
fn what_changed(
    out: &mut String,
    result: &ScanResult,
    comparison: &crate::model::NightlyComparison,
) {
    let compared: Vec<String> = comparison
        .compared_builds
        .iter()
        .map(|n| n.to_string())
        .collect();
    let _ = writeln!(out, "\n## Since the Last Nightly\n");
    let _ = writeln!(
        out,
        "Compared with nightlies {}: **{} new**, {} continuing, {} intermittent, {} unknown, **{} fixed**.\n",
        if compared.is_empty() { "(none found)".to_string() } else { compared.join(", ") },
        comparison.new,
        comparison.continuing,
        comparison.intermittent,
        comparison.unknown,
        comparison.fixed
    );
    new_failures(out, result);
    continuing_untracked(out, result);
    tracked_issues(out, result);
    fixed(out, result);
}

fn with_trend(result: &ScanResult, trend: Trend) -> impl Iterator<Item = &FailureClassification> {
    result
        .failures
        .iter()
        .filter(move |f| f.since.trend.as_ref().is_some_and(|t| t.trend == trend))
}

/// New failures with their most likely commit.
fn new_failures(out: &mut String, result: &ScanResult) {
    let new: Vec<_> = with_trend(result, Trend::New).collect();
    if !new.is_empty() {
        let _ = writeln!(out, "### New ({})\n", new.len());
        for f in new {
            let tf = &f.test_failure;
            let suspect = f
                .since
                .onset
                .as_ref()
                .and_then(|o| {
                    o.suspects
                        .first()
                        .filter(|s| s.closeness > 0)
                        .map(|s| (o, s))
                })
                .map(|(o, s)| {
                    format!(
                        "; passed in {}, suspect {} {} ({})",
                        o.last_passed_build,
                        code_span(crate::model::short_sha(&s.sha)),
                        code_span(&s.title),
                        s.reason
                    )
                })
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "- {} in {} ({}){suspect}",
                code_span(&tf.test_name),
                code_span(&tf.job_name),
                f.category.as_str()
            );
        }
        let _ = writeln!(out);
    }
}

fn continuing_untracked(out: &mut String, result: &ScanResult) {
    let untracked: Vec<_> = with_trend(result, Trend::Continuing)
        .filter(|f| f.category == Category::ContinuingUntracked)
        .collect();
    if !untracked.is_empty() {
        let _ = writeln!(out, "### Continuing, not tracked ({})\n", untracked.len());
        for f in untracked {
            let streak = f.since.trend.as_ref().map_or(1, |t| t.streak);
            let _ = writeln!(
                out,
                "- {} in {}: {streak} nightlies (draft: `ciwatch_render` with format `draft_issue`)",
                code_span(&f.test_failure.test_name),
                code_span(&f.test_failure.job_name)
            );
        }
        let _ = writeln!(out);
    }
}

/// What was fixed, with the issues to close.
fn fixed(out: &mut String, result: &ScanResult) {
    if !result.fixed.is_empty() {
        let _ = writeln!(out, "### Fixed ({})\n", result.fixed.len());
        for fixed in &result.fixed {
            let issue = fixed
                .issue
                .as_ref()
                .map(|i| format!(" - tracked in [#{}]({}): close it?", i.number, i.url))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "- {} in {}: {}{issue}",
                code_span(&fixed.test_name),
                code_span(&fixed.job_name),
                fixed.evidence
            );
        }
    }
}

/// The silent issues to close and the closed ones failing again (still failing ones are
/// counted: their failures are listed below).
fn tracked_issues(out: &mut String, result: &ScanResult) {
    use crate::model::TrackedStatus;
    let still = result
        .tracked_issues
        .iter()
        .filter(|t| t.status == TrackedStatus::StillFailing)
        .count();
    let act: Vec<_> = result
        .tracked_issues
        .iter()
        .filter(|t| t.status != TrackedStatus::StillFailing)
        .collect();
    if still == 0 && act.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "### Tracked Issues ({still} still failing, {} to act on)\n",
        act.len()
    );
    for issue in act {
        let _ = writeln!(
            out,
            "- [#{}]({}) {}: {}",
            issue.number,
            issue.url,
            code_span(&issue.title),
            issue.suggestion
        );
    }
    let _ = writeln!(out);
}

fn section(
    out: &mut String,
    title: &str,
    failures: &[&FailureClassification],
    item: fn(&mut String, &FailureClassification),
) {
    let _ = writeln!(out, "\n## {title} ({})\n", failures.len());
    if failures.is_empty() {
        let _ = writeln!(out, "(none)");
        return;
    }
    for category in Category::REPORT_ORDER {
        let in_category: Vec<_> = failures.iter().filter(|f| f.category == category).collect();
        if in_category.is_empty() {
            continue;
        }
        let _ = writeln!(
            out,
            "### {} ({} failures)\n",
            category.as_str(),
            in_category.len()
        );
        for failure in in_category {
            item(out, failure);
        }
        let _ = writeln!(out);
    }
}

fn detailed_item(out: &mut String, f: &FailureClassification) {
    let tf = &f.test_failure;
    let _ = writeln!(
        out,
        "- **{}** in {}{}",
        code_span(&tf.test_name),
        code_span(&tf.job_name),
        job_link(f)
    );
    if let Some(message) = tf.error_message.as_deref().filter(|m| !m.is_empty()) {
        let _ = writeln!(
            out,
            "  - Error: {}",
            code_span(&crate::logs::bounded_text(message, REPORT_ERROR_CHARS))
        );
    }
    if let Some(reason) = &f.reason {
        let _ = writeln!(out, "  - Reason: {reason}");
    }
    evidence_line(out, f);
    nightly_lines(out, f);
    if let Some(confidence) = f.confidence {
        let _ = writeln!(out, "  - Confidence: {:.0}%", confidence * 100.0);
    }
    if let Some(issue) = &f.issue.url {
        let _ = writeln!(out, "  - GitHub Issue: {issue}");
    }
    owner_lines(out, f);
}

/// The evidence, when it says more than the error, and where it came from.
fn evidence_line(out: &mut String, f: &FailureClassification) {
    if let Some(evidence) = f
        .evidence
        .as_deref()
        .filter(|e| Some(*e) != f.test_failure.error_message.as_deref())
    {
        let source = match f.decided_by {
            Some(crate::model::EvidenceSource::Job) => " (the job's own state)",
            Some(crate::model::EvidenceSource::Retry) => " (a retry in this build)",
            Some(crate::model::EvidenceSource::TestOutput) => " (the test's own output)",
            Some(crate::model::EvidenceSource::ErrorLines) | None => "",
        };
        let _ = writeln!(
            out,
            "  - Evidence: {}{source}",
            code_span(&crate::logs::bounded_text(evidence, REPORT_ERROR_CHARS))
        );
    }
}

/// Its trend across the nightlies and, for a new failure, its onset and suspects.
fn nightly_lines(out: &mut String, f: &FailureClassification) {
    if let Some(trend) = &f.since.trend {
        let _ = writeln!(
            out,
            "  - Trend: {} ({} of {} previous nightlies failed; streak {}, since build {})",
            trend.trend.as_str(),
            trend.failed_in_window,
            trend.nightlies_compared,
            trend.streak,
            trend.first_failed_build
        );
    }
    if let Some(onset) = &f.since.onset {
        let _ = writeln!(
            out,
            "  - Onset: passed in {}, fails in {}: {}",
            onset.last_passed_build, onset.first_failed_build, onset.compare_url
        );
        for suspect in super::shown_suspects(onset) {
            let _ = writeln!(out, "    - {}", super::suspect_line(suspect));
        }
    }
}

/// Its owners (CODEOWNERS, else the blamed committer) and the last change to the test.
fn owner_lines(out: &mut String, f: &FailureClassification) {
    if !f.owner.all.is_empty() {
        let _ = writeln!(out, "  - Owners: {} (CODEOWNERS)", f.owner.all.join(" "));
    } else if let Some(owner) = &f.owner.first {
        let confidence = f
            .owner
            .confidence
            .filter(|c| *c > 0.0)
            .map_or("unknown".to_string(), |c| format!("{:.0}%", c * 100.0));
        let _ = writeln!(
            out,
            "  - Owner: {} (confidence: {confidence})",
            code_span(owner)
        );
    }
    if let Some(blame) = &f.owner.blame {
        let _ = writeln!(
            out,
            "  - Last change: {} by {} on {}: {}",
            code_span(&blame.short_sha),
            code_span(&blame.author),
            blame.date.get(..10).unwrap_or(&blame.date),
            code_span(&blame.summary)
        );
    }
}

fn compact_item(out: &mut String, f: &FailureClassification) {
    let tf = &f.test_failure;
    let test = if tf.test_name == tf.job_name {
        String::new()
    } else {
        format!(" {}", code_span(&tf.test_name))
    };
    let issue = f
        .issue
        .url
        .as_deref()
        .map(|u| format!(" - [{u}]({u})"))
        .unwrap_or_default();
    let kind = f
        .infra_kind
        .map(|k| format!(" ({})", k.describe()))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "- **{}**{test}{kind}{}{issue}",
        code_span(&tf.job_name),
        job_link(f)
    );
}

fn job_link(f: &FailureClassification) -> String {
    f.job_url
        .as_deref()
        .map(|url| format!(" ([log]({url}))"))
        .unwrap_or_default()
}

/// Job names come from the pipeline definition; keep them from closing the link text.
fn escape_link_text(text: &str) -> String {
    text.replace(['[', ']'], "")
}
