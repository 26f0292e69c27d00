//! The Streamable HTTP transport driven by rmcp's HTTP client: tools over HTTP with a caller's
//! own Buildkite token, the bearer-token gate, Origin validation, /health, and the refusal to
//! bind a public address without a token.

use ciwatch_mcp::config::Secret;
use ciwatch_mcp::mcp::{serve_http, HttpOptions};
use rmcp::model::CallToolRequestParams;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::ServiceExt;
use serde_json::json;
use std::collections::HashMap;

const ENDPOINT_TOKEN: &str = "ciwatch-endpoint-secret";

/// Serves the router on an ephemeral loopback port; returns its base URL.
async fn start(buildkite_uri: &str, github_uri: &str, token: Option<&str>) -> String {
    let mut settings = crate::common::settings(buildkite_uri);
    // The server has no Buildkite token of its own: callers bring theirs.
    settings.buildkite_token = None;
    settings.github_api_url = github_uri.to_string();
    let options = HttpOptions {
        token: token.map(Secret::new),
        ..crate::common::loopback_options()
    };
    crate::common::serve_sidecar(settings, &options).await
}

#[tokio::test]
async fn tools_over_http_with_the_callers_buildkite_token() {
    let buildkite = crate::common::fixture_server().await;
    let github = crate::common::github_server().await;
    let base = start(&buildkite.uri(), &github.uri(), Some(ENDPOINT_TOKEN)).await;

    let mut headers = HashMap::new();
    headers.insert(
        axum::http::HeaderName::from_static("x-buildkite-token"),
        axum::http::HeaderValue::from_static("bkua_callers_own"),
    );
    let config = StreamableHttpClientTransportConfig::with_uri(format!("{base}/mcp"))
        .auth_header(ENDPOINT_TOKEN)
        .custom_headers(headers);
    let client =
        ().serve(StreamableHttpClientTransport::from_config(config))
            .await
            .expect("initialize over HTTP");
    let tools = client.list_all_tools().await.expect("tools/list");
    assert_eq!(tools.len(), 11);
    let result = client
        .call_tool(
            CallToolRequestParams::new("ciwatch_scan_build").with_arguments(
                json!({"build_id_or_url": "65099", "detail_level": "minimal"})
                    .as_object()
                    .cloned()
                    .expect("object"),
            ),
        )
        .await
        .expect("tools/call");
    assert_ne!(result.is_error, Some(true), "{result:?}");
    assert_eq!(
        result.structured_content.expect("structured")["build_info"]["build_number"],
        "65099"
    );
    let sent = buildkite.received_requests().await.expect("recorded");
    assert!(sent.iter().all(
        |r| r.headers.get("authorization").and_then(|v| v.to_str().ok())
            == Some("Bearer bkua_callers_own")
    ));

    let prompts = client.list_prompts(None).await.expect("prompts/list");
    assert!(prompts.prompts.iter().any(|p| p.name == "ci_watch_daily"));
    let resources = client.list_resources(None).await.expect("resources/list");
    let uris: Vec<&str> = resources.resources.iter().map(|r| r.uri.as_str()).collect();
    assert!(
        uris.contains(&"prompt://ci-watch-daily") && uris.contains(&"report://latest"),
        "{uris:?}"
    );
    let latest = |peer: rmcp::service::Peer<rmcp::RoleClient>| async move {
        let read = peer
            .read_resource(rmcp::model::ReadResourceRequestParams::new(
                "report://latest",
            ))
            .await
            .expect("resources/read");
        match &read.contents[0] {
            rmcp::model::ResourceContents::TextResourceContents { text, .. } => text.clone(),
            other => panic!("{other:?}"),
        }
    };
    assert!(latest(client.peer().clone())
        .await
        .starts_with("# Daily Findings"));

    // Another caller, with another token, does not see this caller's report.
    let mut other_headers = HashMap::new();
    other_headers.insert(
        axum::http::HeaderName::from_static("x-buildkite-token"),
        axum::http::HeaderValue::from_static("bkua_someone_else"),
    );
    let other_config = StreamableHttpClientTransportConfig::with_uri(format!("{base}/mcp"))
        .auth_header(ENDPOINT_TOKEN)
        .custom_headers(other_headers);
    let other =
        ().serve(StreamableHttpClientTransport::from_config(other_config))
            .await
            .expect("initialize over HTTP");
    assert!(
        latest(other.peer().clone())
            .await
            .starts_with("No scan has run yet"),
        "reports are per caller"
    );
    other.cancel().await.expect("close");
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn endpoint_token_origin_and_health() {
    let buildkite = crate::common::fixture_server().await;
    let github = crate::common::github_server().await;
    let base = start(&buildkite.uri(), &github.uri(), Some(ENDPOINT_TOKEN)).await;
    let http = reqwest::Client::new();
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});

    let health = http
        .get(format!("{base}/health"))
        .send()
        .await
        .expect("health");
    assert_eq!(health.status(), 200);

    let anonymous = http
        .post(format!("{base}/mcp"))
        .header("accept", "application/json, text/event-stream")
        .json(&initialize)
        .send()
        .await
        .expect("answered");
    assert_eq!(anonymous.status(), 401);

    let foreign_origin = http
        .post(format!("{base}/mcp"))
        .bearer_auth(ENDPOINT_TOKEN)
        .header("origin", "https://evil.example.com")
        .header("accept", "application/json, text/event-stream")
        .json(&initialize)
        .send()
        .await
        .expect("answered");
    assert_eq!(foreign_origin.status(), 403);

    let local_origin = http
        .post(format!("{base}/mcp"))
        .bearer_auth(ENDPOINT_TOKEN)
        .header("origin", "http://localhost:6274")
        .header("accept", "application/json, text/event-stream")
        .json(&initialize)
        .send()
        .await
        .expect("answered");
    assert_eq!(local_origin.status(), 200);
}

#[tokio::test]
async fn public_bind_without_a_token_is_refused() {
    let options = HttpOptions {
        bind: "0.0.0.0:0".parse().expect("address"),
        ..crate::common::loopback_options()
    };
    let error = serve_http(crate::common::settings("http://127.0.0.1:9"), options)
        .await
        .expect_err("refused");
    assert!(
        error.to_string().contains("requires CIWATCH_HTTP_TOKEN"),
        "{error}"
    );
}

#[tokio::test]
async fn many_sessions_at_once() {
    let buildkite = crate::common::fixture_server().await;
    let github = crate::common::github_server().await;
    let base = start(&buildkite.uri(), &github.uri(), None).await;
    // 50 callers, each with its own Buildkite token, each listing tools, rendering and reading
    // one job's failures through the server's shared limiter.
    let sessions = (0..50).map(|i| {
        let base = base.clone();
        async move {
            let client = session(&base, &format!("bkua_caller_{i}")).await;
            let tools = client.list_all_tools().await.expect("tools/list");
            let minimal = json!({"build_info": {"build_number": format!("{i}"), "build_url": "u", "pipeline": "vllm/ci", "branch": "main", "commit": "c", "state": "passed"},
                                 "total_jobs": 1, "failed_jobs": 0, "failures": [], "scan_timestamp": "2026-11-25T00:00:00Z"});
            let rendered = client
                .call_tool(CallToolRequestParams::new("ciwatch_render").with_arguments(json!({"scan_result": minimal, "format": "standup"}).as_object().cloned().expect("object")))
                .await
                .expect("render");
            let job = client
                .call_tool(CallToolRequestParams::new("ciwatch_get_job_test_failures").with_arguments(json!({"build_id_or_url": "65099", "job_name_or_id": "019e0689-da9b-47ab-915e-9c470bfe9a07", "match_strategy": "id"}).as_object().cloned().expect("object")))
                .await
                .expect("job failures");
            client.cancel().await.expect("close");
            (
                tools.len(),
                rendered.structured_content.expect("structured")["text"].as_str().unwrap_or_default().to_string(),
                job.is_error,
                job.structured_content.map(|v| v["total_failures"].clone()),
            )
        }
    });
    let results = futures::future::join_all(sessions).await;
    for (i, (tools, text, job_error, job_failures)) in results.iter().enumerate() {
        assert_eq!(*tools, 11);
        assert!(
            text.starts_with(&format!("Build [{i}](u) PASSED with 0 unique failures")),
            "{text}"
        );
        assert_ne!(*job_error, Some(true), "session {i}");
        assert_eq!(job_failures.as_ref(), Some(&json!(2)), "session {i}");
    }
    let sent = buildkite.received_requests().await.expect("recorded");
    let callers: std::collections::HashSet<&str> = sent
        .iter()
        .filter_map(|r| r.headers.get("authorization").and_then(|v| v.to_str().ok()))
        .collect();
    assert_eq!(callers.len(), 50, "each caller's own token was used");
}

/// A session of the sidecar at `base` bringing its own Buildkite `token`.
async fn session(base: &str, token: &str) -> rmcp::service::RunningService<rmcp::RoleClient, ()> {
    let mut headers = HashMap::new();
    headers.insert(
        axum::http::HeaderName::from_static("x-buildkite-token"),
        axum::http::HeaderValue::from_str(token).expect("header"),
    );
    let config = StreamableHttpClientTransportConfig::with_uri(format!("{base}/mcp"))
        .custom_headers(headers);
    ().serve(StreamableHttpClientTransport::from_config(config))
        .await
        .expect("initialize")
}

/// One caller's default scan of the fixture nightly through a sidecar in front of `buildkite`:
/// the answer's structured content.
async fn scan_through(base: &str, token: &str) -> serde_json::Value {
    let client = session(base, token).await;
    let arguments = json!({"build_id_or_url": "65099", "compare_nightlies": 0});
    let result = client
        .call_tool(
            CallToolRequestParams::new("ciwatch_scan_build")
                .with_arguments(arguments.as_object().cloned().expect("object")),
        )
        .await
        .expect("scan");
    client.cancel().await.expect("close");
    result.structured_content.expect("structured")
}

fn failure_keys(answer: &serde_json::Value) -> Vec<String> {
    let mut keys: Vec<String> = answer["failures"]
        .as_array()
        .expect("failures")
        .iter()
        .filter_map(|f| f["failure_key"].as_str().map(String::from))
        .collect();
    keys.sort();
    keys
}

/// Twenty sessions with one token asking the same scan at once share one run: Buildkite gets
/// one scan's requests, every answer is the same, and all but one say they joined. A caller
/// with another token runs its own.
#[tokio::test]
async fn twenty_sessions_asking_one_scan_at_once_share_one_run() {
    let github = crate::common::github_server().await;
    let slow_build = || {
        wiremock::Mock::given(wiremock::matchers::path(crate::common::BUILD_PATH)).respond_with(
            wiremock::ResponseTemplate::new(200)
                .set_body_raw(ciwatch_mcp::fixtures::BUILD_65099, "application/json")
                // Every caller's call is under way before the first scan has its build.
                .set_delay(std::time::Duration::from_millis(500)),
        )
    };
    let alone = wiremock::MockServer::start().await;
    slow_build().mount(&alone).await;
    crate::common::mount_fixture(&alone).await;
    let base = start(&alone.uri(), &github.uri(), None).await;
    let one = scan_through(&base, "bkua_team").await;
    let one_requests = alone.received_requests().await.expect("recorded").len();

    let buildkite = wiremock::MockServer::start().await;
    slow_build().mount(&buildkite).await;
    crate::common::mount_fixture(&buildkite).await;
    let base = start(&buildkite.uri(), &github.uri(), None).await;
    let answers =
        futures::future::join_all((0..20).map(|_| scan_through(&base, "bkua_team"))).await;
    let sent = buildkite.received_requests().await.expect("recorded").len();
    assert_eq!(
        sent, one_requests,
        "twenty callers cost one scan's requests"
    );
    let joined = answers
        .iter()
        .filter(|a| a["stats"]["joined"] == true)
        .count();
    assert_eq!(joined, 19);
    for answer in &answers {
        assert_eq!(failure_keys(answer), failure_keys(&one));
        assert_eq!(
            answer["stats"]["api_requests"],
            one["stats"]["api_requests"]
        );
    }
    let other = scan_through(&base, "bkua_someone_else").await;
    assert_ne!(other["stats"]["joined"], true, "another token never joins");
}

/// A router configured for `0.0.0.0` (as the Dockerfile runs it) still checks `Host`: loopback
/// names pass, listed hosts pass in addition, foreign ones (DNS rebinding) are refused.
#[tokio::test]
async fn host_check_on_a_public_bind_keeps_loopback_and_adds_listed_hosts() {
    let buildkite = crate::common::fixture_server().await;
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    for allowed_hosts in [vec![], vec!["ciwatch".to_string()]] {
        let options = HttpOptions {
            bind: "0.0.0.0:8080".parse().expect("address"),
            token: Some(Secret::new(ENDPOINT_TOKEN)),
            allowed_hosts: allowed_hosts.clone(),
            allowed_origins: vec![],
            webhook_token: None,
            watch_interval: None,
        };
        let base =
            crate::common::serve_sidecar(crate::common::settings(&buildkite.uri()), &options).await;
        let status = |host: &'static str| {
            let initialize = initialize.clone();
            let mcp = format!("{base}/mcp");
            async move {
                reqwest::Client::new()
                    .post(mcp)
                    .bearer_auth(ENDPOINT_TOKEN)
                    .header("host", host)
                    .header("accept", "application/json, text/event-stream")
                    .json(&initialize)
                    .send()
                    .await
                    .expect("answered")
                    .status()
                    .as_u16()
            }
        };
        assert_eq!(status("127.0.0.1:8080").await, 200, "{allowed_hosts:?}");
        assert_eq!(status("localhost:8080").await, 200, "{allowed_hosts:?}");
        assert_ne!(
            status("attacker.example:8080").await,
            200,
            "{allowed_hosts:?}"
        );
        let listed = status("ciwatch:8080").await;
        if allowed_hosts.is_empty() {
            assert_ne!(listed, 200);
        } else {
            assert_eq!(listed, 200);
        }
    }
}

/// A 401 names where the rejected token came from: the header an HTTP caller sent, not the
/// server's variable.
#[tokio::test]
async fn a_rejected_token_is_named_by_the_header_the_caller_sent() {
    let buildkite = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::any())
        .respond_with(
            wiremock::ResponseTemplate::new(401)
                .set_body_json(json!({"message": "Authentication required"})),
        )
        .mount(&buildkite)
        .await;
    let github = crate::common::github_server().await;
    let base = start(&buildkite.uri(), &github.uri(), None).await;
    let mut headers = HashMap::new();
    headers.insert(
        axum::http::HeaderName::from_static("x-buildkite-token"),
        axum::http::HeaderValue::from_static("bkua_revoked"),
    );
    let config = StreamableHttpClientTransportConfig::with_uri(format!("{base}/mcp"))
        .custom_headers(headers);
    let client =
        ().serve(StreamableHttpClientTransport::from_config(config))
            .await
            .expect("initialize over HTTP");
    let result = client
        .call_tool(
            CallToolRequestParams::new("ciwatch_scan_build").with_arguments(
                json!({"build_id_or_url": "65099"})
                    .as_object()
                    .cloned()
                    .expect("object"),
            ),
        )
        .await
        .expect("tools/call");
    assert_eq!(result.is_error, Some(true), "{result:?}");
    let text = format!("{:?}", result.content);
    assert!(
        text.contains("rejected the token of the X-Buildkite-Token header (401)"),
        "{text}"
    );
    assert!(!text.contains("BUILDKITE_TOKEN"), "{text}");
    assert!(!text.contains("bkua_revoked"), "{text}");
    client.cancel().await.expect("close");
}

/// The sidecar started with each documented way to turn off the AMD comparison (`none`, `off`)
/// looks nothing up there, and with the default it does; `--no-cache` beside a Redis URL runs
/// without any store (no warning of a Redis that cannot be reached).
#[tokio::test]
async fn the_sidecar_started_with_each_way_to_turn_off_the_amd_comparison_and_the_store() {
    let urls = ciwatch_mcp::demo::start().await.expect("demo server");
    for (compare, looked_up) in [("none", false), ("off", false), ("vllm/amd-ci", true)] {
        let mut settings = crate::common::settings("http://127.0.0.1:9");
        settings.buildkite_api_url = urls.buildkite.clone();
        settings.github_api_url = urls.github.clone();
        settings.nightly_window_hours = u32::MAX / 3600;
        settings.compare_pipeline = compare.to_string();
        settings.no_cache = true;
        settings.store_url = Some(Secret::new("redis://127.0.0.1:9/0"));
        let client = crate::common::sidecar_client(settings).await;
        let result = client
            .call_tool(
                CallToolRequestParams::new("ciwatch_scan_build").with_arguments(
                    json!({"build_id_or_url": "65099", "detail_level": "full", "max_failures": 1})
                        .as_object()
                        .cloned()
                        .expect("object"),
                ),
            )
            .await
            .expect("tools/call");
        assert_ne!(result.is_error, Some(true), "{compare}: {result:?}");
        let structured = result.structured_content.expect("structured");
        let requests = structured["stats"]["compared_pipeline_requests"]
            .as_u64()
            .expect("stats");
        assert_eq!(requests > 0, looked_up, "{compare}: {requests} requests");
        let warnings = structured["warnings"].to_string();
        assert!(!warnings.contains("shared store"), "{warnings}");
        client.cancel().await.expect("close");
    }
}
