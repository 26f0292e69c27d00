//! The MCP server (rmcp): tool definitions, progress forwarding, server info. The only module
//! that knows rmcp; tools call the `watch` use cases and turn their errors into `isError`
//! results with messages the model can act on.

mod progress;
mod render_tool;
mod scan_tools;

use crate::buildkite::BuildkiteClient;
use crate::config::Settings;
use crate::github::GitHubClient;
use crate::http::HttpClient;
use crate::owners::Owners;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::{tool_handler, ServerHandler};
use std::sync::Arc;

/// Server name clients show, as in the original.
pub const SERVER_NAME: &str = "vLLM CI Watch";

#[derive(Clone)]
pub struct CiWatchServer {
    settings: Settings,
    http: HttpClient,
    /// Shared so fetched issues are cached across tool calls.
    github: Arc<GitHubClient>,
    owners: Arc<Owners>,
    tool_router: ToolRouter<Self>,
}

impl CiWatchServer {
    pub fn new(settings: Settings) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        let http = HttpClient::new(
            settings.http_timeout(),
            settings.requests_per_minute,
            settings.request_burst,
            settings.retry_policy(),
        )?;
        let github = Arc::new(GitHubClient::new(settings.github_options())?);
        let owners = Arc::new(settings.owners(Some(github.clone())));
        Ok(Self {
            settings,
            http,
            github,
            owners,
            tool_router: Self::scan_router() + Self::render_router(),
        })
    }

    /// A client per call, so a missing token is reported by the call that needs it while the
    /// server still starts and lists its tools.
    fn buildkite(&self) -> Result<BuildkiteClient, String> {
        BuildkiteClient::new(
            self.http.clone(),
            &self.settings.buildkite_api_url,
            self.settings.token(),
        )
        .map_err(|e| e.to_string())
    }
}

// Server info: the name clients show (the original's), the crate version, and instructions that
// tell the model where to start.
#[tool_handler(
    router = self.tool_router,
    name = "vLLM CI Watch",
    instructions = "Tools for the daily vLLM CI watch. Start with ciwatch_scan_latest_nightly (last night's \
scheduled build of vllm/ci on main) or ciwatch_scan_build (a build number or Buildkite URL). Failures come classified \
as NEW_REGRESSION, FLAKY_SUSPECTED, INFRA_SUSPECTED (with infra_kind and an evidence line), KNOWN_TRACKED or \
NEEDS_HUMAN_TRIAGE; hard failures block the build, soft ones are allowed to fail. Use detail_level=full to get the \
copy/paste Daily Findings and Standup texts, or pass any scan result to ciwatch_render."
)]
impl ServerHandler for CiWatchServer {}

/// Serves MCP over stdin/stdout until the client disconnects.
pub async fn serve_stdio(settings: Settings) -> anyhow_like::Result<()> {
    use rmcp::ServiceExt;
    let server = CiWatchServer::new(settings)?;
    let running = server.serve(rmcp::transport::stdio()).await?;
    running.waiting().await?;
    Ok(())
}

/// A boxed error for the top-level loop, where only the message matters.
pub mod anyhow_like {
    pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;
}
