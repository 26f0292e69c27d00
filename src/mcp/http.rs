//! The Streamable HTTP transport for the container sidecar: `/mcp` (rmcp's service), `/health`,
//! loopback by default, behind the one gate it shares with the HUD (`gate.rs`: Host, Origin, an
//! optional bearer token that is required on any non-loopback address), and a caller's own
//! Buildkite token per request (`X-Buildkite-Token`). Many sessions share one server: its rate
//! limiter and caches.

use super::gate::{Gate, Refusal};
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
    /// The token Buildkite signs its webhooks with; `POST /webhooks/buildkite` is served when
    /// it is set.
    pub webhook_token: Option<Secret>,
    /// How often the watcher looks at the HUD's pipeline for a new nightly; `None`: no watcher.
    pub watch_interval: Option<std::time::Duration>,
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
    let gate = Gate {
        token: options.token.clone(),
        hosts,
        origins,
    };
    if let Some(interval) = options.watch_interval {
        let (org, pipeline) = super::hud_routes::DEFAULT_PIPELINE;
        let pipelines = vec![(org.to_string(), pipeline.to_string())];
        super::watcher::spawn(server.clone(), pipelines, interval);
    }
    let hud = super::hud_routes::routes(server.clone(), gate.clone());
    let webhook_server = server.clone();
    // The gate checks Host and Origin for /mcp as for the HUD, so rmcp's own checks are off.
    let config = StreamableHttpServerConfig::default().disable_allowed_hosts();
    let service = StreamableHttpService::new(
        move || Ok(server.clone()),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let mcp = Router::new()
        .nest_service("/mcp", service)
        .layer(middleware::from_fn_with_state(Arc::new(gate), check_gate));
    let mut app = Router::new()
        .route("/health", get(health))
        .merge(mcp)
        .merge(hud);
    if let Some(token) = &options.webhook_token {
        app = app.merge(super::webhook::routes(webhook_server, token.clone()));
    }
    Ok(app)
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

async fn check_gate(State(gate): State<Arc<Gate>>, request: Request, next: Next) -> Response {
    let refusal = match gate.admits(request.headers()) {
        Err(refusal) => refusal,
        Ok(()) if gate.holds_token(request.headers(), None) => return next.run(request).await,
        Ok(()) => Refusal::Token,
    };
    let status = match refusal {
        Refusal::Token => StatusCode::UNAUTHORIZED,
        Refusal::Host | Refusal::Origin => StatusCode::FORBIDDEN,
    };
    let mut response = (status, refusal.message()).into_response();
    if refusal == Refusal::Token {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
    }
    response
}
