//! The morning answer sized for an assistant: the default (`summary`) result of a whole night,
//! structured content and text together, within 35,000 characters, every failure named.

use crate::mcp_e2e::{call, start_server};
use serde_json::{json, Value};

/// 10k tokens at a conservative 3.5 characters per token.
const MORNING_CHARS: usize = 35_000;

fn size(result: &rmcp::model::CallToolResult) -> (usize, usize) {
    let json = serde_json::to_string(&result.structured_content).expect("json");
    let text: usize = result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.chars().count()))
        .sum();
    (json.chars().count(), text)
}

#[tokio::test]
async fn the_fixture_nightly_at_summary_fits_the_morning_budget() {
    let server = crate::common::fixture_server().await;
    let client = start_server(&format!("{}/v2", server.uri()), Some("bkua_compact")).await;
    let result = call(
        &client,
        "ciwatch_scan_build",
        json!({"build_id_or_url": "65099", "compare_nightlies": 0}),
    )
    .await;
    let (json_chars, text_chars) = size(&result);
    let structured: Value = result.structured_content.clone().expect("structured");
    let failures = structured["failures"].as_array().expect("failures");
    eprintln!(
        "summary of 65099: {} failures, {json_chars} characters of JSON, {text_chars} of text",
        failures.len()
    );
    for (name, value) in structured.as_object().expect("object") {
        eprintln!("  {name}: {}", value.to_string().chars().count());
    }
    if std::env::var_os("SHOW_SAMPLE").is_some() {
        for name in ["failures", "causes", "jobs"] {
            eprintln!("{name}[0]: {}", structured[name][0]);
        }
    }
    assert_eq!(structured["page"]["next_offset"], Value::Null, "not paged");
    assert_eq!(
        failures.len(),
        structured["total_failures"].as_u64().expect("total") as usize
    );
    assert!(
        json_chars + text_chars <= MORNING_CHARS,
        "{json_chars} + {text_chars}"
    );
    assert_text_names_everything(&result);
    let _ = client.cancel().await;
}

/// The text content alone (what clients that drop structured content show) names every
/// failure's test and job and every cause, and opens with whether the answer is whole.
fn assert_text_names_everything(result: &rmcp::model::CallToolResult) {
    let text: String = result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect();
    assert!(
        text.starts_with("Complete") || text.starts_with("INCOMPLETE"),
        "{}",
        &text[..200.min(text.len())]
    );
    let structured = result.structured_content.as_ref().expect("structured");
    for failure in structured["failures"].as_array().expect("failures") {
        for field in ["test_name", "job_name"] {
            let name = failure["test_failure"][field].as_str().expect(field);
            assert!(text.contains(name), "{field} {name} not in the text");
        }
        let key = failure["failure_key"].as_str().expect("key");
        assert!(text.contains(key), "{key} not in the text");
    }
    for cause in structured["causes"].as_array().expect("causes") {
        let id = cause["cause_id"].as_str().expect("cause_id");
        assert!(text.contains(id), "cause {id} not in the text");
    }
}

/// A night of 40 failures in 8 jobs, each with a 30-frame traceback: the default answer names
/// every one within the morning budget.
#[tokio::test]
async fn a_forty_failure_night_at_summary_fits_the_morning_budget() {
    let server = crate::result_cap::bad_night(5).await;
    let client = start_server(&format!("{}/v2", server.uri()), Some("bkua_compact40")).await;
    let result = call(
        &client,
        "ciwatch_scan_build",
        json!({"build_id_or_url": "65099", "compare_nightlies": 0}),
    )
    .await;
    let (json_chars, text_chars) = size(&result);
    let structured: Value = result.structured_content.clone().expect("structured");
    let failures = structured["failures"].as_array().expect("failures");
    eprintln!("summary of 40 failures: {json_chars} characters of JSON, {text_chars} of text");
    assert_eq!(failures.len(), 40);
    assert_eq!(structured["total_failures"], 40);
    assert!(
        json_chars + text_chars <= MORNING_CHARS,
        "{json_chars} + {text_chars}"
    );
    assert_text_names_everything(&result);
    let _ = client.cancel().await;
}
