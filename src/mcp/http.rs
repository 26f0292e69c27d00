//! The Streamable HTTP transport for the container sidecar: `/mcp` (rmcp's service), `/health`,
//! loopback by default, `Origin` validation, an optional bearer token that is required on any
//! non-loopback address, and a caller's own Buildkite token per request
//! (`X-Buildkite-Token`). Many sessions share one server: its rate limiter and caches.

use super::CiWatchServer;
use crate::config::Settings;
use crate::secret::Secret;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use std::net::SocketAddr;
use std::sync::Arc;

/// The header a caller sends its own Buildkite token in.
pub const BUILDKITE_TOKEN_HEADER: &str = "x-buildkite-token";

/// `Host` names accepted on any bind (with any port).
const LOOPBACK_HOSTS: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// Browser origins accepted by default: local tools only.
const LOOPBACK_ORIGINS: [&str; 3] = ["http://localhost:*", "http://127.0.0.1:*", "http://[::1]:*"];

#[derive(Debug, Clone)]
pub struct HttpOptions {
    pub bind: SocketAddr,
    /// Required as `Authorization: Bearer …` on `/mcp` when set.
    pub token: Option<Secret>,
    /// `Host` values accepted besides loopback (the sidecar's service name).
    pub allowed_hosts: Vec<String>,
    /// Browser origins accepted besides loopback.
    pub allowed_origins: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum HttpServeError {
    #[error("binding {0} (not loopback) requires CIWATCH_HTTP_TOKEN, so that only your agents can use the Buildkite token")]
    TokenRequired(SocketAddr),
    #[error("cannot listen on {address}: {message}")]
    Bind {
        address: SocketAddr,
        message: String,
    },
    #[error("could not start the server: {0}")]
    Setup(String),
}

/// The router: `/mcp` and the HUD (`/hud…`) behind the token check, `/health` open.
pub fn router(settings: Settings, options: &HttpOptions) -> Result<Router, HttpServeError> {
    let server = CiWatchServer::new(settings).map_err(|e| HttpServeError::Setup(e.to_string()))?;
    let mut origins: Vec<String> = LOOPBACK_ORIGINS.iter().map(|s| s.to_string()).collect();
    origins.extend(options.allowed_origins.iter().cloned());
    // The Host check guards against DNS rebinding on every bind: loopback names are always
    // accepted, listed hosts (a sidecar's service name) in addition, anything else refused. An
    // empty list would turn the check off, so the loopback names are never dropped.
    let mut hosts: Vec<String> = LOOPBACK_HOSTS.iter().map(|s| s.to_string()).collect();
    hosts.extend(options.allowed_hosts.iter().cloned());
    let gate = super::hud_routes::Gate {
        token: options.token.clone(),
        hosts: hosts.clone(),
        origins: origins.clone(),
    };
    let hud = super::hud_routes::routes(server.clone(), gate);
    let config = StreamableHttpServerConfig::default()
        .with_allowed_origins(origins)
        .with_allowed_hosts(hosts);
    let service = StreamableHttpService::new(
        move || Ok(server.clone()),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let token = Arc::new(options.token.clone());
    let mcp = Router::new()
        .nest_service("/mcp", service)
        .layer(middleware::from_fn_with_state(token, require_token));
    Ok(Router::new()
        .route("/health", get(health))
        .merge(mcp)
        .merge(hud))
}

/// Serves until the process is stopped.
pub async fn serve_http(settings: Settings, options: HttpOptions) -> Result<(), HttpServeError> {
    if !options.bind.ip().is_loopback() && options.token.is_none() {
        return Err(HttpServeError::TokenRequired(options.bind));
    }
    let app = router(settings, &options)?;
    let listener = tokio::net::TcpListener::bind(options.bind)
        .await
        .map_err(|e| HttpServeError::Bind {
            address: options.bind,
            message: e.to_string(),
        })?;
    let address = listener
        .local_addr()
        .map_err(|e| HttpServeError::Setup(e.to_string()))?;
    tracing::info!(%address, "serving MCP over HTTP at /mcp");
    eprintln!("ciwatch-mcp: MCP at http://{address}/mcp, the HUD at http://{address}/hud, health at http://{address}/health");
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| HttpServeError::Setup(e.to_string()))
}

async fn health() -> impl IntoResponse {
    axum::Json(
        serde_json::json!({ "status": "ok", "name": super::SERVER_NAME, "version": env!("CARGO_PKG_VERSION") }),
    )
}

async fn require_token(
    State(token): State<Arc<Option<Secret>>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(expected) = token.as_ref() else {
        return next.run(request).await;
    };
    if bearer(request.headers())
        .is_some_and(|p| constant_time_eq(p.as_bytes(), expected.expose().as_bytes()))
    {
        return next.run(request).await;
    }
    let mut response = (
        StatusCode::UNAUTHORIZED,
        "missing or wrong bearer token (CIWATCH_HTTP_TOKEN)",
    )
        .into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    response
}

/// The token a request presents as `Authorization: Bearer …`.
pub(super) fn bearer(headers: &header::HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

/// Compares without an early exit, so response timing does not reveal a token prefix.
pub(super) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}
