//! The Buildkite client against wiremock: every API path, pagination, retries, error messages,
//! Range responses.

use crate::common::{client, listed_build, settings};
use ciwatch_mcp::buildkite::{BuildkiteClient, BuildkiteError, ListBuilds, PipelineKey};
use ciwatch_mcp::config::Secret;
use ciwatch_mcp::http::HttpClient;
use std::time::Duration;
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const BUILDS: &str = "/v2/organizations/vllm/pipelines/ci/builds";

async fn error_for(status: u16, body: &str) -> String {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("{BUILDS}/1")))
        .respond_with(
            ResponseTemplate::new(status).set_body_raw(body.to_string(), "application/json"),
        )
        .mount(&server)
        .await;
    let client = client(&settings(&server.uri()));
    let error = client
        .get_build(&ciwatch_mcp::buildkite::BuildKey::new("vllm", "ci", 1))
        .await
        .expect_err("error status");
    error.to_string()
}

#[tokio::test]
async fn error_statuses_say_what_to_do_and_never_show_the_token() {
    let cases = [
        (
            401,
            include_str!("../../wiremock-fixtures/errors/401_unauthorized.json"),
            "rejected the token of BUILDKITE_TOKEN (401)",
        ),
        (
            403,
            include_str!("../../wiremock-fixtures/errors/403_forbidden.json"),
            "read_builds and read_build_logs scopes",
        ),
        (
            404,
            include_str!("../../wiremock-fixtures/errors/404_no_pipeline_found.json"),
            "build 1 not found in vllm/ci, or the token cannot see that pipeline",
        ),
        (
            400,
            include_str!("../../wiremock-fixtures/errors/400_listing_too_deep.json"),
            "Listing builds this deep is not supported",
        ),
    ];
    for (status, body, expected) in cases {
        let message = error_for(status, body).await;
        assert!(message.contains(expected), "{status}: {message}");
        assert!(!message.contains("bkua_test_token_value"), "{message}");
    }
}

#[tokio::test]
async fn missing_token_is_a_clear_error() {
    let http = HttpClient::new(
        Duration::from_secs(1),
        ciwatch_mcp::http::RateBudget::per_minute(60),
        settings("http://127.0.0.1:9").retry_policy(),
    )
    .expect("client");
    let error = BuildkiteClient::new(http, "http://127.0.0.1:9/v2", None)
        .err()
        .expect("no token");
    assert!(matches!(error, BuildkiteError::MissingToken));
    assert!(error.to_string().contains("BUILDKITE_TOKEN is not set"));
}

#[tokio::test]
async fn sends_bearer_token_and_retried_jobs_flag() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("{BUILDS}/65099")))
        .and(header("authorization", "Bearer bkua_test_token_value"))
        .and(query_param("include_retried_jobs", "true"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(ciwatch_mcp::fixtures::BUILD_65099, "application/json"),
        )
        .expect(1)
        .mount(&server)
        .await;
    let build = client(&settings(&server.uri()))
        .get_build(&ciwatch_mcp::buildkite::BuildKey::new("vllm", "ci", 65099))
        .await
        .expect("build");
    assert_eq!(build.jobs().len(), 235);
}

#[tokio::test]
async fn rate_limit_429_waits_for_reset_then_succeeds() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("{BUILDS}/65099")))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("RateLimit-Reset", "1")
                .set_body_raw(
                    include_str!("../../wiremock-fixtures/errors/429_rate_limit_docs.json"),
                    "application/json",
                ),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    crate::common::mount_fixture(&server).await;
    // How long it waits is the retry rule's (http.rs, on plain values); here: it retries once.
    let build = client(&settings(&server.uri()))
        .get_build(&ciwatch_mcp::buildkite::BuildKey::new("vllm", "ci", 65099))
        .await
        .expect("retried");
    assert_eq!(build.number, 65099);
    assert_eq!(server.received_requests().await.expect("recorded").len(), 2);
}

#[tokio::test]
async fn rate_limit_longer_than_the_budget_fails_with_advice() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(429).insert_header("RateLimit-Reset", "42"))
        .mount(&server)
        .await;
    let error = client(&settings(&server.uri()))
        .get_build(&ciwatch_mcp::buildkite::BuildKey::new("vllm", "ci", 1))
        .await
        .expect_err("over budget");
    assert!(error.to_string().contains("retry after 42s"), "{error}");
    assert_eq!(server.received_requests().await.expect("recorded").len(), 1);
}

#[tokio::test]
async fn server_errors_are_retried_with_backoff() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("{BUILDS}/65099")))
        .respond_with(ResponseTemplate::new(502).set_body_string("<html>bad gateway</html>"))
        .up_to_n_times(2)
        .mount(&server)
        .await;
    crate::common::mount_fixture(&server).await;
    let build = client(&settings(&server.uri()))
        .get_build(&ciwatch_mcp::buildkite::BuildKey::new("vllm", "ci", 65099))
        .await
        .expect("third try works");
    assert_eq!(build.number, 65099);
    assert_eq!(server.received_requests().await.expect("recorded").len(), 3);
}

#[tokio::test]
async fn persistent_server_errors_give_up_with_the_status() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    let error = client(&settings(&server.uri()))
        .get_build(&ciwatch_mcp::buildkite::BuildKey::new("vllm", "ci", 7))
        .await
        .expect_err("gives up");
    assert!(
        error
            .to_string()
            .contains("answered 503 for build 7 of vllm/ci"),
        "{error}"
    );
    let requests = server.received_requests().await.expect("recorded").len();
    assert!(
        (2..=7).contains(&requests),
        "retried a bounded number of times: {requests}"
    );
}

#[tokio::test]
async fn list_builds_follows_link_next_and_sends_filters() {
    let server = MockServer::start().await;
    let next = format!("{}{BUILDS}?page=2&per_page=100", server.uri());
    Mock::given(method("GET"))
        .and(path(BUILDS))
        .and(query_param("page", "2"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(serde_json::json!([listed_build(
                65000, "webhook", "passed", "Merge"
            )])),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(BUILDS))
        .and(query_param("branch", "main"))
        .and(query_param("per_page", "100"))
        .and(query_param("created_from", "2026-11-23T00:00:00Z"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header(
                    "Link",
                    format!("<{next}>; rel=\"next\", <{next}>; rel=\"last\"").as_str(),
                )
                .set_body_json(serde_json::json!([listed_build(
                    65099,
                    "schedule",
                    "failed",
                    "Full CI run - nightly"
                )])),
        )
        .mount(&server)
        .await;
    let filter = ListBuilds {
        branch: Some("main".into()),
        created_from: Some("2026-11-23T00:00:00Z".into()),
        exclude_jobs: true,
        ..Default::default()
    };
    let builds = client(&settings(&server.uri()))
        .list_builds(&PipelineKey::new("vllm", "ci"), &filter, 10, |_| false)
        .await
        .expect("listed");
    let numbers: Vec<u64> = builds.builds.iter().map(|b| b.number).collect();
    assert_eq!(numbers, vec![65099, 65000]);
    assert!(!builds.cut);
}

#[tokio::test]
async fn unknown_pipeline_404_explains_visibility() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(404).set_body_raw(
            include_str!("../../wiremock-fixtures/errors/404_no_pipeline_found.json"),
            "application/json",
        ))
        .mount(&server)
        .await;
    let error = client(&settings(&server.uri()))
        .list_builds(
            &PipelineKey::new("vllm", "nope"),
            &ListBuilds::default(),
            1,
            |_| false,
        )
        .await
        .expect_err("404");
    assert!(
        error
            .to_string()
            .contains("pipeline vllm/nope not found, or the token cannot see it"),
        "{error}"
    );
}

/// Opens and streams the last `bytes` of a job's log; the text read and what the read saw.
async fn read_log(
    client: &ciwatch_mcp::buildkite::BuildkiteClient,
    build: u64,
    job_id: &str,
    bytes: u64,
) -> Result<
    (
        String,
        ciwatch_mcp::reader::log::stream::Streamed<ciwatch_mcp::logs::LogAnalysis>,
    ),
    ciwatch_mcp::buildkite::BuildkiteError,
> {
    let key = ciwatch_mcp::buildkite::BuildKey::new("vllm", "ci", build);
    let body = client.open_log(&key, job_id, bytes).await?;
    let streamed = ciwatch_mcp::reader::log::stream::read_to_end::<ciwatch_mcp::logs::LogAnalyzer>(
        client, &key, job_id, body,
    )
    .await?;
    let text =
        ciwatch_mcp::reader::log::blocks::whole_text(&streamed.text.blocks).expect("text decodes");
    Ok((text, streamed))
}

#[tokio::test]
async fn log_tail_uses_suffix_range_and_reports_total_size() {
    let server = crate::common::fixture_server().await;
    let build = ciwatch_mcp::fixtures::build_65099();
    let job = build
        .jobs()
        .iter()
        .find(|j| j.id == "019e068f-84f5-4636-9707-f971a7d87843")
        .expect("job");
    let full = ciwatch_mcp::fixtures::raw_log(job);
    let (text, tail) = read_log(&client(&settings(&server.uri())), 65099, &job.id, 1000)
        .await
        .expect("tail");
    assert_eq!(tail.bytes_read(), 1000);
    assert_eq!(tail.total_size(), full.len() as u64);
    assert!(!tail.complete());
    assert_eq!(
        text,
        ciwatch_mcp::logs::clean_log(&full[full.len() - 1000..])
    );
    let request = &server.received_requests().await.expect("recorded")[0];
    assert_eq!(
        request.headers.get("range").and_then(|v| v.to_str().ok()),
        Some("bytes=-1000")
    );
    assert_eq!(
        request.headers.get("accept").and_then(|v| v.to_str().ok()),
        Some("text/plain")
    );
}

#[tokio::test]
async fn log_status_200_without_range_is_the_whole_log_and_416_is_empty() {
    let server = MockServer::start().await;
    let body = "x".repeat(5000) + "END";
    Mock::given(method("GET"))
        .and(path(format!("{BUILDS}/1/jobs/a/log")))
        .respond_with(ResponseTemplate::new(200).set_body_string(body.clone()))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{BUILDS}/1/jobs/empty/log")))
        .respond_with(ResponseTemplate::new(416))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{BUILDS}/1/jobs/missing/log")))
        .respond_with(ResponseTemplate::new(404).set_body_raw(
            include_str!("../../wiremock-fixtures/errors/404_no_job_found.json"),
            "application/json",
        ))
        .mount(&server)
        .await;
    let client = client(&settings(&server.uri()));
    // A server that ignores the range sends the whole log: it is read whole, as a stream.
    let (text, whole) = read_log(&client, 1, "a", 100).await.expect("200");
    assert_eq!(text, format!("{body}\n"));
    assert!(whole.complete());
    assert_eq!(whole.total_size(), body.len() as u64);
    let (text, empty) = read_log(&client, 1, "empty", 100).await.expect("416");
    assert_eq!((text.as_str(), empty.bytes_read()), ("", 0));
    let missing = read_log(&client, 1, "missing", 100)
        .await
        .err()
        .expect("404");
    assert_eq!(missing.to_string(), "job missing has no log in build 1");
}

#[test]
fn secrets_do_not_debug_print() {
    assert_eq!(format!("{:?}", Secret::new("bkua_x")), "***");
}

/// Every page of builds links to one more: a listing never ends by itself.
struct EndlessPages {
    base: String,
    /// A merge build and a nightly, made once (each a real build object without jobs).
    merge: serde_json::Value,
    nightly: serde_json::Value,
}

impl EndlessPages {
    fn new(base: String) -> Self {
        Self {
            base,
            merge: listed_build(0, "webhook", "passed", "Merge pull request"),
            nightly: listed_build(0, "schedule", "failed", "Full CI run - nightly"),
        }
    }
}

impl wiremock::Respond for EndlessPages {
    fn respond(&self, request: &wiremock::Request) -> ResponseTemplate {
        let page: u64 = request
            .url
            .query_pairs()
            .find(|(k, _)| k == "page")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(1);
        // Page 1 holds one scheduled nightly; every later page only merges.
        let first = 70_000 - page * 100;
        let builds: Vec<serde_json::Value> = (0..100)
            .map(|i| {
                let mut build = match (page, i) {
                    (1, 50) => self.nightly.clone(),
                    _ => self.merge.clone(),
                };
                build["number"] = (first - i).into();
                build
            })
            .collect();
        let next = format!("{}{BUILDS}?page={}&per_page=100", self.base, page + 1);
        ResponseTemplate::new(200)
            .insert_header("Link", format!("<{next}>; rel=\"next\"").as_str())
            .set_body_json(builds)
    }
}

#[tokio::test]
async fn a_listing_cut_at_its_page_limit_says_so() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(BUILDS))
        .respond_with(EndlessPages::new(server.uri()))
        .mount(&server)
        .await;
    let listing = client(&settings(&server.uri()))
        .list_builds(
            &PipelineKey::new("vllm", "ci"),
            &ListBuilds::default(),
            3,
            |_| false,
        )
        .await
        .expect("listed");
    assert!(listing.cut);
    assert_eq!((listing.pages_read, listing.builds.len()), (3, 300));
    let warning = listing.cut_warning("30 nightlies").expect("a warning");
    assert!(
        warning.contains("stopped at its limit of 3 pages (300 builds read"),
        "{warning}"
    );
    // Enough found: the listing stops there and is not cut.
    let early = client(&settings(&server.uri()))
        .list_builds(
            &PipelineKey::new("vllm", "ci"),
            &ListBuilds::default(),
            3,
            |builds| {
                builds
                    .iter()
                    .any(|b| b.source.as_deref() == Some("schedule"))
            },
        )
        .await
        .expect("listed");
    assert_eq!(early.pages_read, 1);
    assert!(!early.cut && early.cut_warning("one nightly").is_none());
}

#[tokio::test]
async fn a_nightly_history_reads_pages_for_what_it_asks_and_names_the_cut() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(BUILDS))
        .respond_with(EndlessPages::new(server.uri()))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(wiremock::matchers::path_regex(format!(r"^{BUILDS}/\d+$")))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(ciwatch_mcp::fixtures::BUILD_65099, "application/json"),
        )
        .mount(&server)
        .await;
    let client = client(&settings(&server.uri()));
    let options = ciwatch_mcp::watch::HistoryOptions {
        branch: "main".into(),
        lookback_builds: 30,
        nightly_only: true,
        job_filter: None,
        include_logs: false,
        max_jobs_per_build: 20,
        max_logs: 0,
        max_log_bytes: 200_000,
        max_whole_log_bytes: ciwatch_mcp::watch::DEFAULT_MAX_WHOLE_LOG_BYTES,
        concurrency: 4,
        repo: "vllm-project/vllm".into(),
    };
    let history = ciwatch_mcp::watch::test_history(
        &ciwatch_mcp::watch::JobReader::new(&client, None),
        &ciwatch_mcp::buildkite::PipelineKey::new("vllm", "ci"),
        &ciwatch_mcp::input::NodeId::parse("tests/v1/distributed/test_dbo.py::test_dbo")
            .expect("id"),
        &options,
        &ciwatch_mcp::watch::NoProgress,
    )
    .await
    .expect("history");
    let listings = server
        .received_requests()
        .await
        .expect("recorded")
        .iter()
        .filter(|r| r.url.path() == BUILDS)
        .count();
    // 30 nightlies at a documented 80 builds a day: 25 pages of 100, not the 4 of before.
    assert_eq!(listings, 25);
    assert!(
        history
            .warnings
            .iter()
            .any(|w| w.contains("30 nightlies on main of vllm/ci stopped at its limit of 25 pages")),
        "{:?}",
        history.warnings
    );
}
