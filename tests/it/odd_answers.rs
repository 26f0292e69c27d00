//! A proxy in front of Buildkite that answers log requests the odd ways HTTP allows: the whole
//! log as a chunked `200` without a length (a server may ignore `Range`), a `206` that does not
//! say where it sits in the log, an explicit empty `200`. Only an explicit empty is kept as "no
//! log"; a whole log without a length is read to its end; the rest is a fetch error, retried by
//! the next call and never stored.

use crate::common::{client, failure_keys, fixture_server, scan_65099, scan_options, settings};
use axum::body::Body;
use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use ciwatch_mcp::fixtures;
use ciwatch_mcp::model::{DetailLevel, JobStatus, ScanResult};
use ciwatch_mcp::storage::Cache;
use ciwatch_mcp::storage::Store;
use ciwatch_mcp::watch::{Budgets, JobReader};

#[derive(Debug, Clone, Copy)]
enum LogAnswer {
    /// `200`, chunked, no `Content-Length`: the whole log, whatever range was asked.
    WholeChunked,
    /// `206` with the asked bytes but no `Content-Range`.
    PartialWithoutRange,
    /// `200` with `Content-Length: 0`.
    ExplicitlyEmpty,
}

/// The fixture build, its logs answered as `answer` says; the API URL.
async fn proxy(answer: LogAnswer) -> String {
    let log = move |Path((_, _, _, job_id)): Path<(String, String, String, String)>| async move {
        let build = fixtures::build_65099();
        let Some(job) = build.jobs().iter().find(|j| j.id == job_id) else {
            return StatusCode::NOT_FOUND.into_response();
        };
        let log = fixtures::raw_log(job);
        let text = [(header::CONTENT_TYPE, "text/plain")];
        match answer {
            LogAnswer::WholeChunked => {
                let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
                    log.chunks(8192).map(|c| Ok(c.to_vec())).collect();
                let body = Body::from_stream(futures::stream::iter(chunks));
                (StatusCode::OK, text, body).into_response()
            }
            LogAnswer::PartialWithoutRange => {
                let tail = log[log.len().saturating_sub(1000)..].to_vec();
                (StatusCode::PARTIAL_CONTENT, text, tail).into_response()
            }
            LogAnswer::ExplicitlyEmpty => (StatusCode::OK, text, Vec::new()).into_response(),
        }
    };
    let build = || async {
        (
            [(header::CONTENT_TYPE, "application/json")],
            fixtures::BUILD_65099,
        )
            .into_response()
    };
    let app = axum::Router::new()
        .route(
            "/v2/organizations/vllm/pipelines/ci/builds/65099",
            get(build),
        )
        .route(
            "/v2/organizations/{org}/pipelines/{pipeline}/builds/{number}/jobs/{job}/log",
            get(log),
        );
    crate::common::serve(app).await
}

/// Every failed job of the night in one call.
fn whole_night() -> Budgets {
    Budgets {
        max_jobs: 50,
        ..Budgets::default()
    }
}

async fn scan(server_uri: &str, store: Option<&Store>) -> ScanResult {
    let client = client(&settings(server_uri));
    let options = scan_options(whole_night(), DetailLevel::Summary, false);
    scan_65099(&JobReader::new(&client, store), &options).await
}

fn statuses(result: &ScanResult) -> Vec<JobStatus> {
    result.jobs.iter().map(|j| j.status).collect()
}

fn temporary_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::from(Cache::open(dir.path()).expect("store"));
    (dir, store)
}

#[tokio::test]
async fn a_whole_log_sent_without_a_length_is_read_to_its_end_and_nothing_wrong_is_stored() {
    let plain_server = fixture_server().await;
    let plain = scan(&plain_server.uri(), None).await;
    assert!(plain.complete, "{:?}", plain.incomplete);

    let (_dir, store) = temporary_store();
    let proxied = scan(&proxy(LogAnswer::WholeChunked).await, Some(&store)).await;
    assert_eq!(
        failure_keys(&proxied),
        failure_keys(&plain),
        "the same failures"
    );
    assert!(proxied.complete, "{:?}", proxied.incomplete);
    assert!(statuses(&proxied).iter().all(|s| *s == JobStatus::Analyzed));

    // What the proxied scan stored is what the plain API gives.
    let after = scan(&plain_server.uri(), Some(&store)).await;
    assert_eq!(failure_keys(&after), failure_keys(&plain));
}

#[tokio::test]
async fn a_partial_answer_that_does_not_say_where_it_sits_is_a_fetch_error_never_stored() {
    let plain_server = fixture_server().await;
    let plain = scan(&plain_server.uri(), None).await;

    let (_dir, store) = temporary_store();
    let proxied = scan(&proxy(LogAnswer::PartialWithoutRange).await, Some(&store)).await;
    assert!(!proxied.complete);
    assert!(
        statuses(&proxied)
            .iter()
            .all(|s| *s == JobStatus::FetchError),
        "{:?}",
        statuses(&proxied)
    );
    assert!(proxied
        .warnings
        .iter()
        .any(|w| w.contains("without a Content-Range")));

    let before = plain_server
        .received_requests()
        .await
        .expect("recorded")
        .len();
    let after = scan(&plain_server.uri(), Some(&store)).await;
    assert_eq!(
        failure_keys(&after),
        failure_keys(&plain),
        "read again, not taken from the store"
    );
    let logs_read = plain_server.received_requests().await.expect("recorded")[before..]
        .iter()
        .filter(|r| r.url.path().ends_with("/log"))
        .count();
    assert!(logs_read >= plain.jobs.len(), "{logs_read} log requests");
}

#[tokio::test]
async fn an_explicit_zero_length_is_an_empty_log() {
    let (_dir, store) = temporary_store();
    let proxied = scan(&proxy(LogAnswer::ExplicitlyEmpty).await, Some(&store)).await;
    assert!(
        statuses(&proxied).iter().all(|s| *s == JobStatus::NoLog),
        "{:?}",
        statuses(&proxied)
    );
}
