//! `ciwatch_view`, for the MCP App only: a scan or test-history result drawn as the sidecar's
//! HUD draws it, so the App's own script is only the bridge to its host (`hud/app.html`).

use super::CiWatchServer;
use crate::hud::AppResult;
use crate::model::HistoryResult;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::CallToolResult;
use rmcp::{tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The tool the App calls: hidden from the model by its `ui.visibility`.
pub(super) const VIEW_TOOL: &str = "ciwatch_view";

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ViewParams {
    /// The `structuredContent` of a ciwatch_scan_build, ciwatch_scan_latest_nightly or
    /// ciwatch_test_history result, at any detail_level.
    pub result: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct View {
    /// The result drawn: an HTML fragment (maud, every text escaped, no script) for the App's
    /// page, which carries the HUD's style sheet.
    pub html: String,
}

#[tool_router(router = view_router, vis = "pub(super)")]
impl CiWatchServer {
    /// Draw a scan or test-history result as the HUD does (HTML). For the MCP App that shows
    /// these results; a person or a model reads the results themselves, or ciwatch_render.
    #[tool(
        title = "Draw a result for the CI watch App",
        name = "ciwatch_view",
        output_schema = rmcp::handler::server::common::schema_for_output::<View>(),
        annotations(
            title = "Draw a result for the CI watch App",
            read_only_hint = true,
            open_world_hint = false
        )
    )]
    pub async fn view(
        &self,
        Parameters(params): Parameters<ViewParams>,
    ) -> Result<CallToolResult, String> {
        // The result came back through the host: untrusted text like any log.
        let (html, what) = if params.result.contains_key("timeline") {
            let mut given = serde_json::Value::Object(params.result);
            crate::untrusted::sanitize_json(&mut given);
            let history: HistoryResult = serde_json::from_value(given)
                .map_err(|e| format!("result is not a test history: {e}"))?;
            let what = format!("the history of {}", history.test_nodeid);
            (crate::hud::app_view(AppResult::History(&history)), what)
        } else {
            let scan = super::render_tool::handed_back_scan(params.result)
                .map_err(|e| format!("result is not a result of a scan or a test history: {e}"))?;
            let what = format!("build {}", scan.build_info.build_number);
            (crate::hud::app_view(AppResult::Scan(&scan)), what)
        };
        let text = format!(
            "{what}, drawn as HTML ({} characters) for the App",
            html.len()
        );
        super::output::structured(&View { html }, text)
    }
}
