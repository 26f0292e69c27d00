//! The HTTP sidecar under load: the release binary `serve --http` in front of the bundled
//! fixture Buildkite and GitHub (`ciwatch-mcp fixture-server`, both local processes), 50
//! concurrent MCP sessions (rmcp's Streamable HTTP client), each with its own Buildkite token,
//! each calling `ciwatch_scan_build` (the fixture nightly), `ciwatch_get_job_test_failures`
//! and `ciwatch_render`. Prints p50/p99 latency per tool and the server's peak RSS.
//!
//! Then a team's morning: a fresh server (empty store), 20 sessions sharing one token, each
//! scanning the same cold nightly at once. Prints their p50/p99, the server's peak RSS, and the
//! Buildkite requests of the 20 scans (the sum of their `stats.api_requests`, a scan that joined
//! another's run counting none) beside one scan's.
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
/// Callers of the team's morning, sharing one token.
const TEAM: usize = 20;

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

/// The fixture Buildkite and GitHub (one local process): its stdin keeps it alive.
struct Fixtures {
    process: tokio::process::Child,
    buildkite: String,
    github: String,
}

async fn start_fixtures(binary: &str) -> Fixtures {
    let mut process = tokio::process::Command::new(binary)
        .arg("fixture-server")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("fixture server starts");
    let mut line = String::new();
    BufReader::new(process.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .await
        .expect("fixture URLs");
    let urls: serde_json::Value = serde_json::from_str(&line).expect("JSON line");
    let url = |name: &str| urls[name].as_str().expect("url").to_string();
    Fixtures {
        buildkite: url("buildkite"),
        github: url("github"),
        process,
    }
}

/// `serve --http` with an empty store of its own, once its health check answers.
struct Server {
    process: tokio::process::Child,
    port: u16,
    _store: tempfile::TempDir,
}

async fn start_server(binary: &str, fixtures: &Fixtures) -> Server {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let store = tempfile::tempdir().expect("temp dir");
    let process = tokio::process::Command::new(binary)
        .args(["serve", "--http", &format!("127.0.0.1:{port}")])
        .env("BUILDKITE_API_URL", &fixtures.buildkite)
        .env("GITHUB_API_URL", &fixtures.github)
        .env_remove("BUILDKITE_TOKEN")
        .env_remove("GITHUB_TOKEN")
        .env("CIWATCH_CACHE_DIR", store.path())
        .env("CIWATCH_REQUESTS_PER_MINUTE", "100000")
        .env("RUST_LOG", "error")
        // Callers alone are measured: a watcher would read the night before them.
        .env("CIWATCH_WATCH_INTERVAL_SECS", "0")
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("server starts");
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
    Server {
        process,
        port,
        _store: store,
    }
}

impl Server {
    async fn session(&self, token: &str) -> rmcp::service::RunningService<rmcp::RoleClient, ()> {
        let mut headers = HashMap::new();
        headers.insert(
            axum::http::HeaderName::from_static("x-buildkite-token"),
            axum::http::HeaderValue::from_str(token).expect("header"),
        );
        let config = StreamableHttpClientTransportConfig::with_uri(format!(
            "http://127.0.0.1:{}/mcp",
            self.port
        ))
        .custom_headers(headers);
        ().serve(StreamableHttpClientTransport::from_config(config))
            .await
            .expect("initialize")
    }

    fn peak_rss(&self) -> String {
        match self.process.id().and_then(peak_rss_mib) {
            Some(rss) => format!("{rss:.1} MiB"),
            None => "not readable".into(),
        }
    }
}

fn scan_nightly() -> serde_json::Map<String, serde_json::Value> {
    let arguments =
        json!({"build_id_or_url": "65099", "detail_level": "summary", "compare_nightlies": 0});
    arguments.as_object().cloned().expect("object")
}

#[tokio::main]
async fn main() {
    let binary = env!("CARGO_BIN_EXE_ciwatch-mcp");
    let mut fixtures = start_fixtures(binary).await;
    sessions_with_own_tokens(binary, &fixtures).await;
    team_morning(binary, &fixtures).await;
    drop(fixtures.process.stdin.take());
    let _ = fixtures.process.kill().await;
}

async fn sessions_with_own_tokens(binary: &str, fixtures: &Fixtures) {
    let mut server = start_server(binary, fixtures).await;
    let server_ref = &server;
    let started = Instant::now();
    let sessions = (0..SESSIONS).map(|i| async move {
        let client = server_ref.session(&format!("bkua_load_{i}")).await;
        let calls = [
            ("ciwatch_scan_build", scan_nightly()),
            ("ciwatch_get_job_test_failures", json!({"build_id_or_url": "65099", "job_name_or_id": "examples", "match_strategy": "fuzzy"}).as_object().cloned().expect("object")),
            ("ciwatch_render", json!({"scan_result": {"build_info": {"build_number": "1", "build_url": "u", "pipeline": "vllm/ci", "branch": "main", "commit": "c", "state": "failed"}, "total_jobs": 1, "failed_jobs": 0, "failures": [], "scan_timestamp": "2026-12-01T00:00:00Z"}, "format": "daily_findings"}).as_object().cloned().expect("object")),
        ];
        let mut timings: Vec<(&'static str, Duration, bool)> = Vec::new();
        for _ in 0..ROUNDS {
            for (tool, arguments) in &calls {
                let at = Instant::now();
                let result = client
                    .call_tool(CallToolRequestParams::new(*tool).with_arguments(arguments.clone()))
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
        "{SESSIONS} sessions (a token each) x {ROUNDS} rounds x 3 tools in {:.2} s, {errors} errors",
        wall.as_secs_f64()
    );
    let mut tools: Vec<_> = by_tool.into_iter().collect();
    tools.sort_by_key(|(tool, _)| *tool);
    for (tool, mut took) in tools {
        took.sort();
        println!("  {tool}: {}", latencies(&took));
    }
    println!("  server peak RSS: {}", server.peak_rss());
    let _ = server.process.kill().await;
}

fn latencies(sorted: &[Duration]) -> String {
    format!(
        "p50 {:.1} ms, p99 {:.1} ms ({} calls)",
        percentile(sorted, 0.5).as_secs_f64() * 1e3,
        percentile(sorted, 0.99).as_secs_f64() * 1e3,
        sorted.len()
    )
}

/// One scan's latency and the Buildkite requests it made (`stats.api_requests`; none of its own
/// when it joined the same scan under way for another caller, `stats.joined`).
async fn timed_scan(server: &Server, token: &str) -> (Duration, u64) {
    let client = server.session(token).await;
    let at = Instant::now();
    let result = client
        .call_tool(CallToolRequestParams::new("ciwatch_scan_build").with_arguments(scan_nightly()))
        .await
        .expect("scan answers");
    let took = at.elapsed();
    assert_ne!(result.is_error, Some(true), "the scan succeeds");
    let stats = &result.structured_content.expect("structured")["stats"];
    let requests = if stats["joined"] == true {
        0
    } else {
        stats["api_requests"].as_u64().expect("api_requests")
    };
    let _ = client.cancel().await;
    (took, requests)
}

async fn team_morning(binary: &str, fixtures: &Fixtures) {
    let mut alone = start_server(binary, fixtures).await;
    let (one_took, one_requests) = timed_scan(&alone, "bkua_team").await;
    let _ = alone.process.kill().await;
    let mut server = start_server(binary, fixtures).await;
    let server_ref = &server;
    let answers =
        futures::future::join_all((0..TEAM).map(|_| timed_scan(server_ref, "bkua_team"))).await;
    let requests: u64 = answers.iter().map(|(_, requests)| requests).sum();
    let mut took: Vec<Duration> = answers.into_iter().map(|(took, _)| took).collect();
    took.sort();
    println!(
        "team morning, one cold scan alone: {:.1} ms, {one_requests} Buildkite requests",
        one_took.as_secs_f64() * 1e3
    );
    println!(
        "team morning, {TEAM} cold scans at once (one token): {}, {requests} Buildkite requests, server peak RSS {}",
        latencies(&took),
        server.peak_rss()
    );
    let _ = server.process.kill().await;
}
