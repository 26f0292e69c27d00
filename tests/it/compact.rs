//! The morning answer sized for each reader: the default (`summary`) result of a whole night,
//! its structured content (what Claude Code gives the model) and its text (what clients without
//! structured output show) each within 35,000 characters, every failure named.

use crate::mcp_e2e::{call, start_server};
use serde_json::{json, Value};

/// 10k tokens at a conservative 3.5 characters per token.
const MORNING_CHARS: usize = 35_000;

/// Characters of a result's structured content and of its text content.
pub(crate) fn size(result: &rmcp::model::CallToolResult) -> (usize, usize) {
    let json = serde_json::to_string(&result.structured_content).expect("json");
    let text: usize = result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.chars().count()))
        .sum();
    (json.chars().count(), text)
}

/// The default scan of build 65099: the result, its structured content and its two sizes.
async fn morning_scan(
    client: &rmcp::service::RunningService<rmcp::RoleClient, ()>,
) -> (rmcp::model::CallToolResult, Value, usize, usize) {
    let result = call(
        client,
        "ciwatch_scan_build",
        json!({"build_id_or_url": "65099", "compare_nightlies": 0}),
    )
    .await;
    let (json_chars, text_chars) = size(&result);
    let structured = result.structured_content.clone().expect("structured");
    (result, structured, json_chars, text_chars)
}

#[tokio::test]
async fn the_fixture_nightly_at_summary_fits_the_morning_budget() {
    let server = crate::common::fixture_server().await;
    let client = start_server(&format!("{}/v2", server.uri()), Some("bkua_compact")).await;
    // Every tool declares the cap its results keep to, for clients that read it.
    for tool in client.list_all_tools().await.expect("tools/list") {
        let declared = tool
            .meta
            .as_ref()
            .and_then(|m| m.0.get("anthropic/maxResultSizeChars"))
            .and_then(Value::as_u64);
        assert_eq!(declared, Some(100_000), "{}", tool.name);
    }
    let (result, structured, json_chars, text_chars) = morning_scan(&client).await;
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
    assert!(json_chars <= MORNING_CHARS, "{json_chars}");
    assert!(text_chars <= MORNING_CHARS, "{text_chars}");
    assert_text_names_everything(&result);
    let _ = client.cancel().await;
}

/// Every count the text gives is of the whole build: the standup line's total, its categories
/// (which add up to it), and the causes line's causes, failures and jobs.
fn assert_counts_are_the_builds(result: &rmcp::model::CallToolResult, structured: &Value) {
    let text: String = result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect();
    let failures = structured["failures"].as_array().expect("failures");
    let total = failures.len();
    assert_eq!(structured["total_failures"], total);
    assert!(
        text.contains(&format!("with {total} unique failures")),
        "{text}"
    );
    let by_category = structured["counts"]["by_category"]
        .as_array()
        .expect("counts");
    let mut summed = 0;
    for count in by_category {
        let (category, n) = (&count["category"], count["failures"].as_u64().expect("n"));
        let held = failures
            .iter()
            .filter(|f| &f["category"] == category)
            .count();
        assert_eq!(n as usize, held, "{category}");
        let category = category.as_str().expect("category");
        assert!(
            text.contains(&format!("{n} {category}")),
            "{category}: {text}"
        );
        summed += held;
    }
    assert_eq!(summed, total, "the categories add up to the total");
    let causes = structured["causes"].as_array().expect("causes");
    let members: u64 = causes
        .iter()
        .map(|c| c["failure_count"].as_u64().expect("count"))
        .sum();
    assert_eq!(members as usize, total);
    let jobs: std::collections::HashSet<&str> = failures
        .iter()
        .filter_map(|f| f["test_failure"]["job_name"].as_str())
        .collect();
    let line = format!(
        "{} causes across {total} failures in {} jobs",
        causes.len(),
        jobs.len()
    );
    assert!(text.contains(&line), "{line}: {text}");
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
        // A failure's test names it (a job-level failure's "test" is its job).
        let name = failure["test_failure"]["test_name"].as_str().expect("test");
        assert!(text.contains(name), "{name} not in the text");
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
    let (result, structured, json_chars, text_chars) = morning_scan(&client).await;
    let failures = structured["failures"].as_array().expect("failures");
    eprintln!("summary of 40 failures: {json_chars} characters of JSON, {text_chars} of text");
    assert_eq!(failures.len(), 40);
    assert_eq!(structured["total_failures"], 40);
    assert!(json_chars <= MORNING_CHARS, "{json_chars}");
    assert!(text_chars <= MORNING_CHARS, "{text_chars}");
    assert_text_names_everything(&result);
    assert!(
        failures[0]["test_failure"]["stack_trace"].is_null(),
        "on demand"
    );

    // Details on demand, by id: one failure in full, then one cause with every member.
    let key = failures[0]["failure_key"].as_str().expect("key");
    let one = call(
        &client,
        "ciwatch_render",
        json!({"format": "details", "failure_key": key}),
    )
    .await;
    assert_ne!(one.is_error, Some(true), "{:?}", one.content);
    let details = &one.structured_content.expect("structured")["details"];
    let failure = &details["failures"][0];
    assert_eq!(details["failures"].as_array().map(Vec::len), Some(1));
    assert_eq!(failure["failure_key"], key);
    assert!(failure["test_failure"]["stack_trace"]
        .as_str()
        .is_some_and(|t| t.contains("flash_attn.py")));
    assert!(failure["job_url"]
        .as_str()
        .is_some_and(|u| u.contains("/builds/65099#")));
    // How it was decided, for an audit: what chose the error line, where it stands, which rule
    // chose the kind, in the structure and in the text.
    let decision = &failure["decision"];
    assert!(
        decision["error_source"].is_string() && decision["error_line"].as_u64() > Some(0),
        "{decision}"
    );
    assert_eq!(decision["kind_rule"], "error_line");
    let text = format!("{:?}", one.content);
    assert!(
        text.contains("decided by: error line: ") && text.contains("; kind: rule error_line"),
        "{text}"
    );
    assert!(details["cause"]["draft_issue"]
        .as_str()
        .is_some_and(|d| d.starts_with("Title: [CI Failure]")));
    let cause = &structured["causes"][0];
    let members = cause["failure_count"].as_u64().expect("members") as usize;
    let whole = call(
        &client,
        "ciwatch_render",
        json!({"format": "details", "cause_id": cause["cause_id"]}),
    )
    .await;
    let details = &whole.structured_content.clone().expect("structured")["details"];
    let shown = details["failures"].as_array().expect("failures").len();
    assert!(size(&whole).0 + size(&whole).1 <= 100_000);
    if shown < members {
        // 40 tracebacks of 30 frames are over the cap: the cut is said, the rest by key.
        let text = format!("{:?}", whole.content);
        assert!(
            text.contains(&format!(
                "{} of {members} failures left out",
                members - shown
            )),
            "{text}"
        );
    }
    assert!(shown >= 1);
    let _ = client.cancel().await;
}

/// The bundled night whole (every failed job attempt of 65099, read by two default calls), with
/// the AMD lookup on and owners from CODEOWNERS (the demo's server), through the sidecar and
/// rmcp's client: each default answer is unpaged, its structured content and its text each
/// within 35,000 characters, and nothing is shed: every failure keeps its owners.
#[tokio::test]
async fn the_whole_night_with_owners_fits_each_reader_unpaged_and_unshed() {
    let urls = ciwatch_mcp::demo::start().await.expect("demo server");
    let work = tempfile::tempdir().expect("temp dir");
    let mut settings = crate::common::settings("http://127.0.0.1:9");
    settings.buildkite_api_url = urls.buildkite;
    settings.github_api_url = urls.github;
    settings.compare_pipeline = "vllm/amd-ci".into();
    settings.no_cache = false;
    settings.cache_dir = Some(work.path().to_path_buf());
    let client = crate::common::sidecar_client(settings).await;
    let mut summaries = Vec::new();
    for call in ["first", "second"] {
        let result = crate::mcp_e2e::call(
            &client,
            "ciwatch_scan_build",
            json!({"build_id_or_url": "65099"}),
        )
        .await;
        let (json_chars, text_chars) = size(&result);
        let structured = result.structured_content.clone().expect("structured");
        eprintln!(
            "{call} call: {json_chars} characters of structured content, {text_chars} of text"
        );
        assert!(json_chars <= MORNING_CHARS, "{call}: {json_chars}");
        assert!(text_chars <= MORNING_CHARS, "{call}: {text_chars}");
        assert_eq!(
            structured["page"]["next_offset"],
            Value::Null,
            "{call}: paged"
        );
        assert_eq!(structured.get("detail_shed"), None, "{call}: shed");
        let failures = structured["failures"].as_array().expect("failures");
        assert_eq!(
            failures.len() as u64,
            structured["total_failures"].as_u64().expect("total")
        );
        summaries.push(structured.clone());
        assert_text_names_everything(&result);
        if call == "second" {
            assert_eq!(
                structured["complete"], true,
                "{:?}",
                structured["incomplete"]
            );
            assert_counts_are_the_builds(&result, &structured);
        }
    }
    // Every failure keeps the owners (first 3) and the issue the full answer gives it.
    let full = crate::mcp_e2e::call(
        &client,
        "ciwatch_scan_build",
        json!({"build_id_or_url": "65099", "detail_level": "full"}),
    )
    .await;
    let full = full.structured_content.expect("structured");
    let by_key = |answer: &Value| -> std::collections::BTreeMap<String, (Value, Value)> {
        answer["failures"]
            .as_array()
            .expect("failures")
            .iter()
            .map(|f| {
                let owners: Vec<Value> = f["owners"]
                    .as_array()
                    .map(|o| o.iter().take(3).cloned().collect())
                    .unwrap_or_default();
                let key = f["failure_key"].as_str().expect("key").to_string();
                (key, (Value::from(owners), f["issue"]["number"].clone()))
            })
            .collect()
    };
    // A test has one spelling in the answer, however its job ran pytest.
    let spelled: Vec<&str> = full["failures"]
        .as_array()
        .expect("failures")
        .iter()
        .filter_map(|f| f["test_failure"]["test_name"].as_str())
        .chain(
            full["tracked_issues"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|t| t["tests"].as_array().into_iter().flatten())
                .filter_map(Value::as_str),
        )
        .collect();
    assert!(spelled.iter().any(|id| id.contains("::")));
    for id in spelled {
        assert_eq!(
            ciwatch_mcp::input::comparable(id),
            id,
            "two spellings of {id}"
        );
    }
    let expected = by_key(&full);
    assert!(expected
        .values()
        .any(|(owners, _)| owners.as_array().is_some_and(|o| !o.is_empty())));
    assert_eq!(by_key(&summaries[1]), expected);
    let _ = client.cancel().await;
}
