//! A night shaped like a real one, read as streams: multi-command jobs whose failures sit
//! megabytes before the end, logs of several MB, a one-command job whose tail does not show
//! what ended it. Each log is read once (that job twice), the answer is complete and the same
//! every time, for twenty callers at once, for three replicas, and over bodies that break.

use crate::common::{client, scan_options, settings, BUILD_PATH};
use crate::coverage::{
    assert_every_job_analyzed, build_failing, failing_run, five_command_log, job_id, passing,
    server_with, three_command_log, BuildBody, EXIT_LINE, FIVE_COMMANDS, THREE_COMMANDS,
};
use ciwatch_mcp::fixtures::{range_response, to_raw_format};
use ciwatch_mcp::model::{DetailLevel, ScanResult};
use ciwatch_mcp::watch::{Budgets, JobReader};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// One command; its failure is in the last lines.
const ONE_COMMAND: &str = "Kernels Core Operation Test";
/// One command; the exception that ended it is ~260 KB before the end, past the tail.
const ONE_COMMAND_QUIET_TAIL: &str = "LoRA 1";
const TAIL: &str = "bytes=-200000";
const WHOLE: &str = "bytes=-67108864";

fn one_command_log() -> Vec<u8> {
    let file = "kernels/core/test_layernorm.py";
    let mut text = format!("+++ :test_tube: Command (1/1): pytest -v -s {file}\n");
    text.push_str(&passing(file, 1_500_000));
    text.push_str(&failing_run(
        file,
        "test_rms_norm[dtype0-4096-7]",
        "AssertionError: Tensor-likes are not close!",
    ));
    text.push_str(EXIT_LINE);
    to_raw_format(&text)
}

fn quiet_tail_log() -> Vec<u8> {
    let file = "lora/test_llama_tp.py";
    let mut text = format!("+++ :test_tube: Command (1/1): pytest -v -s {file}\n");
    text.push_str(&passing(file, 1_000_000));
    text.push_str(
        "Traceback (most recent call last):\n  File \"/usr/local/lib/python3.12/dist-packages/torch/distributed/distributed_c10d.py\", line 4392, in barrier\n    work = group.barrier(opts=opts)\nRuntimeError: NCCL error in: /pytorch/torch/csrc/distributed/c10d/NCCLUtils.hpp:268, unhandled cuda error\n",
    );
    for i in 0..1000 {
        text.push_str(&format!(
            "INFO 05-08 07:{:02}:{:02} [shutdown.py:118] worker {i} shutting down: releasing the KV cache blocks, the CUDA graphs, the NCCL communicators and the shared-memory broadcast buffers of this rank\n",
            i / 60 % 60,
            i % 60
        ));
    }
    text.push_str(EXIT_LINE);
    to_raw_format(&text)
}

/// The night: its build and each failed job's log by id.
fn night() -> (serde_json::Value, HashMap<String, Vec<u8>>) {
    let build = build_failing(&[
        FIVE_COMMANDS,
        THREE_COMMANDS,
        ONE_COMMAND,
        ONE_COMMAND_QUIET_TAIL,
    ]);
    let logs = HashMap::from([
        (job_id(&build, FIVE_COMMANDS), five_command_log()),
        (job_id(&build, THREE_COMMANDS), three_command_log()),
        (job_id(&build, ONE_COMMAND), one_command_log()),
        (job_id(&build, ONE_COMMAND_QUIET_TAIL), quiet_tail_log()),
    ]);
    (build, logs)
}

/// A wiremock Buildkite serving the night.
async fn night_server(
    build: &serde_json::Value,
    logs: HashMap<String, Vec<u8>>,
) -> wiremock::MockServer {
    server_with(&BuildBody(Arc::new(Mutex::new(build.clone()))), logs).await
}

async fn scan(api: &str, store: Option<&ciwatch_mcp::storage::Store>) -> ScanResult {
    let client = client(&settings(api));
    let reader = JobReader::new(&client, store);
    let options = scan_options(Budgets::default(), DetailLevel::Summary, false);
    crate::common::scan_65099(&reader, &options).await
}

/// What a scan found: each failure's job, test and error line, sorted.
fn failure_set(result: &ScanResult) -> Vec<(String, String, String)> {
    let mut set: Vec<_> = result
        .failures
        .iter()
        .map(|f| {
            let t = &f.test_failure;
            let error = t.error_message.clone().unwrap_or_default();
            (t.job_name.clone(), t.test_name.clone(), error)
        })
        .collect();
    set.sort();
    set
}

fn assert_complete_night(result: &ScanResult) {
    assert!(result.complete, "{:?}", result.incomplete);
    assert_every_job_analyzed(result);
    let found = failure_set(result);
    let tests: HashSet<&str> = found.iter().map(|(_, test, _)| test.as_str()).collect();
    for expected in [
        "kernels/quantization/test_block_fp8.py::test_w8a8_block_fp8_deep_gemm_matmul[True-2048-7168-1536]",
        "quantization/test_cutlass_w4a16.py::test_cutlass_w4a16_gemm[128-256]",
        "entrypoints/openai/completion/test_completion.py::test_single_completion[mistralai/Mistral-7B-Instruct-v0.3]",
        "kernels/core/test_layernorm.py::test_rms_norm[dtype0-4096-7]",
    ] {
        assert!(tests.contains(expected), "{expected} missing from {found:?}");
    }
    let quiet = found
        .iter()
        .find(|(job, _, _)| job == ONE_COMMAND_QUIET_TAIL)
        .expect("the quiet-tail job's failure");
    assert!(quiet.2.starts_with("RuntimeError: NCCL error"), "{quiet:?}");
    assert_eq!(found.len(), 5, "{found:?}");
}

/// Every log request's `Range`, by job id.
fn ranges_by_job(requests: &[(String, Option<String>)]) -> HashMap<String, Vec<String>> {
    let mut by_job: HashMap<String, Vec<String>> = HashMap::new();
    for (path, range) in requests {
        if let Some(job) = path.strip_suffix("/log").and_then(|p| p.rsplit('/').next()) {
            by_job
                .entry(job.to_string())
                .or_default()
                .push(range.clone().unwrap_or_default());
        }
    }
    by_job
}

/// The reads the plan makes for this night: whole logs for the multi-command jobs, tails for
/// the one-command ones, and one whole read for the tail that did not show what ended its job.
fn planned_ranges(build: &serde_json::Value) -> HashMap<String, Vec<String>> {
    HashMap::from([
        (job_id(build, FIVE_COMMANDS), vec![WHOLE.to_string()]),
        (job_id(build, THREE_COMMANDS), vec![WHOLE.to_string()]),
        (job_id(build, ONE_COMMAND), vec![TAIL.to_string()]),
        (
            job_id(build, ONE_COMMAND_QUIET_TAIL),
            vec![TAIL.to_string(), WHOLE.to_string()],
        ),
    ])
}

async fn recorded(server: &wiremock::MockServer) -> Vec<(String, Option<String>)> {
    let requests = server.received_requests().await.expect("recorded");
    requests
        .iter()
        .map(|r| {
            let range = r.headers.get("range").and_then(|v| v.to_str().ok());
            (r.url.path().to_string(), range.map(String::from))
        })
        .collect()
}

#[tokio::test]
async fn a_real_size_night_is_complete_each_log_read_once_and_the_same_twice() {
    let (build, logs) = night();
    assert!(logs.values().all(|log| log.len() > 700_000));
    let server = night_server(&build, logs).await;
    let first = scan(&server.uri(), None).await;
    assert_complete_night(&first);
    let requests = recorded(&server).await;
    assert_eq!(ranges_by_job(&requests), planned_ranges(&build));
    assert_eq!(requests.len(), 1 + 5, "the build and five log reads");

    let second = scan(&server.uri(), None).await;
    assert_eq!(failure_set(&second), failure_set(&first));
}

#[tokio::test]
async fn twenty_callers_of_one_cold_build_cost_what_one_does() {
    let (build, logs) = night();
    let alone = night_server(&build, logs.clone()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let store = ciwatch_mcp::storage::Store::from(
        ciwatch_mcp::storage::Cache::open(dir.path()).expect("store"),
    );
    let one = scan(&alone.uri(), Some(&store)).await;
    let one_requests = recorded(&alone).await.len();

    let server = night_server(&build, logs).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let store = ciwatch_mcp::storage::Store::from(
        ciwatch_mcp::storage::Cache::open(dir.path()).expect("store"),
    );
    let uri = server.uri();
    let answers = futures::future::join_all((0..20).map(|_| scan(&uri, Some(&store)))).await;
    let requests = recorded(&server).await;
    assert!(
        requests.len() <= one_requests + 2,
        "{} requests for twenty callers, {one_requests} for one",
        requests.len()
    );
    assert_eq!(ranges_by_job(&requests), planned_ranges(&build));
    for answer in &answers {
        assert_complete_night(answer);
        assert_eq!(failure_set(answer), failure_set(&one));
    }
}

#[tokio::test]
async fn three_replicas_sharing_redis_give_the_same_answer() {
    let redis = crate::redis_store::RedisServer::start();
    let (build, logs) = night();
    let server = night_server(&build, logs).await;
    let replicas: Vec<_> = (0..3)
        .map(|_| crate::redis_store::Replica::new(&server.uri(), &redis.url(), 6000))
        .collect();
    let answers = futures::future::join_all(replicas.iter().map(|r| r.scan())).await;
    for answer in &answers {
        assert_complete_night(answer);
        assert_eq!(failure_set(answer), failure_set(&answers[0]));
    }
    let by_job = ranges_by_job(&recorded(&server).await);
    assert_eq!(
        by_job,
        planned_ranges(&build),
        "each log read by one replica"
    );
}

/// A Buildkite speaking raw HTTP/1.1 whose first answer for each log closes the connection
/// after half of its body.
struct BreakingServer {
    build: Vec<u8>,
    logs: HashMap<String, Vec<u8>>,
    requests: Mutex<Vec<(String, Option<String>)>>,
    /// Bytes sent of each broken answer, and the body's length.
    broken: Mutex<HashMap<String, (usize, usize)>>,
    /// Instead of breaking, send each body in ten pieces this far apart.
    trickle: Option<Duration>,
}

impl BreakingServer {
    async fn start(
        build: &serde_json::Value,
        logs: HashMap<String, Vec<u8>>,
        trickle: Option<Duration>,
    ) -> (Arc<Self>, String) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let uri = format!("http://{}", listener.local_addr().expect("address"));
        let server = Arc::new(Self {
            build: serde_json::to_vec(build).expect("json"),
            logs,
            requests: Mutex::default(),
            broken: Mutex::default(),
            trickle,
        });
        let serving = server.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let server = serving.clone();
                tokio::spawn(async move { server.answer(socket).await });
            }
        });
        (server, uri)
    }

    async fn answer(&self, socket: tokio::net::TcpStream) {
        let mut reader = BufReader::new(socket);
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).await.is_err() {
            return;
        }
        let path = request_line.split(' ').nth(1).unwrap_or_default();
        let path = path.split('?').next().unwrap_or_default().to_string();
        let mut range = None;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).await.unwrap_or(0) == 0 || line == "\r\n" {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("range") {
                    range = Some(value.trim().to_string());
                }
            }
        }
        self.requests
            .lock()
            .expect("requests")
            .push((path.clone(), range.clone()));
        let job = path.strip_suffix("/log").and_then(|p| p.rsplit('/').next());
        let (status, content_range, body) = match job.and_then(|id| self.logs.get(id)) {
            Some(log) => range_response(log, range.as_deref()),
            None if path == BUILD_PATH => (200, None, self.build.clone()),
            None => (404, None, br#"{"message":"No job found"}"#.to_vec()),
        };
        let mut head = format!(
            "HTTP/1.1 {status} {}\r\nContent-Length: {}\r\nConnection: close\r\n",
            if status == 206 {
                "Partial Content"
            } else {
                "OK"
            },
            body.len()
        );
        if let Some(value) = content_range {
            head.push_str(&format!("Content-Range: {value}\r\n"));
        }
        head.push_str("\r\n");
        let mut sent = body.len();
        if let Some(id) = job {
            let mut broken = self.broken.lock().expect("broken");
            if self.trickle.is_none() && !broken.contains_key(id) && body.len() > 1000 {
                sent = body.len() / 2;
                broken.insert(id.to_string(), (sent, body.len()));
            }
        }
        let socket = reader.get_mut();
        let _ = socket.write_all(head.as_bytes()).await;
        let pieces = if self.trickle.is_some() { 10 } else { 1 };
        for piece in body[..sent].chunks(sent.div_ceil(pieces).max(1)) {
            if let Some(gap) = self.trickle {
                tokio::time::sleep(gap).await;
            }
            let _ = socket.write_all(piece).await;
            let _ = socket.flush().await;
        }
    }
}

#[tokio::test]
async fn bodies_that_break_half_way_are_resumed_for_exactly_the_bytes_not_read() {
    let (build, logs) = night();
    let whole = night_server(&build, logs.clone()).await;
    let unbroken = scan(&whole.uri(), None).await;

    let (server, uri) = BreakingServer::start(&build, logs, None).await;
    let result = scan(&uri, None).await;
    assert_complete_night(&result);
    assert_eq!(failure_set(&result), failure_set(&unbroken));

    let requests = server.requests.lock().expect("requests").clone();
    let broken = server.broken.lock().expect("broken").clone();
    assert_eq!(broken.len(), 4, "every job's first answer broke");
    for (job, ranges) in ranges_by_job(&requests) {
        let (sent, length) = broken[&job];
        let resumed = format!("bytes=-{}", length - sent);
        assert_eq!(ranges[1], resumed, "job {job}: {ranges:?}");
        let planned = &planned_ranges(&build)[&job];
        assert_eq!(ranges[0], planned[0], "job {job}");
        assert_eq!(ranges.len(), planned.len() + 1, "job {job}: {ranges:?}");
        let listed = result
            .jobs
            .iter()
            .find(|j| j.job_id == job)
            .expect("listed");
        let detail = listed.detail.as_deref().unwrap_or_default();
        assert!(
            detail.contains("stream broke 1 time"),
            "job {job}: {detail}"
        );
    }
}

#[tokio::test]
async fn a_slow_log_streams_past_the_request_timeout_while_bytes_keep_coming() {
    let (build, logs) = night();
    let gap = Duration::from_millis(300);
    let (_server, uri) = BreakingServer::start(&build, logs, Some(gap)).await;
    let mut settings = settings(&uri);
    settings.http_timeout_secs = 1;
    let client = client(&settings);
    let key = ciwatch_mcp::buildkite::BuildKey::new("vllm", "ci", 65099);
    let id = job_id(&build, ONE_COMMAND);
    let body = client.open_log(&key, &id, 200_000).await.expect("opened");
    // Ten pieces 300 ms apart: three seconds in all, never a second without a byte.
    let streamed = ciwatch_mcp::reader::log::stream::read_to_end::<ciwatch_mcp::logs::LogAnalyzer>(
        &client, &key, &id, body,
    )
    .await
    .expect("a slow stream is read to its end");
    assert_eq!((streamed.bytes_read(), streamed.requests), (200_000, 1));
    assert_eq!(streamed.analysis.tests.len(), 1);
}

/// A burst of callers of the latest nightly through one sidecar's client, one after another
/// (each 50 ms after the last), with the AMD comparison on and its pipeline not visible to the
/// token (a 404): the nightly listing and the 404 are asked once, and answered again from the
/// first answer within `LISTING_FRESHNESS`; each log is read once; every answer is the same.
#[tokio::test]
async fn a_burst_of_callers_of_the_latest_nightly_shares_its_listings() {
    let nightly_listing =
        || {
            wiremock::Mock::given(wiremock::matchers::method("GET"))
                .and(wiremock::matchers::path(
                    "/v2/organizations/vllm/pipelines/ci/builds",
                ))
                .respond_with(wiremock::ResponseTemplate::new(200).set_body_json(
                    serde_json::json!([crate::common::listed_build(
                        65099,
                        "schedule",
                        "failed",
                        "Full CI run - nightly"
                    )]),
                ))
        };
    // The callers of one sidecar share its HTTP client, as its sessions do.
    let one_caller = |client: ciwatch_mcp::buildkite::BuildkiteClient,
                      store: Arc<ciwatch_mcp::storage::Store>| async move {
        let choice =
            ciwatch_mcp::watch::latest_nightly(&client, "vllm", "ci", "main", u32::MAX / 3600)
                .await
                .expect("the nightly");
        // Every failed job in one call, as a sidecar's reader keeps builds (its freshness).
        let whole_night = Budgets {
            max_jobs: 50,
            ..Budgets::default()
        };
        let mut options = scan_options(whole_night, DetailLevel::Summary, false);
        options.compare_pipeline = Some(ciwatch_mcp::buildkite::PipelineKey {
            org: "vllm".into(),
            pipeline: "amd-ci".into(),
        });
        let result = ciwatch_mcp::watch::scan_build(
            &JobReader::new(&client, Some(&store))
                .with_build_freshness(ciwatch_mcp::watch::DEFAULT_BUILD_FRESHNESS),
            ciwatch_mcp::watch::Enrichment::default(),
            &ciwatch_mcp::buildkite::BuildKey::new("vllm", "ci", choice.number),
            &options,
            &ciwatch_mcp::watch::NoProgress,
        )
        .await
        .expect("scan");
        result
            .failures
            .iter()
            .map(|f| f.failure_key.clone())
            .collect::<Vec<_>>()
    };
    let new_store = || {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = ciwatch_mcp::storage::Store::from(
            ciwatch_mcp::storage::Cache::open(dir.path()).expect("store"),
        );
        (dir, Arc::new(store))
    };

    let alone = crate::common::fixture_server().await;
    nightly_listing().mount(&alone).await;
    let (_dir, store) = new_store();
    let one = one_caller(client(&settings(&alone.uri())), store).await;
    let one_requests = alone.received_requests().await.expect("recorded").len();

    let server = crate::common::fixture_server().await;
    nightly_listing().mount(&server).await;
    let (_dir, store) = new_store();
    let sidecar = client(&settings(&server.uri()));
    let callers = (0..20u64).map(|i| {
        let (client, store) = (sidecar.clone(), store.clone());
        async move {
            tokio::time::sleep(Duration::from_millis(50 * i)).await;
            one_caller(client, store).await
        }
    });
    let answers = futures::future::join_all(callers).await;
    let requests = server.received_requests().await.expect("recorded");
    let logs = |requests: &[wiremock::Request]| {
        let mut logs: Vec<String> = requests
            .iter()
            .filter(|r| r.url.path().ends_with("/log"))
            .map(|r| format!("{} {:?}", r.url.path(), r.headers.get("range")))
            .collect();
        logs.sort();
        logs
    };
    let listed: Vec<&str> = requests
        .iter()
        .map(|r| r.url.path())
        .filter(|path| path.ends_with("/builds"))
        .collect();
    let listings = listed.len();
    assert_eq!(
        listings, 2,
        "the nightly listing and the AMD 404, once each: {listed:?}"
    );
    let alone_requests = alone.received_requests().await.expect("recorded");
    assert_eq!(logs(&requests), logs(&alone_requests), "each log read once");
    // The build itself is asked again by a caller that does not overlap another's request for it
    // (CIWATCH_BUILD_FRESHNESS_SECS is 0 by default: a retry changes a finished build).
    eprintln!(
        "a burst of 20 callers: {} requests ({listings} listings), one caller alone {one_requests}",
        requests.len()
    );
    assert!(answers.iter().all(|answer| *answer == one));
}
