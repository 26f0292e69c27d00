//! A bad night through the real binary (rmcp's client over stdio): hundreds of failures with
//! long tracebacks in the real 65099 build's jobs. Every failure is in every result; over the
//! 100,000-character cap detail goes first, then the failures are paged with the offset of the
//! next page; a draft issue comes on demand.

use crate::coverage::{build_failing, job_id, server_with, BuildBody};
use crate::mcp_e2e::{call, start_server};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

/// Single-command pytest jobs of 65099 that the scenario makes fail.
const JOBS: [&str; 8] = [
    "V1 attention (B200)",
    "V1 attention (H100)",
    "Benchmarks CLI Test",
    "CPU-Kernel Tests",
    "CPU-Language Generation and Pooling Model Tests",
    "CPU-Multi-Modal Model Tests 1",
    "CPU-Multi-Modal Model Tests 2",
    "CPU-Quantization Model Tests",
];

/// One job's pytest log: `failures` parametrisations failing, each with a long traceback.
fn log(job: usize, failures: usize) -> Vec<u8> {
    let file = format!("v1/attention/test_backend_{job}.py");
    let mut text = format!("+++ :test_tube: Command (1/1): pytest -v -s {file}\n");
    text.push_str(
        "=================================== FAILURES ===================================\n",
    );
    for i in 0..failures {
        let test = format!("test_backend_correctness[FLASH_ATTN-bf16-{i}-128]");
        text.push_str(&format!(
            "____________________ {test} ____________________\n\n"
        ));
        for frame in 0..30 {
            text.push_str(&format!(
                "vllm/v1/attention/backends/flash_attn.py:{}: in forward\n    output = self.impl.forward(layer, query, key, value, kv_cache, attn_metadata, output=output)\n",
                400 + frame
            ));
        }
        text.push_str(&format!(
            "E       AssertionError: Tensor-likes are not close! Mismatched elements: {} / 4096 (0.{i}%)\n\n{file}:212: AssertionError\n",
            17 + i
        ));
    }
    text.push_str(
        "=========================== short test summary info ============================\n",
    );
    for i in 0..failures {
        text.push_str(&format!(
            "FAILED {file}::test_backend_correctness[FLASH_ATTN-bf16-{i}-128] - AssertionError: Tensor-likes are not close! Mismatched elements: {} / 4096 (0.{i}%)\n",
            17 + i
        ));
    }
    text.push_str(&format!(
        "================== {failures} failed, 12 passed in 301.22s (0:05:01) ==================\n"
    ));
    text.push_str("🚨 Error: The command exited with status 1\n");
    ciwatch_mcp::fixtures::to_raw_format(&text)
}

pub(crate) async fn bad_night(failures_per_job: usize) -> wiremock::MockServer {
    let build = build_failing(&JOBS);
    let logs: HashMap<String, Vec<u8>> = JOBS
        .iter()
        .enumerate()
        .map(|(i, name)| (job_id(&build, name), log(i, failures_per_job)))
        .collect();
    server_with(&BuildBody(Arc::new(Mutex::new(build))), logs).await
}

/// The larger of a result's two forms: below `full` each is held to the cap on its own (one
/// reader reads the structured content, another the text).
fn size(result: &rmcp::model::CallToolResult) -> usize {
    let (json, text) = crate::compact::size(result);
    json.max(text)
}

/// A `full` result's two forms together, held to the whole result's cap.
fn whole_size(result: &rmcp::model::CallToolResult) -> usize {
    let (json, text) = crate::compact::size(result);
    json + text
}

fn keys(structured: &Value) -> Vec<String> {
    structured["failures"]
        .as_array()
        .expect("failures")
        .iter()
        .filter_map(|f| f["failure_key"].as_str().map(String::from))
        .collect()
}

#[tokio::test]
async fn over_the_cap_detail_goes_first_and_no_failure_is_lost() {
    // 8 jobs x 10 failures, each with a 30-frame traceback: over the cap only with the traces.
    let server = bad_night(10).await;
    let client = start_server(&format!("{}/v2", server.uri()), Some("bkua_cap_test")).await;
    // At summary the morning budget (35,000 characters) holds about 50 of these identities:
    // the rest are on the next page, each page within the budget.
    let mut summary_keys = Vec::new();
    let mut offset = Some(0);
    while let Some(at) = offset {
        let result = call(
            &client,
            "ciwatch_scan_build",
            json!({"build_id_or_url": "65099", "search_github": false, "failure_offset": at}),
        )
        .await;
        assert!(
            size(&result) <= 35_000,
            "summary: {} characters",
            size(&result)
        );
        let structured = result.structured_content.clone().expect("structured");
        assert_eq!(structured["total_failures"], 80);
        summary_keys.extend(keys(&structured));
        offset = structured["page"]["next_offset"].as_u64();
    }
    let unique: HashSet<&String> = summary_keys.iter().collect();
    assert_eq!(
        (summary_keys.len(), unique.len()),
        (80, 80),
        "summary pages"
    );
    for level in ["full"] {
        let result = call(
            &client,
            "ciwatch_scan_build",
            json!({"build_id_or_url": "65099", "detail_level": level, "search_github": false}),
        )
        .await;
        assert!(
            whole_size(&result) < 100_000,
            "{level}: {} characters",
            whole_size(&result)
        );
        let structured = result.structured_content.clone().expect("structured");
        assert_eq!(structured["total_failures"], 80, "{level}");
        assert_eq!(
            keys(&structured).len(),
            80,
            "{level}: every failure is in the result"
        );
        assert_eq!(
            structured["page"]["next_offset"],
            Value::Null,
            "{level}: not paged"
        );
        assert!(
            structured["complete"].as_bool().expect("complete"),
            "{level}"
        );
        let shed: Vec<&str> = structured["detail_shed"]
            .as_array()
            .map(|s| s.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if level == "full" {
            assert!(
                shed.iter().any(|s| s.starts_with("stack traces")),
                "full detail is over the cap with the traces: {shed:?}"
            );
            assert!(
                !shed.iter().any(|s| s.starts_with("everything but")),
                "identities stay whole: {shed:?}"
            );
        }
    }
    // A draft for one failure, on demand, from the last scan in full (its traceback included).
    let result = call(
        &client,
        "ciwatch_scan_build",
        json!({"build_id_or_url": "65099", "detail_level": "summary", "search_github": false}),
    )
    .await;
    let structured = result.structured_content.expect("structured");
    assert!(
        structured["failures"][0]["draft_issue"].is_null(),
        "no draft below full"
    );
    let key = keys(&structured)[0].clone();
    let draft = call(
        &client,
        "ciwatch_render",
        json!({"format": "draft_issue", "failure_key": key}),
    )
    .await;
    let text = draft.structured_content.expect("structured")["text"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(text.starts_with("Title: [CI Failure]: "), "{text}");
    assert!(
        text.contains("flash_attn.py:"),
        "the traceback is in the draft: {text}"
    );
    client.cancel().await.expect("clean shutdown");
}

#[tokio::test]
async fn identities_over_the_cap_are_paged_and_the_pages_hold_every_failure() {
    // 8 jobs x 60 failures: 480 identities do not fit the morning budget (35,000 characters).
    let server = bad_night(60).await;
    let client = start_server(&format!("{}/v2", server.uri()), Some("bkua_cap_test")).await;
    let mut seen: Vec<String> = Vec::new();
    let mut offset = 0u64;
    let mut pages = 0;
    loop {
        let result = call(
            &client,
            "ciwatch_scan_build",
            json!({"build_id_or_url": "65099", "search_github": false, "failure_offset": offset}),
        )
        .await;
        assert!(
            size(&result) <= 35_000,
            "page {pages}: {} characters",
            size(&result)
        );
        let structured = result.structured_content.expect("structured");
        assert_eq!(structured["total_failures"], 480);
        assert_eq!(structured["page"]["offset"], offset);
        seen.extend(keys(&structured));
        pages += 1;
        match structured["page"]["next_offset"].as_u64() {
            Some(next) => {
                assert!(!structured["complete"].as_bool().expect("complete"));
                assert!(
                    structured["warnings"]
                        .as_array()
                        .expect("warnings")
                        .iter()
                        .any(|w| w
                            .as_str()
                            .unwrap_or_default()
                            .contains(&format!("failure_offset={next}"))),
                    "the page says how to get the next"
                );
                offset = next;
            }
            None => break,
        }
        assert!(pages < 20, "paging ends");
    }
    assert!(pages >= 2, "{pages} pages");
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(
        (seen.len(), unique.len()),
        (480, 480),
        "every failure once across the pages"
    );
    // The rendered report of the last scan counts and lists every failure.
    let report = call(&client, "ciwatch_render", json!({})).await;
    let text = report.structured_content.expect("structured")["text"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        text.contains("**Unique Failures**: 480"),
        "{}",
        &text[..600.min(text.len())]
    );
    assert!(text.contains("test_backend_correctness[FLASH_ATTN-bf16-59-128]"));
    client.cancel().await.expect("clean shutdown");
}

/// The failures of one job with hundreds of long tracebacks: under the cap, the cut said.
#[tokio::test]
async fn one_jobs_failures_stay_under_the_cap_and_say_what_was_left_out() {
    let server = bad_night(400).await;
    let client = start_server(&format!("{}/v2", server.uri()), Some("bkua_cap")).await;
    let result = call(
        &client,
        "ciwatch_get_job_test_failures",
        json!({"build_id_or_url": "65099", "job_name_or_id": JOBS[0], "match_strategy": "exact"}),
    )
    .await;
    assert_ne!(result.is_error, Some(true), "{:?}", result.content);
    assert!(whole_size(&result) <= 100_000, "{}", whole_size(&result));
    let structured = result.structured_content.expect("structured");
    let shown = structured["test_failures"]
        .as_array()
        .expect("failures")
        .len();
    assert_eq!(structured["total_failures"], 400);
    assert!((1..400).contains(&shown), "{shown}");
    let warnings = structured["warnings"].to_string();
    assert!(
        warnings.contains(&format!("{} of 400 test failures left out", 400 - shown)),
        "{warnings}"
    );
    let _ = client.cancel().await;
}
