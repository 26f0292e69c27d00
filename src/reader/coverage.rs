//! Whether a read of a job's log answers for the whole job, and what a partial read missed.
//! vLLM's jobs chain several pytest commands and go on after a failing one, so a tail that
//! shows the last command's failures says nothing of the commands before it.

use crate::buildkite::Job;
use crate::logs::LogAnalysis;

/// Whether the text read answers for the whole job, so no earlier failure can be missing: it is
/// the whole log or reaches the first command header. vLLM's jobs chain commands with
/// `|| CI_OVERALL_STATUS=1` and go on after a failing one, so for a job of several commands
/// nothing less will do. A job of one command is covered by the failure that ended it (its
/// test failures or its explained error); a job whose command count is unknown by its test
/// failures.
pub fn covers_job(complete: bool, analysis: &LogAnalysis, commands: Option<u32>) -> bool {
    if complete || analysis.reaches_first_command() {
        return true;
    }
    match commands {
        Some(n) if n > 1 => false,
        Some(_) => {
            !analysis.tests.is_empty() || analysis.job_level.as_ref().is_some_and(|l| l.explained)
        }
        None => !analysis.tests.is_empty(),
    }
}

/// How many commands the job runs: from its `command` (vLLM's generated script echoes
/// `Command (i/N)`), else from the headers the log showed.
pub(super) fn command_count(job: &Job, analysis: &LogAnalysis) -> Option<u32> {
    job.command
        .as_deref()
        .and_then(crate::pipeline::command_count)
        .or_else(|| analysis.command_headers.iter().map(|&(_, n)| n).max())
}

/// What a partial read missed, for `detail` and the scan's warnings.
pub(super) fn partial_detail(
    analysis: &LogAnalysis,
    commands: Option<u32>,
    seen: u64,
    total: u64,
    stopped_by: Option<String>,
) -> String {
    let earliest = analysis.command_headers.iter().map(|&(i, _)| i).min();
    let missed = match (earliest, commands) {
        (Some(first_read), Some(n)) if first_read > 1 => format!(
            "commands 1 to {} of {n} were not read (the earliest header read is Command ({first_read}/{n}))",
            first_read - 1
        ),
        (_, Some(n)) => format!("the job's first command (of {n}) was not reached"),
        _ => "the start of the log was not reached".to_string(),
    };
    let why = stopped_by.map(|s| format!(": {s}")).unwrap_or_default();
    format!(
        "read the last {seen} of {total} log bytes; {missed}, so failures there may be missing{why}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn analysis_of(text: &str) -> LogAnalysis {
        crate::logs::analyze_log(text)
    }

    #[test]
    fn coverage_of_a_tail() {
        let exit_only = analysis_of("noise\n🚨 Error: The command exited with status 1\n");
        assert!(!covers_job(false, &exit_only, Some(1)));
        assert!(covers_job(true, &exit_only, Some(1)));
        let error = analysis_of("noise\nRuntimeError: CUDA error: an illegal memory access\n🚨 Error: The command exited with status 1\n");
        // One command: its error is the failure that ended the job.
        assert!(covers_job(false, &error, Some(1)));
        // Several: an earlier command may have failed too.
        assert!(!covers_job(false, &error, Some(6)));
        assert!(!covers_job(false, &error, None));
        let first = analysis_of("+++ :test_tube: Command (1/6): pytest a\nRuntimeError: x\n");
        assert!(covers_job(false, &first, Some(6)));
        // The last command's failure summary says nothing of the commands before it.
        let last = analysis_of("+++ :test_tube: Command (5/5): pytest e\nFAILED tests/e.py::test_e - AssertionError\n= 1 failed in 2.00s =\n");
        assert!(!covers_job(false, &last, Some(5)));
        // Unknown count: the headers the tail showed tell it.
        assert_eq!(last.command_headers.iter().map(|&(_, n)| n).max(), Some(5));
        let single =
            analysis_of("FAILED tests/e.py::test_e - AssertionError\n= 1 failed in 2.00s =\n");
        assert!(covers_job(false, &single, Some(1)));
        assert!(covers_job(false, &single, None));
    }
}
