//! What a log line says by its words, once its prefixes are read through: an error, a step
//! that only says it failed, a command's exit, trouble that is no error, a process's crash, an
//! announcement of a traceback, one of vLLM's wrapper errors. Pure.
//!
//! These decide only what each line can be; which line is a failure's error is decided by the
//! log's structure in `job_level.rs` (the exception that closes the last traceback first). A
//! line that is only prefixes or only announces what follows is never an error line here.

use super::prefix;

/// vLLM's errors that wrap the real one printed above them: `EngineDeadError: … See stack trace
/// (above) for the root cause`, `Engine core initialization failed. See root cause above`.
static WRAPPER: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    crate::text::log_regex(r"See (?:the )?(?:stack trace \(above\)|root cause above)|EngineDeadError|Engine core initialization failed")
        .expect("valid")
});

/// A tool's error whose message follows on the next, indented lines.
pub(crate) static ANNOUNCED_ERROR: std::sync::LazyLock<regex::Regex> =
    std::sync::LazyLock::new(|| {
        crate::text::log_regex(r"^(?:CMake Error|ERROR|Error|error)\b").expect("valid")
    });

/// Whether the line at `i` only announces the traceback printed after it: the line ends with
/// that traceback's header (vLLM's `EngineCore hit an exception: Traceback …`), or it is one of
/// vLLM's lines that always precede one (a paste may cut the traceback).
pub(crate) fn announces_traceback(line: &str) -> bool {
    let body = prefix::body(line);
    body.contains("Traceback (most recent call last)") || VLLM_ANNOUNCES.is_match(body)
}

/// vLLM's log lines that announce the traceback it prints next (`vllm/v1/engine/core.py`,
/// `vllm/entrypoints`, uvicorn's).
static VLLM_ANNOUNCES: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    crate::text::log_regex(r"^\s*(?:EngineCore (?:encountered a fatal error|failed to start|hit an exception)|Engine background task failed|Exception in ASGI application)\.?\s*$")
        .expect("valid")
});

/// Lines that only say that something failed, whose cause is printed above them when it is
/// printed at all: a build tool's failed step (Docker BuildKit, podman, pip, Jenkins-style
/// and GitHub Actions runners, apt's "Unable to fetch some archives"), pytest's summary of a
/// collection error that names no test (`ERROR  - …`), the shell's report of a process that died
/// (`Aborted (core dumped)`), and GitHub's step that was stopped (`The operation was canceled.`).
pub(crate) static ONLY_SAYS_FAILED: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(
    || {
        crate::text::log_regex(r"^(?:The operation was cancel+ed\.$|ERROR +- |ERROR: (?:failed to solve: )?process .* did not complete successfully|Error: building at STEP|Error: failed to start containers|error: subprocess-exited-with-error|E: Unable to fetch some archives|subprocess exited with status|make(?:\[\d+\])?: \*\*\* |ninja: build stopped|FAILED: \S|\S+: commands failed$|error: test failed, to rerun pass)|did not run successfully\.?$|\(core dumped\)|recipe for target '[^']*' failed|all hosts have already failed|\bbuild aborted\b|Build did NOT complete successfully")
        .expect("valid")
    },
);

/// A line that ends by saying a command exited with a status (`Process completed with exit
/// code 1.`, `… failed with code 1`, `script returned exit code 1`, Buildkite's `Exited with
/// status 139 (soft failed)`), the status captured.
pub(crate) static EXITED: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    crate::text::log_regex(
        r"(?i)\b(?:exit(?:ed)?|failed|returned)(?: with)?(?: exit)? (?:code|status):? '?(-?\d+)'?\)?\.?(?: \([a-z ]+\))?$",
    )
    .expect("valid")
});

/// Whether a line that says a command exited says why: an exception or an error of its own
/// (meson's `meson.build:74:2: ERROR: Command "…" failed with status 1.`), or a status
/// that is a signal's (128 + n: 137 killed, 139 segfault) or negative; `exit code 1` says only
/// that it failed, like the agent's exit line.
pub(crate) fn exit_says_why(body: &str) -> bool {
    // A hook is not the command: that it failed is the host's news.
    EXCEPTION_LINE.is_match(body)
        || ERROR_WORDS.is_match(body)
        || body.contains(" hook exited")
        || EXITED
            .captures(body)
            .and_then(|c| c[1].parse::<i64>().ok())
            .is_some_and(|status| !(0..128).contains(&status))
}

pub(crate) fn only_says_failed(body: &str) -> bool {
    ONLY_SAYS_FAILED.is_match(body) || XDIST_CRASH.is_match(body)
}

/// Lines that name trouble without being error lines: huggingface_hub's warning of the error it
/// will retry, the HF API's refusal, apt's warning that a mirror's name did not resolve, NCCL's network warnings and lost connections, nvidia-smi
/// finding no usable GPU, ROCm's device that cannot be opened, Buildkite's agent lost, a failed
/// checkout, GitHub Actions' step timeout.
pub(crate) static TROUBLE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    crate::text::log_regex(r"^🚨 Error: |^# Received cancellation signal|^The operation was canceled|Build timed out \(after|has exceeded the maximum execution time|pull rate limit|lost communication with the server|\bCannot contact \S+|thrown while requesting (?:HEAD|GET|POST) |error from HF API|Temporary failure resolving|NET/IB ?: Got completion from peer|socketProgressOpt: Call to \w+ from \S+ failed|Failed to initialize NVML|NVIDIA-SMI has failed because|No devices were found|Exited with status -1\b|Checkout failed!|^The action (?:'[^']*' )?has timed out|Unable to open /dev/kfd")
        .expect("valid")
});

/// Whether `message` is one of vLLM's wrapper errors.
pub fn is_wrapper(message: &str) -> bool {
    WRAPPER.is_match(message)
}

/// A summary's message that is only an exception's name (`ProcessRaisedException: `): torch's
/// spawn error, whose child's traceback follows the summary line and says what went wrong.
pub(crate) fn names_only_exception(message: &str) -> bool {
    static NAME_ONLY: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        crate::text::log_regex(r"^[\w.]+(?:Error|Exception):\s*$").expect("valid")
    });
    NAME_ONLY.is_match(message)
}

/// The agent's own line for a command that exited: it says that, never why. (Its other lines,
/// a command interrupted by a signal or a hook that failed, name trouble.)
pub(crate) fn is_agent_verdict(line: &str) -> bool {
    // Its emoji may arrive mangled in a copy; the docker plugin runs the command as its hook.
    line.contains("Error: The command exited with status")
        || line.contains("command hook exited with status")
}

/// Lines that report an error by themselves, printed by vLLM, CUDA, faulthandler, pip or docker.
/// A process's death: Python's fatal error, Windows' fatal exception, glog's and absl's signal
/// handlers (`*** Received signal 11 ***`), a signal's `(core dumped)`, a segfault, make's report
/// of a recipe killed (`*** [Makefile:40: pytest] Killed`).
pub(crate) fn is_crash_line(line: &str) -> bool {
    line.contains("Fatal Python error")
        || line.contains("Windows fatal exception: ")
        // glog's and absl's signal handlers.
        || line.contains("*** Received signal ")
        || line.contains("*** SIGSEGV ")
        // make's report of a recipe's process killed by a signal.
        || line.contains("] Killed") && line.contains("*** [")
        || line.contains("STATUS_ACCESS_VIOLATION")
        // Windows' report of a process that crashed (0xC0000005: an access violation).
        || line.contains("Exception Code: 0xC")
        || line.contains("Segmentation fault")
        || line.contains("(core dumped)")
        || SHELL_KILLED.is_match(line)
}

/// pytest-xdist's report of a worker that died under a test: it says that the worker died
/// (its cause, a segfault, is printed above it when at all).
pub(crate) static XDIST_CRASH: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    crate::text::log_regex(
        r"\bworker '\w+' crashed while running|\bnode down: Not properly terminated",
    )
    .expect("valid")
});

/// The shell's report of a job it ran that was killed: `line 2:  1855 Killed      pytest …`.
static SHELL_KILLED: std::sync::LazyLock<regex::Regex> =
    std::sync::LazyLock::new(|| crate::text::log_regex(r"\bKilled {2,}\S").expect("valid"));

/// A traceback's header or one of its frames: where, not what went wrong (vLLM's worker
/// announces its traceback with "Error executing method …").
pub(crate) fn is_traceback_part(body: &str) -> bool {
    body.starts_with([' ', '\t']) || prefix::announces(body) || is_frame_or_marker(body.trim())
}

/// A traceback's frame (`File "x.py", line 120, in f`) or its caret marker (`^^^^`), which a
/// copy may have stripped of its indentation.
fn is_frame_or_marker(body: &str) -> bool {
    static FRAME: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        crate::text::log_regex(r#"^File "[^"]+", line \d+"#).expect("valid")
    });
    FRAME.is_match(body) || !body.is_empty() && body.chars().all(|c| matches!(c, '^' | '~'))
}

/// A traceback a process logged at error level, one logger prefix per line: kept in the
/// excerpt (its frames name the files), never the error line.
pub(crate) fn is_logged_traceback_part(line: &str) -> bool {
    let split = prefix::split(line);
    split.at_error && is_traceback_part(split.body)
}

/// An error in any tool's words: a fatal error, memory that ran out, a registry's refusal, an
/// HTTP error status, a compiler's diagnostic (`file.h:5:2: error: …`, MSVC's and GoogleTest's
/// `file.cc(12): error …`), CTest's and Bazel's verdicts on a test (`***Failed`, `***Timeout`,
/// `//pkg:target TIMEOUT in …`), a runner's timer of a silent job, a GPU driver's error, the
/// system's own errors (`…: [Errno 2] No such file or directory`, the loader's ``version `GLIBCXX_3.4.29'
/// not found``).
static ERROR_WORDS: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    crate::text::log_regex(
        r"(?i)\bfatal error\b|\bfailed with OOM\b|\bout of memory\b|\btoomanyrequests\b|no space left on device|\bCheck failed: |\bversion solving failed\b|^× |^/\S+: No module named \S+$|^\[[\w.-]+\] (?:CRITICAL|ERROR|FATAL):|^[\w.+-]+: (?:fatal )?error\b|(?:Memory access fault|HW Exception) by GPU node-|\b[45]\d\d (?:Client|Server) Error\b|\((?:429|5\d\d) [A-Z][A-Za-z ]+\)|\bGGML_ASSERT\(.*\) failed|^Assertion [`'].*' failed|^\S+:\d+(?::\d+)?: (?:fatal )?(?i:error): |: command not found$|^[A-Z][a-z]+ error: |\bError Code \d+: |\S\(\d+(?:,\d+)?\): (?:fatal )?error(?: [A-Z]+\d+)?: |\*\*\*(?:Failed|Timeout|Exception)\b|^undefined symbol: \S|^//\S+\s+TIMEOUT in (?:\d+ out of \d+ in )?\d|^No output has been received in the last \d|^Too long with no output \(exceeded |\bCould not solve for environment specs\b|\b(?:rocm|cuda|hip) driver error\b|: \[Errno \d+\] [A-Z]|: version `[^'`]+' not found\b",
    )
    .expect("valid")
});

/// The lines torch prints after a CUDA error's message, pointing to how to learn more.
static DOCS_POINTER: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    crate::text::log_regex(r"^(?:Search for `\w+' in https?://docs\.nvidia\.com/|CUDA kernel errors might be asynchronously reported|For debugging consider passing CUDA_LAUNCH_BLOCKING|Compile with `TORCH_USE_CUDA_DSA`)")
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
    let body = prefix::without_pytest_margins(split.body);
    if is_wrapper(body) || UNITTEST_HEAD.is_match(body.trim_end()) || DOCS_POINTER.is_match(body) {
        // "See root cause above": the wrapper says nothing of its own; unittest's
        // `ERROR: test_x (module.Class)` heads the test's traceback, which says what went wrong;
        // torch's lines after a CUDA error only point to its documentation.
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
        || names_exception_raised(body)
        || body.contains("CUDA error: ")
        // The host and the tools, in their own words: Docker's daemon (no GPU runtime, an image
        // that cannot be pulled), a process killed by a signal, uv failing to build a package.
        || body.starts_with("docker: Error response from daemon")
        || is_crash_line(body)
        || body == "Killed"
        || body.trim_start_matches(['×', ' ']).starts_with("Failed to build ")
        || super::looks_like_exception(body)
}

/// A line that says which exception a step failed with (`Failed with
/// vllm.third_party.pynvml.NVMLError_NoPermission: Insufficient Permissions`).
fn names_exception_raised(body: &str) -> bool {
    ["failed with ", "Failed with ", "raised ", "Caught "]
        .iter()
        .any(|head| {
            body.split_once(head)
                .is_some_and(|(_, rest)| super::looks_like_exception(rest))
        })
}

/// unittest's head of a test's report: `ERROR: test_x (module.Class)`, `FAIL: test_y (…)`.
static UNITTEST_HEAD: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    crate::text::log_regex(r"^(?:ERROR|FAIL): \w+ \([\w.]+\)$").expect("valid")
});

/// An exception line: `RuntimeError: …`, `torch.OutOfMemoryError: …`, `AssertionError`.
pub(crate) static EXCEPTION_LINE: std::sync::LazyLock<regex::Regex> =
    std::sync::LazyLock::new(|| {
        crate::text::log_regex(
            r"^(?:[A-Za-z_][\w]*\.)*_?[A-Z]\w*(?:Error|Exception|Exit|Interrupt|NotFound)\b(?::|$)",
        )
        .expect("valid")
    });
