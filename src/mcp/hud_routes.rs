//! The HUD over HTTP: `/hud` (the default pipeline) and `/hud/{org}/{pipeline}`, one failure's
//! page at `…/test?id=`, and `POST …/refresh`, which scans the pipeline's latest nightly with
//! the server's own Buildkite token. Pages are drawn from the last nightly scan the server
//! holds (this process's, else the store's), so opening one makes no Buildkite request. The
//! sidecar's one gate applies (`gate.rs`): the Host and Origin checks, and the bearer token when
//! one is set (a browser gives it once as `?token=`, and keeps a session value derived from it
//! in an HttpOnly cookie).

use super::gate::{over_https, Gate};
use super::CiWatchServer;
use crate::hud::{self, Place};
use crate::model::ScanResult;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use std::sync::Arc;

/// The pipeline `/hud` shows (and the watcher reads).
pub(super) const DEFAULT_PIPELINE: (&str, &str) = ("vllm", "ci");
/// The cookie a browser keeps its session in (a value derived from the bearer token).
const SESSION_COOKIE: &str = "ciwatch_hud";

pub fn routes(server: CiWatchServer, gate: Gate) -> Router {
    Router::new()
        .route("/hud", get(default_night))
        .route("/hud/test", get(default_test))
        .route("/hud/{org}/{pipeline}", get(night))
        .route("/hud/{org}/{pipeline}/test", get(test))
        .route("/hud/{org}/{pipeline}/refresh", post(refresh))
        .route("/hud/{org}/{pipeline}/bisect", post(bisect))
        .with_state(server)
        .layer(middleware::from_fn_with_state(Arc::new(gate), check_gate))
}

#[derive(Debug, serde::Deserialize)]
struct TestQuery {
    #[serde(default)]
    id: String,
}

async fn default_night(State(server): State<CiWatchServer>) -> Result<Response, BadPipeline> {
    let (org, pipeline) = DEFAULT_PIPELINE;
    night(State(server), Path((org.into(), pipeline.into()))).await
}

async fn default_test(
    State(server): State<CiWatchServer>,
    query: Query<TestQuery>,
) -> Result<Response, BadPipeline> {
    let (org, pipeline) = DEFAULT_PIPELINE;
    test(State(server), Path((org.into(), pipeline.into())), query).await
}

async fn night(
    State(server): State<CiWatchServer>,
    Path((org, pipeline)): Path<(String, String)>,
) -> Result<Response, BadPipeline> {
    let place = place(&server, &org, &pipeline)?;
    Ok(match server.hud_scan(&place.pipeline).await {
        Some(scan) => page(StatusCode::OK, hud::night_page(&scan, &place)),
        None => page(StatusCode::OK, hud::no_scan_page(&place, None)),
    })
}

async fn test(
    State(server): State<CiWatchServer>,
    Path((org, pipeline)): Path<(String, String)>,
    Query(query): Query<TestQuery>,
) -> Result<Response, BadPipeline> {
    let place = place(&server, &org, &pipeline)?;
    let Some(scan) = server.hud_scan(&place.pipeline).await else {
        return Ok(page(StatusCode::NOT_FOUND, hud::no_scan_page(&place, None)));
    };
    Ok(match hud::test_page(&scan, &query.id, &place) {
        Some(html) => page(StatusCode::OK, html),
        None => page(
            StatusCode::NOT_FOUND,
            hud::no_scan_page(
                &place,
                Some("The last scan has no failure of that key or test id."),
            ),
        ),
    })
}

async fn refresh(
    State(server): State<CiWatchServer>,
    Path((org, pipeline)): Path<(String, String)>,
) -> Result<Response, BadPipeline> {
    let place = place(&server, &org, &pipeline)?;
    Ok(match server.scan_nightly_for_hud(&org, &pipeline).await {
        Ok(_) => Redirect::to(&place.base).into_response(),
        Err(why) => page(
            StatusCode::BAD_GATEWAY,
            hud::no_scan_page(
                &place,
                Some(&crate::untrusted::sanitize(&format!(
                    "The scan failed: {why}"
                ))),
            ),
        ),
    })
}

/// A failure's bisect plan, asked for by the failure page's button: it reads main's builds and
/// GitHub's compare with the server's own tokens.
async fn bisect(
    State(server): State<CiWatchServer>,
    Path((org, pipeline)): Path<(String, String)>,
    Query(query): Query<TestQuery>,
) -> Result<Response, BadPipeline> {
    let place = place(&server, &org, &pipeline)?;
    Ok(
        match server.bisect_for_hud(&org, &pipeline, &query.id).await {
            Ok(plan) => page(StatusCode::OK, hud::bisect_page(&plan, &place)),
            Err(why) => page(
                StatusCode::BAD_GATEWAY,
                hud::no_scan_page(
                    &place,
                    Some(&crate::untrusted::sanitize(&format!(
                        "No bisect plan: {why}"
                    ))),
                ),
            ),
        },
    )
}

/// A path's org or pipeline that is no Buildkite slug: 404, nothing asked of Buildkite.
struct BadPipeline(String);

impl IntoResponse for BadPipeline {
    fn into_response(self) -> Response {
        (StatusCode::NOT_FOUND, self.0).into_response()
    }
}

/// Where `org/pipeline`'s pages are served, with what the watcher last did for it.
fn place(server: &CiWatchServer, org: &str, pipeline: &str) -> Result<Place, BadPipeline> {
    let crate::buildkite::PipelineKey { org, pipeline } =
        crate::buildkite::parse_pipeline(&format!("{org}/{pipeline}"), org)
            .map_err(|e| BadPipeline(e.to_string()))?;
    let mut place = Place::new(&org, &pipeline);
    place.watch = server.watch_status(&place.pipeline);
    Ok(place)
}

/// An HTML page under the HUD's policy: no script, nothing from elsewhere, never cached.
fn page(status: StatusCode, html: String) -> Response {
    let mut response = (status, html).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    if let Ok(policy) = HeaderValue::from_str(hud::content_security_policy()) {
        headers.insert(header::CONTENT_SECURITY_POLICY, policy);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn check_gate(State(gate): State<Arc<Gate>>, request: Request, next: Next) -> Response {
    let headers = request.headers();
    if let Err(refusal) = gate.admits(headers) {
        return (StatusCode::FORBIDDEN, refusal.message()).into_response();
    }
    if gate.holds_token(headers, Some(SESSION_COOKIE)) {
        return next.run(request).await;
    }
    let given = request.uri().query().and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "token")
            .map(|(_, v)| v.into_owned())
    });
    if let (true, Some(session)) = (given.is_some_and(|t| gate.is_token(&t)), gate.session()) {
        // Once given, the token leaves the address bar: a session cookie stands for it.
        let mut response = Redirect::to(&without_token(request.uri())).into_response();
        let secure = if over_https(headers, request.uri()) {
            "; Secure"
        } else {
            ""
        };
        let cookie =
            format!("{SESSION_COOKIE}={session}; Path=/hud; HttpOnly; SameSite=Strict{secure}");
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().insert(header::SET_COOKIE, value);
        }
        return response;
    }
    (
        StatusCode::UNAUTHORIZED,
        "open /hud?token=<CIWATCH_HTTP_TOKEN> once, or send Authorization: Bearer",
    )
        .into_response()
}

/// The address without its `token` parameter, the others kept (`/hud/test?id=…`).
fn without_token(uri: &axum::http::Uri) -> String {
    let kept: Vec<(String, String)> =
        url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
            .filter(|(k, _)| k != "token")
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
    if kept.is_empty() {
        return uri.path().to_string();
    }
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(kept)
        .finish();
    format!("{}?{query}", uri.path())
}

impl CiWatchServer {
    /// The last nightly scan of `pipeline` made with the server's token: this process's, else
    /// the store's.
    pub(super) async fn hud_scan(&self, pipeline: &str) -> Option<Arc<ScanResult>> {
        if let Some(scan) = self
            .hud
            .lock()
            .ok()
            .and_then(|held| held.get(pipeline).cloned())
        {
            return Some(scan);
        }
        let stored: ScanResult = self
            .cache
            .as_deref()?
            .get(crate::storage::Table::Reports, &hud_key(pipeline))
            .await?;
        let stored = Arc::new(stored);
        if let Ok(mut held) = self.hud.lock() {
            held.insert(pipeline.to_string(), stored.clone());
        }
        Some(stored)
    }

    /// Keeps a nightly scan for the HUD, in this process and in the store.
    pub(super) async fn remember_for_hud(&self, result: Arc<ScanResult>) {
        let pipeline = result.build_info.pipeline.clone();
        if let Some(store) = self.cache.as_deref() {
            store
                .put(
                    crate::storage::Table::Reports,
                    &hud_key(&pipeline),
                    &*result,
                )
                .await;
        }
        if let Ok(mut held) = self.hud.lock() {
            held.insert(pipeline, result);
        }
    }
}

fn hud_key(pipeline: &str) -> String {
    format!("hud:{pipeline}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_leaves_the_address_and_the_rest_stays() {
        let uri: axum::http::Uri = "/hud/test?id=k%201&token=secret".parse().expect("uri");
        assert_eq!(without_token(&uri), "/hud/test?id=k+1");
        let bare: axum::http::Uri = "/hud?token=secret".parse().expect("uri");
        assert_eq!(without_token(&bare), "/hud");
    }
}
