//! ciwatch_test_history against a wiremock Buildkite holding 50 finished builds made from real
//! vLLM build 65099's job objects, with a known regression, a flaky test with two error
//! messages, a persistently failing test and a fixed one. Request counts come from the mock's
//! received requests, cold and warm (on-disk cache).

use ciwatch_mcp::storage::Cache;
use ciwatch_mcp::triage::history::{HistoryClass, TestStatus};
use ciwatch_mcp::watch::{self, HistoryOptions, NoProgress};
use serde_json::Value;
use std::time::Duration;
use wiremock::matchers::{method, path, path_regex, query_param};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const BUILDS: u64 = 50;
const FIRST: u64 = 3000;
/// The regression starts at this build (and commit).
const REGRESSION_AT: u64 = 3025;
/// The fixed test passes from this build on.
const FIXED_AT: u64 = 3034;

const REGRESSED: &str =
    "tests/v1/distributed/test_dbo.py::test_dbo_dp_ep_gsm8k[deepep_low_latency]";
const FLAKY: &str = "v1/e2e/general/test_async_scheduling.py::test_async_scheduling[ray]";
const PERSISTENT: &str =
    "tests/models/test_initialization.py::test_can_initialize[Qwen3NextForCausalLM]";
const FIXED: &str = "tests/models/test_transformers.py::test_models[llama]";

/// Which job (by name) runs which scenario tests, and what each test did in build `n`.
fn outcomes(job: &str, n: u64) -> Vec<(&'static str, Option<String>)> {
    let i = n - FIRST;
    match job {
        "Distributed Tests (2 GPUs)(H100)" => vec![(
            REGRESSED,
            (n >= REGRESSION_AT).then(|| {
                "AssertionError: DBO+DP+EP accuracy too low (deepep_low_latency): 0.590 < 0.620"
                    .to_string()
            }),
        )],
        "e2e Scheduling (1 GPU)" => {
            let fails = [2, 5, 6, 11, 17, 20, 23, 29, 31, 34, 37, 39, 41, 44, 45, 48].contains(&i);
            let message = if i.is_multiple_of(2) {
                "TimeoutError: request timed out after 60 s"
            } else {
                "AssertionError: outputs differ at token 17"
            };
            vec![(FLAKY, fails.then(|| message.to_string()))]
        }
        "Transformers Backward Compatibility Models Test" => vec![
            (
                PERSISTENT,
                Some(format!(
                    "RuntimeError: CUDA error: device-side assert triggered (rank{})",
                    i % 4
                )),
            ),
            (
                FIXED,
                (n < FIXED_AT).then(|| "KeyError: 'rope_scaling'".to_string()),
            ),
        ],
        _ => vec![],
    }
}

fn commit(n: u64) -> String {
    format!("{:040x}", 0xabc000 + n)
}

fn job_id(template: &str, n: u64) -> String {
    format!("{n:08}{}", &template[8..])
}

/// Build `n` from the real compact build: numbers, commits and job ids rewritten, job states
/// set from the scenario; retried attempts dropped.
fn build(n: u64) -> Value {
    let mut build: Value = serde_json::from_str(include_str!(
        "../../wiremock-fixtures/builds/65099_compact.json"
    ))
    .expect("fixture");
    build["number"] = n.into();
    build["commit"] = commit(n).into();
    build["web_url"] = format!("https://buildkite.com/vllm/ci/builds/{n}").into();
    build["created_at"] = format!("2026-11-{:02}T06:00:00.000Z", 1 + (n - FIRST) / 2).into();
    build["finished_at"] = format!("2026-11-{:02}T10:00:00.000Z", 1 + (n - FIRST) / 2).into();
    let jobs: Vec<Value> = build["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .filter(|j| j["retried"] != Value::Bool(true))
        .cloned()
        .map(|mut job| {
            let name = job["name"].as_str().unwrap_or_default().to_string();
            let failed = outcomes(&name, n)
                .iter()
                .any(|(_, failure)| failure.is_some());
            let id = job_id(job["id"].as_str().expect("id"), n);
            job["web_url"] = format!("https://buildkite.com/vllm/ci/builds/{n}#{id}").into();
            job["id"] = id.into();
            job["state"] = if failed { "failed" } else { "passed" }.into();
            job["retry_source"] = Value::Null;
            job
        })
        .collect();
    build["jobs"] = jobs.into();
    build["state"] = "failed".into();
    build
}

/// A failed job's raw log: verbose results for its scenario tests, the short summary, noise.
fn log(job_name: &str, n: u64) -> Vec<u8> {
    let mut text = String::from("+++ :test_tube: Command (1/1): pytest -v -s tests\n");
    for i in 0..2000 {
        text.push_str(&format!(
            "tests/other/test_noise.py::test_noise[{i}] PASSED\n"
        ));
    }
    let results = outcomes(job_name, n);
    for (id, failure) in &results {
        text.push_str(&format!(
            "{id} {}\n",
            if failure.is_some() {
                "FAILED"
            } else {
                "PASSED"
            }
        ));
    }
    text.push_str(
        "=========================== short test summary info ============================\n",
    );
    for (id, failure) in &results {
        if let Some(message) = failure {
            text.push_str(&format!("FAILED {id} - {message}\n"));
        }
    }
    text.push_str("🚨 Error: The command exited with status 1\n");
    ciwatch_mcp::fixtures::to_raw_format(&text)
}

struct BuildResponder;
impl Respond for BuildResponder {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let n: u64 = request
            .url
            .path()
            .rsplit('/')
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        if !(FIRST..FIRST + BUILDS).contains(&n) {
            return ResponseTemplate::new(404)
                .set_body_json(serde_json::json!({"message": "No build found"}));
        }
        ResponseTemplate::new(200).set_body_json(build(n))
    }
}

struct LogResponder;
impl Respond for LogResponder {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let segments: Vec<&str> = request.url.path().split('/').collect();
        let n: u64 = segments[segments.len() - 4].parse().unwrap_or(0);
        let job = segments[segments.len() - 2];
        let built = build(n);
        let name = built["jobs"]
            .as_array()
            .and_then(|jobs| jobs.iter().find(|j| j["id"] == job))
            .and_then(|j| j["name"].as_str())
            .unwrap_or_default()
            .to_string();
        crate::common::log_response(&log(&name, n), request)
    }
}

/// The finished builds, newest first, `per_page` of them, with their jobs unless
/// `exclude_jobs=true` (as Buildkite lists).
struct ListingResponder(Duration);
impl Respond for ListingResponder {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let query = |name: &str| {
            request
                .url
                .query_pairs()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.to_string())
        };
        let per_page: usize = query("per_page").and_then(|v| v.parse().ok()).unwrap_or(30);
        let without_jobs = query("exclude_jobs").as_deref() == Some("true");
        let listing: Vec<Value> = (FIRST..FIRST + BUILDS)
            .rev()
            .take(per_page)
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
            .set_delay(self.0)
    }
}

/// The mock, with `latency` on every answer (to measure wall time as against a real API).
async fn server(latency: Duration) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v2/organizations/vllm/pipelines/ci/builds"))
        .and(query_param("state", "finished"))
        .respond_with(ListingResponder(latency))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path_regex(
            r"^/v2/organizations/vllm/pipelines/ci/builds/\d+$",
        ))
        .respond_with(BuildResponder)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path_regex(
            r"^/v2/organizations/vllm/pipelines/ci/builds/\d+/jobs/[^/]+/log$",
        ))
        .respond_with(LogResponder)
        .mount(&server)
        .await;
    server
}

fn options(lookback: usize) -> HistoryOptions {
    HistoryOptions {
        branch: "main".into(),
        lookback_builds: lookback,
        nightly_only: false,
        job_filter: None,
        include_logs: true,
        max_jobs_per_build: 20,
        max_logs: watch::DEFAULT_HISTORY_LOGS,
        max_log_bytes: 200_000,
        max_whole_log_bytes: watch::DEFAULT_MAX_WHOLE_LOG_BYTES,
        concurrency: 8,
        repo: "vllm-project/vllm".into(),
    }
}

async fn history(
    server: &MockServer,
    cache: Option<&ciwatch_mcp::storage::Store>,
    test: &str,
) -> ciwatch_mcp::model::HistoryResult {
    let client = crate::common::client(&crate::common::settings(&server.uri()));
    watch::test_history(
        &watch::JobReader::new(&client, cache),
        &ciwatch_mcp::buildkite::PipelineKey::new("vllm", "ci"),
        &ciwatch_mcp::input::NodeId::parse(test).expect("node id"),
        &options(50),
        &NoProgress,
    )
    .await
    .expect("history")
}

#[tokio::test]
async fn every_test_gets_its_class_and_transition() {
    let server = server(Duration::ZERO).await;

    let regression = history(&server, None, REGRESSED).await;
    assert_eq!(
        regression.assessment.classification,
        HistoryClass::Regression,
        "{:?}",
        regression.assessment
    );
    let change = regression
        .assessment
        .transition
        .clone()
        .expect("transition");
    assert_eq!(
        (change.last_good_build, change.first_bad_build),
        (REGRESSION_AT - 1, REGRESSION_AT)
    );
    assert_eq!(change.first_bad_commit, commit(REGRESSION_AT));
    assert_eq!(
        change.compare_url.as_deref(),
        Some(
            format!(
                "https://github.com/vllm-project/vllm/compare/{}...{}",
                commit(REGRESSION_AT - 1),
                commit(REGRESSION_AT)
            )
            .as_str()
        )
    );
    assert_eq!(regression.timeline.len(), 50);
    assert_eq!(
        regression.timeline[0].build_number,
        FIRST + BUILDS - 1,
        "newest first"
    );
    let newest = &regression.timeline[0].jobs[0];
    assert_eq!(newest.status, TestStatus::Fail);
    assert_eq!(
        newest.error_message.as_deref(),
        Some("AssertionError: DBO+DP+EP accuracy too low (deepep_low_latency): 0.590 < 0.620")
    );
    assert!(regression.summary.contains("Regression introduced at"));

    let flaky = history(&server, None, FLAKY).await;
    assert_eq!(
        flaky.assessment.classification,
        HistoryClass::FlakeOnset,
        "{:?}",
        flaky.assessment
    );
    assert!(
        flaky
            .assessment
            .notes
            .iter()
            .any(|n| n.contains("2 different failure fingerprints")),
        "{:?}",
        flaky.assessment.notes
    );

    let persistent = history(&server, None, PERSISTENT).await;
    assert_eq!(
        persistent.assessment.classification,
        HistoryClass::PersistentFail,
        "{:?}",
        persistent.assessment
    );
    assert!(
        persistent
            .assessment
            .notes
            .iter()
            .any(|n| n == "Consistent fingerprint: true"),
        "rank digits normalised"
    );

    let fixed = history(&server, None, FIXED).await;
    assert_eq!(
        fixed.assessment.classification,
        HistoryClass::Fixed,
        "{:?}",
        fixed.assessment
    );
    assert_eq!(fixed.assessment.transition_build, Some(FIXED_AT));

    // The id without parameters never failed: failing logs name only the parametrised one.
    // (Passed jobs that run the file count as passes for any id in it, by design.)
    let unparametrised = history(
        &server,
        None,
        "tests/v1/distributed/test_dbo.py::test_dbo_dp_ep_gsm8k",
    )
    .await;
    assert!(
        unparametrised
            .timeline
            .iter()
            .all(|e| e.test_status != TestStatus::Fail),
        "no prefix confusion with the parametrised id"
    );
}

#[tokio::test]
async fn fifty_builds_cost_few_requests_cold_and_fewer_warm() {
    let server = server(Duration::from_millis(20)).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let cache = ciwatch_mcp::storage::Store::from(Cache::open(dir.path()).expect("cache"));

    let started = std::time::Instant::now();
    let cold = history(&server, Some(&cache), REGRESSED).await;
    let cold_time = started.elapsed();
    let cold_requests = server.received_requests().await.expect("recorded").len();
    assert_eq!(cold.stats.api_requests as usize, cold_requests);
    // The listing (jobs included: no request per build) + the failed Distributed jobs' logs (25).
    assert_eq!(cold_requests, 1 + 25, "cold");
    assert_eq!(cold.stats.logs_read, 25);

    let started = std::time::Instant::now();
    let warm = history(&server, Some(&cache), REGRESSED).await;
    let warm_time = started.elapsed();
    let warm_requests = server.received_requests().await.expect("recorded").len() - cold_requests;
    assert_eq!(warm_requests, 1, "warm: the listing only");
    assert_eq!(warm.stats.cache_hits, 25);
    assert_eq!(
        warm.assessment.classification,
        cold.assessment.classification
    );
    eprintln!(
        "history of 50 builds: cold {cold_requests} requests in {} ms ({} logs, {} bytes), warm {warm_requests} requests in {} ms ({} cache hits)",
        cold_time.as_millis(),
        cold.stats.logs_read,
        cold.stats.log_bytes_fetched,
        warm_time.as_millis(),
        warm.stats.cache_hits
    );

    // Another test in another job: the builds come from the cache, only its logs are new.
    let before = server.received_requests().await.expect("recorded").len();
    let _ = history(&server, Some(&cache), FLAKY).await;
    let other = server.received_requests().await.expect("recorded").len() - before;
    assert_eq!(
        other,
        1 + 16,
        "only the listing and the flaky job's failed logs"
    );
}

#[tokio::test]
async fn a_small_log_budget_reads_the_transition_first_and_says_what_was_left() {
    let server = server(Duration::ZERO).await;
    let client = crate::common::client(&crate::common::settings(&server.uri()));
    let mut options = options(50);
    options.max_logs = 4;
    let result = watch::test_history(
        &watch::JobReader::new(&client, None),
        &ciwatch_mcp::buildkite::PipelineKey::new("vllm", "ci"),
        &ciwatch_mcp::input::NodeId::parse(REGRESSED).expect("node id"),
        &options,
        &NoProgress,
    )
    .await
    .expect("history");
    let log_requests = server
        .received_requests()
        .await
        .expect("recorded")
        .iter()
        .filter(|r| r.url.path().ends_with("/log"))
        .count();
    assert_eq!(log_requests, 4);
    // The first failing build (next to the last passing one) is read first, then the newest.
    assert_eq!(
        result.stats.builds_read,
        vec![
            FIRST + BUILDS - 1,
            FIRST + BUILDS - 2,
            FIRST + BUILDS - 3,
            REGRESSION_AT
        ]
    );
    assert_eq!(result.stats.builds_not_read.len(), 25 - 4);
    assert!(
        result.warnings.iter().any(|w| w.contains("raise max_logs")),
        "{:?}",
        result.warnings
    );
    let transition = result.assessment.transition.expect("transition");
    assert_eq!(
        (transition.last_good_build, transition.first_bad_build),
        (REGRESSION_AT - 1, REGRESSION_AT)
    );
}

#[tokio::test]
async fn a_test_no_job_runs_is_reported_with_the_jobs_that_ran() {
    let server = server(Duration::ZERO).await;
    let result = history(&server, None, "tests/nowhere/test_missing.py::test_x").await;
    let warning = result
        .warnings
        .iter()
        .find(|w| w.contains("no job's command runs"))
        .expect("a warning");
    assert!(
        warning.contains("tests/nowhere/test_missing.py"),
        "{warning}"
    );
    assert!(
        warning.contains("Distributed Tests (2 GPUs)(H100)"),
        "{warning}"
    );
    let requests = server.received_requests().await.expect("recorded").len();
    assert_eq!(requests, 1, "the listing only");

    // The id written without `tests/` finds the same jobs as with it.
    let short = history(
        &server,
        None,
        "v1/distributed/test_dbo.py::test_dbo_dp_ep_gsm8k[deepep_low_latency]",
    )
    .await;
    assert_eq!(short.assessment.classification, HistoryClass::Regression);
}
