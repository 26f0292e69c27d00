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
struct Fixture {
    builds: Vec<(&'static str, serde_json::Value, crate::buildkite::Build)>,
}

impl Fixture {
    fn of(
        &self,
        org: &str,
        pipeline: &str,
    ) -> Option<(&serde_json::Value, &crate::buildkite::Build)> {
        self.builds
            .iter()
            .find(|(name, _, _)| org == "vllm" && *name == pipeline)
            .map(|(_, json, build)| (json, build))
    }
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
    let amd = fixtures::amd_nightly_beside_65099();
    let parsed = |json: &serde_json::Value| {
        serde_json::from_value::<crate::buildkite::Build>(json.clone())
            .expect("the bundled builds parse")
    };
    let state = Arc::new(Fixture {
        builds: vec![
            ("ci", nightly.clone(), parsed(&nightly)),
            ("amd-ci", amd.clone(), parsed(&amd)),
        ],
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
    let Some((json, _)) = fixture.of(&org, &pipeline) else {
        return not_found("No pipeline found");
    };
    let mut listed = json.clone();
    if query.get("exclude_jobs").map(String::as_str) == Some("true") {
        if let Some(object) = listed.as_object_mut() {
            object.remove("jobs");
        }
    }
    axum::Json(serde_json::Value::Array(vec![listed])).into_response()
}

async fn get_build(
    State(fixture): State<Arc<Fixture>>,
    Path((org, pipeline, number)): Path<(String, String, String)>,
) -> Response {
    let Some((json, build)) = fixture.of(&org, &pipeline) else {
        return not_found("No pipeline found");
    };
    if number != build.number.to_string() {
        return not_found("No build found");
    }
    axum::Json(json.clone()).into_response()
}

async fn job_log(
    State(fixture): State<Arc<Fixture>>,
    Path((org, pipeline, number, job_id)): Path<(String, String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let Some(job) = fixture.of(&org, &pipeline).and_then(|(_, build)| {
        build
            .jobs()
            .iter()
            .find(|j| j.id == job_id && number == build.number.to_string())
    }) else {
        return not_found("No job found");
    };
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let (status, content_range, body) = fixtures::range_response(&fixtures::raw_log(job), range);
    let mut response =
        (StatusCode::from_u16(status).unwrap_or(StatusCode::OK), body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain"),
    );
    if let Some(value) = content_range.and_then(|v| header::HeaderValue::from_str(&v).ok()) {
        response.headers_mut().insert(header::CONTENT_RANGE, value);
    }
    response
}
