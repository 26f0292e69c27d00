//! A wiremock Buildkite serving the bundled fixture nightly (real build 65099, raw-format logs
//! with Range support), and settings that point the client at it.

use ciwatch_mcp::buildkite::BuildkiteClient;
use ciwatch_mcp::config::{Secret, Settings};
use ciwatch_mcp::fixtures;
use ciwatch_mcp::http::HttpClient;
use std::time::Duration;
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

pub const BUILD_PATH: &str = "/v2/organizations/vllm/pipelines/ci/builds/65099";

/// Answers log requests as Buildkite does: `Accept: text/plain` required for ranges, suffix
/// ranges give 206 + Content-Range.
struct LogResponder;

impl Respond for LogResponder {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let build = fixtures::build_65099();
        let job_id = request
            .url
            .path()
            .rsplit('/')
            .nth(1)
            .unwrap_or_default()
            .to_string();
        let Some(job) = build.jobs().iter().find(|j| j.id == job_id) else {
            return ResponseTemplate::new(404)
                .set_body_json(serde_json::json!({"message": "No job found"}));
        };
        let accept = request
            .headers
            .get("accept")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let range = request.headers.get("range").and_then(|v| v.to_str().ok());
        if range.is_some() && accept != "text/plain" {
            return ResponseTemplate::new(400).set_body_json(
                serde_json::json!({"message": "Range requires Accept: text/plain"}),
            );
        }
        log_response(&fixtures::raw_log(job), request)
    }
}

/// A raw log answered as Buildkite does for the request's `Range` (206 + Content-Range, 416
/// when empty, else 200).
pub fn log_response(log: &[u8], request: &Request) -> ResponseTemplate {
    let range = request.headers.get("range").and_then(|v| v.to_str().ok());
    let (status, content_range, body) = fixtures::range_response(log, range);
    let mut template = ResponseTemplate::new(status).set_body_raw(body, "text/plain");
    if let Some(value) = content_range {
        template = template.insert_header("content-range", value.as_str());
    }
    template
}

/// A mock Buildkite with the fixture build, its logs, and a builds listing holding it.
pub async fn fixture_server() -> MockServer {
    let server = MockServer::start().await;
    mount_fixture(&server).await;
    server
}

pub async fn mount_fixture(server: &MockServer) {
    Mock::given(method("GET"))
        .and(path(BUILD_PATH))
        .respond_with(
            ResponseTemplate::new(200).set_body_raw(fixtures::BUILD_65099, "application/json"),
        )
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path_regex(
            r"^/v2/organizations/vllm/pipelines/ci/builds/65099/jobs/[^/]+/log$",
        ))
        .respond_with(LogResponder)
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path_regex(
            r"^/v2/organizations/vllm/pipelines/ci/builds/\d+$",
        ))
        .respond_with(
            ResponseTemplate::new(404)
                .set_body_json(serde_json::json!({"message": "No build found"})),
        )
        .mount(server)
        .await;
}

/// The fixture build as a list entry (no jobs), with its number and source changed.
pub fn listed_build(number: u64, source: &str, state: &str, message: &str) -> serde_json::Value {
    let mut build: serde_json::Value =
        serde_json::from_str(fixtures::BUILD_65099).expect("fixture is JSON");
    let object = build.as_object_mut().expect("a build is an object");
    object.remove("jobs");
    object.insert("number".into(), number.into());
    object.insert("source".into(), source.into());
    object.insert("state".into(), state.into());
    object.insert("message".into(), message.into());
    build
}

pub fn settings(server_uri: &str) -> Settings {
    Settings {
        buildkite_token: Some(Secret::new("bkua_test_token_value")),
        buildkite_org: "vllm".into(),
        buildkite_api_url: format!("{server_uri}/v2"),
        max_jobs: 20,
        max_result_chars: ciwatch_mcp::mcp::DEFAULT_MAX_RESULT_CHARS,
        max_log_bytes: 200_000,
        scan_byte_budget: ciwatch_mcp::watch::DEFAULT_SCAN_BYTE_CEILING,
        max_whole_log_bytes: ciwatch_mcp::watch::DEFAULT_MAX_WHOLE_LOG_BYTES,
        build_freshness_secs: ciwatch_mcp::watch::DEFAULT_BUILD_FRESHNESS.as_secs(),
        concurrency: 8,
        requests_per_minute: 6000,
        http_timeout_secs: 10,
        retry_budget_secs: 5,
        retry_min_delay_ms: 10,
        nightly_window_hours: 48,
        compare_pipeline: String::new(),
        github_token: None,
        github_api_url: "http://127.0.0.1:9".into(),
        github_closed_days: 30,
        github_cache_secs: 600,
        vllm_repo_path: None,
        blame_timeout_ms: 3000,
        scan_blame_budget_ms: 15000,
        cache_dir: None,
        no_cache: true,
        store_url: None,
        store_password: None,
        ca_file: None,
    }
}

pub fn client(settings: &Settings) -> BuildkiteClient {
    let http = HttpClient::new(
        Duration::from_secs(settings.http_timeout_secs),
        settings.rate_budget(),
        settings.retry_policy(),
    )
    .expect("client builds");
    BuildkiteClient::new(
        http,
        &settings.buildkite_api_url,
        settings.buildkite_token.clone(),
    )
    .expect("token set")
}

/// Answers `/search/issues` from the fixture issues, with GitHub's rate-limit headers.
pub struct SearchResponder;

impl Respond for SearchResponder {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let query = request
            .url
            .query_pairs()
            .find(|(k, _)| k == "q")
            .map(|(_, v)| v.to_string())
            .unwrap_or_default();
        ResponseTemplate::new(200)
            .insert_header("X-RateLimit-Limit", "30")
            .insert_header("X-RateLimit-Remaining", "29")
            .insert_header("X-RateLimit-Resource", "search")
            .set_body_json(fixtures::github_search(&query))
    }
}

pub async fn github_server() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/search/issues"))
        .respond_with(SearchResponder)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/repos/vllm-project/vllm/contents/.github/CODEOWNERS"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(fixtures::github_contents(".github/CODEOWNERS")),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path_regex(r"^/repos/.*/contents/"))
        .respond_with(
            ResponseTemplate::new(404).set_body_json(serde_json::json!({"message": "Not Found"})),
        )
        .with_priority(10)
        .mount(&server)
        .await;
    server
}

/// Scan options for the fixture: all failures returned, GitHub matching as given.
pub fn scan_options(
    budgets: ciwatch_mcp::watch::Budgets,
    detail_level: ciwatch_mcp::model::DetailLevel,
    search_github: bool,
) -> ciwatch_mcp::watch::ScanOptions {
    ciwatch_mcp::watch::ScanOptions {
        presentation: ciwatch_mcp::watch::Presentation {
            detail_level,
            failure_offset: 0,
            max_failures: 500,
        },
        render_reports: true,
        budgets,
        selection: None,
        repo: "vllm-project/vllm".into(),
        search_github,
        compare_nightlies: 0,
        compare_pipeline: None,
    }
}

/// Asserts that no window of `window` holds more than `budget` of the `arrivals` (sorted
/// here). Arrival is a little after sending; the slack absorbs loopback delivery jitter only.
pub fn assert_within_budget(arrivals: &mut [std::time::Instant], window: Duration, budget: usize) {
    let in_window = most_in_window(arrivals, window, Duration::from_millis(40));
    assert!(
        in_window <= budget,
        "{in_window} requests within one window"
    );
}

/// The most `arrivals` (sorted here) within any `window` shortened by `slack`.
pub fn most_in_window(
    arrivals: &mut [std::time::Instant],
    window: Duration,
    slack: Duration,
) -> usize {
    arrivals.sort();
    (0..arrivals.len())
        .map(|i| {
            arrivals[i..]
                .iter()
                .take_while(|t| t.duration_since(arrivals[i]) + slack < window)
                .count()
        })
        .max()
        .unwrap_or(0)
}

/// Scans build 65099 of vllm/ci through `reader`, without GitHub or owners.
pub async fn scan_65099(
    reader: &ciwatch_mcp::watch::JobReader<'_>,
    options: &ciwatch_mcp::watch::ScanOptions,
) -> ciwatch_mcp::model::ScanResult {
    ciwatch_mcp::watch::scan_build(
        reader,
        ciwatch_mcp::watch::Enrichment::default(),
        &ciwatch_mcp::buildkite::BuildKey::new("vllm", "ci", 65099),
        options,
        &ciwatch_mcp::watch::NoProgress,
    )
    .await
    .expect("scan")
}

/// Serves the sidecar's router on an ephemeral loopback port, as `serve --http` would with
/// `options`; its base URL.
pub async fn serve_sidecar(settings: Settings, options: &ciwatch_mcp::mcp::HttpOptions) -> String {
    serve(ciwatch_mcp::mcp::http_router(settings, options).expect("router")).await
}

/// Serves `app` on an ephemeral loopback port; its base URL.
pub async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{address}")
}

/// The sidecar's options on loopback with nothing else set (no endpoint token, no listed
/// hosts or origins, no webhook, no watcher); tests set what they need over it.
pub fn loopback_options() -> ciwatch_mcp::mcp::HttpOptions {
    ciwatch_mcp::mcp::HttpOptions {
        bind: "127.0.0.1:0".parse().expect("address"),
        token: None,
        allowed_hosts: vec![],
        allowed_origins: vec![],
        webhook_token: None,
        watch_interval: None,
    }
}

/// The sidecar on loopback (no endpoint token, no listed hosts, no webhook) with `settings`, and
/// rmcp's client of it over Streamable HTTP.
pub async fn sidecar_client(
    settings: Settings,
) -> rmcp::service::RunningService<rmcp::RoleClient, ()> {
    use rmcp::ServiceExt;
    let base = serve_sidecar(settings, &loopback_options()).await;
    let config =
        rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig::with_uri(
            format!("{base}/mcp"),
        );
    ().serve(rmcp::transport::StreamableHttpClientTransport::from_config(
        config,
    ))
    .await
    .expect("initialize over HTTP")
}

/// A scan's failure keys, sorted: what two scans of the same night must agree on.
pub fn failure_keys(result: &ciwatch_mcp::model::ScanResult) -> Vec<String> {
    let mut keys: Vec<String> = result
        .failures
        .iter()
        .map(|f| f.failure_key.clone())
        .collect();
    keys.sort();
    keys
}
