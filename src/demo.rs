//! A local Buildkite stand-in serving the bundled fixture nightly (and the AMD nightly beside
//! it, for the compared pipeline) over HTTP on 127.0.0.1, so
//! `ciwatch-mcp demo` exercises the real client, limiter, retries and log parsing without a
//! token or network.

use crate::fixtures;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::net::SocketAddr;
use std::sync::Arc;

/// The fixture nightly of `vllm/ci` and the AMD nightly of `vllm/amd-ci` beside it.
/// The bundled builds, their answers serialised once, and each log generated once, on its first
/// ask: a load bench measures the server, not this mock.
struct Fixture {
    builds: Vec<FixtureBuild>,
    logs: std::sync::Mutex<std::collections::HashMap<String, bytes::Bytes>>,
}

struct FixtureBuild {
    pipeline: &'static str,
    build: crate::buildkite::Build,
    /// The build as `GET …/builds/{number}` answers it.
    json: bytes::Bytes,
    /// The listing of it, with its jobs and without (`exclude_jobs=true`).
    listed: bytes::Bytes,
    listed_without_jobs: bytes::Bytes,
}

impl FixtureBuild {
    fn new(pipeline: &'static str, json: serde_json::Value) -> Self {
        let build = serde_json::from_value(json.clone()).expect("the bundled builds parse");
        let bytes = |value: &serde_json::Value| {
            bytes::Bytes::from(serde_json::to_vec(value).expect("JSON serialises"))
        };
        let mut without_jobs = json.clone();
        if let Some(object) = without_jobs.as_object_mut() {
            object.remove("jobs");
        }
        Self {
            pipeline,
            build,
            listed: bytes(&serde_json::Value::Array(vec![json.clone()])),
            listed_without_jobs: bytes(&serde_json::Value::Array(vec![without_jobs])),
            json: bytes(&json),
        }
    }
}

impl Fixture {
    fn of(&self, org: &str, pipeline: &str) -> Option<&FixtureBuild> {
        self.builds
            .iter()
            .find(|b| org == "vllm" && b.pipeline == pipeline)
    }

    /// The job's raw log, generated on its first ask.
    fn log(&self, job: &crate::buildkite::Job) -> bytes::Bytes {
        let mut logs = self.logs.lock().unwrap_or_else(|e| e.into_inner());
        logs.entry(job.id.clone())
            .or_insert_with(|| bytes::Bytes::from(fixtures::raw_log(job)))
            .clone()
    }
}

fn json_response(body: bytes::Bytes) -> Response {
    let mut response = body.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}

/// Where the demo server answers.
pub struct DemoUrls {
    /// For `BUILDKITE_API_URL`.
    pub buildkite: String,
    /// For `GITHUB_API_URL`.
    pub github: String,
}

/// Starts the server on an ephemeral loopback port. The server runs until the runtime stops.
pub async fn start() -> std::io::Result<DemoUrls> {
    let nightly: serde_json::Value = serde_json::from_str(fixtures::BUILD_65099)
        .expect("the bundled fixture build is valid JSON");
    let state = Arc::new(Fixture {
        builds: vec![
            FixtureBuild::new("ci", nightly),
            FixtureBuild::new("amd-ci", fixtures::amd_nightly_beside_65099()),
        ],
        logs: Default::default(),
    });
    let app = Router::new()
        .route(
            "/v2/organizations/{org}/pipelines/{pipeline}/builds",
            get(list_builds),
        )
        .route(
            "/v2/organizations/{org}/pipelines/{pipeline}/builds/{number}",
            get(get_build),
        )
        .route(
            "/v2/organizations/{org}/pipelines/{pipeline}/builds/{number}/jobs/{job}/log",
            get(job_log),
        )
        .route("/github/search/issues", get(search_issues))
        .route(
            "/github/repos/{owner}/{repo}/contents/{*path}",
            get(contents),
        )
        .with_state(state);
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let address = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::error!(%error, "demo server stopped");
        }
    });
    Ok(DemoUrls {
        buildkite: format!("http://{address}/v2"),
        github: format!("http://{address}/github"),
    })
}

async fn search_issues(
    axum::extract::Query(query): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Response {
    let q = query.get("q").map(String::as_str).unwrap_or("");
    axum::Json(fixtures::github_search(q)).into_response()
}

async fn contents(Path((_, _, path)): Path<(String, String, String)>) -> Response {
    match fixtures::github_contents(&path) {
        Some(body) => axum::Json(body).into_response(),
        None => not_found("Not Found"),
    }
}

fn not_found(message: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(serde_json::json!({ "message": message })),
    )
        .into_response()
}

/// As Buildkite lists: with each build's jobs unless `exclude_jobs=true`.
async fn list_builds(
    State(fixture): State<Arc<Fixture>>,
    Path((org, pipeline)): Path<(String, String)>,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> Response {
    let Some(build) = fixture.of(&org, &pipeline) else {
        return not_found("No pipeline found");
    };
    json_response(
        if query.get("exclude_jobs").map(String::as_str) == Some("true") {
            build.listed_without_jobs.clone()
        } else {
            build.listed.clone()
        },
    )
}

async fn get_build(
    State(fixture): State<Arc<Fixture>>,
    Path((org, pipeline, number)): Path<(String, String, String)>,
) -> Response {
    let Some(build) = fixture.of(&org, &pipeline) else {
        return not_found("No pipeline found");
    };
    if number != build.build.number.to_string() {
        return not_found("No build found");
    }
    json_response(build.json.clone())
}

async fn job_log(
    State(fixture): State<Arc<Fixture>>,
    Path((org, pipeline, number, job_id)): Path<(String, String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let Some(job) = fixture.of(&org, &pipeline).and_then(|b| {
        b.build
            .jobs()
            .iter()
            .find(|j| j.id == job_id && number == b.build.number.to_string())
    }) else {
        return not_found("No job found");
    };
    let log = fixture.log(job);
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let (status, content_range, part) = fixtures::range_of(log.len(), range);
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    let mut response = (status, log.slice(part)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain"),
    );
    if let Some(value) = content_range.and_then(|v| header::HeaderValue::from_str(&v).ok()) {
        response.headers_mut().insert(header::CONTENT_RANGE, value);
    }
    response
}
