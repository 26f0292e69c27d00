//! The Buildkite mock the benchmarks run against, answering like the real one: 80 ms for API
//! calls, 400 ms for log reads, and a per-user limit of 50 requests per minute (a fixed window:
//! `RateLimit-Remaining`/`RateLimit-Reset` on every answer, 429 past the limit). It serves the
//! fixture nightly 65099 and 29 earlier builds made from it (their failed jobs fail from
//! `FAILING_FROM` on), and counts log requests per job. Shared by two benches, each of which
//! uses part of it.
#![allow(dead_code)]

use ciwatch_mcp::fixtures;
use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// A client as a user runs it (the default retries), allowed `per_minute` requests (45 by
/// default).
pub fn buildkite_client(uri: &str, per_minute: u32) -> ciwatch_mcp::buildkite::BuildkiteClient {
    use ciwatch_mcp::http::{HttpClient, RateBudget, RetryPolicy};
    let http = HttpClient::new(
        Duration::from_secs(30),
        RateBudget::per_minute(per_minute),
        RetryPolicy {
            min_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_attempts: 6,
            total_budget: Duration::from_secs(90),
        },
    )
    .expect("client");
    ciwatch_mcp::buildkite::BuildkiteClient::new(
        http,
        &format!("{uri}/v2"),
        Some(ciwatch_mcp::config::Secret::new("bkua_bench")),
    )
    .expect("token")
}

pub const API_LATENCY: Duration = Duration::from_millis(80);
pub const LOG_LATENCY: Duration = Duration::from_millis(400);
pub const LIMIT_PER_MINUTE: u64 = 50;
pub const NIGHTLY: u64 = 65099;
/// History builds: 30 up to the nightly; the failed jobs failed from this build on.
pub const HISTORY_FROM: u64 = NIGHTLY - 29;
pub const FAILING_FROM: u64 = NIGHTLY - 6;

/// Buildkite's per-user limit: a fixed one-minute window from its first request.
#[derive(Default)]
pub struct Limit {
    window: Mutex<Option<(Instant, u64)>>,
    pub refused: AtomicU64,
    pub served: AtomicU64,
}

impl Limit {
    /// Requests answered so far, refused ones included.
    pub fn requests(&self) -> u64 {
        self.served.load(Ordering::Relaxed) + self.refused.load(Ordering::Relaxed)
    }
}

impl Limit {
    /// `Ok(remaining, reset)` when the request is allowed, `Err(reset)` when refused.
    fn admit(&self) -> Result<(u64, u64), u64> {
        let mut window = self.window.lock().expect("limit");
        let now = Instant::now();
        let (start, count) = match *window {
            Some((start, count)) if now.duration_since(start) < Duration::from_secs(60) => {
                (start, count)
            }
            _ => (now, 0),
        };
        let reset = 60 - now.duration_since(start).as_secs().min(59);
        if count >= LIMIT_PER_MINUTE {
            *window = Some((start, count));
            self.refused.fetch_add(1, Ordering::Relaxed);
            return Err(reset);
        }
        *window = Some((start, count + 1));
        self.served.fetch_add(1, Ordering::Relaxed);
        Ok((LIMIT_PER_MINUTE - count - 1, reset))
    }
}

pub fn job_id(template: &str, n: u64) -> String {
    if n == NIGHTLY {
        template.to_string()
    } else {
        format!("{n:08}{}", &template[8..])
    }
}

/// Build `n`: the nightly itself, or an earlier finished build made from it (job ids
/// rewritten; its failed jobs passed before `FAILING_FROM`).
pub fn build(n: u64) -> Value {
    let mut build: Value = serde_json::from_str(fixtures::BUILD_65099).expect("fixture");
    if n == NIGHTLY {
        return build;
    }
    build["number"] = n.into();
    build["commit"] = format!("{:040x}", 0xc0ffee000u64 + n).into();
    build["web_url"] = format!("https://buildkite.com/vllm/ci/builds/{n}").into();
    build["source"] = "webhook".into();
    for job in build["jobs"].as_array_mut().expect("jobs") {
        let id = job_id(job["id"].as_str().expect("id"), n);
        job["id"] = id.into();
        if n < FAILING_FROM && matches!(job["state"].as_str(), Some("failed")) {
            job["state"] = "passed".into();
        }
    }
    build
}

pub struct Buildkite {
    limit: Arc<Limit>,
    nightly_job_by_suffix: std::collections::HashMap<String, ciwatch_mcp::buildkite::Job>,
}

/// Log requests per job id, for (d).
pub static LOG_READS: std::sync::LazyLock<Mutex<std::collections::HashMap<String, u64>>> =
    std::sync::LazyLock::new(Mutex::default);

impl Respond for Buildkite {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let (remaining, reset) = match self.limit.admit() {
            Ok(admitted) => admitted,
            Err(reset) => {
                return ResponseTemplate::new(429)
                    .insert_header("ratelimit-remaining", "0")
                    .insert_header("ratelimit-reset", reset.to_string().as_str())
                    .set_body_json(
                        serde_json::json!({"message": "You have exceeded the rate limit"}),
                    )
                    .set_delay(API_LATENCY)
            }
        };
        let path = request.url.path().to_string();
        let segments: Vec<&str> = path.split('/').collect();
        let query = |name: &str| {
            request
                .url
                .query_pairs()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.to_string())
        };
        let template = if path.ends_with("/log") {
            let job = segments[segments.len() - 2];
            *LOG_READS
                .lock()
                .expect("log reads")
                .entry(job.to_string())
                .or_insert(0) += 1;
            let original = self
                .nightly_job_by_suffix
                .get(&job[8..])
                .expect("a fixture job");
            let log = fixtures::raw_log(original);
            let range = request.headers.get("range").and_then(|v| v.to_str().ok());
            let (status, content_range, body) = fixtures::range_response(&log, range);
            let mut template = ResponseTemplate::new(status)
                .set_body_raw(body, "text/plain")
                .set_delay(LOG_LATENCY);
            if let Some(value) = content_range {
                template = template.insert_header("content-range", value.as_str());
            }
            template
        } else if path.ends_with("/builds") {
            let without_jobs = query("exclude_jobs").as_deref() == Some("true");
            let per_page: u64 = query("per_page").and_then(|v| v.parse().ok()).unwrap_or(30);
            let listing: Vec<Value> = (HISTORY_FROM..=NIGHTLY)
                .rev()
                .take(per_page as usize)
                .map(|n| {
                    let mut b = build(n);
                    if without_jobs {
                        b.as_object_mut().expect("object").remove("jobs");
                    }
                    b
                })
                .collect();
            ResponseTemplate::new(200)
                .set_body_json(listing)
                .set_delay(API_LATENCY)
        } else {
            let n: u64 = segments.last().and_then(|s| s.parse().ok()).unwrap_or(0);
            ResponseTemplate::new(200)
                .set_body_json(build(n))
                .set_delay(API_LATENCY)
        };
        template
            .insert_header("ratelimit-remaining", remaining.to_string().as_str())
            .insert_header("ratelimit-reset", reset.to_string().as_str())
    }
}

pub async fn limited_server() -> (MockServer, Arc<Limit>) {
    let server = MockServer::start().await;
    let limit = Arc::new(Limit::default());
    let nightly_job_by_suffix = fixtures::build_65099()
        .jobs()
        .iter()
        .map(|j| (j.id[8..].to_string(), j.clone()))
        .collect();
    Mock::given(method("GET"))
        .respond_with(Buildkite {
            limit: limit.clone(),
            nightly_job_by_suffix,
        })
        .mount(&server)
        .await;
    (server, limit)
}
