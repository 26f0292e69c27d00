//! A team's replicas against a real `redis-server` (started here on a free loopback port; the
//! tests fail when it cannot start: `.ci/run` installs it from Debian's packages) and the
//! fixture nightly on wiremock: one store and one Buildkite budget for all of them.

use crate::common::{fixture_server, log_response, scan_65099, scan_options, settings};
use ciwatch_mcp::buildkite::BuildkiteClient;
use ciwatch_mcp::http::{HttpClient, RateBudget};
use ciwatch_mcp::model::{DetailLevel, ScanResult};
use ciwatch_mcp::store::Store;
use ciwatch_mcp::watch::{Budgets, JobReader};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// A `redis-server` of this test's own, stopped when dropped.
struct RedisServer {
    child: std::process::Child,
    port: u16,
}

impl RedisServer {
    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect(
                "redis-server starts (it is installed by .ci/run: apt-get install redis-server)",
            );
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not listen on port {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { child, port }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One replica: its own HTTP layer, Buildkite client and connection to the shared store.
struct Replica {
    client: BuildkiteClient,
    store: Store,
}

impl Replica {
    fn new(api: &str, redis: &str, rate: RateBudget) -> Self {
        let store = Store::redis(redis, None).expect("store");
        let settings = settings(api);
        let http = HttpClient::new(Duration::from_secs(10), rate, settings.retry_policy())
            .expect("http")
            .with_shared_window(store.redis_connection());
        let client = BuildkiteClient::new(
            http,
            &settings.buildkite_api_url,
            settings.buildkite_token.clone(),
        )
        .expect("token");
        Self { client, store }
    }

    async fn scan(&self) -> ScanResult {
        let options = scan_options(Budgets::default(), DetailLevel::Summary, false);
        let mut result =
            scan_65099(&JobReader::new(&self.client, Some(&self.store)), &options).await;
        result.warnings.extend(self.store.take_warning());
        result
    }
}

fn verdicts(result: &ScanResult) -> Vec<(String, String)> {
    result
        .failures
        .iter()
        .map(|f| (f.failure_key.clone(), format!("{:?}", f.category)))
        .collect()
}

async fn log_requests_per_job(server: &MockServer) -> HashMap<String, usize> {
    let mut per_job = HashMap::new();
    for request in server.received_requests().await.expect("recorded") {
        if request.url.path().ends_with("/log") {
            let job = request
                .url
                .path()
                .rsplit('/')
                .nth(1)
                .unwrap_or_default()
                .to_string();
            *per_job.entry(job).or_insert(0) += 1;
        }
    }
    per_job
}

const ROOMY: RateBudget = RateBudget {
    requests: 6000,
    window: Duration::from_secs(60),
};

#[tokio::test]
async fn three_replicas_read_each_log_once_and_a_fresh_one_reads_none() {
    let redis = RedisServer::start();
    let server = fixture_server().await;
    let replicas: Vec<Replica> = (0..3)
        .map(|_| Replica::new(&server.uri(), &redis.url(), ROOMY))
        .collect();
    let (a, b, c) = futures::join!(replicas[0].scan(), replicas[1].scan(), replicas[2].scan());
    assert_eq!(verdicts(&a), verdicts(&b));
    assert_eq!(verdicts(&a), verdicts(&c));
    assert!(!a.failures.is_empty());
    let per_job = log_requests_per_job(&server).await;
    assert!(!per_job.is_empty());
    for (job, reads) in &per_job {
        assert!(
            *reads <= 2,
            "job {job}: {reads} log requests (a tail and one larger read at most)"
        );
    }
    let logs_before = per_job.values().sum::<usize>();

    // A fresh replica: the build (it may have changed), no log.
    let fresh = Replica::new(&server.uri(), &redis.url(), ROOMY);
    let before = server.received_requests().await.expect("recorded").len();
    let again = fresh.scan().await;
    let sent = server.received_requests().await.expect("recorded").len() - before;
    assert!(sent <= 2, "{sent} requests");
    assert_eq!(
        log_requests_per_job(&server).await.values().sum::<usize>(),
        logs_before
    );
    assert_eq!(verdicts(&again), verdicts(&a));
    assert!(
        again.warnings.iter().all(|w| !w.contains("shared store")),
        "{:?}",
        again.warnings
    );
}

#[tokio::test]
async fn with_redis_stopped_the_scan_completes_from_buildkite_with_a_warning() {
    let mut redis = RedisServer::start();
    let server = fixture_server().await;
    let replica = Replica::new(&server.uri(), &redis.url(), ROOMY);
    let first = replica.scan().await;
    redis.stop();
    let second = replica.scan().await;
    assert_eq!(verdicts(&second), verdicts(&first));
    assert!(
        second
            .warnings
            .iter()
            .any(|w| w.contains("the shared store redis://127.0.0.1:")
                && w.contains("read from Buildkite")),
        "{:?}",
        second.warnings
    );
}

/// Buildkite's per-token limit as a sliding window (429 past it), over the fixture's answers.
struct Limited {
    budget: RateBudget,
    sent: Mutex<VecDeque<Instant>>,
    refused: Arc<Mutex<usize>>,
    build: String,
}

impl Respond for Limited {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        {
            let mut sent = self.sent.lock().expect("sent");
            let now = Instant::now();
            while sent
                .front()
                .is_some_and(|t| now.duration_since(*t) >= self.budget.window)
            {
                sent.pop_front();
            }
            if sent.len() >= self.budget.requests as usize {
                *self.refused.lock().expect("refused") += 1;
                return ResponseTemplate::new(429)
                    .insert_header("ratelimit-remaining", "0")
                    .insert_header("ratelimit-reset", "1")
                    .set_body_json(
                        serde_json::json!({"message": "You have exceeded the rate limit"}),
                    );
            }
            sent.push_back(now);
        }
        if request.url.path().ends_with("/log") {
            let build = ciwatch_mcp::fixtures::build_65099();
            let id = request.url.path().rsplit('/').nth(1).unwrap_or_default();
            return match build.jobs().iter().find(|j| j.id == id) {
                Some(job) => log_response(&ciwatch_mcp::fixtures::raw_log(job), request),
                None => ResponseTemplate::new(404),
            };
        }
        ResponseTemplate::new(200).set_body_raw(self.build.clone(), "application/json")
    }
}

async fn limited_server(budget: RateBudget) -> (MockServer, Arc<Mutex<usize>>) {
    let server = MockServer::start().await;
    let refused = Arc::new(Mutex::new(0));
    Mock::given(method("GET"))
        .and(path_regex(
            r"^/v2/organizations/vllm/pipelines/ci/builds/65099",
        ))
        .respond_with(Limited {
            budget,
            sent: Mutex::default(),
            refused: refused.clone(),
            build: ciwatch_mcp::fixtures::BUILD_65099.to_string(),
        })
        .mount(&server)
        .await;
    (server, refused)
}

/// Three replicas, each with a store of its own (so each reads every log), one token: with
/// the shared window they keep to the token's budget together; each on its own would not.
#[tokio::test]
async fn replicas_share_one_rate_window_per_token() {
    let redis = RedisServer::start();
    // The server allows 12 requests in any second; the replicas keep to 10 in any 1.2 s
    // (the margin is for requests admitted together arriving apart).
    let server_budget = RateBudget {
        requests: 12,
        window: Duration::from_secs(1),
    };
    let client_budget = RateBudget {
        requests: 10,
        window: Duration::from_millis(1200),
    };
    let run = |shared: bool| {
        let redis = redis.url();
        async move {
            let (server, refused) = limited_server(server_budget).await;
            let scans = (0..3).map(|_| {
                let api = server.uri();
                let redis = redis.clone();
                async move {
                    let dir = tempfile::tempdir().expect("temp dir");
                    let store =
                        Store::from(ciwatch_mcp::cache::Cache::open(dir.path()).expect("store"));
                    let window = Store::redis(&redis, None).expect("redis");
                    let settings = settings(&api);
                    let http = HttpClient::new(
                        Duration::from_secs(10),
                        client_budget,
                        settings.retry_policy(),
                    )
                    .expect("http")
                    .with_shared_window(if shared {
                        window.redis_connection()
                    } else {
                        None
                    });
                    let client = BuildkiteClient::new(
                        http,
                        &settings.buildkite_api_url,
                        settings.buildkite_token.clone(),
                    )
                    .expect("token");
                    let budgets = Budgets {
                        max_jobs: 8,
                        ..Budgets::default()
                    };
                    let options = scan_options(budgets, DetailLevel::Minimal, false);
                    ciwatch_mcp::watch::scan_build(
                        &JobReader::new(&client, Some(&store)),
                        ciwatch_mcp::watch::Enrichment::default(),
                        &ciwatch_mcp::watch::BuildKey::new("vllm", "ci", 65099),
                        &options,
                        &ciwatch_mcp::watch::NoProgress,
                    )
                    .await
                }
            });
            let results = futures::future::join_all(scans).await;
            let refused = *refused.lock().expect("refused");
            (results, refused)
        }
    };
    let (together, refused) = run(true).await;
    assert_eq!(refused, 0, "the replicas kept to one budget");
    assert!(together
        .iter()
        .all(|r| r.as_ref().is_ok_and(|r| r.total_failures > 0)));
    let (_, refused_alone) = run(false).await;
    assert!(
        refused_alone > 0,
        "each replica on its own window overruns the token's budget"
    );
}
