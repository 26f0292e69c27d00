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

#[path = "support/log.rs"]
mod log;
use log::{log_line, peak_rss_kib};

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
    let (analysis, text, _) = stream.finish();
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
