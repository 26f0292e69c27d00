//! The HTTP sidecar under load: the release binary `serve --http` in front of the bundled
//! fixture Buildkite and GitHub (`ciwatch-mcp fixture-server`, both local processes), 50
//! concurrent MCP sessions (rmcp's Streamable HTTP client), each with its own Buildkite token,
//! each calling `ciwatch_scan_build` (the fixture nightly), `ciwatch_get_job_test_failures`
//! and `ciwatch_render`. Prints p50/p99 latency per tool and the server's peak RSS.
//! Run with `cargo bench --bench http_load`.

use rmcp::model::CallToolRequestParams;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::ServiceExt;
use serde_json::json;
use std::collections::HashMap;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};

const SESSIONS: usize = 50;
const ROUNDS: usize = 3;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// Peak resident set of a process, from `/proc/<pid>/status` (`VmHWM`), in MiB.
fn peak_rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

#[tokio::main]
async fn main() {
    let binary = env!("CARGO_BIN_EXE_ciwatch-mcp");
    let mut fixtures = tokio::process::Command::new(binary)
        .arg("fixture-server")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("fixture server starts");
    let mut line = String::new();
    BufReader::new(fixtures.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .await
        .expect("fixture URLs");
    let urls: serde_json::Value = serde_json::from_str(&line).expect("JSON line");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let store = tempfile::tempdir().expect("temp dir");
    let mut server = tokio::process::Command::new(binary)
        .args(["serve", "--http", &format!("127.0.0.1:{port}")])
        .env(
            "BUILDKITE_API_URL",
            urls["buildkite"].as_str().expect("url"),
        )
        .env("GITHUB_API_URL", urls["github"].as_str().expect("url"))
        .env_remove("BUILDKITE_TOKEN")
        .env_remove("GITHUB_TOKEN")
        .env("CIWATCH_CACHE_DIR", store.path())
        .env("CIWATCH_REQUESTS_PER_MINUTE", "100000")
        .env("RUST_LOG", "error")
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("server starts");
    let pid = server.id().expect("pid");
    let health = format!("http://127.0.0.1:{port}/health");
    for _ in 0..100 {
        if reqwest::get(&health)
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let started = Instant::now();
    let sessions = (0..SESSIONS).map(|i| async move {
        let mut headers = HashMap::new();
        headers.insert(
            axum::http::HeaderName::from_static("x-buildkite-token"),
            axum::http::HeaderValue::from_str(&format!("bkua_load_{i}")).expect("header"),
        );
        let config =
            StreamableHttpClientTransportConfig::with_uri(format!("http://127.0.0.1:{port}/mcp"))
                .custom_headers(headers);
        let client = ()
            .serve(StreamableHttpClientTransport::from_config(config))
            .await
            .expect("initialize");
        let calls = [
            ("ciwatch_scan_build", json!({"build_id_or_url": "65099", "detail_level": "summary", "compare_nightlies": 0})),
            ("ciwatch_get_job_test_failures", json!({"build_id_or_url": "65099", "job_name_or_id": "examples", "match_strategy": "fuzzy"})),
            ("ciwatch_render", json!({"scan_result": {"build_info": {"build_number": "1", "build_url": "u", "pipeline": "vllm/ci", "branch": "main", "commit": "c", "state": "failed"}, "total_jobs": 1, "failed_jobs": 0, "failures": [], "scan_timestamp": "2026-12-01T00:00:00Z"}, "format": "daily_findings"})),
        ];
        let mut timings: Vec<(&'static str, Duration, bool)> = Vec::new();
        for _ in 0..ROUNDS {
            for (tool, arguments) in &calls {
                let at = Instant::now();
                let result = client
                    .call_tool(
                        CallToolRequestParams::new(*tool)
                            .with_arguments(arguments.as_object().cloned().expect("object")),
                    )
                    .await;
                let ok = result.is_ok_and(|r| r.is_error != Some(true));
                timings.push((tool, at.elapsed(), ok));
            }
        }
        let _ = client.cancel().await;
        timings
    });
    let results: Vec<_> = futures::future::join_all(sessions).await;
    let wall = started.elapsed();
    let mut by_tool: HashMap<&str, Vec<Duration>> = HashMap::new();
    let mut errors = 0;
    for (tool, took, ok) in results.into_iter().flatten() {
        by_tool.entry(tool).or_default().push(took);
        errors += usize::from(!ok);
    }
    println!(
        "{SESSIONS} sessions x {ROUNDS} rounds x 3 tools in {:.2} s, {errors} errors",
        wall.as_secs_f64()
    );
    let mut tools: Vec<_> = by_tool.into_iter().collect();
    tools.sort_by_key(|(tool, _)| *tool);
    for (tool, mut took) in tools {
        took.sort();
        println!(
            "  {tool}: p50 {:.1} ms, p99 {:.1} ms ({} calls)",
            percentile(&took, 0.5).as_secs_f64() * 1e3,
            percentile(&took, 0.99).as_secs_f64() * 1e3,
            took.len()
        );
    }
    match peak_rss_mib(pid) {
        Some(rss) => println!("  server peak RSS: {rss:.1} MiB"),
        None => println!("  server peak RSS: not readable"),
    }
    let _ = server.kill().await;
    drop(fixtures.stdin.take());
    let _ = fixtures.kill().await;
}
