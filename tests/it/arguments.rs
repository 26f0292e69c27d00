//! Every whole-number argument of every tool, read from `tools/list` (so a new one is covered
//! without editing this file), must declare its limits, and each value past them (0, -1,
//! limit+1, u32::MAX, u64::MAX, 10^12) must come back as an `isError` naming those limits, without
//! a single Buildkite request.

use serde_json::{json, Map, Value};
use wiremock::MockServer;

/// A value for each required argument, so the call reaches its numbers.
fn required_value(name: &str) -> Value {
    match name {
        "build_id_or_url" => json!("65099"),
        "job_name_or_id" => json!("examples"),
        "test_nodeid" => json!("tests/test_example.py::test_one"),
        other => panic!("give a value for the required argument {other}"),
    }
}

fn is_integer(schema: &Value) -> bool {
    match &schema["type"] {
        Value::String(t) => t == "integer",
        Value::Array(types) => types.iter().any(|t| t == "integer"),
        _ => false,
    }
}

#[tokio::test]
async fn every_number_past_its_limits_is_refused_before_any_request() {
    let buildkite = MockServer::start().await;
    let client =
        crate::mcp_e2e::start_server(&format!("{}/v2", buildkite.uri()), Some("bkua_numbers"))
            .await;
    let tools = client.list_all_tools().await.expect("tools/list");
    let mut checked = 0;
    for tool in &tools {
        let schema = tool.input_schema.as_ref();
        let properties = schema
            .get("properties")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        if !properties.values().any(is_integer) {
            continue;
        }
        let mut base = Map::new();
        for name in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            base.insert(name.to_string(), required_value(name));
        }
        for (name, property) in properties.iter().filter(|(_, p)| is_integer(p)) {
            let min = property["minimum"].as_u64().unwrap_or(0);
            let max = property["maximum"]
                .as_u64()
                .unwrap_or_else(|| panic!("{}.{name} declares no maximum", tool.name));
            let values = [
                json!(0),
                json!(-1),
                json!(max + 1),
                json!(u32::MAX),
                json!(u64::MAX),
                json!(1_000_000_000_000u64),
            ];
            let past = values.into_iter().filter(|v| match v.as_u64() {
                Some(n) => n < min || n > max,
                None => true,
            });
            for value in past {
                let mut arguments = base.clone();
                arguments.insert(name.clone(), value.clone());
                let result = client
                    .call_tool(
                        rmcp::model::CallToolRequestParams::new(tool.name.clone())
                            .with_arguments(arguments),
                    )
                    .await
                    .expect("tools/call answered");
                let text: String = result
                    .content
                    .iter()
                    .filter_map(|c| c.as_text().map(|t| t.text.clone()))
                    .collect();
                assert_eq!(
                    result.is_error,
                    Some(true),
                    "{}.{name}={value}: {text}",
                    tool.name
                );
                assert!(
                    text.contains(name.as_str()) && text.contains(&format!("from {min} to {max}")),
                    "{}.{name}={value}: {text}",
                    tool.name
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 50, "only {checked} refusals checked");
    let requests = buildkite.received_requests().await.expect("recorded");
    assert!(
        requests.is_empty(),
        "{} requests: {:?}",
        requests.len(),
        requests.first().map(|r| r.url.to_string())
    );
    let _ = client.cancel().await;
}
