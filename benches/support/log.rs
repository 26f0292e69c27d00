//! A vLLM job log of any size, written line by line in Buildkite's raw format (timestamps, ANSI
//! colour, vLLM's INFO lines, pytest's verbose lines, a failure per command), never held whole
//! unless the caller keeps it; and the process's peak resident set. Shared by the memory benches.
#![allow(dead_code)]

/// Line `n` of a vLLM job log: mostly engine INFO lines, a passing test every 20th line, a
/// command header and a failing test every 200,000 lines.
pub fn log_line(n: usize, out: &mut Vec<u8>) {
    let stamp = format!("\x1b_bk;t={}\x07", 1_746_680_000_000u64 + n as u64 * 7);
    out.extend_from_slice(stamp.as_bytes());
    let text = match n % 200_000 {
        0 => format!("+++ :test_tube: Command ({}/9): pytest -v -s tests/kernels/test_{}.py", n / 200_000 % 9 + 1, n),
        1 => format!("tests/kernels/test_{n}.py::test_case[bf16-{n}] \x1b[31mFAILED\x1b[0m"),
        2 => format!("FAILED tests/kernels/test_{n}.py::test_case[bf16-{n}] - AssertionError: Tensor-likes are not close!"),
        i if i % 20 == 0 => format!("tests/kernels/test_{}.py::test_case[bf16-{n}] \x1b[32mPASSED\x1b[0m", n / 200_000),
        _ => format!("(EngineCore_DP0 pid=3112) INFO 05-08 06:{:02}:{:02} [gpu_model_runner.py:2602] Model loading took 15.2 GiB memory and 3.1 seconds", n / 60 % 60, n % 60),
    };
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// The process's peak resident set (`VmHWM`), in KiB.
pub fn peak_rss_kib() -> u64 {
    status_kib("VmHWM:")
}

/// The process's resident set now (`VmRSS`), in KiB.
pub fn rss_kib() -> u64 {
    status_kib("VmRSS:")
}

fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with(field))?;
            line.split_whitespace().nth(1)?.parse().ok()
        })
        .unwrap_or(0)
}
