//! Server-side render time of the HUD's night page for the bundled nightly (65099, 29 failures,
//! 25 causes) compared with five earlier nightlies: the scan `tests/it/hud.rs` made through the
//! sidecar, kept in `wiremock-fixtures/hud/`.

use ciwatch_mcp::hud::{night_page, Place};
use ciwatch_mcp::model::ScanResult;
use criterion::{criterion_group, criterion_main, Criterion};

fn bench(c: &mut Criterion) {
    let scan: ScanResult = serde_json::from_str(include_str!(
        "../wiremock-fixtures/hud/nightly-65099-with-5-previous.json"
    ))
    .expect("the kept scan");
    let place = Place::new("vllm", "ci");
    eprintln!(
        "night page: {} bytes, {} failures, {} causes",
        night_page(&scan, &place).len(),
        scan.total_failures,
        scan.causes.len()
    );
    c.bench_function("hud_night_page", |b| b.iter(|| night_page(&scan, &place)));
}

criterion_group!(benches, bench);
criterion_main!(benches);
