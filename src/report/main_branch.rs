//! The main-branch analysis text, in the original's layout.

use super::code_span;
use crate::model::MainBranchAnalysis;
use std::fmt::Write;

/// Failures listed in the text.
const TOP_FAILURES: usize = 10;

pub fn main_branch_text(analysis: &MainBranchAnalysis) -> String {
    let window = &analysis.analysis_window;
    let summary = &analysis.summary;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Main Branch Analysis ({}h lookback)\n",
        window.hours_lookback
    );
    let _ = writeln!(out, "**Builds scanned:** {}", window.builds_scanned);
    let _ = writeln!(
        out,
        "**Unique failures:** {}",
        summary.total_unique_failures
    );
    let _ = writeln!(
        out,
        "**Persistent failures (≥50% recurrence):** {}",
        summary.persistent_failures
    );
    let _ = writeln!(
        out,
        "**Intermittent failures:** {}\n",
        summary.intermittent_failures
    );
    let _ = writeln!(out, "## Top Failures by Recurrence:");
    for (k, entry) in analysis.failures.iter().take(TOP_FAILURES).enumerate() {
        let _ = writeln!(
            out,
            "{}. {} - {:.0}% ({}/{}) [{}] in {}",
            k + 1,
            code_span(&entry.failure.test_failure.test_name),
            entry.recurrence_rate * 100.0,
            entry.occurrence_count,
            window.builds_scanned,
            entry.failure.category.as_str(),
            code_span(&entry.failure.test_failure.job_name)
        );
    }
    out.trim_end().to_string() + "\n"
}
