//! The `ci_watch_daily` prompt and the resources: the original's `prompt://ci-watch-daily` text
//! and the latest Daily Findings report of this server.

use super::CiWatchServer;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{PromptMessage, Role};
use rmcp::{prompt, prompt_router};
use schemars::JsonSchema;
use serde::Deserialize;

pub const DAILY_PROMPT_URI: &str = "prompt://ci-watch-daily";
pub const LATEST_REPORT_URI: &str = "report://latest";

#[derive(Debug, Deserialize, JsonSchema)]
pub struct DailyPromptArgs {
    /// Pipeline as "org/pipeline" (default "vllm/ci").
    pub pipeline: Option<String>,
    /// Branch of the nightly (default "main").
    pub branch: Option<String>,
}

/// The daily workflow, end to end. Unlike the original's resource text, it asks for
/// `detail_level=full`, which is what returns the texts it wants.
pub fn daily_prompt_text(pipeline: &str, branch: &str) -> String {
    format!(
        "I'm on CI watch today, for vLLM! My role is to look at the latest nightly build and assess whether I need to take action.\n\n\
Call ciwatch_scan_latest_nightly with pipeline \"{pipeline}\", branch \"{branch}\", repo \"vllm-project/vllm\", search_github true and detail_level \"full\".\n\n\
Then give me:\n\n\
- the Daily Findings output (`daily_findings_text`, copy/paste ready)\n\
- the Standup summary output (`standup_summary_text`, copy/paste ready)\n\n\
Focus on hard failures: they are the only ones where I am required to take action. For each NEW_REGRESSION, say who to ping \
(owners) and whether an issue already tracks it. For INFRA_SUSPECTED, quote the evidence line. For soft failures, just list them briefly. \
If `completeness` lists jobs that were not fully analysed or `warnings` is not empty, tell me what to check by hand."
    )
}

#[prompt_router(vis = "pub(super)")]
impl CiWatchServer {
    /// The daily CI watch: scan last night's nightly and produce the Daily Findings and Standup
    /// texts, with owners and tracked issues for the hard failures.
    #[prompt(name = "ci_watch_daily")]
    pub async fn ci_watch_daily(
        &self,
        Parameters(args): Parameters<DailyPromptArgs>,
    ) -> Vec<PromptMessage> {
        let pipeline = args.pipeline.unwrap_or_else(|| "vllm/ci".into());
        let branch = args.branch.unwrap_or_else(|| "main".into());
        vec![PromptMessage::new_text(
            Role::User,
            daily_prompt_text(&pipeline, &branch),
        )]
    }
}
