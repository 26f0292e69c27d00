//! Pure log analysis: raw Buildkite log bytes in, failures out. No I/O, no clients, no MCP.
//!
//! `clean` strips the terminal encoding, `pytest` finds test failures, `job_level` explains a
//! failed job when no test is named. [`analyze_log`] runs all three and also reports how much of
//! a job's commands the text covers, so the caller can tell a complete answer from a partial tail.

pub mod clean;
pub mod job_level;
pub mod pytest;

pub use clean::clean_log;
pub use job_level::{explain_job_failure, JobLevelFailure};
pub use pytest::{find_pytest_failures, Outcome, PytestFailure};

/// The result of reading one job log.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct LogAnalysis {
    pub tests: Vec<PytestFailure>,
    pub passed: Vec<String>,
    /// Set when no test failure was found: what explains the job's failure.
    pub job_level: Option<JobLevelFailure>,
    /// The command headers (`+++ :test_tube: Command (i/N): …`) seen, as `(i, N)`.
    pub command_headers: Vec<(u32, u32)>,
}

impl LogAnalysis {
    /// Whether the text reaches back to the job's first command, so no earlier command's
    /// failures can be missing from it.
    pub fn reaches_first_command(&self) -> bool {
        self.command_headers.iter().any(|&(i, _)| i == 1)
    }
}

/// Analyses cleaned log text (see [`clean_log`]).
pub fn analyze_log(cleaned: &str) -> LogAnalysis {
    let mut findings = find_pytest_failures(cleaned);
    for failure in &mut findings.failures {
        take_root_cause(failure);
    }
    let job_level = findings
        .failures
        .is_empty()
        .then(|| explain_job_failure(cleaned));
    LogAnalysis {
        tests: findings.failures,
        passed: findings.passed,
        job_level,
        command_headers: command_headers(cleaned),
    }
}

/// A test that failed with one of vLLM's wrapper errors gets the root cause from its excerpt
/// or its output as `error_message`; the wrapper stays in the excerpt.
fn take_root_cause(failure: &mut PytestFailure) {
    if !failure
        .error_message
        .as_deref()
        .is_some_and(job_level::is_wrapper)
    {
        return;
    }
    let lines: Vec<&str> = failure
        .output_tail
        .iter()
        .map(String::as_str)
        .chain(failure.excerpt.iter().flat_map(|e| e.lines()))
        .map(|l| l.trim_start_matches("E ").trim())
        .collect();
    if let Some(i) = job_level::root_cause_index(&lines) {
        failure.error_message = Some(pytest::truncate_message(
            job_level::strip_process_prefix(lines[i]).trim(),
        ));
    }
}

/// vLLM's generated job scripts echo `+++ :test_tube: Command (2/6): pytest -v -s …` before
/// each command.
fn command_headers(cleaned: &str) -> Vec<(u32, u32)> {
    let mut found = Vec::new();
    for (at, _) in cleaned.match_indices("Command (") {
        let line_start = cleaned[..at].rfind('\n').map_or(0, |i| i + 1);
        if !cleaned[line_start..at].starts_with("+++ ") {
            continue;
        }
        let rest = &cleaned[at + "Command (".len()..];
        let Some(close) = rest.find(')') else {
            continue;
        };
        if let Some((i, n)) = rest[..close].split_once('/') {
            if let (Ok(i), Ok(n)) = (i.parse(), n.parse()) {
                found.push((i, n));
            }
        }
    }
    found
}

/// A line as kept in excerpts: at most [`EXCERPT_LINE_CHARS`] characters.
pub(crate) fn bounded_line(line: &str) -> String {
    bounded_text(line, EXCERPT_LINE_CHARS)
}

/// Longest single line kept in an excerpt.
pub const EXCERPT_LINE_CHARS: usize = 500;

pub use crate::text::bounded_text;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_headers_are_found() {
        let log = "--- :nvidia: GPU Info\n+++ :test_tube: Command (1/6): pytest -v -s a\nx\n+++ :test_tube: Command (2/6): pytest b\n";
        let analysis = analyze_log(log);
        assert_eq!(analysis.command_headers, vec![(1, 6), (2, 6)]);
        assert!(analysis.reaches_first_command());
    }

    #[test]
    fn bounded_text_counts_characters() {
        assert_eq!(bounded_text("abcdef", 6), "abcdef");
        assert_eq!(bounded_text("abcdefg", 6), "abc...");
        assert_eq!(bounded_text("ééééééé", 6), "ééé...");
    }
}
