//! `ciwatch_test_history`: one test across recent builds.

use super::numbers::WholeNumber;
use super::progress::McpProgress;
use super::CiWatchServer;
use crate::buildkite::parse_pipeline;
use crate::input::NodeId;
use crate::model::HistoryResult;
use crate::watch::{self, HistoryOptions};
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
fn default_lookback() -> WholeNumber {
    WholeNumber::new(50)
}
fn default_true() -> bool {
    true
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct TestHistoryParams {
    /// The pytest node id, e.g. "tests/v1/distributed/test_dbo.py::test_dbo_dp_ep_gsm8k[deepep_low_latency]"
    /// (with or without the leading "tests/"). Matched exactly: "test_x" is not "test_x[1]".
    pub test_nodeid: String,
    /// Branch (default "main").
    #[serde(default = "default_branch")]
    pub branch: String,
    /// Pipeline as "org/pipeline" (default "vllm/ci").
    #[serde(default = "default_pipeline")]
    pub pipeline: String,
    /// "nightly" to look only at scheduled nightly builds; default all finished builds.
    #[serde(default)]
    pub build_query: Option<String>,
    /// Newest finished builds to look at (default 50, 1 to 300).
    #[serde(default = "default_lookback")]
    #[schemars(range(min = 1, max = watch::MAX_LOOKBACK_BUILDS))]
    pub lookback_builds: WholeNumber,
    /// Case-insensitive substring of the job name, to narrow (or, when no job's command names
    /// the test's file, to choose) the jobs searched.
    #[serde(default)]
    pub job_filter: Option<String>,
    /// Include the failure excerpt of each failing run (default true).
    #[serde(default = "default_true")]
    pub include_logs: bool,
    /// Failed-job logs read from Buildkite (default 40, 0 to 300); stored outcomes are free.
    /// Builds left unread are listed in `stats.builds_not_read`.
    #[serde(default = "default_max_logs")]
    #[schemars(range(min = 0, max = MAX_HISTORY_LOGS))]
    pub max_logs: WholeNumber,
}

/// One log per build of the longest lookback.
const MAX_HISTORY_LOGS: u64 = watch::MAX_LOOKBACK_BUILDS as u64;

fn default_max_logs() -> WholeNumber {
    WholeNumber::new(watch::DEFAULT_HISTORY_LOGS as u64)
}

#[tool_router(router = history_router, vis = "pub(super)")]
impl CiWatchServer {
    /// Follow one test across recent builds, newest first: is it a new REGRESSION (with the
    /// last good and first bad build and commit, and a GitHub compare link), FIXED, flaky
    /// (FLAKE_ONSET), PERSISTENT_FAIL, SPORADIC, or INSUFFICIENT_DATA? Jobs that run the test are
    /// found from their commands; passed jobs count as passes without reading logs; failed
    /// jobs' logs are searched for the exact test id, where the job's state changes first, then
    /// newest first (max_logs). Jobs come with the build listing and parsed logs are stored on
    /// disk, so asking again costs one request.
    #[tool(
        name = "ciwatch_test_history",
        output_schema = rmcp::handler::server::common::schema_for_output::<HistoryResult>(),
        title = "Follow a test across builds",
        annotations(
            title = "Follow a test across builds",
            read_only_hint = true,
            open_world_hint = true
        )
    )]
    pub async fn test_history(
        &self,
        Parameters(params): Parameters<TestHistoryParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, String> {
        let test_nodeid = NodeId::parse(&params.test_nodeid).map_err(|e| e.to_string())?;
        let pipeline = parse_pipeline(&params.pipeline, &self.settings.buildkite_org)
            .map_err(|e| e.to_string())?;
        let client = self.buildkite(&context.extensions)?;
        let nightly_only = match params.build_query.as_deref().map(str::trim) {
            None | Some("") => false,
            Some(query) if query.eq_ignore_ascii_case("nightly") => true,
            Some(other) => {
                return Err(format!(
                    "build_query {other:?} is not supported: use \"nightly\" or leave it out"
                ))
            }
        };
        let budgets = self.settings.budgets();
        let options = HistoryOptions {
            branch: params.branch,
            lookback_builds: params
                .lookback_builds
                .count("lookback_builds", 1..=watch::MAX_LOOKBACK_BUILDS as u64)?,
            nightly_only,
            job_filter: params.job_filter.filter(|f| !f.trim().is_empty()),
            include_logs: params.include_logs,
            max_jobs_per_build: budgets.max_jobs,
            max_logs: params.max_logs.count("max_logs", 0..=MAX_HISTORY_LOGS)?,
            max_log_bytes: budgets.max_log_bytes,
            max_whole_log_bytes: budgets.max_whole_log_bytes,
            concurrency: budgets.concurrency,
            repo: "vllm-project/vllm".into(),
        };
        let progress = McpProgress::new(context.peer.clone(), context.meta.get_progress_token());
        let reader = self.reader(&client);
        let history = watch::test_history(&reader, &pipeline, &test_nodeid, &options, &progress);
        let mut result = tokio::select! {
            result = history => result.map_err(|e| e.to_string())?,
            () = context.ct.cancelled() => return Err("the test history was cancelled".to_string()),
        };
        result.warnings.extend(self.no_store_warning());
        // Failure excerpts go first, oldest build first; then the oldest builds.
        let builds = result.timeline.len();
        let (mut response, removed) = super::output::structured_within_cap(
            &mut result,
            |r| r.summary.clone(),
            |r| {
                let excerpt = r
                    .timeline
                    .iter_mut()
                    .rev()
                    .flat_map(|e| e.jobs.iter_mut())
                    .find(|j| j.log_excerpt.is_some());
                match excerpt {
                    Some(job) => job.log_excerpt.take().is_some(),
                    None => r.timeline.pop().is_some(),
                }
            },
        )?;
        if removed > 0 {
            result.warnings.push(format!(
                "cut to stay under {} characters: failure excerpts of the oldest builds, then the oldest of {builds} builds (ask with include_logs=false or fewer lookback_builds)",
                super::output::max_result_chars()
            ));
            response = super::output::structured(&result, result.summary.clone())?;
        }
        Ok(response)
    }
}
