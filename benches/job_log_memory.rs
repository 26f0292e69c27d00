//! Peak memory of `ciwatch_get_job_log`'s views of a kept log, for an 8 MB and a 64 MB log:
//! whether a view's memory follows the log's size.
//!
//! For each size, one process reads the log once through the job-log tool from a local
//! Buildkite mock (the fixture nightly's build, and the log written in Buildkite's raw format),
//! which keeps it in a store on disk; then a second process, with the same store and a mock
//! that serves the build and no log, asks the tool for a tail (100 lines) and two searches (20
//! matches with 3 lines of context: one of the few failure lines, one of the passed lines that
//! match everywhere) and reports its peak resident set (`VmHWM`) and its resident set before
//! the views (the runtime, the mock, the store and the build), so each peak is that process's
//! alone.
//!
//! `cargo bench --bench job_log_memory`

use ciwatch_mcp::buildkite::BuildKey;
use ciwatch_mcp::fixtures;
use ciwatch_mcp::model::{JobLogResult, MatchStrategy};
use ciwatch_mcp::storage::{Cache, Store};
use ciwatch_mcp::watch::{self, Budgets, JobReader, LogView};
use regex::Regex;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

#[path = "support/log.rs"]
mod log;
#[path = "support/mock.rs"]
mod mock;
use log::{log_line, peak_rss_kib, rss_kib};
use mock::buildkite_client;

const JOB: &str = "019e068f-84f5-4636-9707-f971a7d87843";

fn main() {
    // As the server's own `main` does: the view's process is measured as it would run.
    ciwatch_mcp::allocator::bound_arenas();
    let args: Vec<String> = std::env::args().collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    if let Some(at) = args.iter().position(|a| a == "--fill") {
        let bytes: usize = args[at + 2].parse().expect("a byte count");
        runtime.block_on(fill(Path::new(&args[at + 1]), bytes));
        return;
    }
    if let Some(at) = args.iter().position(|a| a == "--view") {
        runtime.block_on(views(Path::new(&args[at + 1])));
        return;
    }
    println!("log size | kept (blocks) | first read | RSS before views | peak RSS | tail | search, few hits | search, hits everywhere | log requests");
    for mb in [8usize, 64] {
        let dir = tempfile::tempdir().expect("temp dir");
        let dir = dir.path().to_str().expect("a UTF-8 path").to_string();
        let fill = run(&args[0], &["--fill", &dir, &(mb << 20).to_string()]);
        let view = run(&args[0], &["--view", &dir]);
        println!("{:>5} MB | {fill} | {view}", mb);
    }
}

fn run(bench: &str, args: &[&str]) -> String {
    let out = std::process::Command::new(bench)
        .args(args)
        .output()
        .expect("the bench runs itself");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Reads a generated log of `bytes` through the tool once, which keeps it in the store.
async fn fill(dir: &Path, bytes: usize) {
    let mut raw = Vec::with_capacity(bytes + 4096);
    let mut line = 0;
    while raw.len() < bytes {
        log_line(line, &mut raw);
        line += 1;
    }
    // Whole lines, within the bound of one read (64 MiB).
    raw.truncate(bytes);
    raw.truncate(raw.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1));
    let log_requests = Arc::new(AtomicU64::new(0));
    let server = buildkite(Some(raw), log_requests.clone()).await;
    let store = Store::from(Cache::open(dir).expect("store"));
    let client = buildkite_client(&server.uri(), 1000);
    let reader = JobReader::new(&client, Some(&store));
    let started = Instant::now();
    let tail = view(&reader, LogView::Tail { lines: 100 }).await;
    assert!(tail.whole_log, "the whole log is read: {:?}", tail.notes);
    store.flush().await;
    print!(
        "{:.1} MiB ({} lines) | {:.2} s",
        store.stored_bytes() as f64 / f64::from(1 << 20),
        tail.total_lines,
        started.elapsed().as_secs_f64()
    );
}

/// The views of the kept log, in a process of their own.
async fn views(dir: &Path) {
    let log_requests = Arc::new(AtomicU64::new(0));
    let server = buildkite(None, log_requests.clone()).await;
    let store = Store::from(Cache::open(dir).expect("store"));
    let client = buildkite_client(&server.uri(), 1000);
    let reader = JobReader::new(&client, Some(&store));
    // The build is read (and parsed) before the views, as every view does.
    let first = view(&reader, LogView::Tail { lines: 1 }).await;
    let before = rss_kib();
    let started = Instant::now();
    let tail = view(&reader, LogView::Tail { lines: 100 }).await;
    let tail_took = started.elapsed();
    assert_eq!(tail.lines.len(), 100);
    assert_eq!(tail.lines.last().map(|l| l.n), Some(first.total_lines));
    let search = |pattern: &str| LogView::Search {
        pattern: Regex::new(pattern).expect("regex"),
        context: 3,
        max_matches: 20,
    };
    let started = Instant::now();
    let few = view(&reader, search("AssertionError")).await;
    let few_took = started.elapsed();
    assert!(few.matches.unwrap_or(0) > 0);
    let started = Instant::now();
    let everywhere = view(&reader, search("PASSED")).await;
    let everywhere_took = started.elapsed();
    assert!(everywhere.matches.unwrap_or(0) > 20);
    print!(
        "{:.1} MiB | {:.1} MiB | {} | {} ({} matches) | {} ({} matches) | {}",
        before as f64 / 1024.0,
        peak_rss_kib() as f64 / 1024.0,
        millis(tail_took),
        millis(few_took),
        few.matches.unwrap_or(0),
        millis(everywhere_took),
        everywhere.matches.unwrap_or(0),
        log_requests.load(Ordering::Relaxed)
    );
}

fn millis(took: Duration) -> String {
    format!("{:.1} ms", took.as_secs_f64() * 1000.0)
}

async fn view(reader: &JobReader<'_>, view: LogView) -> JobLogResult {
    watch::job_log(
        reader,
        &BuildKey::new("vllm", "ci", 65099),
        &watch::JobQuery::new(JOB, MatchStrategy::Id),
        &view,
        &Budgets::default(),
    )
    .await
    .expect("log view")
}

/// The fixture nightly's build, and `JOB`'s log when there is one (suffix ranges as Buildkite
/// serves them); log requests are counted.
async fn buildkite(log: Option<Vec<u8>>, log_requests: Arc<AtomicU64>) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(Answers { log, log_requests })
        .mount(&server)
        .await;
    server
}

struct Answers {
    log: Option<Vec<u8>>,
    log_requests: Arc<AtomicU64>,
}

impl Respond for Answers {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let path = request.url.path();
        if path.ends_with("/builds/65099") {
            return ResponseTemplate::new(200)
                .set_body_raw(fixtures::BUILD_65099.as_bytes(), "application/json");
        }
        if path.ends_with(&format!("/jobs/{JOB}/log")) {
            self.log_requests.fetch_add(1, Ordering::Relaxed);
            let Some(log) = &self.log else {
                return ResponseTemplate::new(404);
            };
            let range = request.headers.get("range").and_then(|v| v.to_str().ok());
            let (status, content_range, body) = fixtures::range_response(log, range);
            let mut answer = ResponseTemplate::new(status).set_body_raw(body, "text/plain");
            if let Some(content_range) = content_range {
                answer = answer.insert_header("content-range", content_range.as_str());
            }
            return answer;
        }
        ResponseTemplate::new(404)
    }
}
