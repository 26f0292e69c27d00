//! Trust at the boundary, through the real binary over stdio: bad input is refused with a
//! message that says what to do and without a request; the server keeps answering; and the
//! tokens given to it appear in no result, message or stderr line, even at `RUST_LOG=debug`.

use rmcp::model::CallToolRequestParams;
use rmcp::transport::{ConfigureCommandExt, TokioChildProcess};
use rmcp::ServiceExt;
use serde_json::{json, Value};
use tokio::io::AsyncReadExt;

const BUILDKITE_CANARY: &str = "bkua_canary_0123456789abcdef";
const GITHUB_CANARY: &str = "ghp_canary_0123456789abcdef";

#[tokio::test]
async fn bad_input_is_refused_without_a_request_and_no_token_is_ever_printed() {
    let buildkite = crate::common::fixture_server().await;
    let github = crate::common::github_server().await;
    let api_url = format!("{}/v2", buildkite.uri());
    let github_url = github.uri();
    let command =
        tokio::process::Command::new(env!("CARGO_BIN_EXE_ciwatch-mcp")).configure(|cmd| {
            cmd.env("BUILDKITE_TOKEN", BUILDKITE_CANARY)
                .env_remove("BUILDKITE_API_TOKEN")
                .env("GITHUB_TOKEN", GITHUB_CANARY)
                .env("BUILDKITE_API_URL", &api_url)
                .env("GITHUB_API_URL", &github_url)
                .env("CIWATCH_REQUESTS_PER_MINUTE", "6000")
                .env("CIWATCH_NO_CACHE", "1")
                .env("RUST_LOG", "debug");
        });
    let (transport, stderr) = TokioChildProcess::builder(command)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("server binary starts");
    let mut stderr = stderr.expect("stderr piped");
    let stderr_text = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text).await;
        text
    });
    let client = ().serve(transport).await.expect("initialize");

    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "ciwatch_scan_build",
            json!({"build_id_or_url": "https://evilbuildkite.com/vllm/ci/builds/1"}),
            "not a Buildkite host",
        ),
        (
            "ciwatch_scan_build",
            json!({"build_id_or_url": "https://buildkite.com.evil.example/vllm/ci/builds/1"}),
            "not a Buildkite host",
        ),
        (
            "ciwatch_scan_build",
            json!({"build_id_or_url": "65099", "repo": "vllm-project/vllm repo:other/x"}),
            "give owner/name",
        ),
        (
            "ciwatch_scan_build",
            json!({"build_id_or_url": "65099", "pipeline": "vllm/ci/../x"}),
            "org/pipeline",
        ),
        (
            "ciwatch_scan_build",
            json!({"build_id_or_url": "65099", "compare_nightlies": 1000}),
            "from 0 to 14",
        ),
        (
            "ciwatch_scan_latest_nightly",
            json!({"repo": "../../etc"}),
            "give owner/name",
        ),
        (
            "ciwatch_test_history",
            json!({"test_nodeid": ""}),
            "give a pytest node id",
        ),
        (
            "ciwatch_test_history",
            json!({"test_nodeid": "../../../../etc/passwd::x"}),
            "give a pytest node id",
        ),
        (
            "ciwatch_test_history",
            json!({"test_nodeid": "/etc/passwd.py::x"}),
            "give a pytest node id",
        ),
        (
            "ciwatch_analyze_main_branch",
            json!({"repo": "a/b/c"}),
            "give owner/name",
        ),
        (
            "ciwatch_get_job_test_failures",
            json!({"build_id_or_url": "ftp://buildkite.com/a/b/builds/1", "job_name_or_id": "x"}),
            "give a build number",
        ),
    ];
    for (tool, arguments, advice) in cases {
        let Value::Object(arguments) = arguments.clone() else {
            panic!("object")
        };
        let result = client
            .call_tool(CallToolRequestParams::new(tool).with_arguments(arguments.clone()))
            .await
            .expect("answered");
        assert_eq!(result.is_error, Some(true), "{tool} {arguments:?}");
        let text = format!("{:?}", result.content);
        assert!(text.contains(advice), "{tool} {arguments:?}: {text}");
    }
    assert!(
        buildkite
            .received_requests()
            .await
            .expect("recorded")
            .is_empty(),
        "invalid input makes no request"
    );

    // An absurd window is answered (clamped, with a warning), not left hanging.
    wiremock::Mock::given(wiremock::matchers::method("GET"))
        .and(wiremock::matchers::path(
            "/v2/organizations/vllm/pipelines/ci/builds",
        ))
        .respond_with(wiremock::ResponseTemplate::new(200).set_body_json(json!([])))
        .mount(&buildkite)
        .await;
    let Value::Object(arguments) = json!({"hours_lookback": 4_294_967_295u64}) else {
        panic!("object")
    };
    let wide = client
        .call_tool(
            CallToolRequestParams::new("ciwatch_analyze_main_branch").with_arguments(arguments),
        )
        .await
        .expect("answered");
    assert!(
        format!("{wide:?}").contains("hours_lookback 4294967295 is outside"),
        "{wide:?}"
    );

    // Real work and error paths, so tokens would have had every chance to leak.
    let Value::Object(arguments) = json!({"build_id_or_url": "65099", "detail_level": "full"})
    else {
        panic!("object")
    };
    let scan = client
        .call_tool(CallToolRequestParams::new("ciwatch_scan_build").with_arguments(arguments))
        .await
        .expect("answered");
    assert_ne!(scan.is_error, Some(true));
    let Value::Object(arguments) = json!({"build_id_or_url": "424242"}) else {
        panic!("object")
    };
    let missing = client
        .call_tool(CallToolRequestParams::new("ciwatch_scan_build").with_arguments(arguments))
        .await
        .expect("answered");
    assert_eq!(missing.is_error, Some(true));
    let tools = client.list_all_tools().await.expect("still answering");
    assert_eq!(tools.len(), 11);

    let everything = format!("{scan:?}{missing:?}{wide:?}");
    client.cancel().await.expect("close");
    let stderr = stderr_text.await.expect("stderr read");
    assert!(stderr.contains("DEBUG"), "debug logging was on");
    for canary in [BUILDKITE_CANARY, GITHUB_CANARY] {
        assert!(!everything.contains(canary), "a result carries {canary}");
        assert!(!stderr.contains(canary), "stderr carries {canary}");
    }
    // The mock did receive the token: it was used, just never shown.
    let sent = buildkite.received_requests().await.expect("recorded");
    assert!(sent.iter().any(
        |r| r.headers.get("authorization").and_then(|v| v.to_str().ok())
            == Some(&format!("Bearer {BUILDKITE_CANARY}"))
    ));
}
