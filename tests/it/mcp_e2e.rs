//! Drives the real binary over stdio with rmcp's MCP client: initialize, tools/list, tools/call
//! against a wiremock Buildkite holding the fixture nightly.

use rmcp::model::CallToolRequestParams;
use rmcp::service::RunningService;
use rmcp::transport::{ConfigureCommandExt, TokioChildProcess};
use rmcp::{RoleClient, ServiceExt};
use serde_json::{json, Value};

pub(crate) async fn start_server(
    api_url: &str,
    token: Option<&str>,
) -> RunningService<RoleClient, ()> {
    let github = crate::common::github_server().await;
    let github_url = github.uri();
    // The mock lives as long as the test process; the server only needs its address.
    std::mem::forget(github);
    let command =
        tokio::process::Command::new(env!("CARGO_BIN_EXE_ciwatch-mcp")).configure(|cmd| {
            cmd.env_remove("BUILDKITE_TOKEN")
                .env_remove("BUILDKITE_API_TOKEN")
                .env("BUILDKITE_API_URL", api_url)
                .env("GITHUB_API_URL", &github_url)
                .env_remove("GITHUB_TOKEN")
                .env_remove("GH_TOKEN")
                .env("CIWATCH_REQUESTS_PER_MINUTE", "6000")
                .env("RUST_LOG", "warn")
                .env("CIWATCH_NO_CACHE", "true");
            if let Some(token) = token {
                cmd.env("BUILDKITE_TOKEN", token);
            }
        });
    let transport = TokioChildProcess::new(command).expect("server binary starts");
    ().serve(transport).await.expect("MCP initialize succeeds")
}

pub(crate) async fn call(
    client: &RunningService<RoleClient, ()>,
    tool: &'static str,
    arguments: Value,
) -> rmcp::model::CallToolResult {
    let Value::Object(arguments) = arguments else {
        panic!("arguments must be an object")
    };
    client
        .call_tool(CallToolRequestParams::new(tool).with_arguments(arguments))
        .await
        .expect("tools/call answered")
}

#[tokio::test]
async fn lists_tools_and_scans_the_fixture_build() {
    let server = crate::common::fixture_server().await;
    let client = start_server(&format!("{}/v2", server.uri()), Some("bkua_e2e_secret")).await;

    let info = client.peer_info().expect("server info after initialize");
    assert_eq!(
        info.server_info.as_ref().map(|s| s.name.as_str()),
        Some(ciwatch_mcp::mcp::SERVER_NAME)
    );

    let tools = client.list_all_tools().await.expect("tools/list");
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    for expected in [
        "ciwatch_scan_build",
        "ciwatch_scan_latest_nightly",
        "ciwatch_render",
        "ciwatch_test_history",
        "ciwatch_get_job_test_failures",
        "ciwatch_get_job_log",
        "ciwatch_analyze_main_branch",
        "ciwatch_test_history_analytics",
        "ciwatch_get_test_analytics_bulk",
    ] {
        assert!(names.contains(&expected), "{names:?}");
    }
    let valid = regex::Regex::new(r"^[a-zA-Z0-9_-]{1,64}$").expect("valid");
    for tool in &tools {
        assert!(
            valid.is_match(&tool.name),
            "{} is not a valid tool name",
            tool.name
        );
        assert!(
            tool.output_schema.is_some(),
            "{} has no output schema",
            tool.name
        );
        assert_eq!(
            tool.annotations.as_ref().and_then(|a| a.read_only_hint),
            Some(true),
            "{}",
            tool.name
        );
    }

    let result = call(&client, "ciwatch_scan_build", json!({"build_id_or_url": "https://buildkite.com/vllm/ci/builds/65099", "detail_level": "full"})).await;
    assert_ne!(result.is_error, Some(true), "{result:?}");
    let structured = result
        .structured_content
        .clone()
        .expect("structured content");
    assert_eq!(structured["build_info"]["build_number"], "65099");
    assert_eq!(structured["jobs"].as_array().map(Vec::len), Some(24));
    let text: usize = result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.chars().count()))
        .sum();
    let size = serde_json::to_string(&structured)
        .expect("json")
        .chars()
        .count()
        + text;
    assert!(
        size < 100_000,
        "a full-detail scan of the nightly is {size} characters"
    );
    assert_eq!(
        structured["failures"].as_array().map(Vec::len),
        Some(31),
        "nothing cut at this size"
    );
    let failures = structured["failures"].as_array().expect("failures");
    let dbo = failures
        .iter()
        .find(|f| {
            f["test_failure"]["test_name"]
                == "v1/distributed/test_dbo.py::test_dbo_dp_ep_gsm8k[deepep_low_latency]"
        })
        .expect("dbo failure present");
    assert_eq!(
        dbo["test_failure"]["error_message"],
        "AssertionError: DBO+DP+EP accuracy too low (deepep_low_latency): 0.590 < 0.620"
    );
    // The rendered report is the first detail given up for size; when it goes, it is said.
    match structured["daily_findings_text"].as_str() {
        Some(report) => assert!(report.contains("## Hard Failures (blocking builds)")),
        None => assert!(
            structured["detail_shed"]
                .to_string()
                .contains("daily_findings_text"),
            "{}",
            structured["detail_shed"]
        ),
    }
    assert!(!structured.to_string().contains("bkua_e2e_secret"));
    // Three issue searches and one CODEOWNERS read, however many failures.
    assert_eq!(structured["stats"]["github_requests"], 4);
    assert!(failures.iter().any(|f| f["category"] == "KNOWN_TRACKED"));
    let hybrid_owners = failures
        .iter()
        .find(|f| {
            f["test_failure"]["test_name"]
                .as_str()
                .unwrap_or_default()
                .starts_with("kernels/moe/")
        })
        .map(|f| f["owners"].clone())
        .expect("kernels failure");
    assert!(
        hybrid_owners
            .as_array()
            .is_some_and(|o| o.iter().any(|x| x == "@mgoin")),
        "{hybrid_owners}"
    );

    // Render a minimal-detail result: the hard/soft split survives.
    let minimal = call(
        &client,
        "ciwatch_scan_build",
        json!({"build_id_or_url": "65099", "detail_level": "minimal"}),
    )
    .await;
    let scan = minimal.structured_content.expect("structured");
    assert_eq!(
        scan["stats"]["github_requests"], 0,
        "issues and CODEOWNERS come from the cache"
    );
    let rendered = call(
        &client,
        "ciwatch_render",
        json!({"scan_result": scan, "format": "daily_findings"}),
    )
    .await;
    let text = rendered.structured_content.expect("structured")["text"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        text.contains("## Soft Failures (optional tests, allowed to fail) (10)"),
        "{text}"
    );
    let standup = call(
        &client,
        "ciwatch_render",
        json!({"scan_result": scan, "format": "standup"}),
    )
    .await;
    assert!(standup.structured_content.expect("structured")["text"]
        .as_str()
        .unwrap_or_default()
        .starts_with("Nightly build [65099]"));

    client.cancel().await.expect("clean shutdown");
}

#[tokio::test]
async fn bad_input_gives_is_error_results_with_advice() {
    let server = crate::common::fixture_server().await;
    let client = start_server(&format!("{}/v2", server.uri()), Some("bkua_e2e_secret")).await;

    let unknown = call(
        &client,
        "ciwatch_scan_build",
        json!({"build_id_or_url": "424242"}),
    )
    .await;
    assert_eq!(unknown.is_error, Some(true));
    assert!(format!("{:?}", unknown.content).contains("build 424242 not found in vllm/ci"));

    let malformed = call(
        &client,
        "ciwatch_scan_build",
        json!({"build_id_or_url": "https://example.com/x"}),
    )
    .await;
    assert_eq!(malformed.is_error, Some(true));
    assert!(format!("{:?}", malformed.content).contains("give a build number"));

    let bad_level = client
        .call_tool(
            CallToolRequestParams::new("ciwatch_scan_build").with_arguments(
                json!({"build_id_or_url": "65099", "detail_level": "verbose"})
                    .as_object()
                    .cloned()
                    .expect("object"),
            ),
        )
        .await;
    let rejected = match bad_level {
        Err(_) => true,
        Ok(result) => result.is_error == Some(true),
    };
    assert!(rejected, "an unknown detail_level is rejected");

    let render = call(
        &client,
        "ciwatch_render",
        json!({"scan_result": {"nope": 1}}),
    )
    .await;
    assert_eq!(render.is_error, Some(true));
    client.cancel().await.expect("clean shutdown");
}

#[tokio::test]
async fn missing_token_is_reported_by_the_call_not_at_start_up() {
    let client = start_server("http://127.0.0.1:9/v2", None).await;
    let tools = client
        .list_all_tools()
        .await
        .expect("tools/list works without a token");
    assert!(!tools.is_empty());
    let result = call(&client, "ciwatch_scan_latest_nightly", json!({})).await;
    assert_eq!(result.is_error, Some(true));
    assert!(format!("{:?}", result.content).contains("BUILDKITE_TOKEN is not set"));
    client.cancel().await.expect("clean shutdown");
}
