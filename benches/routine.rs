//! A morning of CI watch against the local Buildkite mock (`support/mock.rs`: 80 ms for API
//! calls, 400 ms for log reads, 50 requests per minute with 429 past the limit).
//!
//! (a) the first scan of the fixture nightly (real build 65099, 38 failed jobs, 1.1 MB logs),
//! (b) the same scan again, (c) the routine from a cold store: scan, latest nightly, three test
//! histories over 30 builds. Each prints wall time, requests, 429s, log bytes and the critical
//! path. Run with `cargo bench --bench routine`; it takes about a minute and a half because the
//! routine needs more than one minute's budget. `cargo bench --bench team` runs a team's
//! replicas with one Redis.

use ciwatch_mcp::buildkite::BuildKey;
use ciwatch_mcp::buildkite::BuildkiteClient;
use ciwatch_mcp::model::{DetailLevel, ScanResult};
use ciwatch_mcp::storage::Cache;
use ciwatch_mcp::watch::{
    self, Budgets, Enrichment, HistoryOptions, JobReader, NoProgress, Presentation, ScanOptions,
};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

#[path = "support/mock.rs"]
mod mock;
use mock::{buildkite_client, limited_server, Limit, NIGHTLY};

fn scan_options() -> ScanOptions {
    ScanOptions {
        presentation: Presentation {
            detail_level: DetailLevel::Summary,
            failure_offset: 0,
            max_failures: 50,
        },
        render_reports: true,
        budgets: Budgets::default(),
        selection: None,
        repo: "vllm-project/vllm".into(),
        search_github: false,
        compare_nightlies: 0,
        compare_pipeline: None,
    }
}

struct Measured {
    wall: Duration,
    requests: u64,
    refused: u64,
    bytes: u64,
}

fn report(name: &str, m: &Measured, critical_path: &str) {
    println!(
        "{name}: {:.2} s, {} requests, {} refused (429), {:.1} MB of logs; critical path: {critical_path}",
        m.wall.as_secs_f64(),
        m.requests,
        m.refused,
        m.bytes as f64 / 1e6
    );
}

async fn measure<F: std::future::Future>(
    limit: &Limit,
    client: &BuildkiteClient,
    work: F,
) -> (F::Output, Measured) {
    let (requests, refused, bytes) = (
        limit.served.load(Ordering::Relaxed) + limit.refused.load(Ordering::Relaxed),
        limit.refused.load(Ordering::Relaxed),
        client.http().counters.bytes.load(Ordering::Relaxed),
    );
    let started = Instant::now();
    let output = work.await;
    let measured = Measured {
        wall: started.elapsed(),
        requests: limit.served.load(Ordering::Relaxed) + limit.refused.load(Ordering::Relaxed)
            - requests,
        refused: limit.refused.load(Ordering::Relaxed) - refused,
        bytes: client.http().counters.bytes.load(Ordering::Relaxed) - bytes,
    };
    (output, measured)
}

fn verdicts(result: &ScanResult) -> Vec<(String, String)> {
    result
        .failures
        .iter()
        .map(|f| (f.failure_key.clone(), format!("{:?}", f.category)))
        .collect()
}

#[tokio::main]
async fn main() {
    // (a) and (b): one scan, then the same again.
    let (server, limit) = limited_server().await;
    let client = buildkite_client(&server.uri(), 45);
    let dir = tempfile::tempdir().expect("temp dir");
    let store = ciwatch_mcp::storage::Store::from(Cache::open(dir.path()).expect("store"));
    let reader = JobReader::new(&client, Some(&store));
    let key = BuildKey::new("vllm", "ci", NIGHTLY);
    let options = scan_options();
    let scan = || watch::scan_build(&reader, Enrichment::default(), &key, &options, &NoProgress);
    let (first, a) = measure(&limit, &client, scan()).await;
    let first = first.expect("scan");
    // Complete coverage: no job read only in part.
    let partly = first
        .jobs
        .iter()
        .filter(|j| j.status == ciwatch_mcp::model::JobStatus::PartlyAnalyzed)
        .count();
    assert_eq!(partly, 0, "every read job is covered");
    let whole_reads = first.stats.api_requests.saturating_sub(21);
    report(
        "(a) first scan of the 38-failed-job nightly",
        &a,
        &format!("get build (80 ms) -> 20 logs at once, as planned: multi-command jobs whole, the others by their tail (400 ms) -> whole reads of the {whole_reads} one-command logs whose tail did not show what ended the job (400 ms); {partly} jobs read in part"),
    );
    let (again, b) = measure(&limit, &client, scan()).await;
    assert_eq!(verdicts(&again.expect("scan")), verdicts(&first));
    report(
        "(b) the same scan again",
        &b,
        "get build (80 ms): a finished build may have changed; outcomes from the store",
    );
    drop(server);

    // (c) the routine on a fresh mock, limit window and store.
    let (server, limit) = limited_server().await;
    let client = buildkite_client(&server.uri(), 45);
    let dir = tempfile::tempdir().expect("temp dir");
    let store = ciwatch_mcp::storage::Store::from(Cache::open(dir.path()).expect("store"));
    let reader = JobReader::new(&client, Some(&store));
    let routine = async {
        let scanned =
            watch::scan_build(&reader, Enrichment::default(), &key, &options, &NoProgress)
                .await
                .expect("scan");
        let choice = watch::latest_nightly(&client, "vllm", "ci", "main", u32::MAX / 3600)
            .await
            .expect("nightly");
        let nightly = watch::scan_build(
            &reader,
            Enrichment::default(),
            &BuildKey::new("vllm", "ci", choice.number),
            &options,
            &NoProgress,
        )
        .await
        .expect("scan");
        assert_eq!(verdicts(&nightly), verdicts(&scanned));
        let after_two_scans = Instant::now();
        let tests: Vec<String> = scanned
            .failures
            .iter()
            .map(|f| f.test_failure.test_name.clone())
            .filter(|t| t.contains("::"))
            .take(3)
            .collect();
        let mut classes = Vec::new();
        for test in &tests {
            let history = watch::test_history(
                &reader,
                &ciwatch_mcp::buildkite::PipelineKey::new("vllm", "ci"),
                &ciwatch_mcp::input::NodeId::parse(test).expect("a node id from the log"),
                &HistoryOptions {
                    branch: "main".into(),
                    lookback_builds: 30,
                    nightly_only: false,
                    job_filter: None,
                    include_logs: true,
                    max_jobs_per_build: 20,
                    max_logs: watch::DEFAULT_HISTORY_LOGS,
                    max_log_bytes: 200_000,
                    max_whole_log_bytes: ciwatch_mcp::watch::DEFAULT_MAX_WHOLE_LOG_BYTES,
                    concurrency: 24,
                    repo: "vllm-project/vllm".into(),
                },
                &NoProgress,
            )
            .await
            .expect("history");
            classes.push(format!("{test}: {:?}", history.assessment.classification));
        }
        (after_two_scans, classes)
    };
    let started = Instant::now();
    let ((after_two_scans, classes), c) = measure(&limit, &client, routine).await;
    report(
        "(c) routine: scan, latest nightly, three 30-build histories",
        &c,
        "scan as (a) -> nightly listing (80 ms, its build and logs stored) -> per history: listing with jobs (80 ms) -> failed logs at once (400 ms); past 45 requests the limiter waits for the minute to turn",
    );
    println!(
        "    scan + latest nightly: {:.2} s",
        after_two_scans.duration_since(started).as_secs_f64()
    );
    for class in classes {
        println!("    {class}");
    }
}
