//! Peak memory of reading one job log as a stream, for an 8 MB and a 64 MB log, and how long
//! the parser holds an async worker per chunk. Each size runs in a process of its own (this
//! binary again, with `--bytes N`), so each peak RSS (`VmHWM`) is that read's alone. The log
//! is written on the fly in Buildkite's raw format (timestamps, ANSI colour, vLLM's INFO
//! lines, pytest's verbose lines, a failure per command), never held whole.
//!
//! `cargo bench --bench stream_memory`

use ciwatch_mcp::logs::LogAnalyzer;
use ciwatch_mcp::reader::log::stream::LogStream;
use std::time::{Duration, Instant};

/// What Buildkite's HTTP/1.1 bodies arrive in on a fast link.
const CHUNK: usize = 16 * 1024;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "--bytes") {
        let bytes: usize = args[at + 1].parse().expect("a byte count");
        read_one(bytes);
        return;
    }
    println!("log size | peak RSS | compressed text | failures | passed ids | parse MB/s | longest chunk");
    for mb in [8usize, 64] {
        let out = std::process::Command::new(&args[0])
            .args(["--bytes", &(mb << 20).to_string()])
            .output()
            .expect("the bench runs itself");
        print!("{}", String::from_utf8_lossy(&out.stdout));
    }
}

fn read_one(bytes: usize) {
    let mut stream = LogStream::<LogAnalyzer>::default();
    let mut pending = Vec::with_capacity(2 * CHUNK);
    let (mut written, mut line) = (0usize, 0usize);
    let mut longest = Duration::ZERO;
    let mut parsing = Duration::ZERO;
    while written < bytes {
        while pending.len() < CHUNK {
            log_line(line, &mut pending);
            line += 1;
        }
        let started = Instant::now();
        stream.push(&pending[..CHUNK]);
        let took = started.elapsed();
        longest = longest.max(took);
        parsing += took;
        written += CHUNK;
        pending.drain(..CHUNK);
    }
    let (analysis, text) = stream.finish();
    let compressed: usize = text.finish().1.iter().map(Vec::len).sum();
    println!(
        "{:>5} MB | {:>5} MiB | {:>8.1} MiB | {:>8} | {:>10} | {:>10.0} | {:?}",
        bytes >> 20,
        peak_rss_kib() / 1024,
        compressed as f64 / f64::from(1 << 20),
        analysis.tests.len(),
        analysis.passed.len(),
        bytes as f64 / f64::from(1 << 20) / parsing.as_secs_f64(),
        longest
    );
}

/// Line `n` of a vLLM job log: mostly engine INFO lines, a passing test every 20th line, a
/// command header and a failing test every 200,000 lines.
fn log_line(n: usize, out: &mut Vec<u8>) {
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

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
            line.split_whitespace().nth(1)?.parse().ok()
        })
        .unwrap_or(0)
}
