//! Complete coverage of vLLM's multi-command jobs, and builds that change after they finish:
//! the real 65099 build with two of its multi-command jobs failing, their logs written in
//! Buildkite's raw format, served by wiremock with suffix ranges as Buildkite serves them.

use crate::common::{client, log_response, scan_options, settings, BUILD_PATH};
use ciwatch_mcp::fixtures::to_raw_format;
use ciwatch_mcp::model::{Category, DetailLevel, JobStatus, ScanResult};
use ciwatch_mcp::storage::Cache;
use ciwatch_mcp::watch::{Budgets, JobReader};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// Five commands: test_block_fp8.py first, test_cutlass_w4a16.py last.
pub(crate) const FIVE_COMMANDS: &str = "Kernels DeepGEMM Test (H100)";
/// Three commands: the completion tests first, test_chat_utils.py last.
pub(crate) const THREE_COMMANDS: &str = "Entrypoints Integration (API Server openai - Part 2)";

/// The 65099 build with only `failing` failed (every other job passed), as JSON.
pub(crate) fn build_failing(failing: &[&str]) -> serde_json::Value {
    let mut build: serde_json::Value =
        serde_json::from_str(ciwatch_mcp::fixtures::BUILD_65099).expect("fixture");
    for job in build["jobs"].as_array_mut().expect("jobs") {
        let name = job["name"].as_str().unwrap_or_default().to_string();
        if failing.contains(&name.as_str()) {
            job["state"] = "failed".into();
            job["exit_status"] = 1.into();
        } else if matches!(job["state"].as_str(), Some("failed" | "timed_out")) {
            job["state"] = "passed".into();
            job["exit_status"] = 0.into();
            job["soft_failed"] = false.into();
        }
    }
    build
}

pub(crate) fn job_id(build: &serde_json::Value, name: &str) -> String {
    build["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .find(|j| j["name"] == name)
        .and_then(|j| j["id"].as_str())
        .expect("job in the build")
        .to_string()
}

/// Passing tests of one file until `bytes` of text are written.
pub(crate) fn passing(file: &str, bytes: usize) -> String {
    let mut text = String::with_capacity(bytes + 200);
    let mut i = 0;
    while text.len() < bytes {
        i += 1;
        text.push_str(&format!(
            "{file}::test_case[bf16-{i}-128] PASSED\nINFO 05-08 06:{:02}:{:02} [gpu_model_runner.py:2602] Model loading took 15.2 GiB memory and 3.1 seconds\n",
            i / 60 % 60,
            i % 60
        ));
    }
    text
}

/// One pytest run that fails `test` with `error`.
pub(crate) fn failing_run(file: &str, test: &str, error: &str) -> String {
    format!(
        "{file}::{test} FAILED\n\
         =================================== FAILURES ===================================\n\
         ____________________ {test} ____________________\n\
         \n    def {name}():\n>       run_case()\nE       {error}\n\n{file}:88: {kind}\n\
         =========================== short test summary info ============================\n\
         FAILED {file}::{test} - {error}\n\
         =================== 1 failed, 40 passed in 80.12s (0:01:20) ===================\n",
        name = test.split('[').next().unwrap_or(test),
        kind = error.split(':').next().unwrap_or(error),
    )
}

fn header(i: u32, n: u32, command: &str) -> String {
    format!("+++ :test_tube: Command ({i}/{n}): {command}\n")
}

pub(crate) const EXIT_LINE: &str = "🚨 Error: The command exited with status 1\n";

/// The five-command job: command 1 fails about 4.5 MB before the end, command 5 fails in the
/// last lines.
pub(crate) fn five_command_log() -> Vec<u8> {
    let mut text = header(1, 5, "pytest -v -s kernels/quantization/test_block_fp8.py");
    text.push_str(&passing("kernels/quantization/test_block_fp8.py", 20_000));
    text.push_str(&failing_run(
        "kernels/quantization/test_block_fp8.py",
        "test_w8a8_block_fp8_deep_gemm_matmul[True-2048-7168-1536]",
        "AssertionError: Tensor-likes are not close!",
    ));
    for (i, file) in [
        (2, "kernels/moe/test_deepgemm.py"),
        (3, "kernels/moe/test_batched_deepgemm.py"),
        (4, "kernels/attention/test_deepgemm_attention.py"),
    ] {
        text.push_str(&header(i, 5, &format!("pytest -v -s {file}")));
        text.push_str(&passing(file, 1_100_000));
        text.push_str("=================== 300 passed in 120.00s (0:02:00) ===================\n");
    }
    text.push_str(&header(
        5,
        5,
        "pytest -v -s quantization/test_cutlass_w4a16.py",
    ));
    text.push_str(&passing("quantization/test_cutlass_w4a16.py", 5_000));
    text.push_str(&failing_run(
        "quantization/test_cutlass_w4a16.py",
        "test_cutlass_w4a16_gemm[128-256]",
        "RuntimeError: CUDA error: an illegal memory access was encountered",
    ));
    text.push_str(EXIT_LINE);
    to_raw_format(&text)
}

/// The three-command job: command 1 fails; commands 2 and 3 pass, and they fill the tail.
pub(crate) fn three_command_log() -> Vec<u8> {
    let mut text = header(1, 3, "pytest -v -s entrypoints/openai/completion");
    text.push_str(&failing_run(
        "entrypoints/openai/completion/test_completion.py",
        "test_single_completion[mistralai/Mistral-7B-Instruct-v0.3]",
        "openai.APIConnectionError: Connection error.",
    ));
    text.push_str(&header(
        2,
        3,
        "pytest -v -s entrypoints/openai/speech_to_text/",
    ));
    text.push_str(&passing(
        "entrypoints/openai/speech_to_text/test_transcription.py",
        400_000,
    ));
    text.push_str("=================== 120 passed in 60.00s (0:01:00) ===================\n");
    text.push_str(&header(3, 3, "pytest -v -s entrypoints/test_chat_utils.py"));
    text.push_str(&passing("entrypoints/test_chat_utils.py", 300_000));
    text.push_str("=================== 98 passed in 12.00s ===================\n");
    text.push_str(EXIT_LINE);
    to_raw_format(&text)
}

/// Logs by job id, answered with Buildkite's range semantics.
pub(crate) struct Logs(pub(crate) HashMap<String, Vec<u8>>);

impl Respond for Logs {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let id = request.url.path().rsplit('/').nth(1).unwrap_or_default();
        match self.0.get(id) {
            Some(log) => log_response(log, request),
            None => ResponseTemplate::new(404)
                .set_body_json(serde_json::json!({"message": "No job found"})),
        }
    }
}

/// The build is answered from a value the test may change (a retry, the build finishing).
#[derive(Clone)]
pub(crate) struct BuildBody(pub(crate) Arc<Mutex<serde_json::Value>>);

impl Respond for BuildBody {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let body = self.0.lock().expect("build body").clone();
        ResponseTemplate::new(200).set_body_json(body)
    }
}

pub(crate) async fn server_with(build: &BuildBody, logs: HashMap<String, Vec<u8>>) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(BUILD_PATH))
        .respond_with(build.clone())
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path_regex(
            r"^/v2/organizations/vllm/pipelines/ci/builds/65099/jobs/[^/]+/log$",
        ))
        .respond_with(Logs(logs))
        .mount(&server)
        .await;
    server
}

async fn scan_with(
    server: &MockServer,
    store: Option<&ciwatch_mcp::storage::Store>,
    freshness: Duration,
) -> ScanResult {
    let client = client(&settings(&server.uri()));
    let reader = JobReader::new(&client, store).with_build_freshness(freshness);
    let options = scan_options(Budgets::default(), DetailLevel::Summary, false);
    crate::common::scan_65099(&reader, &options).await
}

/// Every listed job's log was read and answers for the whole job.
pub(crate) fn assert_every_job_analyzed(result: &ScanResult) {
    for job in &result.jobs {
        assert_eq!(
            job.status,
            JobStatus::Analyzed,
            "{}: {:?}",
            job.job_name,
            job.detail
        );
    }
}

pub(crate) fn tests_of(result: &ScanResult, job: &str) -> Vec<String> {
    result
        .failures
        .iter()
        .filter(|f| f.test_failure.job_name == job)
        .map(|f| f.test_failure.test_name.clone())
        .collect()
}

pub(crate) async fn log_requests(server: &MockServer, id: &str) -> Vec<Request> {
    server
        .received_requests()
        .await
        .expect("recorded")
        .into_iter()
        .filter(|r| r.url.path().contains(id) && r.url.path().ends_with("/log"))
        .collect()
}

#[tokio::test]
async fn every_command_of_a_multi_command_job_is_read() {
    let build = build_failing(&[FIVE_COMMANDS, THREE_COMMANDS]);
    let (five, three) = (
        job_id(&build, FIVE_COMMANDS),
        job_id(&build, THREE_COMMANDS),
    );
    let five_log = five_command_log();
    assert!(five_log.len() > 4_000_000, "{} bytes", five_log.len());
    let logs = HashMap::from([
        (five.clone(), five_log.clone()),
        (three.clone(), three_command_log()),
    ]);
    let server = server_with(&BuildBody(Arc::new(Mutex::new(build))), logs).await;
    let result = scan_with(&server, None, Duration::ZERO).await;

    let found = tests_of(&result, FIVE_COMMANDS);
    assert!(
        found.iter().any(|t| t.contains("test_block_fp8.py::")),
        "command 1's failure, megabytes before the end: {found:?}"
    );
    assert!(
        found.iter().any(|t| t.contains("test_cutlass_w4a16.py::")),
        "command 5's failure, in the tail: {found:?}"
    );
    let found = tests_of(&result, THREE_COMMANDS);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("test_completion.py::test_single_completion"));
    assert_every_job_analyzed(&result);
    assert!(result.complete, "{:?}", result.incomplete);

    // The plan reads a job of several commands whole, in one request.
    for id in [&five, &three] {
        let reads = log_requests(&server, id).await;
        let ranges: Vec<&str> = reads
            .iter()
            .filter_map(|r| r.headers.get("range")?.to_str().ok())
            .collect();
        assert_eq!(ranges, vec!["bytes=-67108864"], "job {id}");
    }
}

#[tokio::test]
async fn a_job_cut_by_the_byte_budget_is_partly_analyzed_and_never_a_baseline_pass() {
    let build = build_failing(&[FIVE_COMMANDS]);
    let five = job_id(&build, FIVE_COMMANDS);
    let logs = HashMap::from([(five.clone(), five_command_log())]);
    let server = server_with(&BuildBody(Arc::new(Mutex::new(build))), logs).await;
    let client = client(&settings(&server.uri()));
    let reader = JobReader::new(&client, None);
    let budgets = Budgets {
        scan_byte_budget: 1_000_000,
        ..Budgets::default()
    };
    let options = scan_options(budgets, DetailLevel::Summary, false);
    let result = crate::common::scan_65099(&reader, &options).await;
    let job = result
        .jobs
        .iter()
        .find(|j| j.job_id == five)
        .expect("listed");
    assert_eq!(job.status, JobStatus::PartlyAnalyzed);
    let detail = job.detail.as_deref().unwrap_or_default();
    assert!(
        detail.contains("commands 1 to 4 of 5 were not read")
            && detail.contains("raise max_scan_bytes or CIWATCH_SCAN_BYTE_BUDGET"),
        "{detail}"
    );
    assert!(!result.complete);
    assert!(
        result
            .incomplete
            .iter()
            .any(|w| w.contains("read only in part")),
        "{:?}",
        result.incomplete
    );
    // The whole log's answer says it would pass the ceiling: its body is left unread, and
    // the tail that fits is read instead.
    let ranges: Vec<String> = log_requests(&server, &five)
        .await
        .iter()
        .filter_map(|r| r.headers.get("range")?.to_str().ok().map(String::from))
        .collect();
    assert_eq!(ranges, vec!["bytes=-67108864", "bytes=-200000"]);
    assert_eq!(result.stats.log_bytes_fetched, 200_000);
    // What was read is still reported.
    assert!(tests_of(&result, FIVE_COMMANDS)
        .iter()
        .any(|t| t.contains("test_cutlass_w4a16.py::")));
}

#[tokio::test]
async fn a_job_retried_after_the_first_scan_is_flaky_on_the_second() {
    let build = build_failing(&[THREE_COMMANDS]);
    let three = job_id(&build, THREE_COMMANDS);
    let logs = HashMap::from([(three.clone(), three_command_log())]);
    let body = BuildBody(Arc::new(Mutex::new(build)));
    let server = server_with(&body, logs).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let store = ciwatch_mcp::storage::Store::from(Cache::open(dir.path()).expect("store"));

    let first = scan_with(&server, Some(&store), Duration::ZERO).await;
    let failure = first
        .failures
        .iter()
        .find(|f| f.job_id.as_deref() == Some(three.as_str()))
        .expect("the failure");
    assert_ne!(failure.category, Category::FlakySuspected);

    // This morning someone retried the job and it passed: a new attempt, a new finished_at.
    {
        let mut build = body.0.lock().expect("build body");
        let retry_id = "019e0f00-0000-4000-8000-00000000abcd";
        let jobs = build["jobs"].as_array_mut().expect("jobs");
        let original = jobs
            .iter_mut()
            .find(|j| j["id"] == three.as_str())
            .expect("job");
        original["retried"] = true.into();
        original["retried_in_job_id"] = retry_id.into();
        let mut retry = original.clone();
        retry["id"] = retry_id.into();
        retry["state"] = "passed".into();
        retry["exit_status"] = 0.into();
        retry["retried"] = false.into();
        retry["retried_in_job_id"] = serde_json::Value::Null;
        retry["retry_source"] = serde_json::json!({"job_id": three, "retry_type": "manual"});
        jobs.push(retry);
        build["finished_at"] = "2026-05-08T09:12:00.000Z".into();
    }
    let before = server.received_requests().await.expect("recorded").len();
    let second = scan_with(&server, Some(&store), Duration::ZERO).await;
    let failure = second
        .failures
        .iter()
        .find(|f| f.job_id.as_deref() == Some(three.as_str()))
        .expect("the failed attempt is still listed");
    assert_eq!(
        failure.category,
        Category::FlakySuspected,
        "{:?}",
        failure.reason
    );
    let job = second
        .jobs
        .iter()
        .find(|j| j.job_id == three)
        .expect("listed");
    assert!(job.retry_passed);
    let sent = server.received_requests().await.expect("recorded").len() - before;
    assert_eq!(
        sent, 1,
        "the build again; the job's stored outcome is reused"
    );
}

/// A call has one byte ceiling for all its phases: what its first phase read is gone for the
/// second, whose job is then left unread, while the same job alone fits.
#[tokio::test]
async fn one_byte_ceiling_holds_for_every_phase_of_a_call() {
    let server = crate::common::fixture_server().await;
    let client = client(&settings(&server.uri()));
    let build = ciwatch_mcp::fixtures::build_65099();
    let key = ciwatch_mcp::buildkite::BuildKey::new("vllm", "ci", 65099);
    let failed: Vec<_> = build
        .jobs()
        .iter()
        .filter(|j| j.is_script() && j.is_failed())
        .take(2)
        .collect();
    let (first, second) = (failed[0], failed[1]);
    let unbounded = Budgets::default().limits();
    async fn phase(
        reader: &JobReader<'_>,
        key: &ciwatch_mcp::buildkite::BuildKey,
        job: &ciwatch_mcp::buildkite::Job,
        limits: ciwatch_mcp::watch::ReadLimits,
    ) -> ciwatch_mcp::watch::JobRead {
        let jobs = [(key, job)];
        let progress = ciwatch_mcp::watch::NoProgress;
        reader.jobs(&jobs, &limits, 1, &progress).await.remove(0)
    }
    let sizes = JobReader::new(&client, None);
    phase(&sizes, &key, first, unbounded).await;
    let first_bytes = sizes
        .counters
        .log_bytes
        .load(std::sync::atomic::Ordering::Relaxed);
    let alone = JobReader::new(&client, None);
    phase(&alone, &key, second, unbounded).await;
    let second_bytes = alone
        .counters
        .log_bytes
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(first_bytes > 0 && second_bytes > 0);

    // Room for either read, not for both.
    let mut limits = unbounded;
    limits.max_scan_bytes = first_bytes.max(second_bytes) + 1;
    let call = JobReader::new(&client, None);
    let read = phase(&call, &key, first, limits).await;
    assert_eq!(read.status, JobStatus::Analyzed, "{:?}", read.detail);
    let read = phase(&call, &key, second, limits).await;
    assert_eq!(read.status, JobStatus::OverBudget, "{:?}", read.detail);
    let detail = read.detail.unwrap_or_default();
    assert!(detail.contains("this call's earlier reads"), "{detail}");

    let fresh = JobReader::new(&client, None);
    let read = phase(&fresh, &key, second, limits).await;
    assert_eq!(
        read.status,
        JobStatus::Analyzed,
        "alone it fits: {:?}",
        read.detail
    );
}
