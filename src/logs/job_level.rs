//! The excerpt that explains a failed job when pytest named no test.
//!
//! An experienced watcher reads the end of such a log for three things: the last Python
//! traceback and its exception line (often from a vLLM child process, prefixed
//! `(EngineCore_DP0 pid=3112) ERROR 12-15 12:35:11 [core.py:866] `), error lines printed by
//! tools (CUDA coredump, faulthandler `Timeout (0:25:00)!`, pip, docker), and the agent's own
//! verdict (`🚨 Error: The command exited with status 1`). The excerpt is those lines, in log
//! order and bounded, instead of an arbitrary tail.

use super::{bounded_line, prefix};
pub use crate::model::ErrorSource;

/// Lines of the log's end that are searched for the explanation. A faulthandler dump of every
/// thread runs to a few hundred lines, so this reaches back past one.
pub const SEARCH_LINES: usize = 1500;
/// Lines kept in the excerpt.
pub const MAX_EXCERPT_LINES: usize = 24;
/// Frames kept from the end of the last traceback.
const TRACEBACK_TAIL_LINES: usize = 8;

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
    let exception = last_exception(lines, &mut keep);

    let mut last_error: Option<usize> = None;
    let mut last_only_failed: Option<usize> = None;
    // A runner's exit line with a signal's status: weaker than what the process printed.
    let mut last_signal_exit: Option<usize> = None;
    let mut last_trouble: Option<usize> = None;
    for (i, line) in lines.iter().enumerate() {
        let body = prefix::body(line).trim_start();
        let exit_line = EXITED.is_match(body) && !ONLY_SAYS_FAILED.is_match(body);
        if is_agent_verdict(line) || exit_line && !exit_says_why(body) {
            keep[i] = true;
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
            last_error = Some(error);
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

/// vLLM's errors that wrap the real one printed above them: `EngineDeadError: … See stack trace
/// (above) for the root cause`, `Engine core initialization failed. See root cause above`.
static WRAPPER: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(r"See (?:the )?(?:stack trace \(above\)|root cause above)|EngineDeadError|Engine core initialization failed")
        .expect("valid")
});
/// An exception line: `RuntimeError: …`, `torch.OutOfMemoryError: …`, `AssertionError`.
static EXCEPTION_LINE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(r"^(?:[A-Za-z_][\w]*\.)*[A-Z]\w*(?:Error|Exception|Exit|Interrupt)\b(?::|$)")
        .expect("valid")
});

/// The error line that the line at `i` is or introduces: itself when it is an error line (and
/// does not only announce a traceback), or the deeper-indented line after it when it is an
/// error's announcement (`CMake Error at x.cmake:855 (message):` then `  Could not find nvcc`).
fn error_line_at(lines: &[&str], i: usize) -> Option<usize> {
    let line = lines[i];
    if is_error_line(line) && !announces_traceback(line) {
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
    (announces_error
        && next < lines.len()
        && !prefix::body(lines[next]).trim().is_empty()
        && depth(lines[next]) > depth(line))
    .then_some(next)
}

/// A tool's error whose message follows on the next, indented lines.
static ANNOUNCED_ERROR: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(r"^(?:CMake Error|ERROR|Error|error)\b").expect("valid")
});

/// Whether the line at `i` only announces the traceback printed after it: the line ends with
/// that traceback's header (vLLM's `EngineCore hit an exception: Traceback …`), or it is one of
/// vLLM's lines that always precede one (a paste may cut the traceback).
fn announces_traceback(line: &str) -> bool {
    let body = prefix::body(line);
    body.contains("Traceback (most recent call last)") || VLLM_ANNOUNCES.is_match(body)
}

/// vLLM's log lines that announce the traceback it prints next (`vllm/v1/engine/core.py`,
/// `vllm/entrypoints`, uvicorn's).
static VLLM_ANNOUNCES: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(r"^\s*(?:EngineCore (?:encountered a fatal error|failed to start|hit an exception)|Engine background task failed|Exception in ASGI application)\.?\s*$")
        .expect("valid")
});

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

/// The exception that closes the last traceback, or the first exception of pytest's last `E`
/// block when that comes later (or the root cause a vLLM wrapper points up to), marking the
/// traceback's tail in `keep`. A traceback cut off before its exception line (a truncated paste)
/// keeps its frames and gives no exception.
fn last_exception(lines: &[&str], keep: &mut [bool]) -> Option<(usize, ErrorSource)> {
    let header = lines
        .iter()
        .rposition(|l| prefix::body(l).starts_with("Traceback (most recent call last)"));
    let closing = header.and_then(|tb| {
        let end = traceback_end(lines, tb);
        let last = end.unwrap_or(lines.len() - 1);
        keep[tb] = true;
        for flag in keep
            .iter_mut()
            .take(last + 1)
            .skip(last.saturating_sub(TRACEBACK_TAIL_LINES).max(tb))
        {
            *flag = true;
        }
        end
    });
    let e_block = last_e_block_exception(lines).filter(|&e| header.is_none_or(|tb| e > tb));
    if let Some(e) = e_block {
        keep[e] = true;
    }
    let found = e_block.or(closing)?;
    // vLLM's wrapper errors point up to the real one: take it, keep the wrapper as context.
    // A wrapper whose cause is not in the text says nothing of its own.
    if is_wrapper(prefix::body(lines[found])) {
        let above = header.unwrap_or(found).min(found);
        let cause = root_cause_index(&lines[..above])?;
        keep[cause] = true;
        return Some((cause, ErrorSource::RootCause));
    }
    Some((found, ErrorSource::Exception))
}

/// pytest's last `E` block (consecutive `E` lines): its first exception line (pytest prints the
/// exception first, whatever its name), or the last
/// exception nested under a second `E` margin (the repr of a collection error carries the
/// import's own traceback, whose exception is the cause); else `None`.
fn last_e_block_exception(lines: &[&str]) -> Option<usize> {
    let is_e = |l: &&str| e_margin(prefix::body(l)).is_some();
    let last = lines.iter().rposition(is_e)?;
    let first = lines[..last]
        .iter()
        .rposition(|l| !is_e(l))
        .map_or(0, |i| i + 1);
    let is_exception =
        |i: &usize| closes_traceback(without_pytest_margins(prefix::body(lines[*i])).trim());
    let nested = |i: &usize| {
        e_margin(prefix::body(lines[*i]))
            .and_then(|inner| e_margin(inner.trim_start()))
            .is_some()
    };
    (first..=last)
        .rev()
        .find(|i| nested(i) && is_exception(i))
        .or_else(|| (first..=last).find(is_exception))
        .or_else(|| {
            // pytest's rewritten assertion (`E   assert 0 == 1`) names no exception.
            (first..=last).find(|&i| {
                without_pytest_margins(prefix::body(lines[i]))
                    .trim()
                    .starts_with("assert ")
            })
        })
}

/// `E   text` → `text`: one pytest `E` margin at the line's start (after any indentation a
/// runner or a paste added: pytest's own margin is `E` and at least two spaces there).
pub(crate) fn e_margin(body: &str) -> Option<&str> {
    let indented = body.len() != body.trim_start().len();
    let after = body.trim_start().strip_prefix('E')?;
    let margin = after.len() - after.trim_start_matches([' ', '\t']).len();
    (after.is_empty() || margin >= if indented { 2 } else { 1 }).then_some(after)
}

/// Lines that only say that something failed, whose cause is printed above them when it is
/// printed at all: a build tool's failed step (Docker BuildKit, podman, pip, Jenkins-style
/// and GitHub Actions runners, apt's "Unable to fetch some archives"), pytest's summary of a collection error that names no test
/// (`ERROR  - …`), and the shell's report of a process that died (`Aborted (core dumped)`).
static ONLY_SAYS_FAILED: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(r"^(?:ERROR +- |ERROR: (?:failed to solve: )?process .* did not complete successfully|Error: building at STEP|Error: failed to start containers|error: subprocess-exited-with-error|E: Unable to fetch some archives|subprocess exited with status|make(?:\[\d+\])?: \*\*\* |ninja: build stopped|FAILED: \S|\S+: commands failed$|error: test failed, to rerun pass)|did not run successfully\.?$|\(core dumped\)|recipe for target '[^']*' failed|all hosts have already failed")
        .expect("valid")
});
/// A line that ends by saying a command exited with a status (`Process completed with exit
/// code 1.`, `… failed with code 1`, `script returned exit code 1`), the status captured.
static EXITED: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(
        r"(?i)\b(?:exit(?:ed)?|failed|returned)(?: with)?(?: exit)? (?:code|status):? '?(-?\d+)'?\)?\.?$",
    )
    .expect("valid")
});

/// Whether a line that says a command exited says why: an exception of its own, or a status
/// that is a signal's (128 + n: 137 killed, 139 segfault) or negative; `exit code 1` says only
/// that it failed, like the agent's exit line.
fn exit_says_why(body: &str) -> bool {
    // A hook is not the command: that it failed is the host's news.
    EXCEPTION_LINE.is_match(body)
        || body.contains(" hook exited")
        || EXITED
            .captures(body)
            .and_then(|c| c[1].parse::<i64>().ok())
            .is_some_and(|status| !(0..128).contains(&status))
}

fn only_says_failed(body: &str) -> bool {
    ONLY_SAYS_FAILED.is_match(body) || XDIST_CRASH.is_match(body)
}

/// Lines that name trouble without being error lines: huggingface_hub's warning of the error it
/// will retry, the HF API's refusal, apt's warning that a mirror's name did not resolve, NCCL's network warnings and lost connections, nvidia-smi
/// finding no usable GPU, Buildkite's agent lost, a failed checkout.
static TROUBLE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(r"^🚨 Error: |^# Received cancellation signal|^The operation was canceled|Build timed out \(after|has exceeded the maximum execution time|pull rate limit|lost communication with the server|\bCannot contact \S+|thrown while requesting (?:HEAD|GET|POST) |error from HF API|Temporary failure resolving|NET/IB ?: Got completion from peer|socketProgressOpt: Call to \w+ from \S+ failed|Failed to initialize NVML|No devices were found|Exited with status -1\b|Checkout failed!")
        .expect("valid")
});
/// The part of a long line that names its cause, where a known phrase sits past the cut.
static CAUSE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(r"nvidia-container-cli: |NET/IB ?: Got completion|toomanyrequests: |\bCheck failed: |Memory access fault by GPU|\b(?:Killed|Segmentation fault) {2,}\S")
        .expect("valid")
});

/// `E   E   ModuleNotFoundError: x` → `ModuleNotFoundError: x`: pytest's `E` margins, nested
/// when an exception's repr is printed inside another.
pub(crate) fn without_pytest_margins(line: &str) -> &str {
    let mut rest = line.trim_start();
    while let Some(after) = rest.strip_prefix('E') {
        if !after.starts_with([' ', '\t']) {
            break;
        }
        rest = after.trim_start();
    }
    rest
}

/// A line as an error message: its prefixes and `E` margins read through, cut to the message
/// length, starting at its cause when a long line names it past the cut.
pub(crate) fn message_of(line: &str) -> String {
    let line = without_pytest_margins(prefix::body(line)).trim();
    let start = match CAUSE.find(line) {
        Some(cause) if line.len() > super::pytest::MAX_ERROR_MESSAGE_CHARS => cause.start(),
        _ => 0,
    };
    super::pytest::truncate_message(&line[start..])
}

/// Whether `message` is one of vLLM's wrapper errors.
pub fn is_wrapper(message: &str) -> bool {
    WRAPPER.is_match(message)
}

/// The last exception line in `lines` that is not itself a wrapper: the root cause a wrapper
/// error points to.
pub fn root_cause_index(lines: &[&str]) -> Option<usize> {
    lines.iter().rposition(|line| {
        let body = without_pytest_margins(prefix::body(line)).trim();
        EXCEPTION_LINE.is_match(body) && !is_wrapper(body)
    })
}

fn tail_lines(text: &str, n: usize) -> Vec<&str> {
    let mut lines: Vec<&str> = text.lines().rev().take(n).collect();
    lines.reverse();
    lines
}

/// The traceback's exception line: the first line after the header that is indented no deeper
/// than the header (frames are `  File …` and their source lines, deeper). `None` when the text
/// ends first, or when that line is no exception (a paste cut mid-line).
fn traceback_end(lines: &[&str], header: usize) -> Option<usize> {
    let indent = |line: &str| {
        let body = prefix::body(line);
        body.len() - body.trim_start().len()
    };
    let depth = indent(lines[header]);
    (header + 1..lines.len())
        .find(|&i| !prefix::body(lines[i]).trim().is_empty() && indent(lines[i]) <= depth)
        .filter(|&i| closes_traceback(prefix::body(lines[i]).trim()))
}

/// A traceback's last line: `Name: message` or `dotted.Name: message` whatever the name (a
/// traceback's structure says it is the exception), or a bare name that reads as one.
fn closes_traceback(text: &str) -> bool {
    let name_end = text
        .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.'))
        .unwrap_or(text.len());
    let named = name_end > 0
        && text[..name_end].split('.').all(|part| {
            part.chars()
                .next()
                .is_some_and(|c| c.is_alphabetic() || c == '_')
        });
    named && text[name_end..].starts_with(": ")
        || EXCEPTION_LINE.is_match(text)
        || super::looks_like_exception(text)
}

/// The agent's own line for a command that exited: it says that, never why. (Its other lines,
/// a command interrupted by a signal or a hook that failed, name trouble.)
fn is_agent_verdict(line: &str) -> bool {
    // Its emoji may arrive mangled in a copy; the docker plugin runs the command as its hook.
    line.contains("Error: The command exited with status")
        || line.contains("command hook exited with status")
}

/// Lines that report an error by themselves, printed by vLLM, CUDA, faulthandler, pip or docker.
/// A process's death: Python's fatal error, a signal's `(core dumped)`, a segfault.
pub(crate) fn is_crash_line(line: &str) -> bool {
    line.contains("Fatal Python error")
        || line.contains("STATUS_ACCESS_VIOLATION")
        || line.contains("Segmentation fault")
        || line.contains("(core dumped)")
        || SHELL_KILLED.is_match(line)
}

/// pytest-xdist's report of a worker that died under a test: it says that the worker died
/// (its cause, a segfault, is printed above it when at all).
pub(crate) static XDIST_CRASH: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(r"\bworker '\w+' crashed while running|\bnode down: Not properly terminated")
        .expect("valid")
});

/// The shell's report of a job it ran that was killed: `line 2:  1855 Killed      pytest …`.
static SHELL_KILLED: std::sync::LazyLock<regex::Regex> =
    std::sync::LazyLock::new(|| regex::Regex::new(r"\bKilled {2,}\S").expect("valid"));

/// A traceback's header or one of its frames: where, not what went wrong (vLLM's worker
/// announces its traceback with "Error executing method …").
fn is_traceback_part(body: &str) -> bool {
    body.starts_with([' ', '\t']) || prefix::announces(body)
}

/// A traceback a process logged at error level, one logger prefix per line: kept in the
/// excerpt (its frames name the files), never the error line.
fn is_logged_traceback_part(line: &str) -> bool {
    let split = prefix::split(line);
    split.at_error && is_traceback_part(split.body)
}

/// An error in any tool's words: a fatal error, memory that ran out, a registry's refusal, an
/// HTTP error status, a compiler's diagnostic (`file.h:5:2: error: …`).
static ERROR_WORDS: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(
        r"(?i)\bfatal error\b|\bfailed with OOM\b|\bout of memory\b|\btoomanyrequests\b|no space left on device|\bCheck failed: |\bversion solving failed\b|^× |^/\S+: No module named \S+$|^\[[\w.-]+\] (?:CRITICAL|ERROR|FATAL):|^[\w.+-]+: (?:fatal )?error\b|Memory access fault by GPU node-|\b[45]\d\d (?:Client|Server) Error\b|^\S+:\d+(?::\d+)?: (?:fatal )?error: ",
    )
    .expect("valid")
});

/// Whether the line reports an error by itself: logged at error level, or an error in its own
/// words (an exception, a tool's `ERROR:`/`error:`/`fatal:`, a crash). Never a line that is only
/// prefixes or only announces what follows.
pub(crate) fn is_error_line(line: &str) -> bool {
    if prefix::is_bare_prefix(line) {
        return false;
    }
    let split = prefix::split(line);
    let body = without_pytest_margins(split.body);
    if is_wrapper(body) {
        // "See root cause above": the wrapper says nothing of its own.
        return false;
    }
    let is_logger_error = split.at_error && !is_traceback_part(split.body);
    is_logger_error
        || ERROR_WORDS.is_match(body)
        || (body.contains("Timeout (") && body.ends_with(")!"))
        || body.starts_with("coredump: Detected an exception")
        || body.starts_with("RuntimeError: ")
        || body.starts_with("ERROR: ")
        || body.starts_with("ERROR ")
        || body.starts_with("error: ")
        || body.starts_with("Error: ")
        || body.starts_with("fatal: ")
        || body.starts_with("E: ")
        || (body.starts_with("FAILED ") && body.contains(" - "))
        || body.starts_with("ImportError while loading conftest")
        || (body.contains("nvidia-container-cli: ") && body.contains("error"))
        || body.starts_with("FATAL")
        || body.contains("CUDA error: ")
        // The host and the tools, in their own words: Docker's daemon (no GPU runtime, an image
        // that cannot be pulled), a process killed by a signal, uv failing to build a package.
        || body.starts_with("docker: Error response from daemon")
        || is_crash_line(body)
        || body == "Killed"
        || body.trim_start_matches(['×', ' ']).starts_with("Failed to build ")
        || super::looks_like_exception(body)
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
