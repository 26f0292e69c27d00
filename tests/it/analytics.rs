//! Test Engine lookups against wiremock: the documented list-tests endpoint, paginated, with
//! `label=flaky`; exact-name preference; 403 without read_suites.

use ciwatch_mcp::watch;
use serde_json::{json, Value};
use wiremock::matchers::{method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TESTS: &str = "/v2/analytics/organizations/vllm/suites/ci-1/tests";

/// A suite test in the documented shape.
fn suite_test(id: &str, file: &str, name: &str, line: u32) -> Value {
    json!({
        "id": id,
        "url": format!("https://api.buildkite.com/v2/analytics/organizations/vllm/suites/ci-1/tests/{id}"),
        "web_url": format!("https://buildkite.com/organizations/vllm/analytics/suites/ci-1/tests/{id}"),
        "scope": file,
        "name": name,
        "location": format!("{file}:{line}"),
        "file_name": file,
    })
}

async fn suite() -> MockServer {
    let server = MockServer::start().await;
    let page_two = format!(
        "<{}{TESTS}?per_page=100&page=2>; rel=\"next\"",
        server.uri()
    );
    let first: Vec<Value> = (0..100)
        .map(|i| {
            suite_test(
                &format!("0191-{i:04}"),
                "tests/kernels/test_noise.py",
                &format!("test_noise[{i}]"),
                10,
            )
        })
        .collect();
    Mock::given(method("GET"))
        .and(path(TESTS))
        .and(query_param_is_missing("label"))
        .and(query_param_is_missing("page"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("link", page_two.as_str())
                .set_body_json(first),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(TESTS))
        .and(query_param("page", "2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            suite_test(
                "a1",
                "tests/v1/distributed/test_dbo.py",
                "test_dbo_dp_ep_gsm8k[deepep_low_latency]",
                40
            ),
            suite_test(
                "a2",
                "tests/v1/distributed/test_dbo.py",
                "test_dbo_dp_ep_gsm8k[deepep_high_throughput]",
                40
            ),
            suite_test(
                "b1",
                "tests/v1/engine/test_async_llm.py",
                "test_abort[engine_args0-Hello my name is Robert and-RequestOutputKind.DELTA]",
                180
            ),
        ])))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(TESTS))
        .and(query_param("label", "flaky"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([suite_test(
            "b1",
            "tests/v1/engine/test_async_llm.py",
            "test_abort[engine_args0-Hello my name is Robert and-RequestOutputKind.DELTA]",
            180
        )])))
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn bulk_lookup_across_pages_with_flaky_labels() {
    let server = suite().await;
    let client = crate::common::client(&crate::common::settings(&server.uri()));
    let ids: Vec<String> = [
        "tests/v1/distributed/test_dbo.py::test_dbo_dp_ep_gsm8k[deepep_low_latency]",
        "v1/engine/test_async_llm.py::test_abort[engine_args0-Hello my name is Robert and-RequestOutputKind.DELTA]",
        "tests/v1/distributed/test_dbo.py::test_dbo_dp_ep_gsm8k",
        "tests/lora/test_qwenvl.py::test_qwen2vl_lora_beam_search",
    ]
    .map(String::from)
    .to_vec();
    let result = watch::analytics_bulk(&client, "vllm", "ci-1", &ids)
        .await
        .expect("lookup");
    assert_eq!(result.suite_tests_read, 103);
    assert_eq!(result.total_checked, 4);
    let found: Vec<(&str, bool)> = result
        .results
        .iter()
        .map(|r| (r.test_id.as_str(), r.is_flaky))
        .collect();
    assert_eq!(found, vec![("a1", false), ("b1", true)]);
    assert_eq!(
        result.not_found,
        vec!["tests/lora/test_qwenvl.py::test_qwen2vl_lora_beam_search".to_string()]
    );
    assert_eq!(
        result.multiple_matches["tests/v1/distributed/test_dbo.py::test_dbo_dp_ep_gsm8k"].len(),
        2
    );
    assert_eq!(
        server.received_requests().await.expect("recorded").len(),
        3,
        "two pages and the flaky list"
    );
}

#[tokio::test]
async fn missing_read_suites_scope_is_explained() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(403).set_body_raw(
            include_str!("../../wiremock-fixtures/errors/403_forbidden.json"),
            "application/json",
        ))
        .mount(&server)
        .await;
    let client = crate::common::client(&crate::common::settings(&server.uri()));
    let error = watch::analytics_bulk(&client, "vllm", "ci-1", &["a.py::t".to_string()])
        .await
        .expect_err("403");
    assert!(error.to_string().contains("read_suites"), "{error}");
}

/// Test Engine's text is written by anyone who names a test: through the MCP tool, hidden
/// characters in it never reach the caller, in a match or in an error naming candidates.
#[tokio::test]
async fn test_engine_text_is_sanitised_in_answers_and_errors() {
    let server = MockServer::start().await;
    let hidden = "\u{200b}\u{202e}\u{e0041}";
    let tests = json!([
        suite_test(
            "h1",
            "tests/test_hidden.py",
            &format!("test_one{hidden}"),
            3
        ),
        suite_test(
            "h2",
            "tests/test_twice.py",
            &format!("test_twice[a]{hidden}"),
            4
        ),
        suite_test(
            "h3",
            "tests/test_twice.py",
            &format!("test_twice[b]{hidden}"),
            5
        ),
    ]);
    Mock::given(method("GET"))
        .and(path(TESTS))
        .respond_with(ResponseTemplate::new(200).set_body_json(tests))
        .mount(&server)
        .await;
    let client =
        crate::mcp_e2e::start_server(&format!("{}/v2", server.uri()), Some("bkua_te")).await;
    for name in [
        "tests/test_hidden.py::test_one",
        "tests/test_twice.py::test_twice",
    ] {
        let result = crate::mcp_e2e::call(
            &client,
            "ciwatch_test_history_analytics",
            json!({"test_name_or_nodeid": name, "suite_slug": "ci-1"}),
        )
        .await;
        let texts: String = result
            .content
            .iter()
            .filter_map(|c| c.as_text().map(|t| t.text.clone()))
            .collect();
        let shown = format!(
            "{} {texts}",
            serde_json::to_string(&result.structured_content).expect("json")
        );
        assert!(shown.contains("test_"), "{shown}");
        assert!(
            !hidden.chars().any(|c| shown.contains(c)),
            "{name}: hidden characters in {shown:?}"
        );
    }
    let _ = client.cancel().await;
}
