//! The job-outcome store through the one reader, against the fixture nightly on wiremock:
//! requests counted from the mock for a cold scan, a warm one, one after a restart, a running
//! build (never stored), a partly read log, and the rate limiter's sliding window.

use crate::common::{client, fixture_server, scan_options, settings, BUILD_PATH};
use ciwatch_mcp::buildkite::BuildKey;
use ciwatch_mcp::http::{HttpClient, RateBudget};
use ciwatch_mcp::model::{DetailLevel, JobStatus, ScanResult};
use ciwatch_mcp::storage::Cache;
use ciwatch_mcp::watch::{self, Budgets, Enrichment, JobReader, NoProgress};
use std::time::Duration;
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

fn key() -> BuildKey {
    BuildKey::new("vllm", "ci", 65099)
}

async fn scan(
    server: &MockServer,
    store: Option<&ciwatch_mcp::storage::Store>,
    budgets: Budgets,
) -> ScanResult {
    scan_as(&settings(&server.uri()), store, budgets).await
}

/// A scan with the token (and the rest) of `settings`.
async fn scan_as(
    settings: &ciwatch_mcp::config::Settings,
    store: Option<&ciwatch_mcp::storage::Store>,
    budgets: Budgets,
) -> ScanResult {
    let client = client(settings);
    let reader = JobReader::new(&client, store);
    let options = scan_options(budgets, DetailLevel::Summary, false);
    watch::scan_build(
        &reader,
        Enrichment::default(),
        &key(),
        &options,
        &NoProgress,
    )
    .await
    .expect("scan")
}

async fn requests(server: &MockServer) -> Vec<Request> {
    server.received_requests().await.expect("recorded")
}

/// What the person reads: every failure's key, category and reason.
fn verdicts(result: &ScanResult) -> Vec<(String, String, Option<String>)> {
    result
        .failures
        .iter()
        .map(|f| {
            (
                f.failure_key.clone(),
                format!("{:?}", f.category),
                f.reason.clone(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_finished_build_costs_one_request_again_and_no_log_even_after_a_restart() {
    let server = fixture_server().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let store = ciwatch_mcp::storage::Store::from(Cache::open(dir.path()).expect("store"));

    let cold = scan(&server, Some(&store), Budgets::default()).await;
    let cold_requests = requests(&server).await;
    let logs = cold_requests
        .iter()
        .filter(|r| r.url.path().ends_with("/log"))
        .count();
    // The build and one read per log (the plan reads multi-command jobs whole at once; every
    // tail read here shows what ended its job, so none is read again).
    assert_eq!(cold_requests.len(), 1 + 20);
    assert_eq!(logs, 20);
    assert_eq!(cold.stats.api_requests, 21);
    assert!(
        cold.stats.log_bytes_fetched <= 14_000_000,
        "{} bytes",
        cold.stats.log_bytes_fetched
    );

    // The second call requests the 4 logs the first left, and no other: the build is whole.
    let whole = scan(&server, Some(&store), Budgets::default()).await;
    assert_eq!(logs_requested_since(&server, cold_requests.len()).await, 4);
    assert_eq!(unread(&cold), 4);
    assert_eq!(unread(&whole), 0);
    let (cold, cold_requests) = (whole, requests(&server).await);

    // Warm: the build is asked for again (it may have changed: a retry), no log is read.
    let warm = scan(&server, Some(&store), Budgets::default()).await;
    let warm_requests = requests(&server).await;
    assert_eq!(
        warm_requests.len(),
        cold_requests.len() + 1,
        "warm: the build only"
    );
    assert!(warm_requests[cold_requests.len()]
        .url
        .path()
        .ends_with("/builds/65099"));
    assert_eq!(warm.stats.api_requests, 1);
    assert_eq!(verdicts(&warm), verdicts(&cold));
    assert_eq!(warm.jobs.len(), cold.jobs.len());

    drop(store);
    let reopened =
        ciwatch_mcp::storage::Store::from(Cache::open(dir.path()).expect("store survives"));
    let after_restart = scan(&server, Some(&reopened), Budgets::default()).await;
    assert_eq!(
        after_restart.stats.api_requests, 1,
        "after a restart: the build only"
    );
    // Within a freshness window the stored build is reused too.
    let client = client(&settings(&server.uri()));
    let reader = JobReader::new(&client, Some(&reopened))
        .with_build_freshness(std::time::Duration::from_secs(120));
    let options = scan_options(Budgets::default(), DetailLevel::Summary, false);
    let fresh = crate::common::scan_65099(&reader, &options).await;
    assert_eq!(fresh.stats.api_requests, 0, "within the freshness window");
    assert_eq!(verdicts(&after_restart), verdicts(&cold));
}

/// The jobs whose log was requested since the mock's `from`th request.
async fn logs_requested_since(server: &MockServer, from: usize) -> usize {
    requests(server).await[from..]
        .iter()
        .filter(|r| r.url.path().ends_with("/log"))
        .map(|r| r.url.path().to_string())
        .collect::<std::collections::HashSet<_>>()
        .len()
}

fn unread(result: &ScanResult) -> usize {
    result
        .jobs
        .iter()
        .filter(|j| j.status == JobStatus::OverBudget)
        .count()
}

/// `max_jobs` bounds what a call requests; stored outcomes are free. On the real night (24
/// failed job attempts), two default calls give the whole night, the second requesting only
/// the 4 logs the first left.
#[tokio::test]
async fn two_default_calls_give_the_whole_night() {
    let server = fixture_server().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let store = ciwatch_mcp::storage::Store::from(Cache::open(dir.path()).expect("store"));
    let first = scan(&server, Some(&store), Budgets::default()).await;
    let planned = first.jobs.len();
    assert!(planned >= 24, "{planned} failed job attempts");
    let left = planned - Budgets::default().max_jobs;
    assert_eq!(unread(&first), left);
    assert!(!first.complete);
    let warning = first
        .warnings
        .iter()
        .find(|w| w.contains("not read"))
        .expect("a warning for the unread jobs");
    assert!(
        warning.contains("1 more call at this max_jobs"),
        "{warning}"
    );
    let before = requests(&server).await.len();
    let second = scan(&server, Some(&store), Budgets::default()).await;
    assert_eq!(logs_requested_since(&server, before).await, left);
    assert_eq!(unread(&second), 0);
    assert!(second.complete, "{:?}", second.incomplete);
    // What the first call read, the second gives again, from the store.
    let keys = |r: &ScanResult| {
        r.failures
            .iter()
            .map(|f| f.failure_key.clone())
            .collect::<std::collections::HashSet<_>>()
    };
    let read_first: Vec<String> = first
        .failures
        .iter()
        .filter(|f| {
            first
                .jobs
                .iter()
                .any(|j| Some(&j.job_id) == f.job_id.as_ref() && j.status != JobStatus::OverBudget)
        })
        .map(|f| f.failure_key.clone())
        .collect();
    assert!(!read_first.is_empty());
    assert!(read_first.iter().all(|k| keys(&second).contains(k)));
}

/// With a small `max_jobs`, each call requests at most that many logs and goes on where the last
/// stopped; the first call's warning says how many more calls finish the build, and it is right.
#[tokio::test]
async fn each_call_goes_on_where_the_last_stopped_as_its_warning_says() {
    let server = fixture_server().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let store = ciwatch_mcp::storage::Store::from(Cache::open(dir.path()).expect("store"));
    let few = Budgets {
        max_jobs: 5,
        ..Budgets::default()
    };
    let first = scan(&server, Some(&store), few.clone()).await;
    let left = unread(&first);
    assert_eq!(first.jobs.len() - left, 5);
    let calls = left.div_ceil(5);
    let expected = format!("Call again to go on where it stopped: {calls} more calls at this max_jobs, or one with max_jobs={left}");
    assert!(
        first.warnings.iter().any(|w| w.contains(&expected)),
        "{:?}",
        first.warnings
    );
    let mut last = first;
    for call in 1..=calls {
        let before = requests(&server).await.len();
        let next = scan(&server, Some(&store), few.clone()).await;
        let fetched = logs_requested_since(&server, before).await;
        assert_eq!(fetched, unread(&last).min(5), "call {call}");
        assert_eq!(unread(&next), unread(&last) - fetched, "call {call}");
        last = next;
    }
    assert!(last.complete, "{:?}", last.incomplete);

    // Without a store nothing is kept, so another call would not go on: the warning says to
    // raise max_jobs instead.
    let unkept = scan(&server, None, few).await;
    assert!(
        unkept
            .warnings
            .iter()
            .any(|w| w.contains(&format!("raise max_jobs to {}", unkept.jobs.len()))),
        "{:?}",
        unkept.warnings
    );
}

#[tokio::test]
async fn nothing_of_a_running_build_is_stored_and_it_is_scanned_with_a_warning() {
    let server = MockServer::start().await;
    let mut build: serde_json::Value =
        serde_json::from_str(ciwatch_mcp::fixtures::BUILD_65099).expect("fixture");
    build["state"] = "failing".into();
    build["finished_at"] = serde_json::Value::Null;
    // One failed job is still being retried in place: its attempt runs.
    let running_id = "019e068f-84f5-4636-9707-f971a7d87843";
    for job in build["jobs"].as_array_mut().expect("jobs") {
        if job["id"] == running_id {
            job["state"] = "running".into();
        }
    }
    Mock::given(method("GET"))
        .and(path(BUILD_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(build))
        .mount(&server)
        .await;
    crate::common::mount_fixture(&server).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let store = ciwatch_mcp::storage::Store::from(Cache::open(dir.path()).expect("store"));

    let first = scan(&server, Some(&store), Budgets::default()).await;
    let first_requests = requests(&server).await.len();
    assert_eq!(
        store.stored_bytes(),
        0,
        "nothing of a running build is stored"
    );
    let unfinished = first
        .warnings
        .iter()
        .find(|w| w.contains("still running"))
        .expect("a warning for the running build");
    assert!(unfinished.contains("failing"), "{unfinished}");
    assert!(!first.complete, "a running build is no complete answer");
    let second = scan(&server, Some(&store), Budgets::default()).await;
    let second_requests = requests(&server).await.len() - first_requests;
    assert_eq!(
        second_requests, first_requests,
        "the build and every log are read again"
    );
    assert_eq!(verdicts(&second), verdicts(&first));

    // The running job's log is read, and read again: it may still grow.
    let client = client(&settings(&server.uri()));
    let reader = JobReader::new(&client, Some(&store));
    for _ in 0..2 {
        watch::job_test_failures(
            &reader,
            &key(),
            &watch::JobQuery::new(running_id, watch::MatchStrategy::Id),
            &Budgets::default(),
        )
        .await
        .expect("job");
    }
    let running_reads = requests(&server)
        .await
        .iter()
        .filter(|r| r.url.path().contains(running_id))
        .count();
    assert!(running_reads >= 2, "{running_reads}");
    assert!(!first.jobs.iter().any(|j| j.job_id == running_id));

    // Once the build has finished, the next scan shows the job that was running.
    server.reset().await;
    crate::common::mount_fixture(&server).await;
    let finished = scan(&server, Some(&store), Budgets::default()).await;
    assert!(
        !finished
            .warnings
            .iter()
            .any(|w| w.contains("still running")),
        "{:?}",
        finished.warnings
    );
    assert!(
        finished.jobs.iter().any(|j| j.job_id == running_id),
        "the job that was running is listed once it failed"
    );
    assert!(store.stored_bytes() > 0, "a finished build is stored");
}

#[tokio::test]
async fn a_tail_only_outcome_is_not_reused_when_more_may_be_read() {
    let server = fixture_server().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let store = ciwatch_mcp::storage::Store::from(Cache::open(dir.path()).expect("store"));
    let client = client(&settings(&server.uri()));
    let reader = JobReader::new(&client, Some(&store));
    // A job of 17 commands whose log is 1.1 MB: with whole reads bounded at 160 KB, its one
    // read (the plan reads such a job whole, up to that bound) does not reach the first
    // command, and does not find the failures either.
    let job_id = "019e068f-8880-4d80-b9ae-21f562929ee8";
    let drill = |max_whole_log_bytes: u64| {
        let reader = &reader;
        async move {
            let budgets = Budgets {
                max_log_bytes: 10_000,
                max_whole_log_bytes,
                ..Budgets::default()
            };
            watch::job_test_failures(
                reader,
                &key(),
                &watch::JobQuery::new(job_id, watch::MatchStrategy::Id),
                &budgets,
            )
            .await
            .expect("job")
        }
    };
    let log_requests = || async {
        requests(&server)
            .await
            .iter()
            .filter(|r| r.url.path().contains(job_id))
            .count()
    };
    let small = drill(160_000).await;
    assert!(
        small
            .warnings
            .iter()
            .any(|w| w.contains("commands 1 to 2 of 17 were not read")),
        "{:?}",
        small.warnings
    );
    assert_eq!(log_requests().await, 1, "one read, as large as allowed");
    let _ = drill(160_000).await;
    assert_eq!(
        log_requests().await,
        1,
        "the same ask: the stored partial outcome answers"
    );
    let whole = drill(watch::DEFAULT_MAX_WHOLE_LOG_BYTES).await;
    assert_eq!(log_requests().await, 2, "a larger ask reads again");
    assert!(whole.warnings.is_empty(), "{:?}", whole.warnings);
    assert_eq!(
        whole.test_failures[0].error_message.as_deref(),
        Some("KeyError: 'kimi_vl'")
    );
    let _ = drill(watch::DEFAULT_MAX_WHOLE_LOG_BYTES).await;
    assert_eq!(log_requests().await, 2, "now complete: stored");
}

/// Answers with the server's rate-limit headers and records when each request arrived.
struct ArrivalRecorder(std::sync::Arc<std::sync::Mutex<Vec<std::time::Instant>>>);
impl wiremock::Respond for ArrivalRecorder {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        if let Ok(mut arrivals) = self.0.lock() {
            arrivals.push(std::time::Instant::now());
        }
        ResponseTemplate::new(200)
            .set_body_json(serde_json::json!([]))
            .insert_header("ratelimit-remaining", "100")
            .insert_header("ratelimit-reset", "60")
    }
}

/// Through a real server, no window receives more than the budget's `requests`, and a spent
/// `RateLimit-Remaining` delays requests without any being refused (the waits themselves are
/// asserted on tokio's paused clock in `http/pacing.rs`).
#[tokio::test]
async fn requests_never_exceed_the_budget_in_any_window() {
    let server = MockServer::start().await;
    let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    Mock::given(method("GET"))
        .and(path_regex("^/v2/ping$"))
        .respond_with(ArrivalRecorder(received.clone()))
        .mount(&server)
        .await;
    let window = Duration::from_millis(400);
    let budget = RateBudget {
        requests: 5,
        window,
    };
    let http = HttpClient::new(
        Duration::from_secs(5),
        budget,
        settings(&server.uri()).retry_policy(),
    )
    .expect("client");
    let target = ciwatch_mcp::http::Target {
        description: "ping".into(),
        not_found: "no ping".into(),
    };
    let url = format!("{}/v2/ping", server.uri());
    let sends: Vec<_> = (0..12)
        .map(|_| {
            let (http, target, url) = (&http, &target, &url);
            async move {
                http.send(target, || http.request(reqwest::Method::GET, url))
                    .await
                    .expect("sent")
            }
        })
        .collect();
    futures::future::join_all(sends).await;
    let mut arrivals = received.lock().expect("arrivals").clone();
    assert_eq!(arrivals.len(), 12);
    crate::common::assert_within_budget(&mut arrivals, window, 5);

    // The server says 2 remain for the next 1 s: the third request waits for the reset.
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!([]))
                .insert_header("ratelimit-remaining", "2")
                .insert_header("ratelimit-reset", "1"),
        )
        .mount(&server)
        .await;
    let http = HttpClient::new(
        Duration::from_secs(5),
        RateBudget::per_minute(1000),
        settings(&server.uri()).retry_policy(),
    )
    .expect("client");
    let url = format!("{}/v2/ping", server.uri());
    // The wait itself is on tokio's paused clock in http/pacing.rs; here: none is refused.
    for _ in 0..4 {
        http.send(&target, || http.request(reqwest::Method::GET, &url))
            .await
            .expect("sent");
    }
    assert_eq!(requests(&server).await.len(), 4);
}

#[tokio::test]
async fn another_token_does_not_read_what_this_token_stored() {
    let server = fixture_server().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let store = ciwatch_mcp::storage::Store::from(Cache::open(dir.path()).expect("store"));
    scan(&server, Some(&store), Budgets::default()).await;
    let after_first = requests(&server).await.len();
    let mut other = settings(&server.uri());
    other.buildkite_token = Some(ciwatch_mcp::secret::Secret::new("bkua_another_caller"));
    scan_as(&other, Some(&store), Budgets::default()).await;
    assert_eq!(
        requests(&server).await.len() - after_first,
        after_first,
        "the other token reads everything itself"
    );
}

/// A finished build looked at again with no change reads and writes only its small head: the
/// build itself (320 KB as stored here) is neither read back nor written again.
#[tokio::test]
async fn a_build_looked_at_again_unchanged_reads_and_writes_only_its_head() {
    let server = fixture_server().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let store = ciwatch_mcp::storage::Store::from(Cache::open(dir.path()).expect("store"));
    let client = client(&settings(&server.uri()));
    let reader = JobReader::new(&client, Some(&store));
    reader.build(&key()).await.expect("the build");
    let (_, first_written) = store.traffic.totals();
    assert!(first_written > 100_000, "{first_written} bytes stored");

    let before = store.traffic.totals();
    for _ in 0..2 {
        // Asked again (the freshness window is 0: Buildkite is asked), the same build.
        reader.build(&key()).await.expect("the build");
    }
    let after = store.traffic.totals();
    let (read, written) = (after.0 - before.0, after.1 - before.1);
    // The head is a few hundred bytes; the build is what the first look stored.
    assert!(
        read < first_written / 100,
        "{read} bytes read for two looks"
    );
    assert!(
        written < first_written / 100,
        "{written} bytes written for two looks"
    );
    assert_eq!(requests(&server).await.len(), 3, "each look asks Buildkite");
}

/// A build whose head outlived it (the build evicted first, as the oldest write of a full
/// store) is written again by the next look, not left missing behind an unchanged head.
#[tokio::test]
async fn a_build_whose_head_outlived_it_is_written_again() {
    let server = fixture_server().await;
    let dir = tempfile::tempdir().expect("temp dir");
    // Room for a head, not for a build (320 KB as stored): the build goes first. The records
    // keep a quarter of the bound, 100 KB.
    let store =
        ciwatch_mcp::storage::Store::from(Cache::open_bounded(dir.path(), 400_000).expect("store"));
    let client = client(&settings(&server.uri()));
    let reader = JobReader::new(&client, Some(&store))
        .with_build_freshness(std::time::Duration::from_secs(600));
    reader.build(&key()).await.expect("the build");
    let (_, first_written) = store.traffic.totals();
    assert!(first_written > 100_000, "{first_written} bytes stored");

    // Fresh by its head, but the build is gone: asked again and written again.
    reader.build(&key()).await.expect("the build");
    let (_, written) = store.traffic.totals();
    assert_eq!(
        requests(&server).await.len(),
        2,
        "the missing build is asked again"
    );
    assert!(
        written - first_written > 100_000,
        "{} bytes written again",
        written - first_written
    );
}
