//! GitHub issue matching against a wiremock GitHub holding vLLM's real `[CI Failure]` titles
//! as complete issue objects: request counts, cache, pagination, rate limits, errors, and a
//! scan of the fixture nightly with KNOWN_TRACKED verdicts.

use crate::common::{github_server, SearchResponder};
use ciwatch_mcp::config::Secret;
use ciwatch_mcp::fixtures;
use ciwatch_mcp::github::{GitHubClient, GitHubOptions, IssueState};
use ciwatch_mcp::model::{Category, DetailLevel};
use ciwatch_mcp::watch::{self, Budgets, Enrichment, NoProgress};
use std::sync::atomic::Ordering;
use std::time::Duration;
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const REPO: &str = "vllm-project/vllm";

fn client(uri: &str, token: Option<&str>) -> GitHubClient {
    GitHubClient::new(GitHubOptions {
        api_url: uri.to_string(),
        token: token.map(Secret::new),
        closed_days: 30,
        cache_ttl: Duration::from_secs(600),
        timeout: Duration::from_secs(5),
    })
    .expect("client")
}

#[tokio::test]
async fn three_searches_then_the_cache() {
    let server = github_server().await;
    let github = client(&server.uri(), Some("ghp_secret_value"));
    let first = github.ci_failure_candidates(REPO).await;
    assert!(first.warnings.is_empty(), "{:?}", first.warnings);
    assert_eq!(first.issues.len(), 29);
    assert!(
        first
            .issues
            .iter()
            .any(|i| i.number == 51277 && i.labels.is_empty()),
        "unlabelled [CI Failure] issue included"
    );
    assert_eq!(
        first
            .issues
            .iter()
            .filter(|i| i.state == IssueState::Closed)
            .count(),
        2
    );
    assert_eq!(github.requests.load(Ordering::Relaxed), 3);
    let again = github.ci_failure_candidates(REPO).await;
    assert_eq!(again.issues.len(), 29);
    assert_eq!(
        github.requests.load(Ordering::Relaxed),
        3,
        "second call served from the cache"
    );

    let requests = server.received_requests().await.expect("recorded");
    let queries: Vec<String> = requests
        .iter()
        .map(|r| {
            r.url
                .query_pairs()
                .find(|(k, _)| k == "q")
                .map(|(_, v)| v.to_string())
                .unwrap_or_default()
        })
        .collect();
    assert!(
        queries[0].contains("repo:vllm-project/vllm is:issue label:ci-failure is:open"),
        "{queries:?}"
    );
    assert!(queries[1].contains("is:closed closed:>="), "{queries:?}");
    assert!(queries[2].contains("-label:ci-failure"), "{queries:?}");
    assert!(requests.iter().all(
        |r| r.headers.get("authorization").and_then(|v| v.to_str().ok())
            == Some("Bearer ghp_secret_value")
    ));
}

#[tokio::test]
async fn follows_pages() {
    let server = MockServer::start().await;
    let mut full_page = fixtures::github_search("is:open");
    let items = full_page["items"].as_array().cloned().unwrap_or_default();
    // 100 items on page 1 (the real issues repeated with new numbers), 1 on page 2.
    let page_one: Vec<serde_json::Value> = (0..100)
        .map(|i| {
            let mut issue = items[i % items.len()].clone();
            issue["number"] = (100_000 + i as u64).into();
            issue
        })
        .collect();
    full_page["items"] = page_one.into();
    let next = format!("<{}/search/issues?page=2>; rel=\"next\"", server.uri());
    Mock::given(method("GET"))
        .and(path("/search/issues"))
        .and(query_param("page", "1"))
        .and(query_param(
            "q",
            "repo:vllm-project/vllm is:issue label:ci-failure is:open",
        ))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("link", next.as_str())
                .set_body_json(full_page),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/search/issues"))
        .respond_with(SearchResponder)
        .mount(&server)
        .await;
    let github = client(&server.uri(), None);
    let candidates = github.ci_failure_candidates(REPO).await;
    assert!(candidates.warnings.is_empty(), "{:?}", candidates.warnings);
    assert_eq!(
        github.requests.load(Ordering::Relaxed),
        4,
        "two pages of open issues, then closed and unlabelled"
    );
    assert!(candidates.issues.len() > 100);
}

async fn warning_for(template: ResponseTemplate, token: Option<&str>) -> (Vec<String>, u64) {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/search/issues"))
        .respond_with(template)
        .mount(&server)
        .await;
    let github = client(&server.uri(), token);
    let candidates = github.ci_failure_candidates(REPO).await;
    assert!(candidates.issues.is_empty());
    (candidates.warnings, github.requests.load(Ordering::Relaxed))
}

#[tokio::test]
async fn rate_limits_and_errors_degrade_with_a_warning() {
    let limited = ResponseTemplate::new(403)
        .insert_header("X-RateLimit-Remaining", "0")
        .insert_header("X-RateLimit-Reset", "1658205727")
        .set_body_json(serde_json::json!({"message": "API rate limit exceeded", "documentation_url": "https://docs.github.com/rest/overview/resources-in-the-rest-api#rate-limiting"}));
    let (warnings, requests) = warning_for(limited, None).await;
    assert_eq!(requests, 1, "no retry storm");
    assert!(
        warnings[0].contains("rate limit reached") && warnings[0].contains("set GITHUB_TOKEN"),
        "{warnings:?}"
    );

    let (warnings, _) = warning_for(ResponseTemplate::new(429), Some("t")).await;
    assert!(
        warnings[0].contains("rate limit reached") && !warnings[0].contains("set GITHUB_TOKEN"),
        "{warnings:?}"
    );

    let unauthorized =
        ResponseTemplate::new(401).set_body_json(serde_json::json!({"message": "Bad credentials"}));
    let (warnings, _) = warning_for(unauthorized, Some("ghp_wrong")).await;
    assert!(
        warnings[0].contains("rejected GITHUB_TOKEN (401)"),
        "{warnings:?}"
    );
    assert!(!warnings[0].contains("ghp_wrong"));

    let invalid = ResponseTemplate::new(422).set_body_raw(
        include_str!(
            "../../wiremock-fixtures/github/github_error_422_validation_octokit_fixture.json"
        ),
        "application/json",
    );
    let (warnings, _) = warning_for(invalid, None).await;
    assert!(
        warnings[0].contains("422 (Validation Failed)"),
        "{warnings:?}"
    );
}

#[tokio::test]
async fn scan_marks_tracked_failures_with_at_most_three_github_requests() {
    let buildkite = crate::common::fixture_server().await;
    let github_mock = github_server().await;
    let settings = crate::common::settings(&buildkite.uri());
    let buildkite_client = crate::common::client(&settings);
    let github = client(&github_mock.uri(), None);
    let options = crate::common::scan_options(Budgets::default(), DetailLevel::Full, true);
    let result = watch::scan_build(
        &watch::JobReader::new(&buildkite_client, None),
        Enrichment {
            github: Some(&github),
            owners: None,
        },
        &ciwatch_mcp::buildkite::BuildKey::new("vllm", "ci", 65099),
        &options,
        &NoProgress,
    )
    .await
    .expect("scan");
    assert_eq!(
        result.stats.github_requests, 3,
        "one candidate fetch for {} failures",
        result.total_failures
    );

    let by_test = |name: &str| {
        result
            .failures
            .iter()
            .find(|f| f.test_failure.test_name == name)
            .unwrap_or_else(|| panic!("{name}"))
    };
    let tracked = by_test("models/language/generation/test_common.py::test_models[True-False-5-32-naver-hyperclovax/HyperCLOVAX-SEED-Think-14B]");
    assert_eq!(tracked.category, Category::KnownTracked);
    assert_eq!(
        tracked.issue.matched.as_ref().map(|i| i.number),
        Some(42336),
        "the NVIDIA job's issue, not the mi325 mirror's"
    );
    assert_eq!(
        tracked.issue.url.as_deref(),
        Some("https://github.com/vllm-project/vllm/issues/42336")
    );
    // Tool results leave it out: the result's template builds it.
    assert_eq!(
        result.links.issue.replace("{number}", "42336"),
        "https://github.com/vllm-project/vllm/issues/42336"
    );

    let regressed = by_test("quantization/test_cpu_offload.py::test_cpu_offload_gptq");
    assert_ne!(
        regressed.category,
        Category::KnownTracked,
        "a closed issue does not track a failure that is back"
    );
    assert_eq!(
        regressed
            .issue
            .matched
            .as_ref()
            .map(|i| (i.number, i.state)),
        Some((18425, IssueState::Closed))
    );
    assert!(regressed
        .reason
        .as_deref()
        .unwrap_or_default()
        .contains("possibly regressed after fix"));

    let untracked =
        by_test("compile/fullgraph/test_multimodal_compile.py::test_qwen2_5_vl_compilation");
    assert_eq!(untracked.issue.matched, None);

    let report = result.daily_findings_text.as_deref().unwrap_or_default();
    assert!(
        report.contains("GitHub Issue: https://github.com/vllm-project/vllm/issues/42336"),
        "{report}"
    );
}

#[tokio::test]
async fn search_github_false_sends_nothing() {
    let buildkite = crate::common::fixture_server().await;
    let github_mock = github_server().await;
    let settings = crate::common::settings(&buildkite.uri());
    let github = client(&github_mock.uri(), None);
    let options = crate::common::scan_options(Budgets::default(), DetailLevel::Summary, false);
    let result = watch::scan_build(
        &watch::JobReader::new(&crate::common::client(&settings), None),
        Enrichment {
            github: Some(&github),
            owners: None,
        },
        &ciwatch_mcp::buildkite::BuildKey::new("vllm", "ci", 65099),
        &options,
        &NoProgress,
    )
    .await
    .expect("scan");
    assert_eq!(result.stats.github_requests, 0);
    assert!(github_mock
        .received_requests()
        .await
        .expect("recorded")
        .is_empty());
    assert!(result
        .failures
        .iter()
        .all(|f| f.category != Category::KnownTracked));
}

#[tokio::test]
async fn the_token_header_is_only_sent_when_configured() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(header("authorization", "Bearer ghp_x"))
        .respond_with(SearchResponder)
        .mount(&server)
        .await;
    let with_token = client(&server.uri(), Some("ghp_x"))
        .ci_failure_candidates(REPO)
        .await;
    assert!(with_token.warnings.is_empty(), "{:?}", with_token.warnings);
}

/// GitHub's own word paces the requests: once a page says the search budget is spent until
/// an hour from now, no further search is sent (the next page, the other two searches).
#[tokio::test]
async fn a_spent_github_budget_stops_the_searches_until_its_reset() {
    let server = MockServer::start().await;
    let reset = (chrono::Utc::now().timestamp() + 3600).to_string();
    let next = format!("{}/search/issues?page=2", server.uri());
    Mock::given(method("GET"))
        .and(path("/search/issues"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("X-RateLimit-Remaining", "0")
                .insert_header("X-RateLimit-Reset", reset.as_str())
                .insert_header("Link", format!("<{next}>; rel=\"next\"").as_str())
                .set_body_json(fixtures::github_search(
                    "repo:vllm-project/vllm is:issue label:ci-failure is:open",
                )),
        )
        .mount(&server)
        .await;
    let github = client(&server.uri(), Some("ghp_t"));
    let candidates = github.ci_failure_candidates(REPO).await;
    assert_eq!(github.requests.load(Ordering::Relaxed), 1);
    assert!(!candidates.issues.is_empty(), "the page read is used");
    assert!(
        candidates
            .warnings
            .iter()
            .any(|w| w.contains("rate limit is spent for another")),
        "{:?}",
        candidates.warnings
    );
}
