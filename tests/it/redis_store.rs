//! A team's replicas against a real `redis-server` (started here on a free loopback port; the
//! tests fail when it cannot start: `.ci/run` installs it from Debian's packages) and the
//! fixture nightly on wiremock: one store and one Buildkite budget for all of them.

use crate::common::{fixture_server, most_in_window, scan_65099, scan_options, settings};
use ciwatch_mcp::buildkite::BuildkiteClient;
use ciwatch_mcp::http::{HttpClient, RateBudget};
use ciwatch_mcp::model::{DetailLevel, ScanResult};
use ciwatch_mcp::secret::Secret;
use ciwatch_mcp::services::Services;
use ciwatch_mcp::storage::Store;
use ciwatch_mcp::watch::{Budgets, JobReader};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// A `redis-server` of this test's own, stopped when dropped.
pub(crate) struct RedisServer {
    child: std::process::Child,
    port: u16,
}

impl RedisServer {
    pub(crate) fn start() -> Self {
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

    pub(crate) fn url(&self) -> String {
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

/// One replica: its own HTTP layer, Buildkite client and connection to the shared store, built
/// by the composition root from settings that name the Redis.
pub(crate) struct Replica {
    client: BuildkiteClient,
    store: Arc<Store>,
}

impl Replica {
    pub(crate) fn new(api: &str, redis: &str, requests_per_minute: u32) -> Self {
        let mut settings = settings(api);
        settings.store_url = Some(Secret::new(redis));
        // The tests' settings have no store; --no-cache would turn the Redis off too.
        settings.no_cache = false;
        settings.requests_per_minute = requests_per_minute;
        let services = Services::build(&settings).expect("services");
        let store = services.store.expect("the shared store");
        let client = BuildkiteClient::new(
            services.http,
            &settings.buildkite_api_url,
            settings.buildkite_token.clone(),
        )
        .expect("token");
        Self { client, store }
    }

    pub(crate) async fn scan(&self) -> ScanResult {
        // Every failed job of the night in one call, so a later replica has nothing left to read.
        let whole_night = Budgets {
            max_jobs: 50,
            ..Budgets::default()
        };
        let options = scan_options(whole_night, DetailLevel::Summary, false);
        scan_65099(&JobReader::new(&self.client, Some(&*self.store)), &options).await
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

/// Requests a minute no scan here comes near.
const ROOMY: u32 = 6000;

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

/// A shared store that did not answer is a warning of the call that asked it: a call running
/// beside it, or after it, reports nothing of it.
#[tokio::test]
async fn a_store_failure_is_a_warning_of_the_call_that_met_it_only() {
    use ciwatch_mcp::call::{take_call_warnings, within_call};
    let mut redis = RedisServer::start();
    let store = Store::redis(&redis.url(), None).expect("store");
    redis.stop();
    let (failed, after_the_failure) = tokio::sync::oneshot::channel();
    let (met, beside) = tokio::join!(
        within_call(async {
            let read = store
                .get::<String>(ciwatch_mcp::storage::Table::JobOutcomes, "scope/job")
                .await;
            assert_eq!(read, None);
            let _ = failed.send(());
            take_call_warnings()
        }),
        // Running beside it, and looking only once the other call has met the failure.
        within_call(async {
            after_the_failure.await.expect("the other call ends");
            take_call_warnings()
        }),
    );
    assert!(met.iter().any(|w| w.contains("did not answer")), "{met:?}");
    assert!(beside.is_empty(), "{beside:?}");
    let after = within_call(async { take_call_warnings() }).await;
    assert!(after.is_empty(), "{after:?}");
}

/// The job tools are calls of their own: a shared store that does not answer is among their
/// warnings, and the job is read from Buildkite.
#[tokio::test]
async fn with_redis_stopped_a_jobs_failures_say_so() {
    let mut redis = RedisServer::start();
    let server = fixture_server().await;
    let replica = Replica::new(&server.uri(), &redis.url(), ROOMY);
    redis.stop();
    let read = ciwatch_mcp::watch::job_test_failures(
        &JobReader::new(&replica.client, Some(&*replica.store)),
        &ciwatch_mcp::buildkite::BuildKey::new("vllm", "ci", 65099),
        &ciwatch_mcp::watch::JobQuery::new(
            "amd: v1 sample",
            ciwatch_mcp::model::MatchStrategy::Fuzzy,
        ),
        &Budgets::default(),
    )
    .await
    .expect("read from Buildkite");
    assert!(!read.test_failures.is_empty());
    assert!(
        read.warnings
            .iter()
            .any(|w| w.contains("the shared store redis://127.0.0.1:")),
        "{:?}",
        read.warnings
    );
}

/// Records when each request arrives.
struct Arrivals(Arc<Mutex<Vec<Instant>>>);

impl Respond for Arrivals {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        self.0.lock().expect("arrivals").push(Instant::now());
        ResponseTemplate::new(200).set_body_json(serde_json::json!([]))
    }
}

/// Three replicas (each its own HTTP layer and Redis connection, one token) send 8 requests
/// each at once. With the shared window no 2 s holds more than the token's 5 requests; each
/// on its own window, the three send 15 at once.
#[tokio::test]
async fn replicas_share_one_rate_window_per_token() {
    let redis = RedisServer::start();
    let budget = RateBudget {
        requests: 5,
        window: Duration::from_secs(2),
    };
    let run = |shared: bool| {
        let redis = redis.url();
        async move {
            let server = MockServer::start().await;
            let arrivals = Arc::new(Mutex::new(Vec::new()));
            Mock::given(method("GET"))
                .respond_with(Arrivals(arrivals.clone()))
                .mount(&server)
                .await;
            let url = format!("{}/v2/ping", server.uri());
            let target = ciwatch_mcp::http::Target {
                description: "ping".into(),
                not_found: "no ping".into(),
            };
            let replicas: Vec<HttpClient> = (0..3)
                .map(|_| {
                    let window = Store::redis(&redis, None).expect("redis");
                    HttpClient::new(
                        Duration::from_secs(10),
                        budget,
                        settings(&url).retry_policy(),
                    )
                    .expect("http")
                    .with_shared_window(if shared {
                        window.redis_connection()
                    } else {
                        None
                    })
                    .for_token("0123456789abcdef")
                })
                .collect();
            let sends = replicas.iter().flat_map(|http| {
                let (target, url) = (&target, &url);
                (0..8).map(move |_| async move {
                    http.send(target, || http.request(reqwest::Method::GET, url))
                        .await
                        .expect("sent")
                })
            });
            futures::future::join_all(sends).await;
            let mut arrivals = arrivals.lock().expect("arrivals").clone();
            assert_eq!(arrivals.len(), 24);
            // The slack absorbs arrival jitter on a loaded machine.
            most_in_window(&mut arrivals, budget.window, Duration::from_millis(500))
        }
    };
    let together = run(true).await;
    assert!(
        together <= 5,
        "{together} requests of one token within one window"
    );
    let alone = run(false).await;
    assert!(
        alone >= 15,
        "each on its own window: {alone} within one window"
    );
}

/// Waits (a bounded number of short turns, never a clock's verdict) for `key`'s lease to be
/// free for `store`, and holds it.
async fn lease_when_free<'a>(
    store: &'a Store,
    key: &str,
) -> Option<ciwatch_mcp::storage::LeaseGuard<'a>> {
    for _ in 0..200 {
        if let ciwatch_mcp::storage::Lease::Acquired(guard) = store.lease(key).await {
            return Some(guard);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}

/// A reader cancelled mid-read (its guard dropped without a release) frees its lease for the
/// replicas at once, not after the lease's two minutes; and a release deletes only the lease it
/// holds, never one another reader took after it expired.
#[tokio::test]
async fn a_cancelled_reader_frees_its_lease_and_a_release_frees_only_its_own() {
    use ciwatch_mcp::storage::Lease;
    let redis = RedisServer::start();
    let here = Store::redis(&redis.url(), None).expect("store");
    let replica = Store::redis(&redis.url(), None).expect("store");

    let Lease::Acquired(reading) = here.lease("scope/job-1").await else {
        panic!("the first reader gets the lease");
    };
    assert!(matches!(
        replica.lease("scope/job-1").await,
        Lease::Busy(None)
    ));
    drop(reading);
    let next = lease_when_free(&replica, "scope/job-1").await;
    assert!(next.is_some(), "the cancelled reader's lease is still held");

    // A lease that expired under a slow reader and was taken by another: the slow reader's
    // release leaves the other's lease alone.
    let Lease::Acquired(slow) = here.lease("scope/job-2").await else {
        panic!("free");
    };
    let mut raw = redis::Client::open(redis.url())
        .expect("client")
        .get_multiplexed_async_connection()
        .await
        .expect("connection");
    let _: () = redis::cmd("SET")
        .arg("ciwatch:lease:scope/job-2")
        .arg("another-reader")
        .query_async(&mut raw)
        .await
        .expect("set");
    slow.release().await;
    let holder: Option<String> = redis::cmd("GET")
        .arg("ciwatch:lease:scope/job-2")
        .query_async(&mut raw)
        .await
        .expect("get");
    assert_eq!(holder.as_deref(), Some("another-reader"));
}
