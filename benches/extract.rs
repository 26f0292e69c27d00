//! Throughput of clean + extract on a realistic raw log of over 50 MB: the fixture nightly's
//! failed-job logs (raw Buildkite format, >1 MiB of passing output each) concatenated.

use ciwatch_mcp::fixtures;
use ciwatch_mcp::logs::{analyze_log, clean_log};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn realistic_log() -> Vec<u8> {
    let build = fixtures::build_65099();
    let failed: Vec<_> = build.jobs().iter().filter(|j| j.is_failed()).collect();
    let mut log = Vec::new();
    while log.len() < 50 * 1024 * 1024 {
        for job in &failed {
            log.extend_from_slice(&fixtures::raw_log(job));
        }
    }
    log
}

fn bench(c: &mut Criterion) {
    let log = realistic_log();
    let mut group = c.benchmark_group("logs");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(log.len() as u64));
    group.bench_function("clean", |b| b.iter(|| clean_log(&log)));
    let cleaned = clean_log(&log);
    group.bench_function("extract", |b| b.iter(|| analyze_log(&cleaned)));
    group.bench_function("clean_and_extract", |b| {
        b.iter(|| analyze_log(&clean_log(&log)))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
