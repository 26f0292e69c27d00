//! Pure log analysis: raw Buildkite log bytes in, failures out. No I/O, no clients, no MCP.
//!
//! `clean` strips the terminal encoding, `pytest` finds test failures, `job_level` explains a
//! failed job when no test is named. [`analyze_log`] runs all three and also reports how much of
//! a job's commands the text covers, so the caller can tell a complete answer from a partial tail.

pub mod clean;
mod clock;
pub mod job_level;
pub mod prefix;
pub mod pytest;
mod pytest_failure;
mod pytest_lines;
mod pytest_sections;
mod traceback;
pub mod wording;

pub use clean::clean_log;
pub use job_level::{explain_job_failure, JobLevelFailure};
pub use pytest::{find_pytest_failures, Outcome, PytestFailure};

use crate::model::ErrorSource;

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
    let mut analyzer = LogAnalyzer::default();
    for line in cleaned.lines() {
        analyzer.line(line);
    }
    analyzer.finish()
}

/// [`analyze_log`] one cleaned line at a time, for a log read as a stream: it holds the pytest
/// scanner's state, the last [`job_level::SEARCH_LINES`] lines (what explains a job without
/// test ids) and the command headers, never the log.
#[derive(Default)]
pub struct LogAnalyzer {
    pytest: pytest::PytestScanner,
    recent: std::collections::VecDeque<String>,
    command_headers: Vec<(u32, u32)>,
    /// Lines taken so far: `recent`'s last line is this one.
    lines: u64,
}

impl LogAnalyzer {
    /// Takes the next cleaned line (without its newline).
    pub fn line(&mut self, line: &str) {
        self.lines += 1;
        self.pytest.line(line);
        if let Some(header) = command_header(line) {
            self.command_headers.push(header);
        }
        // The oldest line's buffer is reused: no allocation per line once the window is full.
        let mut kept = if self.recent.len() == job_level::SEARCH_LINES {
            self.recent.pop_front().unwrap_or_default()
        } else {
            String::new()
        };
        kept.clear();
        kept.push_str(line);
        self.recent.push_back(kept);
    }

    /// What the lines taken say.
    pub fn finish(self) -> LogAnalysis {
        let first_recent = self.lines + 1 - self.recent.len() as u64;
        let lines: Vec<&str> = self.recent.iter().map(String::as_str).collect();
        let mut findings = self.pytest.finish();
        for failure in &mut findings.failures {
            take_root_cause(failure);
        }
        // The one failing test, silent: its section head was not in the text (a paste that starts
        // at its `E` lines), so the log's last `E` block is its exception. Still wrapped (its
        // summary's `ProcessRaisedException:` says only that a child's traceback follows): the
        // log's last exception that is no wrapper. With other failures these may be theirs.
        if let [only] = findings.failures.as_mut_slice() {
            let wrapped = only
                .error_message
                .as_deref()
                .is_some_and(|m| wording::is_wrapper(m) || wording::names_only_exception(m));
            let e_block = traceback::last_e_block_exception(&lines).filter(|&e| {
                let body = prefix::without_pytest_margins(prefix::body(lines[e])).trim();
                !wording::is_wrapper(body) && !wording::names_only_exception(body)
            });
            let e_block = e_block.map(|e| (e, ErrorSource::Exception));
            let found = if wrapped {
                e_block.or_else(|| {
                    traceback::root_cause_index(&lines).map(|e| (e, ErrorSource::RootCause))
                })
            } else {
                e_block.filter(|_| only.error_message.is_none())
            };
            if let Some((e, source)) = found {
                only.set_error(Some(pytest::Located {
                    message: job_level::message_of(lines[e]),
                    source,
                    line: Some(first_recent + e as u64),
                }));
            }
        }
        // A process that crashed (a segfault, an abort) takes its test down with no message:
        // when one test is silent, the crash the log printed is its error, else xdist's report
        // of the worker that died under it.
        let mut silent = findings
            .failures
            .iter_mut()
            .filter(|f| f.error_message.is_none());
        if let (Some(only), None) = (silent.next(), silent.next()) {
            let crash = lines
                .iter()
                .rposition(|line| wording::is_crash_line(line))
                .or_else(|| {
                    lines
                        .iter()
                        .rposition(|line| wording::XDIST_CRASH.is_match(line))
                });
            only.set_error(crash.map(|i| pytest::Located {
                message: job_level::message_of(lines[i]),
                source: ErrorSource::Crash,
                line: Some(first_recent + i as u64),
            }));
        }
        let job_level = findings
            .failures
            .is_empty()
            .then(|| job_level::explain_last_lines(&lines, first_recent));
        LogAnalysis {
            tests: findings.failures,
            passed: findings.passed,
            job_level,
            command_headers: self.command_headers,
        }
    }
}

/// A test that failed with one of vLLM's wrapper errors, or with no message at all, gets the
/// root cause from its excerpt or its own output as `error_message`: the last exception that is
/// not a wrapper, else (no message) the last error line a vLLM process printed. The wrapper
/// stays in the excerpt. The excerpt and output are copies, so the line's number is not known.
fn take_root_cause(failure: &mut PytestFailure) {
    let silent = failure.error_message.is_none();
    if !silent
        && !failure
            .error_message
            .as_deref()
            .is_some_and(wording::is_wrapper)
    {
        return;
    }
    // The source lines pytest shows of the test's code (`>` marks the failing one) say nothing
    // of what went wrong, whatever words they hold (`reason="fatal error: …"`).
    let lines: Vec<&str> = failure
        .output_tail
        .iter()
        .map(String::as_str)
        .chain(
            failure
                .excerpt
                .iter()
                .flat_map(|e| e.lines())
                .filter(|line| !line.starts_with("    ") && !line.starts_with('>')),
        )
        .collect();
    let found = traceback::root_cause_index(&lines)
        .map(|i| (i, ErrorSource::RootCause))
        .or_else(|| {
            silent
                .then(|| lines.iter().rposition(|l| wording::is_error_line(l)))
                .flatten()
                .map(|i| (i, ErrorSource::ErrorLine))
        });
    if let Some((i, source)) = found {
        failure.set_error(Some(pytest::Located {
            message: job_level::message_of(lines[i]),
            source,
            line: None,
        }));
    }
}

/// vLLM's generated job scripts echo `+++ :test_tube: Command (2/6): pytest -v -s …` before
/// each command: the line's `(i, N)`.
fn command_header(line: &str) -> Option<(u32, u32)> {
    if !line.starts_with("+++ ") {
        return None;
    }
    let at = line.find("Command (")?;
    let rest = &line[at + "Command (".len()..];
    let (i, n) = rest[..rest.find(')')?].split_once('/')?;
    Some((i.parse().ok()?, n.parse().ok()?))
}

/// A line as kept in excerpts: at most [`EXCERPT_LINE_CHARS`] characters.
pub(crate) fn bounded_line(line: &str) -> String {
    bounded_text(line, EXCERPT_LINE_CHARS)
}

/// Longest single line kept in an excerpt.
pub const EXCERPT_LINE_CHARS: usize = 500;

pub use crate::text::bounded_text;

/// `AssertionError: …`, `torch.OutOfMemoryError: …`, `Failed: Timeout >300s`, `assert …`.
pub fn looks_like_exception(text: &str) -> bool {
    let head = text.split([':', ' ', '(']).next().unwrap_or("");
    // A module's private exception (`grpc._channel._InactiveRpcError`) is one too.
    let name = head.rsplit('.').next().unwrap_or(head);
    let name = name.strip_prefix('_').unwrap_or(name);
    !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && name.as_bytes()[0].is_ascii_uppercase()
        && ([
            "Error",
            "Exception",
            "Exit",
            "Interrupt",
            "Failed",
            "Timeout",
            "Failure",
            "NotFound",
        ]
        .iter()
        // A kind of an exception after its family's name: `NVMLError_NoPermission`.
        .any(|suffix| name.ends_with(suffix) || name.contains(&format!("{suffix}_"))))
        && text[head.len()..].starts_with(':')
        || text.starts_with("Failed: ")
}

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
    fn a_paste_that_starts_at_a_section_head_names_its_test_but_passes_do_not() {
        let head = "______________ test_bench[omni_server0] ______________\n\nomni = 1\n";
        let pasted = analyze_log(head);
        assert_eq!(pasted.tests.len(), 1);
        assert_eq!(pasted.tests[0].node_id, "test_bench[omni_server0]");
        let passes = analyze_log(&format!("==== PASSES ====\n{head}"));
        assert!(passes.tests.is_empty(), "{passes:?}");
    }

    #[test]
    fn a_crash_is_the_error_of_the_one_test_it_left_silent() {
        let summary = "=== short test summary info ===\nFAILED tests/a.py::test_x\n";
        let one = analyze_log(&format!(
            "....\nFatal Python error: Segmentation fault\n{summary}"
        ));
        assert_eq!(
            one.tests[0].error_message.as_deref(),
            Some("Fatal Python error: Segmentation fault")
        );
        let two = analyze_log(&format!(
            "Fatal Python error: Segmentation fault\n{summary}FAILED tests/a.py::test_y\n"
        ));
        assert!(
            two.tests.iter().all(|t| t.error_message.is_none()),
            "{two:?}"
        );
    }

    /// A paste that starts at a test's `E` lines (its section head cut) gives them to the one
    /// test its summary names without a message; a wrapper there says nothing of its own.
    #[test]
    fn the_one_silent_test_takes_the_e_block_above_its_summary() {
        let tail = "\n=== short test summary info ===\nFAILED tests/a.py::test_bf16\n";
        let log = format!(">           work = group.broadcast([tensor], opts)\nE           RuntimeError: Input tensor data type is not supported for NCCL process group: BFloat16\n\n/x/distributed_c10d.py:1197: RuntimeError{tail}");
        let read = analyze_log(&log);
        assert_eq!(
            read.tests[0].error_message.as_deref(),
            Some("RuntimeError: Input tensor data type is not supported for NCCL process group: BFloat16")
        );
        let wrapper = format!("E   vllm.v1.engine.exceptions.EngineDeadError: EngineCore encountered an issue. See stack trace (above) for the root cause.{tail}");
        assert_eq!(analyze_log(&wrapper).tests[0].error_message, None);
        // Beside another failure the block may be the other's: the silent one stays silent.
        let two = format!("{log}FAILED tests/a.py::test_other - RuntimeError: its own\n");
        let read = analyze_log(&two);
        let silent = read.tests.iter().find(|t| t.node_id.ends_with("test_bf16"));
        assert_eq!(silent.map(|t| t.error_message.as_deref()), Some(None));
    }

    /// torch's spawn error names only its exception on the summary line; the child's traceback
    /// printed below says what went wrong. Aligned `ERROR  id` summary words are read too.
    #[test]
    fn a_summary_that_names_only_an_exception_takes_the_traceback_below_it() {
        let log = "=== short test summary info ===\n\
            FAILED tests/test_plugin.py::test_gemini - torch.multiprocessing.spawn.ProcessRaisedException: \n\
            \n\
            -- Process 0 terminated with the following error:\n\
            Traceback (most recent call last):\n  File \"/w/manager.py\", line 64, in register\n    chunk_group[-1].append(t)\n\
            IndexError: deque index out of range\n";
        let read = analyze_log(log);
        assert_eq!(
            read.tests[0].error_message.as_deref(),
            Some("IndexError: deque index out of range")
        );
        // Its section's `E` block names only the exception too: the child's traceback still says.
        let with_section = format!("=== FAILURES ===\n___ test_gemini ___\n>   spawn(run)\nE   torch.multiprocessing.spawn.ProcessRaisedException: \n\nx.py:9: ProcessRaisedException\n{log}");
        assert_eq!(
            analyze_log(&with_section).tests[0].error_message.as_deref(),
            Some("IndexError: deque index out of range")
        );
        let aligned = analyze_log("ERROR  tests/loggers/test_prov.py::test_log_documents\n");
        assert_eq!(
            aligned.tests[0].node_id,
            "tests/loggers/test_prov.py::test_log_documents"
        );
    }

    /// The source lines pytest shows of a test's code are no error lines, whatever words they
    /// hold: a section cut before its `E` lines has no error.
    #[test]
    fn the_test_code_pytest_shows_is_no_error_line() {
        let log = "=== FAILURES ===\n\
            ______ test_compiled ______\n\
            \n\
            \x20   @pytest.mark.skipif(sys.platform == \"darwin\", reason=\"fatal error: 'omp.h' file not found\")\n\
            \x20   def test_compiled(tmp_path):\n\
            >       trainer.test(compiled_model)\n\
            \n\
            utilities/test_compile.py:156: \n";
        let read = analyze_log(log);
        assert_eq!(read.tests.len(), 1, "{read:?}");
        assert_eq!(read.tests[0].error_message, None, "{read:?}");
    }

    /// A test whose summary line carries no message takes its error from what a vLLM process
    /// printed during its own output, not nothing.
    #[test]
    fn a_test_without_a_message_takes_the_error_its_output_printed() {
        let log = "v1/engine/test_llm.py::test_generate[Qwen/Qwen3-0.6B] \n\
            INFO 12-15 12:35:10 [core.py:90] Initializing a V1 LLM engine\n\
            (EngineCore_DP0 pid=3112) ERROR 12-15 12:35:11 [core.py:866] EngineCore failed to start: CUDA driver version is insufficient for CUDA runtime version\n\
            FAILED\n\
            =========================== short test summary info ============================\n\
            FAILED v1/engine/test_llm.py::test_generate[Qwen/Qwen3-0.6B]\n\
            ======================== 1 failed in 12.00s ========================\n";
        let analysis = analyze_log(log);
        assert_eq!(analysis.tests.len(), 1, "{analysis:?}");
        let error = analysis.tests[0]
            .error_message
            .as_deref()
            .unwrap_or_default();
        assert!(
            error.contains("EngineCore failed to start: CUDA driver version is insufficient"),
            "{error:?}"
        );
    }

    #[test]
    fn bounded_text_counts_characters() {
        assert_eq!(bounded_text("abcdef", 6), "abcdef");
        assert_eq!(bounded_text("abcdefg", 6), "abc...");
        assert_eq!(bounded_text("ééééééé", 6), "ééé...");
    }
}
