//! The prefixes that runners, loggers and processes put before a log line's own text, read
//! through the same way whichever runner printed them. Pure; never fails.
//!
//! A line is `prefixes + body`. Prefixes are a small grammar, not a rule per runner:
//! clocks and timestamps (bare or in brackets, ISO or not: `clock.rs`), progress columns (`[gw3]`,
//! `[ 42%]`), Docker BuildKit's step and seconds (`#8 12.34`), a container gutter
//! (`app-1  | `), GitHub Actions' `##[error]`, a process's tag (`(EngineCore_DP0 pid=3112)`,
//! `[rank0]:`), Nix's `       > ` margin, and a logger's head (vLLM's `ERROR 12-15 12:35:11 [core.py:866]`, Python's
//! `ERROR:root:`, pytest's live log `ERROR    name:file.py:12`, `name - ERROR - `, glog's
//! `E1207 12:00:00.123 42 file.cc:9]`, PyTorch's `[W1207 … file.cpp:9]`). A logger's head
//! gives the line's level. What is left is the body, which keeps its own indentation: a
//! traceback's frames are told from its exception by it.
//!
//! pytest's `E` margins (`E   `, nested when an exception's repr holds another) are prefixes too,
//! read through by [`without_pytest_margins`] where an exception is looked for.
//!
//! Terms: a *bare prefix* is a line whose body says nothing, either empty or only announcing
//! what follows (`Traceback (most recent call last):`, `Exception in worker:`); such a line is
//! never an error line.

/// A line read through its prefixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Split<'a> {
    /// A logger's head said the line was logged at error level (ERROR, CRITICAL, FATAL).
    pub at_error: bool,
    /// The line's own text, its indentation kept.
    pub body: &'a str,
}

/// Prefixes read through before giving up: a line carries a few at most (a gutter, a clock, a
/// process tag, a logger); the bound keeps a pathological line linear.
const MAX_PREFIXES: usize = 8;

/// `line` read through its prefixes.
pub fn split(line: &str) -> Split<'_> {
    let mut rest = line;
    let mut at_error = false;
    for _ in 0..MAX_PREFIXES {
        let Some((level, after)) = one_prefix(rest) else {
            break;
        };
        at_error |= level.is_some_and(is_error_level);
        rest = after;
    }
    Split {
        at_error,
        body: rest,
    }
}

/// The line's own text (see [`split`]).
pub fn body(line: &str) -> &str {
    split(line).body
}

/// Whether the line says nothing by itself: prefixes (pytest's `E` margins among them) with
/// nothing after them, or a body that only announces what follows it.
pub fn is_bare_prefix(line: &str) -> bool {
    let body = without_pytest_margins(body(line)).trim();
    body.is_empty() || announces(body)
}

/// `Traceback (most recent call last):`, `Exception in worker:`, `The above exception was the
/// direct cause of the following exception:`, vLLM's `Error executing method 'x'. This might
/// cause deadlock in distributed execution.`: lines that say an error follows, not which.
/// `AssertionError:` is not one of them: it names the exception, whose message is on the
/// lines below.
pub fn announces(body: &str) -> bool {
    let body = body.trim();
    if super::looks_like_exception(body) {
        return false;
    }
    body.starts_with("Traceback (")
        || body.starts_with("Error executing method ")
        || body.starts_with("Stack (most recent call first)")
        || body.starts_with("Thread 0x") && body.ends_with("(most recent call first):")
        || body.ends_with(':') && !body.contains(": ") && body.split_whitespace().count() <= 12
}

fn is_error_level(level: &str) -> bool {
    matches!(
        level,
        "ERROR" | "CRITICAL" | "FATAL" | "E" | "F" | "error" | "critical" | "fatal"
    )
}

const LEVELS: [&str; 7] = [
    "ERROR", "WARNING", "INFO", "DEBUG", "CRITICAL", "FATAL", "WARN",
];

/// One prefix at the start of `line`: the level it gives, if any, and what follows it.
fn one_prefix(line: &str) -> Option<(Option<&str>, &str)> {
    let no_level = |rest| Some((None, rest));
    if let Some(rest) = bracketed(line) {
        return Some(rest);
    }
    if let Some(rest) =
        super::clock::timestamp(line).or_else(|| super::clock::month_day_clock(line))
    {
        return no_level(rest);
    }
    if let Some(rest) = build_step(line).or_else(|| cloud_build_step(line)) {
        return no_level(rest);
    }
    if let Some(rest) = process_tag(line) {
        return no_level(rest);
    }
    if let Some(rest) = container_gutter(line) {
        return no_level(rest);
    }
    if let Some(rest) = named_level(line) {
        return Some(rest);
    }
    if let Some(rest) = glog_head(line) {
        return Some(rest);
    }
    // pytest's report of its own crash, one prefix per line.
    if let Some(rest) = line.strip_prefix("INTERNALERROR> ") {
        return no_level(rest);
    }
    // Nix's margin before a failed build's last log lines: seven spaces and `> `.
    if let Some(rest) = line.strip_prefix("       >") {
        if let Some(rest) = rest.strip_prefix(' ').or(rest.is_empty().then_some("")) {
            return no_level(rest);
        }
    }
    // GitHub Actions' annotation, also in a paste indented as a whole.
    if let Some(rest) = line.trim_start().strip_prefix("##[") {
        let close = rest.find(']')?;
        let level = &rest[..close];
        return Some((Some(level), &rest[close + 1..]));
    }
    logger_head(line)
}

/// `[…] ` at the line's start: a clock or timestamp, xdist's `[gw3]`, pytest's `[ 42%]`,
/// PyTorch's `[W1207 12:00:00.1 ProcessGroupNCCL.cpp:9]`, a bracketed level `[ERROR]`, a
/// location then a level `[tests/w.py:134 ERROR]`, a program's tag before its level
/// (`[LightGBM] [Fatal]`).
fn bracketed(line: &str) -> Option<(Option<&str>, &str)> {
    let inner_end = line.strip_prefix('[')?.find(']')? + 1;
    let inner = &line[1..inner_end];
    let after = &line[inner_end + 1..];
    let after = match after.strip_prefix(' ') {
        Some(a) => a,
        None if after.is_empty() || after.starts_with('[') => after,
        None => return None,
    };
    let trimmed = inner.trim();
    if let Some(level) = LEVELS.iter().find(|l| trimmed.eq_ignore_ascii_case(l)) {
        return Some((Some(level), after));
    }
    // A logger's location then its level: `[tests/scripts/pytest_wrapper.py:134 ERROR]`.
    if let Some((location, word)) = trimmed.rsplit_once(' ') {
        let level = LEVELS.iter().find(|l| word == **l);
        if let (Some(level), true) = (level, location.contains(".py:")) {
            return Some((Some(level), after));
        }
    }
    let is_clock = |s: &str| {
        s.bytes().any(|b| b == b':')
            && s.bytes()
                .all(|b| b.is_ascii_digit() || b" -:.,TZ+/".contains(&b))
            && s.bytes().take(1).all(|b| b.is_ascii_digit())
    };
    let xdist = trimmed
        .strip_prefix("gw")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    let counted = |unit: char| {
        trimmed
            .strip_suffix(unit)
            .is_some_and(|n| !n.is_empty() && n.trim().bytes().all(|b| b.is_ascii_digit()))
    };
    // A runner's count of its tests or steps, `[ 2 / 12 ]`, `[3/12]`.
    let number = |n: &str| !n.trim().is_empty() && n.trim().bytes().all(|b| b.is_ascii_digit());
    let progress = trimmed
        .split_once('/')
        .is_some_and(|(done, all)| number(done) && number(all));
    // pytest's `[ 42%]`; the Open Build Service's seconds since the build began, `[   25s]`.
    if is_clock(trimmed) || xdist || progress || counted('%') || counted('s') {
        return Some((None, after));
    }
    // A program's tag before its bracketed level: `[LightGBM] [Fatal] …`.
    let level_follows = after
        .strip_prefix('[')
        .and_then(|rest| rest.split_once(']'))
        .is_some_and(|(level, _)| LEVELS.iter().any(|l| level.eq_ignore_ascii_case(l)));
    if level_follows
        && trimmed
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return Some((None, after));
    }
    // `[W1207 12:00:00.123456 ProcessGroupNCCL.cpp:1234]`, `[E ProcessGroupNCCL.cpp:616]`.
    let first = trimmed.chars().next()?;
    let source_file =
        trimmed.contains(".cpp:") || trimmed.contains(".cc:") || trimmed.contains(".py:");
    if "EWIF".contains(first) && source_file {
        let level = if first == 'E' || first == 'F' {
            "E"
        } else {
            "I"
        };
        return Some((Some(level), after));
    }
    None
}

/// Google Cloud Build's step name: `Step #4 - "run_e2e_tests": text`.
fn cloud_build_step(line: &str) -> Option<&str> {
    let after = line.strip_prefix("Step #")?;
    let digits = after.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let after = &after[digits..];
    let after = match after.strip_prefix(" - \"") {
        Some(named) => &named[named.find('"')? + 1..],
        None => after,
    };
    after.strip_prefix(": ")
}

/// Docker BuildKit's plain progress: `#8 12.34 text`, `#8 text`, `12.34 text`.
fn build_step(line: &str) -> Option<&str> {
    let mut rest = line;
    if let Some(after) = rest.strip_prefix('#') {
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 && after[digits..].starts_with(' ') {
            rest = &after[digits + 1..];
        }
    }
    let whole = rest.bytes().take_while(u8::is_ascii_digit).count();
    let fraction = rest[whole..]
        .strip_prefix('.')
        .map_or(0, |f| f.bytes().take_while(u8::is_ascii_digit).count());
    if whole > 0 && fraction > 0 {
        let end = whole + 1 + fraction;
        if let Some(after) = rest[end..].strip_prefix(' ') {
            return Some(after);
        }
        if rest.len() == end {
            return Some("");
        }
    }
    (rest.len() < line.len()).then_some(rest)
}

/// `(EngineCore_DP0 pid=3112) `, `(pid=42) `, `[rank0]: `.
fn process_tag(line: &str) -> Option<&str> {
    if let Some(inner) = line.strip_prefix('(') {
        let close = inner.find(") ")?;
        return inner[..close].contains("pid=").then(|| &inner[close + 2..]);
    }
    let after = line.strip_prefix("[rank")?;
    let close = after.find("]:")?;
    after[..close].bytes().all(|b| b.is_ascii_digit()).then(|| {
        let rest = &after[close + 2..];
        rest.strip_prefix(' ').unwrap_or(rest)
    })
}

/// A container's gutter in `docker compose` output: `app-1  | `.
fn container_gutter(line: &str) -> Option<&str> {
    // Read by bytes, not searched for: this runs on every line, and most have no name at all.
    let name = name_length(line);
    let after = &line[name..];
    let spaces = after.bytes().take_while(|b| *b == b' ').count();
    (name > 0 && spaces >= 2)
        .then(|| after[spaces..].strip_prefix("| "))
        .flatten()
}

/// Bytes at the start of `line` that can name a container or a logger (`app-1`, `vllm.engine`).
fn name_length(line: &str) -> usize {
    line.bytes()
        .take_while(|b| b.is_ascii_alphanumeric() || b"-_.".contains(b))
        .count()
}

/// `vllm.engine - ERROR - message` (Python's `%(name)s - %(levelname)s - %(message)s`).
fn named_level(line: &str) -> Option<(Option<&str>, &str)> {
    let name = name_length(line);
    let rest = line[name..].strip_prefix(" - ").filter(|_| name > 0)?;
    let level = *LEVELS.iter().find(|l| rest.starts_with(*l))?;
    let message = rest[level.len()..].strip_prefix(" - ")?;
    Some((Some(level), message))
}

/// glog's head (gRPC, XLA, Ray's core): `E1207 12:00:00.123456  4242 file.cc:9] message`.
fn glog_head(line: &str) -> Option<(Option<&str>, &str)> {
    let level = match line.as_bytes().first()? {
        b'E' | b'F' => "E",
        b'W' | b'I' => "I",
        _ => return None,
    };
    let b = line.as_bytes();
    let stamped = b.len() > 14 && b[1..5].iter().all(u8::is_ascii_digit) && b[5] == b' ';
    let close = line.find("] ")?;
    let head = &line[..close];
    // TensorFlow's form after its own clock: `E tensorflow/core/x.cc:352] `.
    let file_only = b.get(1) == Some(&b' ')
        && !head[2..].contains(' ')
        && head
            .rsplit_once(':')
            .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|d| d.is_ascii_digit()));
    ((stamped || file_only) && head.contains(':') && head.contains('.'))
        .then(|| (Some(level), &line[close + 2..]))
}

/// A logger's head and the level it gives.
fn logger_head(line: &str) -> Option<(Option<&str>, &str)> {
    let level = *LEVELS.iter().find(|l| line.starts_with(*l))?;
    let rest = &line[level.len()..];
    // uvicorn's `ERROR:    message` (the level, a colon, a padded column).
    if let Some(message) = rest.strip_prefix(":  ") {
        return Some((Some(level), message.trim_start()));
    }
    // Python's default format: `ERROR:root:message`.
    if let Some(after) = rest.strip_prefix(':') {
        let name_end = after.find(':')?;
        let name = &after[..name_end];
        return (!name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)))
        .then(|| (Some(level), &after[name_end + 1..]));
    }
    let after = rest.strip_prefix(' ')?;
    // vLLM: `MM-DD HH:MM:SS[.mmm] [file.py:N] ` (older releases: ` file.py:N] `).
    let b = after.as_bytes();
    if b.len() > 14 && b[2] == b'-' && b[5] == b' ' && b[8] == b':' && b[11] == b':' {
        let close = after.find(']')?;
        let head = &after[..close];
        let message = &after[close + 1..];
        return ((head.contains('[') || head.contains(".py:"))
            && (message.is_empty() || message.starts_with(' ')))
        .then(|| (Some(level), message.strip_prefix(' ').unwrap_or(message)));
    }
    // A shortened head: `ERROR [core.py:1351] message`.
    if let Some(inner) = after.strip_prefix('[') {
        let close = inner.find(']')?;
        let message = &inner[close + 1..];
        return (inner[..close].contains(':') && (message.is_empty() || message.starts_with(' ')))
            .then(|| (Some(level), message.trim_start()));
    }
    // pytest's live log and caplog: `ERROR    name:file.py:12 message`; a logger's name may
    // hold spaces (`torch_tensorrt [TensorRT Conversion Context]:logging.py:22`), no `: `.
    let padded = after.trim_start_matches(' ');
    if let Some(file_end) = padded.find(".py:").map(|at| at + ".py:".len()) {
        let digits = padded[file_end..]
            .bytes()
            .take_while(u8::is_ascii_digit)
            .count();
        let (head, message) = padded.split_at(file_end + digits);
        let name = &head[..file_end - ".py:".len()];
        if digits > 0
            && (message.is_empty() || message.starts_with(' '))
            && name.contains(':')
            && !name.contains(": ")
            && name.len() <= 80
        {
            return Some((Some(level), message.trim_start_matches(' ')));
        }
    }
    // `ERROR - message`, `ERROR | message`.
    padded
        .strip_prefix("- ")
        .or_else(|| padded.strip_prefix("| "))
        .map(|message| (Some(level), message))
}

/// `E   E   ModuleNotFoundError: x` → `ModuleNotFoundError: x`: pytest's `E` margins, nested
/// when an exception's repr is printed inside another.
pub fn without_pytest_margins(line: &str) -> &str {
    let mut rest = line.trim_start();
    while let Some(after) = rest.strip_prefix('E') {
        if !after.starts_with([' ', '\t']) {
            break;
        }
        rest = after.trim_start();
    }
    rest
}

/// `E   text` → `text`: one pytest `E` margin at the line's start (after any indentation a
/// runner or a paste added: pytest's own margin is `E` and at least two spaces there).
pub fn e_margin(body: &str) -> Option<&str> {
    let indented = body.len() != body.trim_start().len();
    let after = body.trim_start().strip_prefix('E')?;
    let margin = after.len() - after.trim_start_matches([' ', '\t']).len();
    (after.is_empty() || margin >= if indented { 2 } else { 1 }).then_some(after)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(cases: &[(&str, bool, &str)]) {
        for &(line, at_error, body) in cases {
            assert_eq!(split(line), Split { at_error, body }, "{line}");
        }
    }

    #[test]
    fn process_tags_are_read_through() {
        check(&[
            (
                "(EngineCore_DP0 pid=3112) ERROR 12-15 12:35:11 [core.py:866] ValueError: x",
                true,
                "ValueError: x",
            ),
            (
                "[rank0]: Traceback (most recent call last):",
                false,
                "Traceback (most recent call last):",
            ),
            (
                "(VllmWorker rank=0 pid=12) ERROR 01-02 03:04:05 [x.py:9] boom",
                true,
                "boom",
            ),
            ("(not a process) text", false, "(not a process) text"),
            ("app-1  | FAILED a.py::t", false, "FAILED a.py::t"),
            ("    assert x == 1", false, "    assert x == 1"),
        ]);
    }

    #[test]
    fn runner_clocks_and_columns_are_read_through() {
        check(&[
            (
                "[2024-05-01T12:00:00.123Z] FAILED a.py::t",
                false,
                "FAILED a.py::t",
            ),
            ("[gw3] [ 42%] FAILED a.py::t", false, "FAILED a.py::t"),
            ("[   25s] Traceback (most recent call last):", false, "Traceback (most recent call last):"),
            ("12:00:00  FAILED a.py::t", false, "FAILED a.py::t"),
            ("       > FAILED a.py::t", false, "FAILED a.py::t"),
            ("[LightGBM] [Fatal] [CUDA] no device", true, "[CUDA] no device"),
            ("[tests/scripts/pytest_wrapper.py:134 ERROR] object of type 'NoneType' has no len()", true, "object of type 'NoneType' has no len()"),
            ("2025-10-11T05:44:58.858110Z 01O ___ test_x ___", false, "___ test_x ___"),
            (
                "Jan 07 20:36:55 Traceback (most recent call last):",
                false,
                "Traceback (most recent call last):",
            ),
            (
                "#14 41.53 ERROR: No matching distribution",
                false,
                "ERROR: No matching distribution",
            ),
            ("25.71 text", false, "text"),
            (
                "##[error]Process completed with exit code 1.",
                true,
                "Process completed with exit code 1.",
            ),
            (
                "[06:41:07.520334] coredump: Detected",
                false,
                "coredump: Detected",
            ),
            // A runner's count of its steps or tests, spaced or not.
            ("[1/2] Building CXX object", false, "Building CXX object"),
            (
                "[ 2 / 2 ] tests/a.py::test_b FAILED",
                false,
                "tests/a.py::test_b FAILED",
            ),
            (
                "Step #4 - \"run_e2e_tests\": ModuleNotFoundError: No module named 'x'",
                false,
                "ModuleNotFoundError: No module named 'x'",
            ),
            (
                "2018-06-06 15:26:54.882302: E tensorflow/stream_executor/cuda/cuda_dnn.cc:352] Could not create cudnn handle",
                true,
                "Could not create cudnn handle",
            ),
            ("  ##[error]The action has timed out.", true, "The action has timed out."),
        ]);
    }

    #[test]
    fn logger_heads_are_read_through_and_give_the_level() {
        check(&[
            (
                "2024-05-01 12:00:00,123 - vllm.engine - ERROR - boom",
                true,
                "boom",
            ),
            ("2024-05-01 12:00:00,123 ERROR boom", false, "ERROR boom"),
            (
                "WARNING  huggingface_hub.utils._http:_http.py:446 HTTP Error 429",
                false,
                "HTTP Error 429",
            ),
            (
                "ERROR    vllm.x:core.py:12 RuntimeError: y",
                true,
                "RuntimeError: y",
            ),
            (
                "ERROR    torch_tensorrt [TensorRT Conversion Context]:logging.py:22 Error Code: 9: x",
                true,
                "Error Code: 9: x",
            ),
            (
                "E1207 12:00:00.123456 4242 socket.cc:9] connect failed",
                true,
                "connect failed",
            ),
            ("Error 1207: not glog", false, "Error 1207: not glog"),
            (
                "[W1207 12:00:00.123456 ProcessGroupNCCL.cpp:1234] Warning: x",
                false,
                "Warning: x",
            ),
            (
                "[E ProcessGroupNCCL.cpp:616] [Rank 0] Watchdog timeout",
                true,
                "[Rank 0] Watchdog timeout",
            ),
            (
                "ERROR: Could not install packages",
                false,
                "ERROR: Could not install packages",
            ),
            ("ERROR:root:Engine died", true, "Engine died"),
            ("ERROR 12-11 00:53:45 [repo_utils.py:63] ", true, ""),
            (
                "ERROR [core.py:1351] EngineCore encountered a fatal error.",
                true,
                "EngineCore encountered a fatal error.",
            ),
            (
                "ERROR:    Exception in ASGI application",
                true,
                "Exception in ASGI application",
            ),
        ]);
    }

    #[test]
    fn bare_prefixes_say_nothing() {
        for line in [
            "ERROR 12-11 00:53:45 [repo_utils.py:63] ",
            "(EngineCore_DP0 pid=1) ERROR 12-11 00:53:45 [core.py:1] Traceback (most recent call last):",
            "[2024-05-01T12:00:00Z] ",
            "ERROR:root:",
            "(Worker pid=3) ERROR 12-11 00:53:45 [multiproc.py:9] Exception in worker:",
            "The above exception was the direct cause of the following exception:",
            "E   ",
        ] {
            assert!(is_bare_prefix(line), "{line}");
        }
        for line in [
            "ERROR 12-11 00:53:45 [core.py:1] EngineCore failed to start.",
            "RuntimeError: CUDA error: an illegal memory access was encountered",
            "error: subprocess-exited-with-error",
            "E   AssertionError: ",
        ] {
            assert!(!is_bare_prefix(line), "{line}");
        }
    }
}
