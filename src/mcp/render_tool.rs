//! `ciwatch_render`: Daily Findings or Standup markdown from any scan result.

use super::CiWatchServer;
use crate::model::ScanResult;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::CallToolResult;
use rmcp::{tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RenderFormat {
    /// The full Daily Findings report (markdown).
    #[default]
    DailyFindings,
    /// The one-line Standup summary.
    Standup,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct RenderParams {
    /// The result of ciwatch_scan_build or ciwatch_scan_latest_nightly, at any detail_level.
    pub scan_result: serde_json::Map<String, serde_json::Value>,
    /// "daily_findings" (default) or "standup".
    #[serde(default)]
    pub format: RenderFormat,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Rendered {
    pub format: RenderFormat,
    /// Markdown, ready to paste.
    pub text: String,
}

#[tool_router(router = render_router, vis = "pub(super)")]
impl CiWatchServer {
    /// Render a scan result as the Daily Findings report or the one-line Standup summary
    /// (markdown, copy/paste ready). Works on results of any detail_level and keeps the split
    /// between hard (blocking) and soft (optional) failures. Text from logs is put in code
    /// spans so it cannot inject markdown.
    #[tool(
        title = "Render a CI watch report",
        name = "ciwatch_render",
        output_schema = rmcp::handler::server::common::schema_for_output::<Rendered>(),
        annotations(
            title = "Render a CI watch report",
            read_only_hint = true,
            open_world_hint = false
        )
    )]
    pub async fn render(
        &self,
        Parameters(params): Parameters<RenderParams>,
    ) -> Result<CallToolResult, String> {
        // The caller's result is untrusted text like any log: sanitised before it is rendered.
        let mut given = serde_json::Value::Object(params.scan_result);
        crate::untrusted::sanitize_json(&mut given);
        let result: ScanResult = serde_json::from_value(given)
            .map_err(|e| format!("scan_result is not a result of ciwatch_scan_build or ciwatch_scan_latest_nightly: {e}"))?;
        let text = match params.format {
            RenderFormat::DailyFindings => crate::report::daily_findings(&result),
            RenderFormat::Standup => crate::report::standup_summary(&result),
        };
        let rendered = Rendered {
            format: params.format,
            text,
        };
        super::output::structured(&rendered, rendered.text.clone())
    }
}
