//! `ciwatch_analyze_main_branch`: failures that recur across recent main-branch builds.

use super::numbers::WholeNumber;
use super::progress::McpProgress;
use super::scan_tools::ScanSettings;
use super::CiWatchServer;
use crate::buildkite::parse_pipeline;
use crate::model::{FailurePage, MainBranchAnalysis};
use crate::watch::{self, MainBranchOptions, ScanOptions};
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::CallToolResult;
use rmcp::service::RequestContext;
use rmcp::{tool, tool_router, RoleServer};
use schemars::JsonSchema;
use serde::Deserialize;

fn default_pipeline() -> String {
    "vllm/ci".into()
}
fn default_branch() -> String {
    "main".into()
}
fn default_max_builds() -> WholeNumber {
    WholeNumber::new(5)
}
fn default_hours() -> WholeNumber {
    WholeNumber::new(24)
}
/// Each build is a scan of its own.
const MAX_BUILDS: u64 = 20;
fn default_true() -> bool {
    true
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct MainBranchParams {
    /// Pipeline as "org/pipeline" (default "vllm/ci").
    #[serde(default = "default_pipeline")]
    pub pipeline: String,
    /// Branch (default "main").
    #[serde(default = "default_branch")]
    pub branch: String,
    /// Failed builds scanned, newest first (default 5, 1 to 20).
    #[serde(default = "default_max_builds")]
    #[schemars(range(min = 1, max = MAX_BUILDS))]
    pub max_builds: WholeNumber,
    /// How far back builds are looked at, in hours (default 24, 1 to 2160: 90 days).
    #[serde(default = "default_hours")]
    #[schemars(range(min = 1, max = watch::MAX_HOURS_LOOKBACK))]
    pub hours_lookback: WholeNumber,
    /// Leave out scheduled (nightly) builds (default true).
    #[serde(default = "default_true")]
    pub exclude_scheduled: bool,
    #[serde(flatten)]
    pub settings: ScanSettings,
}

#[tool_router(router = main_branch_router, vis = "pub(super)")]
impl CiWatchServer {
    /// Which failures keep coming back on main: scans the recent failed builds of the branch
    /// (default: the last 5 in 24 hours, nightlies left out) and groups their failures, with how
    /// many builds each was seen in, those builds and commits (newest first, aligned) and the
    /// recurrence rate. Summary counts cover every failure, before max_failures.
    #[tool(
        name = "ciwatch_analyze_main_branch",
        output_schema = rmcp::handler::server::common::schema_for_output::<MainBranchAnalysis>(),
        title = "Recurring failures on main",
        annotations(
            title = "Recurring failures on main",
            read_only_hint = true,
            open_world_hint = true
        )
    )]
    pub async fn analyze_main_branch(
        &self,
        Parameters(params): Parameters<MainBranchParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, String> {
        let client = self.buildkite(&context.extensions)?;
        let pipeline = parse_pipeline(&params.pipeline, &self.settings.buildkite_org)
            .map_err(|e| e.to_string())?;
        let options = MainBranchOptions {
            branch: params.branch,
            hours_lookback: params
                .hours_lookback
                .within("hours_lookback", 1..=u64::from(watch::MAX_HOURS_LOOKBACK))?
                as u32,
            max_builds: params.max_builds.count("max_builds", 1..=MAX_BUILDS)?,
            exclude_scheduled: params.exclude_scheduled,
            scan: {
                // The analysis presents its own result.
                let (options, presentation) = self.scan_options(params.settings, None)?;
                ScanOptions {
                    presentation,
                    ..options
                }
            },
        };
        let progress = McpProgress::new(context.peer.clone(), context.meta.get_progress_token());
        let reader = self.reader(&client);
        let analysis =
            watch::analyze_main_branch(&reader, self.enrichment(), &pipeline, &options, &progress);
        tokio::select! {
            result = analysis => {
                let mut analysis = result.map_err(|e| e.to_string())?;
                // Over the cap the text goes, then the page ends earlier: the rest is on the
                // next page, never lost.
                let shown = analysis.failures.len();
                let (mut response, removed) = super::output::structured_within_cap(
                    &mut analysis,
                    crate::report::main_branch_text,
                    |a| a.analysis_text.take().is_some() || a.failures.pop().is_some(),
                )?;
                if analysis.failures.len() < shown {
                    let page = &analysis.page;
                    analysis.page = FailurePage::new(page.offset, analysis.failures.len(), page.total);
                    analysis.warnings.retain(|w| !w.starts_with(FailurePage::MARK));
                    analysis.warnings.push(format!(
                        "{} (the page ends early to stay under {} characters)",
                        analysis.page.note(),
                        super::output::max_result_chars()
                    ));
                }
                if removed > 0 {
                    response = super::output::structured(&analysis, crate::report::main_branch_text(&analysis))?;
                }
                Ok(response)
            }
            () = context.ct.cancelled() => Err("the analysis was cancelled".to_string()),
        }
    }
}
