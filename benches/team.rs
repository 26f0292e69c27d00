//! A team's replicas: one `redis-server`, three release `ciwatch-mcp serve --http` processes
//! with one Buildkite token (`CIWATCH_STORE_URL` pointing at the Redis), and the Buildkite mock
//! at 50 requests a minute (80 ms API, 400 ms logs; `support/mock.rs`). All three scan the
//! fixture nightly at once through rmcp's Streamable HTTP client, then each follows two of its
//! tests across 30 builds; then a fresh fourth replica scans the nightly. Prints wall time,
//! total requests, log requests per job, 429s and the fourth replica's requests.
//! Run with `cargo bench --bench team` (needs `redis-server`; `.ci/run` installs it).

#[path = "support/mock.rs"]
mod mock;

use rmcp::model::CallToolRequestParams;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::ServiceExt;
use serde_json::json;
use std::process::Stdio;
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// One replica: a server process on its own port, sharing `redis` and the token.
async fn replica(api: &str, redis: &str) -> (tokio::process::Child, u16, tempfile::TempDir) {
    let port = free_port();
    let home = tempfile::tempdir().expect("temp dir");
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_ciwatch-mcp"))
        .args(["serve", "--http", &format!("127.0.0.1:{port}")])
        .env("BUILDKITE_API_URL", format!("{api}/v2"))
        .env("BUILDKITE_TOKEN", "bkua_team_bench")
        .env("GITHUB_API_URL", "http://127.0.0.1:9")
        .env("CIWATCH_STORE_URL", redis)
        .env("CIWATCH_COMPARE_PIPELINE", "")
        .env("HOME", home.path())
        .env_remove("GITHUB_TOKEN")
        .env("RUST_LOG", "error")
        // Callers alone are measured: a watcher would read the night before them.
        .env("CIWATCH_WATCH_INTERVAL_SECS", "0")
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("server starts");
    let health = format!("http://127.0.0.1:{port}/health");
    for _ in 0..200 {
        if reqwest::get(&health)
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (child, port, home)
}

async fn call(port: u16, calls: &[(&'static str, serde_json::Value)]) -> Vec<serde_json::Value> {
    let config =
        StreamableHttpClientTransportConfig::with_uri(format!("http://127.0.0.1:{port}/mcp"));
    let client =
        ().serve(StreamableHttpClientTransport::from_config(config))
            .await
            .expect("initialize");
    let mut results = Vec::new();
    for (tool, arguments) in calls {
        let result = client
            .call_tool(
                CallToolRequestParams::new(*tool)
                    .with_arguments(arguments.as_object().cloned().expect("object")),
            )
            .await
            .expect("answered");
        assert_ne!(result.is_error, Some(true), "{tool}: {:?}", result.content);
        results.push(result.structured_content.unwrap_or_default());
    }
    let _ = client.cancel().await;
    results
}

fn scan_call() -> (&'static str, serde_json::Value) {
    (
        "ciwatch_scan_build",
        json!({"build_id_or_url": "65099", "search_github": false, "compare_nightlies": 0, "detail_level": "minimal"}),
    )
}

#[tokio::main]
async fn main() {
    let redis_port = free_port();
    let Ok(mut redis) = std::process::Command::new("redis-server")
        .args([
            "--port",
            &redis_port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ])
        .stdout(Stdio::null())
        .spawn()
    else {
        println!("skipped: redis-server is not installed");
        return;
    };
    while std::net::TcpStream::connect(("127.0.0.1", redis_port)).is_err() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let redis_url = format!("redis://127.0.0.1:{redis_port}/0");
    let (server, limit) = mock::limited_server().await;
    let mut replicas = Vec::new();
    for _ in 0..3 {
        replicas.push(replica(&server.uri(), &redis_url).await);
    }
    let started = Instant::now();
    let work = replicas.iter().map(|(_, port, _)| async move {
        let scan = call(*port, &[scan_call()]).await.remove(0);
        let tests: Vec<String> = scan["failures"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| f["test_failure"]["test_name"].as_str())
            .filter(|t| t.contains("::"))
            .take(2)
            .map(String::from)
            .collect();
        let histories: Vec<_> = tests
            .iter()
            .map(|test| {
                (
                    "ciwatch_test_history",
                    json!({"test_nodeid": test, "lookback_builds": 30}),
                )
            })
            .collect();
        call(*port, &histories).await;
        scan["total_failures"].clone()
    });
    let totals = futures::future::join_all(work).await;
    assert!(
        totals.windows(2).all(|w| w[0] == w[1]),
        "the same failures: {totals:?}"
    );
    let wall = started.elapsed();
    let reads = mock::LOG_READS.lock().expect("log reads").clone();
    let most = reads.values().copied().max().unwrap_or(0);
    let twice_or_less = reads.values().filter(|&&n| n <= 2).count();
    println!(
        "three replicas (server processes, one Redis): scan at once, then two histories each: {:.1} s, {} requests, {} refused (429), {} job logs read, {twice_or_less} of them at most twice, at most {most} requests for one job",
        wall.as_secs_f64(),
        limit.requests(),
        limit.refused.load(std::sync::atomic::Ordering::Relaxed),
        reads.len(),
    );
    let before = limit.requests();
    let fourth = replica(&server.uri(), &redis_url).await;
    let scan = call(fourth.1, &[scan_call()]).await.remove(0);
    assert_eq!(scan["total_failures"], totals[0]);
    println!(
        "a fresh fourth replica's scan: {} requests",
        limit.requests() - before
    );
    drop(replicas);
    drop(fourth);
    let _ = redis.kill();
    let _ = redis.wait();
}
