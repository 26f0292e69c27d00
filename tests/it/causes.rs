//! Causes, not lines, on scenarios made from real builds: vllm/ci nightly 65099 with some of
//! its jobs failing, and the real AMD nightly vllm/amd-ci 7561 (its commit set to 65099's) as
//! the compared pipeline, both served by wiremock with logs in Buildkite's raw format.

use crate::common::{client, scan_options};
use crate::coverage::{build_failing, job_id, server_with, BuildBody, Logs};
use ciwatch_mcp::buildkite::PipelineKey;
use ciwatch_mcp::fixtures::to_raw_format;
use ciwatch_mcp::model::{Cause, DetailLevel, ElsewhereState, Parity, Platform, ScanResult};
use ciwatch_mcp::watch::{Budgets, JobReader};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

const KERNELS: &str = "Kernels Core Operation Test";
const SPEC: &str = "Spec Decode Eagle";
const SAMPLER_AMD: &str = "AMD: V1 Sample + Logits (mi300_1)";
const SAMPLER: &str = "V1 Sample + Logits";
const AMD_PATH: &str = "/v2/organizations/vllm/pipelines/amd-ci/builds";

const MACHETE_PARAMS: [&str; 4] = [
    "fp16-gptq-g128",
    "bf16-gptq-g128",
    "fp16-awq-g128",
    "fp16-channelwise",
];

/// A pytest run of `failures` (node id, error line, traceback lines), then its summary.
fn pytest_log(header: &str, failures: &[(String, String, String)]) -> Vec<u8> {
    let mut text = format!("{header}\n");
    text.push_str(
        "=================================== FAILURES ===================================\n",
    );
    for (id, error, trace) in failures {
        let name = id.rsplit("::").next().unwrap_or(id);
        text.push_str(&format!(
            "____________________ {name} ____________________\n\n{trace}\nE       {error}\n\n"
        ));
    }
    text.push_str(
        "=========================== short test summary info ============================\n",
    );
    for (id, error, _) in failures {
        text.push_str(&format!("FAILED {id} - {error}\n"));
    }
    text.push_str(&format!(
        "============ {} failed, 30 passed in 120.00s ============\n",
        failures.len()
    ));
    text.push_str("🚨 Error: The command exited with status 1\n");
    to_raw_format(&text)
}

fn machete_failures() -> Vec<(String, String, String)> {
    MACHETE_PARAMS
        .iter()
        .map(|p| {
            (
                format!("quantization/test_cutlass_w4a16.py::test_machete_kernel_selected[{p}]"),
                format!("ValueError: machete does not support the quant config '{p}' on this device"),
                "vllm/model_executor/layers/quantization/kernels/mixed_precision/machete.py:91: in can_implement\n    raise ValueError(".to_string(),
            )
        })
        .collect()
}

fn spec_failures() -> Vec<(String, String, String)> {
    vec![
        (
            "v1/spec_decode/test_eagle.py::test_eagle_correctness[llama3]".into(),
            "ModuleNotFoundError: No module named 'transformers.models.llama4'".into(),
            "v1/spec_decode/test_eagle.py:41: in test_eagle_correctness".into(),
        ),
        (
            "v1/spec_decode/test_eagle.py::test_eagle_correctness[qwen3]".into(),
            "huggingface_hub.errors.HfHubHTTPError: 504 Server Error: Gateway Time-out for url: https://huggingface.co/api/models/Qwen/Qwen3-8B".into(),
            "v1/spec_decode/test_eagle.py:41: in test_eagle_correctness".into(),
        ),
    ]
}

fn sampler_failures() -> Vec<(String, String, String)> {
    vec![(
        "v1/sample/test_sampler.py::test_sampler_min_p[16]".into(),
        "RuntimeError: probability tensor contains either `inf`, `nan` or element < 0".into(),
        "vllm/v1/sample/ops/topk_topp_sampler.py:212: in random_sample\n    return probs.div_(q).argmax(dim=-1)".into(),
    )]
}

/// The current nightly (vllm/ci 65099) with the scenario's failing jobs and their logs.
fn current() -> (Value, HashMap<String, Vec<u8>>) {
    let build = build_failing(&[KERNELS, SPEC, SAMPLER_AMD, SAMPLER]);
    let logs = HashMap::from([
        (
            job_id(&build, KERNELS),
            pytest_log(
                "+++ :test_tube: Command (1/1): pytest -v -s kernels/core",
                &machete_failures(),
            ),
        ),
        (
            job_id(&build, SPEC),
            pytest_log(
                "+++ :test_tube: Command (1/1): pytest -v -s v1/spec_decode",
                &spec_failures(),
            ),
        ),
        (
            amd_sampler_id(&build),
            pytest_log("--- :rocm: running tests", &sampler_failures()),
        ),
        (
            job_id(&build, SAMPLER),
            pytest_log(
                "+++ :test_tube: Command (1/6): pytest -v -s v1/sample",
                &sampler_failures(),
            ),
        ),
    ]);
    (build, logs)
}

/// The latest attempt of the AMD sampler job (an earlier one was retried).
fn amd_sampler_id(build: &Value) -> String {
    build["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .find(|j| j["name"] == SAMPLER_AMD && j["retried"] != true)
        .and_then(|j| j["id"].as_str())
        .expect("job")
        .to_string()
}

/// The real AMD nightly 7561, finished, on `commit`.
fn amd_nightly(commit: &str) -> Value {
    let mut build = ciwatch_mcp::fixtures::amd_nightly_beside_65099();
    build["commit"] = commit.into();
    build
}

fn amd_job(build: &Value, name: &str) -> String {
    job_id(build, name)
}

async fn with_amd_nightly(server: &MockServer, build: &Value) {
    let mut listed = build.clone();
    listed.as_object_mut().expect("object").remove("jobs");
    Mock::given(method("GET"))
        .and(path(AMD_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(vec![listed]))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{AMD_PATH}/7561")))
        .respond_with(ResponseTemplate::new(200).set_body_json(build.clone()))
        .mount(server)
        .await;
    let other_failure = vec![(
        "v1/spec_decode/test_ngram.py::test_ngram_correctness".to_string(),
        "AssertionError: assert 0.71 >= 0.8".to_string(),
        "v1/spec_decode/test_ngram.py:77: in test_ngram_correctness".to_string(),
    )];
    let logs = HashMap::from([
        (
            amd_job(build, "mi325_1: Kernels Core Operation Test"),
            pytest_log("--- :rocm: running tests", &machete_failures()),
        ),
        (
            amd_job(build, "mi325_1: Spec Decode Eagle"),
            pytest_log("--- :rocm: running tests", &other_failure),
        ),
        (
            amd_job(build, "mi355_1: V1 Sample + Logits"),
            pytest_log("--- :rocm: running tests", &sampler_failures()),
        ),
    ]);
    Mock::given(method("GET"))
        .and(path_regex(format!(r"^{AMD_PATH}/7561/jobs/[^/]+/log$")))
        .respond_with(Logs(logs))
        .mount(server)
        .await;
}

async fn scan(server: &MockServer, compare: bool) -> ScanResult {
    let client = client(&crate::common::settings(&server.uri()));
    let mut options = scan_options(Budgets::default(), DetailLevel::Full, false);
    options.compare_pipeline = compare.then(|| PipelineKey {
        org: "vllm".into(),
        pipeline: "amd-ci".into(),
    });
    crate::common::scan_65099(&JobReader::new(&client, None), &options).await
}

fn cause_with<'a>(result: &'a ScanResult, text: &str) -> &'a Cause {
    result
        .causes
        .iter()
        .find(|c| c.signature.contains(text))
        .unwrap_or_else(|| {
            panic!(
                "no cause with {text:?}: {:#?}",
                result
                    .causes
                    .iter()
                    .map(|c| &c.signature)
                    .collect::<Vec<_>>()
            )
        })
}

async fn amd_requests(server: &MockServer) -> usize {
    server
        .received_requests()
        .await
        .expect("recorded")
        .iter()
        .filter(|r| r.url.path().starts_with(AMD_PATH))
        .count()
}

#[tokio::test]
async fn failures_group_into_causes_with_their_platforms_and_parity() {
    let (build, logs) = current();
    let commit = build["commit"].as_str().expect("commit").to_string();
    let server = server_with(&BuildBody(Arc::new(Mutex::new(build))), logs).await;
    with_amd_nightly(&server, &amd_nightly(&commit)).await;

    let off = scan(&server, false).await;
    assert_eq!(
        amd_requests(&server).await,
        0,
        "no request with the comparison off"
    );
    assert_eq!(off.stats.compared_pipeline_requests, 0);
    assert_eq!(off.total_failures, 8);
    assert_eq!(off.causes.len(), 4, "{:#?}", off.causes);
    assert!(off.causes.iter().all(|c| c.elsewhere.is_none()));

    let on = scan(&server, true).await;
    let extra = amd_requests(&server).await as u64;
    assert_eq!(on.stats.api_requests, off.stats.api_requests + extra);
    assert_eq!(on.stats.compared_pipeline_requests, extra);
    // The listing, the build and the three failed matching jobs' logs.
    assert_eq!(extra, 5);
    assert!(extra <= 12);

    // Four parametrisations, one cause; failing on the AMD nightly too: universal.
    let machete = cause_with(&on, "ValueError: machete does not support");
    assert_eq!(machete.failure_keys.len(), 4);
    assert_eq!(
        machete.tests,
        vec!["quantization/test_cutlass_w4a16.py::test_machete_kernel_selected[...] ×4"]
    );
    let there = machete.elsewhere.as_ref().expect("looked up");
    assert_eq!(
        (there.pipeline.as_str(), there.build_number),
        ("vllm/amd-ci", 7561)
    );
    assert_eq!(
        there.state,
        ElsewhereState::FailingThere,
        "{}",
        there.evidence
    );
    assert_eq!(machete.parity, Some(Parity::Universal));

    // Two exceptions in one job: two causes; the AMD job failed otherwise: CUDA only.
    for text in ["ModuleNotFoundError", "HfHubHTTPError"] {
        let cause = cause_with(&on, text);
        assert_eq!(cause.jobs, vec![SPEC.to_string()]);
        let there = cause.elsewhere.as_ref().expect("looked up");
        assert_eq!(
            there.state,
            ElsewhereState::PassingThere,
            "{text}: {}",
            there.evidence
        );
        assert_eq!(cause.parity, Some(Parity::CudaOnly), "{text}");
    }

    // A CUDA job and an AMD: job with the same signature: one cause on two platforms.
    let sampler = cause_with(&on, "probability tensor contains");
    assert_eq!(sampler.jobs.len(), 2, "{:?}", sampler.jobs);
    assert_eq!(sampler.platforms, vec![Platform::Cuda, Platform::Rocm]);
    assert_eq!(sampler.clusters, vec!["v1 sample + logits".to_string()]);
    assert_eq!(sampler.parity, Some(Parity::Universal));

    // Each failure names its cause; the reports lead with the causes.
    for failure in &on.failures {
        let cause = failure
            .cause_id
            .as_deref()
            .expect("every failure has a cause");
        assert!(on
            .causes
            .iter()
            .any(|c| c.cause_id == cause && c.failure_keys.contains(&failure.failure_key)));
    }
    let report = on.daily_findings_text.as_deref().expect("full detail");
    assert!(
        report.contains("4 causes across 8 failures in 4 jobs"),
        "{report}"
    );
    assert!(report.find("## Causes") < report.find("## Hard Failures"));
    assert!(
        report.contains("failing in vllm/amd-ci #7561: universal"),
        "{report}"
    );
    let standup = on.standup_summary_text.as_deref().expect("full detail");
    assert!(
        standup.contains("4 causes across 8 failures in 4 jobs"),
        "{standup}"
    );
}

#[tokio::test]
async fn no_matching_nightly_is_said_and_costs_only_the_listing() {
    let (build, logs) = current();
    let server = server_with(&BuildBody(Arc::new(Mutex::new(build))), logs).await;
    // The AMD nightly is on another commit and two days older than the scanned build.
    let mut old = amd_nightly("0e39202ca911319c7747a2f9d5a0c162fdff4fd9");
    old["created_at"] = "2026-05-10T06:00:01.775Z".into();
    with_amd_nightly(&server, &old).await;
    let result = scan(&server, true).await;
    assert_eq!(amd_requests(&server).await, 1);
    assert!(result.causes.iter().all(|c| c.elsewhere.is_none()));
    assert!(
        result
            .warnings
            .iter()
            .any(|w| w.contains("no nightly of vllm/amd-ci")),
        "{:?}",
        result.warnings
    );
}

/// The bundled fixture nightly (the demo's server, with the AMD nightly beside it): the AMD
/// comparison costs at most 12 Buildkite requests more, and nothing with it off.
#[tokio::test]
async fn the_fixture_nightly_costs_at_most_12_more_requests_with_the_amd_comparison() {
    let urls = ciwatch_mcp::demo::start().await.expect("demo server");
    let mut settings = crate::common::settings("http://127.0.0.1:9");
    settings.buildkite_api_url = urls.buildkite;
    let client = client(&settings);
    let scan_with = |compare: Option<PipelineKey>| {
        let client = &client;
        async move {
            let mut options = scan_options(Budgets::default(), DetailLevel::Summary, false);
            options.compare_pipeline = compare;
            crate::common::scan_65099(&JobReader::new(client, None), &options).await
        }
    };
    let off = scan_with(None).await;
    let on = scan_with(Some(PipelineKey {
        org: "vllm".into(),
        pipeline: "amd-ci".into(),
    }))
    .await;
    assert_eq!(off.stats.compared_pipeline_requests, 0);
    let extra = on.stats.api_requests - off.stats.api_requests;
    assert_eq!(extra, on.stats.compared_pipeline_requests);
    assert!((2..=12).contains(&extra), "{extra} more requests");
    // At summary the compared nightly is named once, for every cause's `elsewhere`.
    assert_eq!(
        on.compared_nightly.as_ref().map(|n| n.build_number),
        Some(7561)
    );
    assert!(on.causes.iter().all(|c| c.elsewhere.is_some()));
    assert!(
        on.causes.iter().any(|c| c
            .elsewhere
            .as_ref()
            .is_some_and(|e| e.state == ElsewhereState::NotRunThere)),
        "the Ascend and Intel jobs have no AMD mirror"
    );
}
