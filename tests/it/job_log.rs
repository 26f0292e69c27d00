//! `ciwatch_get_job_log` on the fixture nightly: a bounded, numbered tail, a search (most recent
//! first, with context) including one that floods and is cut, one test's section, and a second
//! view of a finished job's log served from the store.

use ciwatch_mcp::buildkite::BuildKey;
use ciwatch_mcp::input::NodeId;
use ciwatch_mcp::model::{JobLogResult, MatchStrategy};
use ciwatch_mcp::storage::Cache;
use ciwatch_mcp::watch::{self, Budgets, JobReader, LogView};
use regex::Regex;

const DISTRIBUTED: &str = "019e068f-84f5-4636-9707-f971a7d87843";

async fn view(reader: &JobReader<'_>, job: &str, view: LogView) -> JobLogResult {
    watch::job_log(
        reader,
        &BuildKey::new("vllm", "ci", 65099),
        &watch::JobQuery::new(job, MatchStrategy::Id),
        &view,
        &Budgets::default(),
    )
    .await
    .expect("log view")
}

#[tokio::test]
async fn tails_searches_and_test_sections_bounded_and_numbered() {
    let server = crate::common::fixture_server().await;
    let client = crate::common::client(&crate::common::settings(&server.uri()));
    let dir = tempfile::tempdir().expect("temp dir");
    let store = ciwatch_mcp::storage::Store::from(Cache::open(dir.path()).expect("store"));
    let reader = JobReader::new(&client, Some(&store));

    let tail = view(&reader, DISTRIBUTED, LogView::Tail { lines: 100 }).await;
    assert_eq!(tail.lines.len(), 100);
    assert!(tail
        .lines
        .last()
        .expect("lines")
        .text
        .starts_with("🚨 Error: The command exited"));
    assert!(
        tail.lines.windows(2).all(|w| w[1].n == w[0].n + 1),
        "consecutive numbers"
    );
    assert_eq!(tail.lines.last().expect("lines").n, tail.total_lines);
    assert!(tail.whole_log, "the 1.1 MB log is read whole");
    assert!(!tail.truncated);

    let search = view(
        &reader,
        DISTRIBUTED,
        LogView::Search {
            pattern: Regex::new("AssertionError").expect("regex"),
            context: 1,
            max_matches: 20,
        },
    )
    .await;
    assert_eq!(search.matches, Some(3));
    let first = &search.lines[1];
    assert!(
        first
            .text
            .starts_with("FAILED tests/v1/distributed/test_dbo.py"),
        "most recent first: {first:?}"
    );

    // Every other line of 1.1 MB of INFO noise matches: the result is cut at 64 KB and says so.
    let flood = view(
        &reader,
        DISTRIBUTED,
        LogView::Search {
            pattern: Regex::new("INFO").expect("regex"),
            context: 20,
            max_matches: 200,
        },
    )
    .await;
    assert!(flood.truncated);
    assert!(flood.matches.expect("count") > 200);
    let bytes: usize = flood.lines.iter().map(|l| l.text.len()).sum();
    assert!(bytes <= 64 * 1024, "{bytes}");
    assert!(
        flood.notes.iter().any(|n| n.contains("cut at 64 KB")),
        "{:?}",
        flood.notes
    );

    let section = view(
        &reader,
        DISTRIBUTED,
        LogView::AroundTest {
            node_id: NodeId::parse(
                "v1/distributed/test_dbo.py::test_dbo_dp_ep_gsm8k[deepep_low_latency]",
            )
            .expect("id"),
        },
    )
    .await;
    let text: Vec<&str> = section.lines.iter().map(|l| l.text.as_str()).collect();
    assert!(
        text[0].ends_with("test_dbo_dp_ep_gsm8k[deepep_low_latency] FAILED"),
        "{text:?}"
    );
    assert!(text
        .iter()
        .any(|l| l.starts_with("E       AssertionError: DBO+DP+EP accuracy too low")));
    assert!(text
        .last()
        .expect("lines")
        .starts_with("FAILED tests/v1/distributed/test_dbo.py"));
    assert!(
        !text.iter().any(|l| l.contains("deepep_high_throughput")),
        "not the other parameter"
    );

    let log_requests = server
        .received_requests()
        .await
        .expect("recorded")
        .iter()
        .filter(|r| r.url.path().ends_with("/log"))
        .count();
    assert_eq!(
        log_requests, 1,
        "a finished job's log is read once for every view"
    );
}

/// A log the job-log tool read before any scan is analysed from its kept blocks when a scan
/// asks for the job: no second request, the same failures as a read from Buildkite.
#[tokio::test]
async fn a_log_kept_by_a_view_gives_a_scan_its_outcome_without_a_request() {
    let server = crate::common::fixture_server().await;
    let client = crate::common::client(&crate::common::settings(&server.uri()));
    let dir = tempfile::tempdir().expect("temp dir");
    let store = ciwatch_mcp::storage::Store::from(Cache::open(dir.path()).expect("store"));
    let reader = JobReader::new(&client, Some(&store));
    view(&reader, DISTRIBUTED, LogView::Tail { lines: 1 }).await;

    let key = BuildKey::new("vllm", "ci", 65099);
    let build = ciwatch_mcp::fixtures::build_65099();
    let job = build
        .jobs()
        .iter()
        .find(|j| j.id == DISTRIBUTED)
        .expect("in the build");
    let limits = Budgets::default().limits();
    let kept = reader.job(&key, job, &limits).await;
    let logs_read = || async {
        let requests = server.received_requests().await.expect("recorded");
        requests
            .iter()
            .filter(|r| r.url.path().ends_with("/log"))
            .count()
    };
    assert_eq!(logs_read().await, 1, "the view's read only");
    assert!(kept.stored, "{:?}", kept.detail);

    let fresh_dir = tempfile::tempdir().expect("temp dir");
    let fresh_store =
        ciwatch_mcp::storage::Store::from(Cache::open(fresh_dir.path()).expect("store"));
    let read = JobReader::new(&client, Some(&fresh_store))
        .job(&key, job, &limits)
        .await;
    assert_eq!(logs_read().await, 2, "a store without the log reads it");
    assert_eq!(kept.status, read.status);
    let ids = |read: &ciwatch_mcp::watch::JobRead| -> Vec<String> {
        let analysis = read.analysis.as_ref().expect("analysed");
        analysis.tests.iter().map(|t| t.node_id.clone()).collect()
    };
    assert!(!ids(&read).is_empty());
    assert_eq!(ids(&kept), ids(&read));
}

/// A passed job of the fixture build whose log the next tests replace.
const KERNELS: &str = "019e062d-31dc-494c-bb3b-2362d0a36d7b";

fn kernels_log_path() -> String {
    format!("/v2/organizations/vllm/pipelines/ci/builds/65099/jobs/{KERNELS}/log")
}

/// Serves `log` for the Kernels job (ahead of the fixture's logs), with Buildkite's ranges.
struct OneLog(Vec<u8>);

impl wiremock::Respond for OneLog {
    fn respond(&self, request: &wiremock::Request) -> wiremock::ResponseTemplate {
        crate::common::log_response(&self.0, request)
    }
}

#[tokio::test]
async fn the_whole_log_is_read_once_and_numbered_from_its_first_line() {
    let server = crate::common::fixture_server().await;
    // 5 MB of numbered lines; the marker 4 MB before the end.
    let mut text = String::new();
    let mut marker_line = 0;
    let mut line = 0;
    while text.len() < 5_000_000 {
        line += 1;
        if marker_line == 0 && text.len() >= 1_000_000 {
            marker_line = line;
            text.push_str(
                "RuntimeError: NCCL error in: ProcessGroupNCCL.cpp:1234, unhandled cuda error\n",
            );
            continue;
        }
        text.push_str(&format!(
            "INFO 05-08 06:{:02}:{:02} [gpu_model_runner.py:2602] step {line}: model loading took 15.2 GiB\n",
            line / 60 % 60,
            line % 60
        ));
    }
    let log = ciwatch_mcp::fixtures::to_raw_format(&text);
    let total_lines = line;
    wiremock::Mock::given(wiremock::matchers::method("GET"))
        .and(wiremock::matchers::path(kernels_log_path()))
        .respond_with(OneLog(log.clone()))
        .with_priority(1)
        .mount(&server)
        .await;
    let client = crate::common::client(&crate::common::settings(&server.uri()));
    let dir = tempfile::tempdir().expect("temp dir");
    let store = ciwatch_mcp::storage::Store::from(Cache::open(dir.path()).expect("store"));
    let reader = JobReader::new(&client, Some(&store));

    let found = view(
        &reader,
        KERNELS,
        LogView::Search {
            pattern: Regex::new("NCCL error").expect("regex"),
            context: 0,
            max_matches: 5,
        },
    )
    .await;
    assert_eq!(found.matches, Some(1));
    assert_eq!(found.lines.len(), 1);
    assert_eq!(found.lines[0].n, marker_line, "its true line number");
    assert!(found.whole_log);
    let tail = view(&reader, KERNELS, LogView::Tail { lines: 3 }).await;
    assert_eq!(tail.total_lines, total_lines);
    assert_eq!(tail.lines.last().expect("lines").n, total_lines);

    let reads: Vec<_> = server
        .received_requests()
        .await
        .expect("recorded")
        .into_iter()
        .filter(|r| r.url.path() == kernels_log_path())
        .collect();
    assert_eq!(reads.len(), 1, "read once, then from the store");
    assert!(
        store.stored_bytes() < log.len() as u64 / 4,
        "stored compressed: {} of {} bytes",
        store.stored_bytes(),
        log.len()
    );
}

#[tokio::test]
async fn log_errors_keep_their_meaning() {
    for (status, expected) in [
        (401, "rejected the token of BUILDKITE_TOKEN (401)"),
        (403, "(403)"),
        (404, "has no log"),
    ] {
        let server = crate::common::fixture_server().await;
        wiremock::Mock::given(wiremock::matchers::method("GET"))
            .and(wiremock::matchers::path(kernels_log_path()))
            .respond_with(
                wiremock::ResponseTemplate::new(status)
                    .set_body_json(serde_json::json!({"message": "refused"})),
            )
            .with_priority(1)
            .mount(&server)
            .await;
        let client = crate::common::client(&crate::common::settings(&server.uri()));
        let reader = JobReader::new(&client, None);
        let error = watch::job_log(
            &reader,
            &BuildKey::new("vllm", "ci", 65099),
            &watch::JobQuery::new(KERNELS, MatchStrategy::Id),
            &LogView::Tail { lines: 10 },
            &Budgets::default(),
        )
        .await
        .expect_err("refused")
        .to_string();
        assert!(error.contains(expected), "{status}: {error}");
        if status != 404 {
            assert!(!error.contains("has no log"), "{status}: {error}");
        }
    }
}
