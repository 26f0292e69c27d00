//! `ciwatch_get_job_log` on the fixture nightly: a bounded, numbered tail, a search (most recent
//! first, with context) including one that floods and is cut, one test's section, and a second
//! view of a finished job's log served from the store.

use ciwatch_mcp::cache::Cache;
use ciwatch_mcp::input::NodeId;
use ciwatch_mcp::model::{JobLogResult, MatchStrategy};
use ciwatch_mcp::watch::{self, Budgets, BuildKey, JobReader, LogView};
use regex::Regex;

const DISTRIBUTED: &str = "019e068f-84f5-4636-9707-f971a7d87843";

async fn view(reader: &JobReader<'_>, job: &str, view: LogView) -> JobLogResult {
    watch::job_log(
        reader,
        &BuildKey::new("vllm", "ci", 65099),
        job,
        MatchStrategy::Id,
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
    let store = Cache::open(dir.path()).expect("store");
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
    assert!(tail.whole_log, "the 1.1 MB log fits the 3.2 MB read");
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
