//! A morning of CI watch against a local Buildkite mock that answers like the real one: 80 ms
//! for API calls, 400 ms for log reads, and a per-user limit of 50 requests per minute (a fixed
//! window: `RateLimit-Remaining`/`RateLimit-Reset` on every answer, 429 past the limit).
//!
//! (a) the first scan of the fixture nightly (real build 65099, 38 failed jobs, 1.1 MB logs),
//! (b) the same scan again, (c) the routine from a cold store: scan, latest nightly, three test
//! histories over 30 builds, (d) a team: three replicas sharing one Redis (`redis-server`, started
//! here) scan the nightly at once and follow two tests each, then a fresh fourth replica scans
//! it. Each prints wall time, requests, 429s, log bytes and the critical path. Run with
//! `cargo bench --bench routine`; it takes a few minutes because the routines need more than
//! one minute's budget.

use ciwatch_mcp::buildkite::BuildkiteClient;
use ciwatch_mcp::cache::Cache;
use ciwatch_mcp::fixtures;
use ciwatch_mcp::http::{HttpClient, RateBudget, RetryPolicy};
use ciwatch_mcp::model::{DetailLevel, ScanResult};
use ciwatch_mcp::watch::{
    self, Budgets, BuildKey, Enrichment, HistoryOptions, JobReader, NoProgress, ScanOptions,
};
use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const API_LATENCY: Duration = Duration::from_millis(80);
const LOG_LATENCY: Duration = Duration::from_millis(400);
const LIMIT_PER_MINUTE: u64 = 50;
const NIGHTLY: u64 = 65099;
/// History builds: 30 up to the nightly; the failed jobs failed from this build on.
const HISTORY_FROM: u64 = NIGHTLY - 29;
const FAILING_FROM: u64 = NIGHTLY - 6;

/// Buildkite's per-user limit: a fixed one-minute window from its first request.
#[derive(Default)]
struct Limit {
    window: Mutex<Option<(Instant, u64)>>,
    refused: AtomicU64,
    served: AtomicU64,
}

impl Limit {
    /// `Ok(remaining, reset)` when the request is allowed, `Err(reset)` when refused.
    fn admit(&self) -> Result<(u64, u64), u64> {
        let mut window = self.window.lock().expect("limit");
        let now = Instant::now();
        let (start, count) = match *window {
            Some((start, count)) if now.duration_since(start) < Duration::from_secs(60) => {
                (start, count)
            }
            _ => (now, 0),
        };
        let reset = 60 - now.duration_since(start).as_secs().min(59);
        if count >= LIMIT_PER_MINUTE {
            *window = Some((start, count));
            self.refused.fetch_add(1, Ordering::Relaxed);
            return Err(reset);
        }
        *window = Some((start, count + 1));
        self.served.fetch_add(1, Ordering::Relaxed);
        Ok((LIMIT_PER_MINUTE - count - 1, reset))
    }
}

fn job_id(template: &str, n: u64) -> String {
    if n == NIGHTLY {
        template.to_string()
    } else {
        format!("{n:08}{}", &template[8..])
    }
}

/// Build `n`: the nightly itself, or an earlier finished build made from it (job ids
/// rewritten; its failed jobs passed before `FAILING_FROM`).
fn build(n: u64) -> Value {
    let mut build: Value = serde_json::from_str(fixtures::BUILD_65099).expect("fixture");
    if n == NIGHTLY {
        return build;
    }
    build["number"] = n.into();
    build["commit"] = format!("{:040x}", 0xc0ffee000u64 + n).into();
    build["web_url"] = format!("https://buildkite.com/vllm/ci/builds/{n}").into();
    build["source"] = "webhook".into();
    for job in build["jobs"].as_array_mut().expect("jobs") {
        let id = job_id(job["id"].as_str().expect("id"), n);
        job["id"] = id.into();
        if n < FAILING_FROM && matches!(job["state"].as_str(), Some("failed")) {
            job["state"] = "passed".into();
        }
    }
    build
}

struct Buildkite {
    limit: Arc<Limit>,
    nightly_job_by_suffix: std::collections::HashMap<String, ciwatch_mcp::buildkite::Job>,
}

/// Log requests per job id, for (d).
static LOG_READS: std::sync::LazyLock<Mutex<std::collections::HashMap<String, u64>>> =
    std::sync::LazyLock::new(Mutex::default);

impl Respond for Buildkite {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let (remaining, reset) = match self.limit.admit() {
            Ok(admitted) => admitted,
            Err(reset) => {
                return ResponseTemplate::new(429)
                    .insert_header("ratelimit-remaining", "0")
                    .insert_header("ratelimit-reset", reset.to_string().as_str())
                    .set_body_json(
                        serde_json::json!({"message": "You have exceeded the rate limit"}),
                    )
                    .set_delay(API_LATENCY)
            }
        };
        let path = request.url.path().to_string();
        let segments: Vec<&str> = path.split('/').collect();
        let query = |name: &str| {
            request
                .url
                .query_pairs()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.to_string())
        };
        let template = if path.ends_with("/log") {
            let job = segments[segments.len() - 2];
            *LOG_READS
                .lock()
                .expect("log reads")
                .entry(job.to_string())
                .or_insert(0) += 1;
            let original = self
                .nightly_job_by_suffix
                .get(&job[8..])
                .expect("a fixture job");
            let log = fixtures::raw_log(original);
            let range = request.headers.get("range").and_then(|v| v.to_str().ok());
            let (status, content_range, body) = fixtures::range_response(&log, range);
            let mut template = ResponseTemplate::new(status)
                .set_body_raw(body, "text/plain")
                .set_delay(LOG_LATENCY);
            if let Some(value) = content_range {
                template = template.insert_header("content-range", value.as_str());
            }
            template
        } else if path.ends_with("/builds") {
            let without_jobs = query("exclude_jobs").as_deref() == Some("true");
            let per_page: u64 = query("per_page").and_then(|v| v.parse().ok()).unwrap_or(30);
            let listing: Vec<Value> = (HISTORY_FROM..=NIGHTLY)
                .rev()
                .take(per_page as usize)
                .map(|n| {
                    let mut b = build(n);
                    if without_jobs {
                        b.as_object_mut().expect("object").remove("jobs");
                    }
                    b
                })
                .collect();
            ResponseTemplate::new(200)
                .set_body_json(listing)
                .set_delay(API_LATENCY)
        } else {
            let n: u64 = segments.last().and_then(|s| s.parse().ok()).unwrap_or(0);
            ResponseTemplate::new(200)
                .set_body_json(build(n))
                .set_delay(API_LATENCY)
        };
        template
            .insert_header("ratelimit-remaining", remaining.to_string().as_str())
            .insert_header("ratelimit-reset", reset.to_string().as_str())
    }
}

/// The default settings, as a user runs them: 45 requests a minute, 20 logs of 200 KB.
fn buildkite_client(uri: &str) -> BuildkiteClient {
    replica_client(uri, None)
}

/// [`buildkite_client`], its rate window shared through `redis` when given.
fn replica_client(uri: &str, redis: Option<redis::aio::ConnectionManager>) -> BuildkiteClient {
    let http = HttpClient::new(
        Duration::from_secs(30),
        RateBudget::per_minute(45),
        RetryPolicy {
            min_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_attempts: 6,
            total_budget: Duration::from_secs(90),
        },
    )
    .expect("client")
    .with_shared_window(redis);
    BuildkiteClient::new(
        http,
        &format!("{uri}/v2"),
        Some(ciwatch_mcp::config::Secret::new("bkua_bench")),
    )
    .expect("token")
}

fn scan_options() -> ScanOptions {
    ScanOptions {
        detail_level: DetailLevel::Summary,
        failure_offset: 0,
        max_failures: 50,
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

async fn limited_server() -> (MockServer, Arc<Limit>) {
    let server = MockServer::start().await;
    let limit = Arc::new(Limit::default());
    let nightly_job_by_suffix = fixtures::build_65099()
        .jobs()
        .iter()
        .map(|j| (j.id[8..].to_string(), j.clone()))
        .collect();
    Mock::given(method("GET"))
        .respond_with(Buildkite {
            limit: limit.clone(),
            nightly_job_by_suffix,
        })
        .mount(&server)
        .await;
    (server, limit)
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
    let client = buildkite_client(&server.uri());
    let dir = tempfile::tempdir().expect("temp dir");
    let store = ciwatch_mcp::store::Store::from(Cache::open(dir.path()).expect("store"));
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
        &format!("get build (80 ms) -> 20 log tails at once (400 ms) -> whole reads of the {whole_reads} multi-command logs whose tail missed their first command (400 ms); {partly} jobs read in part"),
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
    let client = buildkite_client(&server.uri());
    let dir = tempfile::tempdir().expect("temp dir");
    let store = ciwatch_mcp::store::Store::from(Cache::open(dir.path()).expect("store"));
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
                "vllm",
                "ci",
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
    drop(server);
    team().await;
}

/// (d) three replicas with one Redis at once, two histories each, then a fresh fourth one.
async fn team() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let Ok(mut redis) = std::process::Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
    else {
        println!("(d) skipped: redis-server is not installed");
        return;
    };
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let url = format!("redis://127.0.0.1:{port}/0");
    let (server, limit) = limited_server().await;
    LOG_READS.lock().expect("log reads").clear();
    let replica = || {
        let store = ciwatch_mcp::store::Store::redis(&url, None).expect("store");
        let client = replica_client(&server.uri(), store.redis_connection());
        (store, client)
    };
    let replicas: Vec<_> = (0..3).map(|_| replica()).collect();
    let key = BuildKey::new("vllm", "ci", NIGHTLY);
    let options = scan_options();
    let started = Instant::now();
    let work = replicas.iter().map(|(store, client)| {
        let (key, options) = (&key, &options);
        async move {
            let reader = JobReader::new(client, Some(store));
            let scanned =
                watch::scan_build(&reader, Enrichment::default(), key, options, &NoProgress)
                    .await
                    .expect("scan");
            let tests: Vec<String> = scanned
                .failures
                .iter()
                .map(|f| f.test_failure.test_name.clone())
                .filter(|t| t.contains("::"))
                .take(2)
                .collect();
            for test in &tests {
                watch::test_history(
                    &reader,
                    "vllm",
                    "ci",
                    &ciwatch_mcp::input::NodeId::parse(test).expect("a node id"),
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
            }
            verdicts(&scanned)
        }
    });
    let results = futures::future::join_all(work).await;
    assert!(
        results.windows(2).all(|w| w[0] == w[1]),
        "the same failures"
    );
    let wall = started.elapsed();
    let requests = limit.served.load(Ordering::Relaxed) + limit.refused.load(Ordering::Relaxed);
    let most_reads = LOG_READS
        .lock()
        .expect("log reads")
        .values()
        .copied()
        .max()
        .unwrap_or(0);
    println!(
        "(d) three replicas with one Redis: scan at once, then two histories each: {:.2} s, {requests} requests, {} refused (429), at most {most_reads} log requests per job",
        wall.as_secs_f64(),
        limit.refused.load(Ordering::Relaxed)
    );
    let before = limit.served.load(Ordering::Relaxed) + limit.refused.load(Ordering::Relaxed);
    let (store, client) = replica();
    let fresh = watch::scan_build(
        &JobReader::new(&client, Some(&store)),
        Enrichment::default(),
        &key,
        &options,
        &NoProgress,
    )
    .await
    .expect("scan");
    assert_eq!(verdicts(&fresh), results[0]);
    println!(
        "    a fresh fourth replica's scan: {} requests",
        limit.served.load(Ordering::Relaxed) + limit.refused.load(Ordering::Relaxed) - before
    );
    let _ = redis.kill();
    let _ = redis.wait();
}
