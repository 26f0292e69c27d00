//! The fixture nightly served over raw TCP by a Buildkite stand-in that misbehaves the way
//! networks and proxies do: connections reset before an answer, bodies cut off mid-way, a
//! build body that is not JSON, 503s and 429 bursts with `RateLimit-Reset`. The scan still
//! accounts for every failed job and finds the same failures as against a well-behaved server,
//! and the limiter never lets more requests into a window than its budget.

use ciwatch_mcp::buildkite::BuildKey;
use ciwatch_mcp::fixtures;
use ciwatch_mcp::http::{HttpClient, RateBudget};
use ciwatch_mcp::model::{DetailLevel, JobStatus, ScanResult};
use ciwatch_mcp::secret::Secret;
use ciwatch_mcp::watch::{self, Budgets, Enrichment, JobReader, NoProgress};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Clone, Copy)]
enum Fault {
    Reset,
    Truncated,
    InvalidJson,
    Unavailable,
    RateLimited,
}

/// The first attempt at the build and at four of every five logs misbehaves; retries succeed.
fn fault_for(path: &str, attempt: usize, log_index: usize) -> Option<Fault> {
    if attempt > 0 {
        return None;
    }
    if !path.ends_with("/log") {
        return Some(Fault::InvalidJson);
    }
    match log_index % 5 {
        0 => Some(Fault::Reset),
        1 => Some(Fault::Truncated),
        2 => Some(Fault::Unavailable),
        3 => Some(Fault::RateLimited),
        _ => None,
    }
}

#[derive(Default)]
struct Seen {
    attempts: HashMap<String, usize>,
    logs: HashMap<String, usize>,
    arrivals: Vec<Instant>,
    faults: usize,
}

async fn start() -> (String, Arc<Mutex<Seen>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let seen = Arc::new(Mutex::new(Seen::default()));
    let state = seen.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve(stream, state.clone()));
        }
    });
    (format!("http://{address}/v2"), seen)
}

/// Serves requests on one keep-alive connection until it closes or a fault closes it.
async fn serve(mut stream: TcpStream, seen: Arc<Mutex<Seen>>) {
    let build = fixtures::build_65099();
    let mut buffer = Vec::new();
    loop {
        let head_end = loop {
            if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break at;
            }
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buffer[..head_end]).to_string();
        buffer.drain(..head_end + 4);
        let target = head
            .lines()
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap_or("/")
            .to_string();
        let path = target.split('?').next().unwrap_or("/").to_string();
        let range = head
            .lines()
            .find_map(|l| {
                l.strip_prefix("range: ")
                    .or_else(|| l.strip_prefix("Range: "))
            })
            .map(str::to_string);
        let fault = {
            let mut seen = seen.lock().expect("seen");
            seen.arrivals.push(Instant::now());
            let next_log = seen.logs.len();
            let log_index = if path.ends_with("/log") {
                *seen.logs.entry(path.clone()).or_insert(next_log)
            } else {
                0
            };
            let attempt = seen.attempts.entry(target.clone()).or_insert(0);
            let fault = fault_for(&path, *attempt, log_index);
            *attempt += 1;
            if fault.is_some() {
                seen.faults += 1;
            }
            fault
        };
        let (status, content_type, extra, body): (u16, &str, Vec<String>, Vec<u8>) =
            if path.ends_with("/log") {
                let job_id = path.rsplit('/').nth(1).unwrap_or_default();
                let job = build
                    .jobs()
                    .iter()
                    .find(|j| j.id == job_id)
                    .expect("fixture job");
                let (status, content_range, body) =
                    fixtures::range_response(&fixtures::raw_log(job), range.as_deref());
                let extra = content_range
                    .map(|c| vec![format!("content-range: {c}")])
                    .unwrap_or_default();
                (status, "text/plain", extra, body)
            } else {
                (
                    200,
                    "application/json",
                    vec![],
                    fixtures::BUILD_65099.as_bytes().to_vec(),
                )
            };
        let (status, extra, body, declared, close) = match fault {
            None => (status, extra, body.clone(), body.len(), false),
            Some(Fault::Reset) => return,
            Some(Fault::Truncated) => {
                let declared = body.len();
                (
                    status,
                    extra,
                    body[..body.len() / 3].to_vec(),
                    declared,
                    true,
                )
            }
            Some(Fault::InvalidJson) => {
                let garbage = b"{\"number\": 65099, \"jobs\": [".to_vec();
                let declared = garbage.len();
                (200, vec![], garbage, declared, false)
            }
            Some(Fault::Unavailable) => {
                let text = br#"{"message": "Service Unavailable"}"#.to_vec();
                let declared = text.len();
                (503, vec![], text, declared, false)
            }
            Some(Fault::RateLimited) => {
                let text = br#"{"message": "You have exceeded your rate limit"}"#.to_vec();
                let declared = text.len();
                let extra = vec![
                    "ratelimit-remaining: 0".to_string(),
                    "ratelimit-reset: 1".to_string(),
                ];
                (429, extra, text, declared, false)
            }
        };
        let mut response = format!(
            "HTTP/1.1 {status} X\r\ncontent-type: {content_type}\r\ncontent-length: {declared}\r\n"
        );
        for header in extra {
            response.push_str(&header);
            response.push_str("\r\n");
        }
        response.push_str("\r\n");
        if stream.write_all(response.as_bytes()).await.is_err()
            || stream.write_all(&body).await.is_err()
            || close
        {
            return;
        }
    }
}

fn client(api_url: &str, budget: RateBudget) -> ciwatch_mcp::buildkite::BuildkiteClient {
    let settings = crate::common::settings("http://unused");
    let http =
        HttpClient::new(Duration::from_secs(10), budget, settings.retry_policy()).expect("client");
    ciwatch_mcp::buildkite::BuildkiteClient::new(http, api_url, Some(Secret::new("bkua_faults")))
        .expect("token")
}

async fn scan(client: &ciwatch_mcp::buildkite::BuildkiteClient) -> ScanResult {
    let options = crate::common::scan_options(Budgets::default(), DetailLevel::Summary, false);
    watch::scan_build(
        &JobReader::new(client, None),
        Enrichment::default(),
        &BuildKey::new("vllm", "ci", 65099),
        &options,
        &NoProgress,
    )
    .await
    .expect("the scan completes despite the faults")
}

#[tokio::test]
async fn faults_change_nothing_and_the_window_holds() {
    let clean_server = crate::common::fixture_server().await;
    let clean = scan(&crate::common::client(&crate::common::settings(
        &clean_server.uri(),
    )))
    .await;

    let (api_url, seen) = start().await;
    let window = Duration::from_millis(1000);
    let budget = RateBudget {
        requests: 20,
        window,
    };
    let faulty = scan(&client(&api_url, budget)).await;

    let seen = seen.lock().expect("seen");
    assert!(seen.faults >= 15, "{} faults injected", seen.faults);
    assert_eq!(
        crate::common::failure_keys(&faulty),
        crate::common::failure_keys(&clean),
        "the same failures"
    );
    assert_eq!(
        faulty.jobs.len(),
        clean.jobs.len(),
        "every failed job accounted for"
    );
    assert!(
        faulty
            .jobs
            .iter()
            .all(|j| !matches!(j.status, JobStatus::FetchError | JobStatus::NoLog)),
        "{:?}",
        faulty
            .jobs
            .iter()
            .map(|j| (&j.job_name, j.status, &j.detail))
            .collect::<Vec<_>>()
    );
    let mut arrivals = seen.arrivals.clone();
    crate::common::assert_within_budget(&mut arrivals, window, 20);
}
