//! The excerpt that explains a failed job when pytest named no test.
//!
//! An experienced watcher reads the end of such a log for three things: the last Python
//! traceback and its exception line (often from a vLLM child process, prefixed
//! `(EngineCore_DP0 pid=3112) ERROR 12-15 12:35:11 [core.py:866] `), error lines printed by
//! tools (CUDA coredump, faulthandler `Timeout (0:25:00)!`, pip, docker), and the agent's own
//! verdict (`🚨 Error: The command exited with status 1`). The excerpt is those lines, in log
//! order and bounded, instead of an arbitrary tail.

use super::wording::{
    announces_traceback, exit_says_why, is_agent_verdict, is_crash_line, is_error_line,
    is_logged_traceback_part, only_says_failed, ANNOUNCED_ERROR, EXCEPTION_LINE, EXITED,
    ONLY_SAYS_FAILED, TROUBLE,
};
use super::{bounded_line, prefix, traceback};
use crate::model::ErrorSource;
use prefix::without_pytest_margins;

/// Lines of the log's end that are searched for the explanation. A faulthandler dump of every
/// thread runs to a few hundred lines, so this reaches back past one.
pub const SEARCH_LINES: usize = 1500;
/// Lines kept in the excerpt.
pub const MAX_EXCERPT_LINES: usize = 24;
/// How far above a process's death line (`Fatal Python error: Aborted`) the error that killed it
/// is looked for: runtimes print their fault and abort at once.
const DEATH_CAUSE_LINES: usize = 3;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct JobLevelFailure {
    /// The line that says what went wrong (see [`explain_last_lines`]); `None` when the text
    /// shows only that the command exited.
    pub error_message: Option<String>,
    /// The explanatory lines, in log order.
    pub excerpt: String,
    /// An exception or an error line was found: the text shows the failure that ended the
    /// command.
    #[serde(default)]
    pub explained: bool,
    /// What chose `error_message`.
    #[serde(default)]
    pub error_source: Option<ErrorSource>,
    /// The 1-based number of the error line in the text read.
    #[serde(default)]
    pub error_line: Option<u64>,
}

pub fn explain_job_failure(cleaned: &str) -> JobLevelFailure {
    let lines = tail_lines(cleaned, SEARCH_LINES);
    let before = cleaned.lines().count() - lines.len();
    explain_last_lines(&lines, before as u64 + 1)
}

/// [`explain_job_failure`] on the log's last [`SEARCH_LINES`] lines (or fewer), in order;
/// `first_line` is the number of `lines[0]` in the text read.
///
/// The error line is chosen by structure, whatever printed the lines: the exception that
/// closes the last traceback (or pytest's last `E` block), read through vLLM's wrapper errors to
/// their root cause; else the last error line a failing step printed; else a line that only says
/// a step failed; else a line that names trouble. A line that is only prefixes, or only
/// announces what follows, is never chosen, and neither is the agent's exit line.
pub fn explain_last_lines(lines: &[&str], first_line: u64) -> JobLevelFailure {
    let mut keep = vec![false; lines.len()];
    // pytest-timeout stopped the run: what it dumps after its banner (the threads' stacks, the
    // test's teardown) is not why the job failed.
    let exception =
        timeout_banner(lines, &mut keep).or_else(|| traceback::last_exception(lines, &mut keep));

    let mut last_error: Option<usize> = None;
    let mut last_only_failed: Option<usize> = None;
    // A runner's exit line with a signal's status: weaker than what the process printed.
    let mut last_signal_exit: Option<usize> = None;
    let mut last_trouble: Option<usize> = None;
    // A tool's own word that a command it ran failed (`error: command 'bazel' failed with exit
    // code 37`): the last resort, when nothing says more.
    let mut last_tool_exit: Option<usize> = None;
    for (i, line) in lines.iter().enumerate() {
        let body = prefix::body(line).trim_start();
        let exit_line = EXITED.is_match(body) && !ONLY_SAYS_FAILED.is_match(body);
        if is_agent_verdict(line) || exit_line && !exit_says_why(body) {
            keep[i] = true;
            if !is_agent_verdict(line) && TOOL_SAYS_FAILED.is_match(body) {
                last_tool_exit = Some(i);
            }
        } else if exit_line && !EXCEPTION_LINE.is_match(body) {
            keep[i] = true;
            last_signal_exit = Some(i);
        } else if only_says_failed(body) {
            keep[i] = true;
            last_only_failed = Some(i);
        } else if let Some(error) = error_line_at(lines, i) {
            keep[i] = true;
            keep[error] = true;
            keep_continuation(lines, error, &mut keep);
            if replaces(lines, last_error, error) {
                last_error = Some(error);
            }
        } else if TROUBLE.is_match(line) {
            keep[i] = true;
            last_trouble = Some(i);
        } else if is_logged_traceback_part(line) {
            keep[i] = true;
        }
    }

    let explained = exception.is_some()
        || last_error.is_some()
        || last_only_failed.is_some()
        || last_signal_exit.is_some();
    let chosen = exception.or_else(|| {
        [
            (last_error, ErrorSource::ErrorLine),
            (last_only_failed, ErrorSource::OnlyFailed),
            (last_signal_exit, ErrorSource::OnlyFailed),
            (last_trouble, ErrorSource::Trouble),
            (last_tool_exit, ErrorSource::OnlyFailed),
        ]
        .into_iter()
        .find_map(|(index, source)| index.map(|i| (i, source)))
    });
    let kept: Vec<String> = lines
        .iter()
        .zip(&keep)
        .filter(|(_, k)| **k)
        .map(|(l, _)| bounded_line(l))
        .collect();
    // Prefer the end: the final error lines and the agent's verdict.
    let start = kept.len().saturating_sub(MAX_EXCERPT_LINES);
    JobLevelFailure {
        error_message: chosen.map(|(i, _)| message_of(lines[i])),
        excerpt: kept[start..].join("\n"),
        explained,
        error_source: chosen.map(|(_, source)| source),
        error_line: chosen.map(|(i, _)| first_line + i as u64),
    }
}

/// Lines an exception's message ending in `:` may go on over.
const MESSAGE_LINES: usize = 8;

/// Whether the error line at `error` takes the place of the `last` one found above it. Not when
/// it gives only an exception's name (`AssertionError:`) raised by the line right above it
/// (`BackendCompilerFailed: … raised:`), which says more; nor when it is a process's death
/// printed just after the fault its runtime reported, which says why.
fn replaces(lines: &[&str], last: Option<usize>, error: usize) -> bool {
    let Some(last) = last else {
        return true;
    };
    let says_more_above = last + 1 == error && names_only(lines[error]);
    // `ValueError: … Reasons:` goes on over the lines below it: they are its message.
    let opened = prefix::body(lines[last]).trim();
    let message_goes_on = super::looks_like_exception(opened)
        && opened.ends_with(':')
        && !names_only(lines[last])
        && error - last <= MESSAGE_LINES
        && lines[last + 1..=error].iter().all(|l| {
            let body = prefix::body(l).trim();
            !body.is_empty() && !super::looks_like_exception(body)
        });
    let death_after_its_cause = error - last <= DEATH_CAUSE_LINES
        && is_crash_line(prefix::body(lines[error]))
        && !is_crash_line(prefix::body(lines[last]));
    !says_more_above && !death_after_its_cause && !message_goes_on
}

/// The error line that the line at `i` is or introduces: itself when it is an error line (and
/// does not only announce a traceback), or the deeper-indented line after it when it is an
/// error's announcement (`CMake Error at x.cmake:855 (message):` then `  Could not find nvcc`),
/// or the warning after Sphinx's `Warning, treated as error:` (a build run with `-W`).
fn error_line_at(lines: &[&str], i: usize) -> Option<usize> {
    let line = lines[i];
    if is_error_line(line) && !announces_traceback(line) && !opens_traceback_below(lines, i) {
        return Some(i);
    }
    let split = prefix::split(line);
    let body = split.body.trim();
    let announces_error = body.ends_with(':')
        && !split.body.starts_with([' ', '\t'])
        && !announces_traceback(line)
        && (split.at_error || ANNOUNCED_ERROR.is_match(body));
    let next = i + 1;
    let depth = |l: &str| {
        let b = prefix::body(l);
        b.len() - b.trim_start().len()
    };
    let made_error = body == "Warning, treated as error:";
    (next < lines.len()
        && !prefix::body(lines[next]).trim().is_empty()
        && (made_error || announces_error && depth(lines[next]) > depth(line)))
    .then_some(next)
}

/// Whether the line is an error only by its logger's level, and only opens the traceback its
/// logging call printed next under the same head (`logger.exception("WorkerProc failed to
/// start.")`): the exception that closes that traceback says what went wrong, and a paste cut
/// inside it shows no error. A logged message that names an error itself (`CUDA out of memory.
/// Tried to allocate …`) stays the error.
fn opens_traceback_below(lines: &[&str], i: usize) -> bool {
    fn head(line: &str) -> &str {
        &line[..line.len() - prefix::body(line).len()]
    }
    !is_error_line(prefix::body(lines[i]).trim())
        && lines[i + 1..]
            .iter()
            .find(|l| !prefix::body(l).trim().is_empty())
            .is_some_and(|next| {
                head(next) == head(lines[i])
                    && prefix::body(next).starts_with("Traceback (most recent call last)")
            })
}

/// `AssertionError:` or `E   AssertionError`: an exception's name with no message.
fn names_only(line: &str) -> bool {
    let body = prefix::without_pytest_margins(prefix::body(line)).trim();
    EXCEPTION_LINE
        .find(body)
        .is_some_and(|head| head.end() == body.len())
}

/// Lines indented deeper than an error line, right after it, continue it (a wrapped message,
/// a cause on the next line): kept in the excerpt with it.
fn keep_continuation(lines: &[&str], i: usize, keep: &mut [bool]) {
    let indent = |line: &str| {
        let body = prefix::body(line);
        body.len() - body.trim_start().len()
    };
    let depth = indent(lines[i]);
    for (j, line) in lines.iter().enumerate().skip(i + 1).take(3) {
        if prefix::body(line).trim().is_empty() || indent(line) <= depth {
            break;
        }
        keep[j] = true;
    }
}

/// pytest-timeout's banner (`+++++ Timeout +++++`), the last one, as the job's error.
fn timeout_banner(lines: &[&str], keep: &mut [bool]) -> Option<(usize, ErrorSource)> {
    let banner = lines
        .iter()
        .rposition(|l| TIMEOUT_BANNER.is_match(prefix::body(l).trim()))?;
    keep[banner] = true;
    Some((banner, ErrorSource::ErrorLine))
}

static TIMEOUT_BANNER: std::sync::LazyLock<regex::Regex> =
    std::sync::LazyLock::new(|| crate::text::log_regex(r"^\+{5,} Timeout \+{5,}$").expect("valid"));

/// A tool's line that a command failed, in its own words (not a runner's `Process completed`).
static TOOL_SAYS_FAILED: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    crate::text::log_regex(r"^(?:error|ERROR|Error): .*\bfailed\b").expect("valid")
});

/// A build tool's location before its message (`ERROR: /path/BUILD:76:11: `) so long (a path
/// into a cache) that it would push the message past the cut: skipped in a line too long to keep.
static LOCATION: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    crate::text::log_regex(r"^(?:ERROR: )?(?:/|[A-Za-z]:\\)\S{60,}:\d+:\d+: ").expect("valid")
});

/// The part of a long line that names its cause, where a known phrase sits past the cut.
static CAUSE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    crate::text::log_regex(r"nvidia-container-cli: |NET/IB ?: Got completion|toomanyrequests: |\bCheck failed: |Memory access fault by GPU|\b(?:Killed|Segmentation fault) {2,}\S")
        .expect("valid")
});

/// A line as an error message: its prefixes and `E` margins read through, cut to the message
/// length, starting at its cause when a long line names it past the cut.
pub(crate) fn message_of(line: &str) -> String {
    let line = without_pytest_margins(prefix::body(line)).trim();
    let long = line.len() > super::pytest::MAX_ERROR_MESSAGE_CHARS;
    let start = match (CAUSE.find(line), LOCATION.find(line)) {
        (Some(cause), _) if long => cause.start(),
        (None, Some(location)) if long => location.end(),
        _ => 0,
    };
    super::pytest::truncate_message(&line[start..])
}

fn tail_lines(text: &str, n: usize) -> Vec<&str> {
    let mut lines: Vec<&str> = text.lines().rev().take(n).collect();
    lines.reverse();
    lines
}

#[cfg(test)]
mod root_cause_tests {
    use super::*;

    /// The host's and the tools' own error lines explain a job, not the agent's exit line.
    #[test]
    fn host_and_tool_errors_are_the_error_line() {
        let exit = "🚨 Error: The command exited with status";
        for (log, line) in [
            (
                "docker: Error response from daemon: failed to create task for container: OCI runtime create failed: nvidia-container-cli: initialization error: nvml error: driver not loaded: unknown.",
                "docker: Error response from daemon: failed to create task for container",
            ),
            ("bash: line 1:  4242 Segmentation fault      (core dumped) pytest -v -s v1/core", "Segmentation fault"),
            ("Killed", "Killed"),
            ("  × Failed to build `flashinfer-python==0.5.3`", "Failed to build `flashinfer-python==0.5.3`"),
            // A process's death gives way to the error printed above it.
            (
                "Memory access fault by GPU node-2 (Agent handle: 0x6315) on address (nil). Reason: Unknown.\nAborted (core dumped)",
                "Memory access fault by GPU node-2",
            ),
            (
                "HW Exception by GPU node-1 (Agent handle: 0x5899c75e9d60) reason :GPU Hang\nFatal Python error: Aborted\n\nThread 0x00007adf2ede06c0 (most recent call first):\n  <no Python frame>",
                "HW Exception by GPU node-1",
            ),
            // pytest-timeout's banner: what it dumps after it (stacks, a teardown's traceback) is not why.
            (
                "+++++++++++++++++++++++++++++++++++ Timeout ++++++++++++++++++++++++++++++++++++\nTraceback (most recent call last):\n  File \"/a.py\", line 1, in f\nhomeassistant.exceptions.ServiceNotFound: Unable to find service",
                "+++++ Timeout +++++",
            ),
            ("##[error]The action has timed out.", "The action has timed out."),
            ("/w/ggml/src/ggml-cuda/mmv.cu:156: GGML_ASSERT(src1->type == GGML_TYPE_F32) failed", "GGML_ASSERT("),
            // BuildKit's "the step failed" lines give way to the error that says why.
            (
                "#14 41.53 ERROR: No matching distribution found for torch-npu==2.8.0.post1\n#14 ERROR: process \"/bin/sh -c pip install -e /workspace/vllm-ascend/\" did not complete successfully: exit code: 1\nERROR: failed to solve: process \"/bin/sh -c pip install -e /workspace/vllm-ascend/\" did not complete successfully: exit code: 1",
                "ERROR: No matching distribution found for torch-npu==2.8.0.post1",
            ),
        ] {
            let explained = explain_job_failure(&format!("running\n{log}\n{exit} 1\n"));
            let source = explained.error_source;
            assert!(matches!(source, Some(ErrorSource::ErrorLine | ErrorSource::OnlyFailed)), "{log}");
            let error = explained.error_message.unwrap_or_default();
            assert!(error.contains(line) && !error.contains(exit), "{log}: {error}");
            assert!(explained.explained, "{log}");
        }
    }

    #[test]
    fn a_logger_prefixed_traceback_says_nothing_until_its_exception() {
        let frames = "ERROR 04-29 07:29:19 [worker.py:2112] Traceback (most recent call last):\nERROR 04-29 07:29:19 [worker.py:2112]   File \"/v/worker.py\", line 2096, in _read_blocks\nERROR 04-29 07:29:19 [worker.py:2112]     handle = make_prepped_xfer(\n";
        assert_eq!(explain_job_failure(frames).error_message, None);
        let whole = format!(
            "{frames}ERROR 04-29 07:29:19 [worker.py:2112] nixlBackendError: NIXL_ERR_BACKEND\n"
        );
        let failure = explain_job_failure(&whole);
        assert_eq!(
            failure.error_message.as_deref(),
            Some("nixlBackendError: NIXL_ERR_BACKEND")
        );
    }

    #[test]
    fn a_wrapper_error_gives_way_to_the_root_cause_above_it() {
        let log =
            include_str!("../../wiremock-fixtures/logs/019e068f-85c7-4b9b-95c4-98c4b41d815f.log");
        let failure = explain_job_failure(log);
        assert_eq!(
            failure.error_message.as_deref(),
            Some("RuntimeError: DeepEP error: CUDA IPC handle could not be opened for peer rank 1")
        );
        assert!(failure
            .excerpt
            .contains("Engine core initialization failed. See root cause above"));
        assert!(failure.explained);
        // Without a root cause above, the wrapper says nothing of its own: no error line.
        let alone = explain_job_failure("Traceback (most recent call last):\n  File \"x.py\", line 1, in <module>\nvllm.v1.engine.exceptions.EngineDeadError: EngineCore encountered an issue. See stack trace (above) for the root cause.\n");
        assert_eq!(alone.error_message, None);
        assert!(alone.excerpt.contains("EngineDeadError"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_start_up_failure_takes_the_process_traceback() {
        let log = "\
INFO 05-08 06:20:00 [api_server.py:1] starting
(EngineCore_DP0 pid=3112) ERROR 12-15 12:35:11 [core.py:866] EngineCore failed to start.
(EngineCore_DP0 pid=3112) ERROR 12-15 12:35:11 [core.py:866] Traceback (most recent call last):
(EngineCore_DP0 pid=3112) ERROR 12-15 12:35:11 [core.py:866]   File \"/usr/local/lib/python3.12/dist-packages/vllm/v1/engine/core.py\", line 857, in run_engine_core
(EngineCore_DP0 pid=3112) ERROR 12-15 12:35:11 [core.py:866]     engine_core = EngineCoreProc(*args, **kwargs)
(EngineCore_DP0 pid=3112) ERROR 12-15 12:35:11 [core.py:866] ValueError: Free memory on device (10.5/79.2 GiB) is less than desired
some unrelated output
🚨 Error: The command exited with status 1
";
        let failure = explain_job_failure(log);
        assert_eq!(
            failure.error_message.as_deref(),
            Some("ValueError: Free memory on device (10.5/79.2 GiB) is less than desired")
        );
        assert!(failure
            .excerpt
            .contains("Traceback (most recent call last)"));
        assert!(failure
            .excerpt
            .ends_with("🚨 Error: The command exited with status 1"));
        assert!(!failure.excerpt.contains("unrelated"));
    }

    #[test]
    fn without_a_traceback_the_last_error_line_explains() {
        let log = "ok\ncoredump: Detected an exception of type CUDBG_EXCEPTION_WARP_ILLEGAL_ADDRESS (14)\ncoredump:   - Device: 0\n🚨 Error: The command exited with status 1\n";
        let failure = explain_job_failure(log);
        assert_eq!(
            failure.error_message.as_deref(),
            Some(
                "coredump: Detected an exception of type CUDBG_EXCEPTION_WARP_ILLEGAL_ADDRESS (14)"
            )
        );
    }

    /// An exception with no message of its own, right under the error that raised it, gives way
    /// to that error; alone it is the error line.
    #[test]
    fn an_exception_that_only_names_itself_gives_way_to_the_error_above() {
        let log = "torch._dynamo.exc.BackendCompilerFailed: backend='inductor' raised:\nAssertionError:\n\nSet TORCHDYNAMO_VERBOSE=1 for the internal stack trace\n";
        assert_eq!(
            explain_job_failure(log).error_message.as_deref(),
            Some("torch._dynamo.exc.BackendCompilerFailed: backend='inductor' raised:")
        );
        let alone = "collecting\nAssertionError:\n🚨 Error: The command exited with status 1\n";
        assert_eq!(
            explain_job_failure(alone).error_message.as_deref(),
            Some("AssertionError:")
        );
    }

    /// A loader's bare `undefined symbol:` line and Bazel's verdict on a test that timed out say
    /// what went wrong; Bazel's `FAILED in` names only the target.
    #[test]
    fn a_missing_symbol_and_a_bazel_timeout_are_error_lines() {
        let symbol = "undefined symbol: cublasLtGroupedMatrixLayoutInit_internal, version libcublasLt.so.13\n";
        assert_eq!(
            explain_job_failure(symbol).error_message.as_deref(),
            Some("undefined symbol: cublasLtGroupedMatrixLayoutInit_internal, version libcublasLt.so.13")
        );
        let bazel = "//xla/tests:a_test_gpu      TIMEOUT in 3 out of 3 in 2400.3s\n//xla/tests:b_test_gpu      FAILED in 3 out of 3 in 9.9s\n";
        assert_eq!(
            explain_job_failure(bazel).error_message.as_deref(),
            Some("//xla/tests:a_test_gpu      TIMEOUT in 3 out of 3 in 2400.3s")
        );
    }

    /// An exception whose message ends in `:` goes on over the logger's next lines: they are its
    /// message, not later errors.
    #[test]
    fn an_exception_message_ending_in_a_colon_goes_on_below_it() {
        let log = "(EngineCore_0 pid=1) ERROR 08-03 16:44:26 [core.py:683] ValueError: Failed to find a kernel that can implement the WNA16 linear layer. Reasons:\n(EngineCore_0 pid=1) ERROR 08-03 16:44:26 [core.py:683] MacheteLinearKernel requires capability 90, current compute capability is 89\n";
        assert_eq!(
            explain_job_failure(log).error_message.as_deref(),
            Some("ValueError: Failed to find a kernel that can implement the WNA16 linear layer. Reasons:")
        );
    }

    /// A logged traceback's frames and caret markers, their indentation lost in a copy, are
    /// never the error line.
    #[test]
    fn an_unindented_frame_is_no_error_line() {
        let log = "(Worker pid=7) ERROR 02-24 20:42:16 [executor.py:852] WorkerProc failed to start.\n(Worker pid=7) ERROR 02-24 20:42:16 [executor.py:852] File \"/usr/lib/torch/utils/_contextlib.py\", line 120, in decorate_context\n(Worker pid=7) ERROR 02-24 20:42:16 [executor.py:852] ^^^^^^^^^^^^\n";
        assert_eq!(
            explain_job_failure(log).error_message.as_deref(),
            Some("WorkerProc failed to start.")
        );
    }

    /// Sphinx's `-W` announces the warning it made an error; torch's pointer to the CUDA docs
    /// and GitHub's `The operation was canceled.` say less than the error above them.
    #[test]
    fn what_follows_an_error_says_less_than_it() {
        for (log, error) in [
            ("Warning, treated as error:\n/doc/api.rst:1: WARNING: Inline emphasis.\n", "/doc/api.rst:1: WARNING: Inline emphasis."),
            ("(APIServer pid=6) ERROR 04-01 18:31:58 [executor.py:313] RPC call failed: CUDA error: out of memory\n(APIServer pid=6) ERROR 04-01 18:31:58 [executor.py:313] Search for `cudaErrorMemoryAllocation' in https://docs.nvidia.com/cuda/x.html for more information.\n", "RPC call failed: CUDA error: out of memory"),
            ("##[error]The runner has received a shutdown signal.\n##[error]The operation was canceled.\n", "The runner has received a shutdown signal."),
            ("##[error]The operation was canceled.\n", "The operation was canceled."),
        ] {
            assert_eq!(explain_job_failure(log).error_message.as_deref(), Some(error), "{log}");
        }
    }

    /// A logged line that only says a process failed, with its traceback under the same head:
    /// the traceback's exception is the error, and none when the paste cuts it. A logged message
    /// that names an error keeps it, and so does a line whose traceback another head printed.
    #[test]
    fn a_logged_failure_that_opens_its_traceback_gives_way_to_it() {
        let head = "(Worker pid=7) ERROR 02-24 20:42:16 [executor.py:852] ";
        let opened = format!("{head}WorkerProc failed to start.\n{head}Traceback (most recent call last):\n{head}  File \"/x.py\", line 1, in f\n");
        assert_eq!(explain_job_failure(&opened).error_message, None);
        let closed = format!("{opened}{head}ValueError: no kernel\n");
        assert_eq!(
            explain_job_failure(&closed).error_message.as_deref(),
            Some("ValueError: no kernel")
        );
        let named = format!("{head}CUDA out of memory. Tried to allocate 704.00 MiB.\n{head}Traceback (most recent call last):\n");
        assert_eq!(
            explain_job_failure(&named).error_message.as_deref(),
            Some("CUDA out of memory. Tried to allocate 704.00 MiB.")
        );
        let other = format!("{head}WorkerProc failed to start.\n(Worker pid=7) Traceback (most recent call last):\n");
        assert_eq!(
            explain_job_failure(&other).error_message.as_deref(),
            Some("WorkerProc failed to start.")
        );
    }

    /// A process's death in other runtimes' words is the error line, not the noise after it.
    #[test]
    fn deaths_in_other_runtimes_words_are_error_lines() {
        for death in [
            "Windows fatal exception: access violation",
            "*** Received signal 11 ***",
            "make: *** [Makefile:40: pytest] Killed",
        ] {
            let log = format!("I0000 cpu_client.cc:427] created.\n{death}\n/lib/libpthread.so.0(+0x13140)[0x7f37]\n");
            assert_eq!(
                explain_job_failure(&log).error_message.as_deref(),
                Some(death),
                "{log}"
            );
        }
    }

    /// A tool that announces its error and gives it on the next, indented line: the message is
    /// the error line, not its announcement.
    #[test]
    fn an_announced_error_is_its_indented_message() {
        let log = "CMake Error at /home/x/FindCUDAToolkit.cmake:855 (message):\n  Could not find nvcc, please set CUDAToolkit_ROOT.\nCall Stack (most recent call first):\n  CMakeLists.txt:114 (find_package)\n\n-- Configuring incomplete, errors occurred!\n";
        let failure = explain_job_failure(log);
        assert_eq!(
            failure.error_message.as_deref(),
            Some("Could not find nvcc, please set CUDAToolkit_ROOT.")
        );
        assert_eq!(failure.error_line, Some(2));
    }

    #[test]
    fn agent_verdict_alone() {
        let failure = explain_job_failure("building\n🚨 Error: The command exited with status 2\n");
        assert_eq!(failure.error_source, None);
        assert_eq!(failure.error_message, None);
        assert!(!failure.explained);
        assert_eq!(
            failure.excerpt,
            "🚨 Error: The command exited with status 2"
        );
    }
}
