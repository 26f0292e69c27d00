//! `ciwatch_get_job_test_failures`: the failures of one job, found by name or id.

use super::CiWatchServer;
use crate::buildkite::parse_build_ref;
use crate::watch::{self, JobTestFailuresResult, MatchStrategy};
use rmcp::handler::server::wrapper::{Json, Parameters};
use rmcp::service::RequestContext;
use rmcp::{tool, tool_router, RoleServer};
use schemars::JsonSchema;
use serde::Deserialize;

fn default_pipeline() -> String {
    "vllm/ci".into()
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct JobFailuresParams {
    /// A build number or a Buildkite build/job URL (its org and pipeline win over `pipeline`).
    pub build_id_or_url: String,
    /// The job's name (or part of it, with "fuzzy") or its id (with "id").
    pub job_name_or_id: String,
    /// Pipeline as "org/pipeline" (default "vllm/ci").
    #[serde(default = "default_pipeline")]
    pub pipeline: String,
    /// "fuzzy" (default: case-insensitive part of the name, an exact name wins), "exact" or "id".
    #[serde(default)]
    pub match_strategy: MatchStrategy,
}

#[tool_router(router = job_router, vis = "pub(super)")]
impl CiWatchServer {
    /// The test failures of one job of a build: pytest node ids with error lines and traceback
    /// excerpts, or the lines that explain a job that failed without naming a test. Use it to
    /// drill into a job named in a scan, or when asked about "the Kernels job in build 65099".
    /// An ambiguous or unknown name returns the candidate job names.
    #[tool(
        name = "ciwatch_get_job_test_failures",
        title = "Failures of one job",
        annotations(
            title = "Failures of one job",
            read_only_hint = true,
            open_world_hint = true
        )
    )]
    pub async fn get_job_test_failures(
        &self,
        Parameters(params): Parameters<JobFailuresParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<Json<JobTestFailuresResult>, String> {
        let client = self.buildkite(&context.extensions)?;
        let build = parse_build_ref(
            &params.build_id_or_url,
            &params.pipeline,
            &self.settings.buildkite_org,
        )
        .map_err(|e| e.to_string())?;
        let budgets = self.settings.budgets();
        let reader = self.reader(&client);
        let key = watch::BuildKey::new(&build.org, &build.pipeline, build.number);
        let failures = watch::job_test_failures(
            &reader,
            &key,
            &params.job_name_or_id,
            params.match_strategy,
            &budgets,
        );
        tokio::select! {
            result = failures => Ok(Json(super::output::sanitized(result.map_err(|e| e.to_string())?)?)),
            () = context.ct.cancelled() => Err("the request was cancelled".to_string()),
        }
    }
}
