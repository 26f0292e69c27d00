//! ciwatch_analyze_main_branch against wiremock: three failed webhook builds made from the real
//! fixture (one where the Examples job passed), a scheduled and a passed build that are left
//! out; recurrence counts, ordering and the summary before truncation.

use ciwatch_mcp::model::DetailLevel;
use ciwatch_mcp::watch::{self, Budgets, Enrichment, MainBranchOptions, NoProgress};
use serde_json::Value;
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const EXAMPLES_PASSED_IN: u64 = 70002;

fn commit(n: u64) -> String {
    format!("{:040x}", 0xfeed0000u64 + n)
}

fn build(n: u64) -> Value {
    let mut build: Value =
        serde_json::from_str(ciwatch_mcp::fixtures::BUILD_65099).expect("fixture");
    build["number"] = n.into();
    build["commit"] = commit(n).into();
    build["source"] = "webhook".into();
    if n == EXAMPLES_PASSED_IN {
        for job in build["jobs"].as_array_mut().expect("jobs") {
            if job["name"] == "Examples" {
                job["state"] = "passed".into();
            }
        }
    }
    build
}

struct Logs;
impl Respond for Logs {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let job_id = request
            .url
            .path()
            .rsplit('/')
            .nth(1)
            .unwrap_or_default()
            .to_string();
        let fixture = ciwatch_mcp::fixtures::build_65099();
        let job = fixture
            .jobs()
            .iter()
            .find(|j| j.id == job_id)
            .expect("fixture job");
        crate::common::log_response(&ciwatch_mcp::fixtures::raw_log(job), request)
    }
}

#[tokio::test]
async fn recurring_failures_across_three_failed_builds() {
    let server = MockServer::start().await;
    // Listed as Buildkite lists with jobs (retried attempts included).
    let listed = |n: u64, source: &str, state: &str| {
        let mut b = build(n);
        b["source"] = source.into();
        b["state"] = state.into();
        b["message"] = "Merge pull request".into();
        b
    };
    let listing = vec![
        listed(70003, "schedule", "failed"),
        listed(EXAMPLES_PASSED_IN, "webhook", "failed"),
        listed(70001, "webhook", "passed"),
        listed(70000, "webhook", "failing"),
        listed(69999, "webhook", "failed"),
        listed(69998, "webhook", "failed"),
    ];
    Mock::given(method("GET"))
        .and(path("/v2/organizations/vllm/pipelines/ci/builds"))
        .respond_with(ResponseTemplate::new(200).set_body_json(listing))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path_regex(r"/jobs/[^/]+/log$"))
        .respond_with(Logs)
        .mount(&server)
        .await;

    let client = crate::common::client(&crate::common::settings(&server.uri()));
    let mut scan = crate::common::scan_options(Budgets::default(), DetailLevel::Full, false);
    scan.presentation.max_failures = 5;
    let options = MainBranchOptions {
        branch: "main".into(),
        hours_lookback: 24,
        max_builds: 3,
        exclude_scheduled: true,
        scan,
    };
    let analysis = watch::analyze_main_branch(
        &watch::JobReader::new(&client, None),
        Enrichment::default(),
        &ciwatch_mcp::buildkite::PipelineKey::new("vllm", "ci"),
        &options,
        &NoProgress,
    )
    .await
    .expect("analysis");

    let requests = server.received_requests().await.expect("recorded");
    assert!(
        requests
            .iter()
            .all(|r| !r.url.path().ends_with(char::is_numeric)),
        "builds come with the listing: no get-build request"
    );
    let numbers: Vec<&str> = analysis
        .analysis_window
        .builds_analyzed
        .iter()
        .map(|b| b.build_number.as_str())
        .collect();
    assert_eq!(
        numbers,
        vec!["70002", "70000", "69999"],
        "scheduled and passed builds left out, newest first, max 3"
    );
    assert_eq!(analysis.analysis_window.builds_scanned, 3);
    assert_eq!(analysis.failures.len(), 5, "max_failures");
    assert_eq!(
        (
            analysis.page.offset,
            analysis.page.total,
            analysis.page.next_offset
        ),
        (0, 39, Some(5)),
        "the cut is a page, with the next page's offset"
    );
    assert!(
        analysis
            .warnings
            .iter()
            .any(|w| w.contains("failures 1 to 5 of 39") && w.contains("failure_offset=5")),
        "{:?}",
        analysis.warnings
    );
    // Each build reads its max_jobs of 20 logs. In 70002 Examples passed, so the budget reaches
    // one more flaked job, whose 8 failures are seen in that build only (intermittent); the
    // other 31 recur (Examples' KeyError in 2 of 3 builds).
    assert_eq!(
        analysis.summary.total_unique_failures, 39,
        "counted before truncation"
    );
    assert_eq!(
        (
            analysis.summary.persistent_failures,
            analysis.summary.intermittent_failures
        ),
        (31, 8)
    );

    let all = analysis
        .failures
        .iter()
        .all(|f| f.seen_in_builds == vec!["70002", "70000", "69999"]);
    assert!(all, "the top failures recur in every build, in build order");
    for failure in &analysis.failures {
        let expected: Vec<String> = [70002u64, 70000, 69999]
            .iter()
            .map(|n| commit(*n)[..8].to_string())
            .collect();
        assert_eq!(
            failure.seen_in_commits, expected,
            "aligned with seen_in_builds"
        );
        assert_eq!(failure.recurrence_rate, 1.0);
    }
    let text = analysis
        .analysis_text
        .as_deref()
        .expect("full detail has text");
    assert!(text.contains("**Unique failures:** 39"), "{text}");

    // Without truncation: Examples' KeyError is there, in 2 of 3 builds.
    let mut all_options = options.clone();
    all_options.scan.presentation.max_failures = 100;
    let everything = watch::analyze_main_branch(
        &watch::JobReader::new(&client, None),
        Enrichment::default(),
        &ciwatch_mcp::buildkite::PipelineKey::new("vllm", "ci"),
        &all_options,
        &NoProgress,
    )
    .await
    .expect("analysis");
    let examples: Vec<(f64, Vec<String>)> = everything
        .failures
        .iter()
        .filter(|f| f.failure.test_failure.test_name == "Examples")
        .map(|f| (f.recurrence_rate, f.seen_in_builds.clone()))
        .collect();
    assert_eq!(
        examples,
        vec![(0.67, vec!["70000".to_string(), "69999".to_string()])]
    );
    let rates: Vec<f64> = everything
        .failures
        .iter()
        .map(|f| f.recurrence_rate)
        .collect();
    assert!(
        rates.windows(2).all(|w| w[0] >= w[1]),
        "most recurrent first: {rates:?}"
    );

    // Page by page (7 a page), every failure comes exactly once, in the same order.
    let mut paged = Vec::new();
    let mut offset = Some(0);
    while let Some(at) = offset {
        let mut page_options = options.clone();
        page_options.scan.presentation.max_failures = 7;
        page_options.scan.presentation.failure_offset = at;
        let page = watch::analyze_main_branch(
            &watch::JobReader::new(&client, None),
            Enrichment::default(),
            &ciwatch_mcp::buildkite::PipelineKey::new("vllm", "ci"),
            &page_options,
            &NoProgress,
        )
        .await
        .expect("analysis");
        assert!(page.failures.len() <= 7);
        paged.extend(page.failures.iter().map(|f| f.failure.failure_key.clone()));
        offset = page.page.next_offset;
    }
    let keys: Vec<String> = everything
        .failures
        .iter()
        .map(|f| f.failure.failure_key.clone())
        .collect();
    assert_eq!(paged, keys);
}
