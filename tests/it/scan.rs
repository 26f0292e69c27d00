//! Scanning the fixture nightly end to end against wiremock: every failed job accounted for,
//! correct ids and messages, evidence for infrastructure verdicts, budgets and partial failures.

use crate::common::{client, fixture_server, settings};
use ciwatch_mcp::model::{Category, DetailLevel, InfraKind, JobStatus, ScanResult};
use ciwatch_mcp::watch::{self, Budgets, Enrichment, NoProgress, ScanOptions};
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

fn options(budgets: Budgets, detail_level: DetailLevel) -> ScanOptions {
    crate::common::scan_options(budgets, detail_level, false)
}

async fn scan(server_uri: &str, options: &ScanOptions) -> ScanResult {
    let client = client(&settings(server_uri));
    watch::scan_build(
        &watch::JobReader::new(&client, None),
        Enrichment::default(),
        &ciwatch_mcp::buildkite::BuildKey::new("vllm", "ci", 65099),
        options,
        &NoProgress,
    )
    .await
    .expect("scan succeeds")
}

fn find<'a>(result: &'a ScanResult, test: &str) -> &'a ciwatch_mcp::model::FailureClassification {
    result
        .failures
        .iter()
        .find(|f| f.test_failure.test_name == test)
        .unwrap_or_else(|| panic!("{test} missing"))
}

#[tokio::test]
async fn fixture_nightly_every_failed_job_is_accounted_for() {
    let server = fixture_server().await;
    let result = scan(
        &server.uri(),
        &options(Budgets::default(), DetailLevel::Full),
    )
    .await;

    assert_eq!(result.build_info.build_number, "65099");
    assert_eq!(
        result.build_info.commit,
        "1acd67a795ebccdf9b9db7697ae9082058301657"
    );
    assert_eq!(result.build_info.branch, "main");
    assert_eq!(result.build_info.state, "failed");
    assert_eq!(
        (
            result.total_jobs,
            result.hard_failed_jobs,
            result.soft_failed_jobs
        ),
        (213, 9, 7)
    );
    // 16 failed latest attempts + 8 attempts whose retry passed.
    assert_eq!(result.jobs.len(), 24);
    let over_budget: Vec<_> = result
        .jobs
        .iter()
        .filter(|j| j.status == JobStatus::OverBudget)
        .collect();
    assert_eq!(over_budget.len(), 4);
    assert!(
        over_budget.iter().all(|j| j.retry_passed),
        "flaked attempts are read last"
    );
    for job in &result.jobs {
        assert!(
            job.failure_count >= 1,
            "{} has no failure entry",
            job.job_name
        );
        assert!(
            result
                .failures
                .iter()
                .any(|f| f.job_id.as_deref() == Some(job.job_id.as_str())),
            "{}",
            job.job_name
        );
    }

    // Every pytest failure has an error message.
    for failure in result
        .failures
        .iter()
        .filter(|f| f.test_failure.test_name.contains("::"))
    {
        assert!(
            failure.test_failure.error_message.is_some(),
            "{} has no message",
            failure.test_failure.test_name
        );
    }
    // Every infrastructure verdict carries its kind and the evidence line.
    for failure in result
        .failures
        .iter()
        .filter(|f| f.category == Category::InfraSuspected)
    {
        assert!(
            failure.infra_kind.is_some() && failure.evidence.is_some(),
            "{failure:?}"
        );
    }

    let dbo = find(
        &result,
        "v1/distributed/test_dbo.py::test_dbo_dp_ep_gsm8k[deepep_low_latency]",
    );
    assert_eq!(
        dbo.test_failure.error_message.as_deref(),
        Some("AssertionError: DBO+DP+EP accuracy too low (deepep_low_latency): 0.590 < 0.620")
    );
    assert_eq!(dbo.category, Category::NewRegression);
    assert!(!dbo.soft_failed);

    let hub = find(&result, "metrics/test_metrics.py::test_async_engine_log_metrics_regression[True-4-half-distilbert/distilgpt2]");
    assert_eq!(hub.infra_kind, Some(InfraKind::NetworkOrHub));

    let abort = find(&result, "v1/engine/test_async_llm.py::test_abort[engine_args0-Hello my name is Robert and-RequestOutputKind.DELTA]");
    assert_eq!(abort.category, Category::FlakySuspected);
    assert_eq!(
        abort.test_failure.error_message.as_deref(),
        Some("AssertionError: assert 31 == 32")
    );

    let engine = find(&result, "Elastic EP Scaling Test");
    assert!(engine
        .test_failure
        .stack_trace
        .as_deref()
        .unwrap_or_default()
        .contains("DeepEP error: CUDA IPC handle"));

    let hang = find(&result, "Intel GPU Test");
    assert!(hang.soft_failed);
    assert_eq!(hang.infra_kind, Some(InfraKind::Hang));
    assert!(hang
        .evidence
        .as_deref()
        .unwrap_or_default()
        .contains("Timeout (0:25:00)!"));

    // The image step failed installing the project itself (`pip install -e`, a requirement that
    // cannot be resolved): a build failure of the code, not infrastructure.
    let image = find(&result, "Ascend NPU Test");
    assert_eq!(image.infra_kind, None);
    assert_eq!(image.category, Category::NewRegression);
    assert!(
        image
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("build failure of the code")),
        "{:?}",
        image.reason
    );

    let oom = find(
        &result,
        "models/test_initialization.py::test_can_initialize_large_subset[Qwen3NextForCausalLM]",
    );
    assert_eq!(
        oom.category,
        Category::NewRegression,
        "CUDA OOM in a test is a regression"
    );

    let report = result
        .daily_findings_text
        .as_deref()
        .expect("full detail renders");
    for job in &result.jobs {
        assert!(
            report.contains(&job.job_name),
            "report misses {}",
            job.job_name
        );
    }
    assert!(result
        .standup_summary_text
        .as_deref()
        .unwrap_or_default()
        .starts_with("Nightly build [65099](https://buildkite.com/vllm/ci/builds/65099) FAILED"));
    // 1 build + 20 tails + re-reads of the job-level logs whose tail missed the first command.
    assert!(
        result.stats.api_requests >= 21 && result.stats.api_requests <= 31,
        "{:?}",
        result.stats
    );
}

#[tokio::test]
async fn a_job_of_several_commands_is_read_whole_in_one_request() {
    let server = fixture_server().await;
    let result = scan(
        &server.uri(),
        &options(Budgets::default(), DetailLevel::Summary),
    )
    .await;
    let examples = result
        .jobs
        .iter()
        .find(|j| j.job_name == "Examples")
        .expect("listed");
    assert_eq!(examples.status, JobStatus::Analyzed);
    let requests = server.received_requests().await.expect("recorded");
    let reads = requests
        .iter()
        .filter(|r| r.url.path().ends_with(&format!("{}/log", examples.job_id)))
        .count();
    assert_eq!(reads, 1, "the plan reads it whole at once");
}

#[tokio::test]
async fn byte_budget_too_small_gives_partial_analysis_with_warnings() {
    let server = fixture_server().await;
    let budgets = Budgets {
        max_jobs: 3,
        max_log_bytes: 50_000,
        scan_byte_budget: 120_000,
        max_whole_log_bytes: watch::DEFAULT_MAX_WHOLE_LOG_BYTES,
        concurrency: 2,
    };
    let result = scan(&server.uri(), &options(budgets, DetailLevel::Minimal)).await;
    assert_eq!(result.jobs.len(), 24, "every failed job is still listed");
    let statuses: Vec<JobStatus> = result.jobs.iter().map(|j| j.status).collect();
    assert!(statuses.contains(&JobStatus::OverBudget));
    assert!(
        statuses
            .iter()
            .filter(|s| **s != JobStatus::OverBudget)
            .count()
            <= 3
    );
    assert!(!result.warnings.is_empty());
    // Minimal detail drops messages and reasons but keeps categories.
    assert!(result
        .failures
        .iter()
        .all(|f| f.reason.is_none() && f.test_failure.error_message.is_none()));
}

#[tokio::test]
async fn a_failing_log_fetch_is_a_warning_not_an_error() {
    let server = wiremock::MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v2/organizations/vllm/pipelines/ci/builds/65099/jobs/019e068f-84f5-4636-9707-f971a7d87843/log"))
        .respond_with(ResponseTemplate::new(403).set_body_json(serde_json::json!({"message": "Forbidden"})))
        .mount(&server)
        .await;
    crate::common::mount_fixture(&server).await;
    let result = scan(
        &server.uri(),
        &options(Budgets::default(), DetailLevel::Summary),
    )
    .await;
    let job = result
        .jobs
        .iter()
        .find(|j| j.job_id == "019e068f-84f5-4636-9707-f971a7d87843")
        .expect("listed");
    assert_eq!(job.status, JobStatus::FetchError);
    assert!(
        result
            .warnings
            .iter()
            .any(|w| w.contains("read_build_logs")),
        "{:?}",
        result.warnings
    );
    assert!(result.failures.len() > 20, "the rest of the result is kept");
}

#[tokio::test]
async fn unknown_build_is_a_clear_error() {
    let server = fixture_server().await;
    let client = client(&settings(&server.uri()));
    let error = watch::scan_build(
        &watch::JobReader::new(&client, None),
        Enrichment::default(),
        &ciwatch_mcp::buildkite::BuildKey::new("vllm", "ci", 1),
        &options(Budgets::default(), DetailLevel::Summary),
        &NoProgress,
    )
    .await
    .expect_err("no such build");
    assert_eq!(
        error.to_string(),
        "build 1 not found in vllm/ci, or the token cannot see that pipeline"
    );
}

#[tokio::test]
async fn max_failures_truncates_but_counts_all() {
    let server = fixture_server().await;
    let mut opts = options(Budgets::default(), DetailLevel::Full);
    opts.presentation.max_failures = 5;
    let result = scan(&server.uri(), &opts).await;
    assert_eq!(result.failures.len(), 5);
    assert!(result.total_failures > 5);
    let report = result.daily_findings_text.as_deref().unwrap_or_default();
    assert!(
        report.contains(&format!("**Unique Failures**: {}", result.total_failures)),
        "rendered from all failures"
    );
}

/// The size of a scan result at each detail level (the token budget the knob controls).
#[tokio::test]
async fn detail_levels_shrink_the_result() {
    let server = fixture_server().await;
    let mut sizes = Vec::new();
    for level in [
        DetailLevel::Minimal,
        DetailLevel::Summary,
        DetailLevel::Full,
    ] {
        let mut result = scan(&server.uri(), &options(Budgets::default(), level)).await;
        result.stats = Default::default();
        result.scan_timestamp.clear();
        let bytes = serde_json::to_vec(&result).expect("serialises").len();
        eprintln!(
            "detail_level={level:?}: {bytes} bytes of JSON for {} failures",
            result.failures.len()
        );
        sizes.push(bytes);
    }
    assert!(sizes[0] < sizes[1] && sizes[1] < sizes[2], "{sizes:?}");
}

#[tokio::test]
async fn one_jobs_failures_by_fuzzy_name_and_by_id() {
    use ciwatch_mcp::watch::MatchStrategy;
    let server = fixture_server().await;
    let client = client(&settings(&server.uri()));
    let reader = watch::JobReader::new(&client, None);
    let key = ciwatch_mcp::buildkite::BuildKey::new("vllm", "ci", 65099);
    let budgets = Budgets::default();
    let amd = watch::job_test_failures(
        &reader,
        &key,
        &watch::JobQuery::new("amd: v1 sample", MatchStrategy::Fuzzy),
        &budgets,
    )
    .await
    .expect("found");
    assert_eq!(amd.job_info.job_name, "AMD: V1 Sample + Logits (mi300_1)");
    assert_eq!(amd.total_failures, 2);
    assert_eq!(amd.test_failures[0].scope, "kernels/moe/test_block_fp8.py");
    assert_eq!(
        amd.test_failures[0].test_name,
        "test_w8a8_block_fp8_fused_moe[0-dtype0-block_size0-1-2-128-4608-7168]"
    );
    assert_eq!(
        amd.test_failures[0].error_message.as_deref(),
        Some("AssertionError: Tensor-likes are not close!")
    );

    let examples = watch::job_test_failures(
        &reader,
        &key,
        &watch::JobQuery::new("019e068f-8880-4d80-b9ae-21f562929ee8", MatchStrategy::Id),
        &budgets,
    )
    .await
    .expect("found");
    assert_eq!(
        examples.test_failures[0].test_nodeid, "Examples",
        "job-level failure"
    );
    assert_eq!(
        examples.test_failures[0].error_message.as_deref(),
        Some("KeyError: 'kimi_vl'")
    );

    let ambiguous = watch::job_test_failures(
        &reader,
        &key,
        &watch::JobQuery::new("spec decode", MatchStrategy::Fuzzy),
        &budgets,
    )
    .await
    .expect_err("several");
    assert!(
        ambiguous
            .to_string()
            .contains("11 jobs match \"spec decode\""),
        "{ambiguous}"
    );
}

/// Two scans at once on one client (one HTTP layer, as a server's concurrent calls share it):
/// each result's `stats` count its own requests and bytes only.
#[tokio::test]
async fn concurrent_scans_count_only_their_own_requests() {
    let server = fixture_server().await;
    let client = client(&settings(&server.uri()));
    let options = options(Budgets::default(), DetailLevel::Minimal);
    let scan_once = || async {
        watch::scan_build(
            &watch::JobReader::new(&client, None),
            Enrichment::default(),
            &ciwatch_mcp::buildkite::BuildKey::new("vllm", "ci", 65099),
            &options,
            &NoProgress,
        )
        .await
        .expect("scan succeeds")
    };
    let alone = scan_once().await;
    let sent_alone = server.received_requests().await.expect("recorded").len() as u64;
    assert_eq!(alone.stats.api_requests, sent_alone);
    let (a, b) = futures::join!(scan_once(), scan_once());
    let sent = server.received_requests().await.expect("recorded").len() as u64;
    assert_eq!(sent, 3 * sent_alone);
    assert_eq!(
        a.stats.api_requests, sent_alone,
        "not inflated by the other scan"
    );
    assert_eq!(b.stats.api_requests, sent_alone);
    assert_eq!(a.stats.log_bytes_fetched, alone.stats.log_bytes_fetched);
}
