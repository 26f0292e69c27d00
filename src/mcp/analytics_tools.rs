//! Buildkite Test Engine tools: `ciwatch_test_history_analytics` (one test) and
//! `ciwatch_get_test_analytics_bulk` (many).

use super::CiWatchServer;
use crate::watch::{self, AnalyticsBulkResult, AnalyticsMatch};
use rmcp::handler::server::wrapper::{Json, Parameters};
use rmcp::service::RequestContext;
use rmcp::{tool, tool_router, RoleServer};
use schemars::JsonSchema;
use serde::Deserialize;

fn default_suite() -> String {
    "ci-1".into()
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct AnalyticsParams {
    /// A pytest node id ("tests/a/test_b.py::test_c[p]") or a plain test name.
    pub test_name_or_nodeid: String,
    /// Test Engine suite slug (default "ci-1", vLLM's).
    #[serde(default = "default_suite")]
    pub suite_slug: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct AnalyticsBulkParams {
    /// Pytest node ids, e.g. the `test_name`s of a scan's failures that contain "::".
    pub test_nodeids: Vec<String>,
    /// Test Engine suite slug (default "ci-1", vLLM's).
    #[serde(default = "default_suite")]
    pub suite_slug: String,
}

#[tool_router(router = analytics_router, vis = "pub(super)")]
impl CiWatchServer {
    /// Look one test up in Buildkite Test Engine: its id, web page and whether Test Engine
    /// labels it flaky. Needs a token with the read_suites scope. Several matches (the same
    /// test with other parameters) are listed in the error so you can pick one.
    #[tool(
        name = "ciwatch_test_history_analytics",
        title = "Test Engine lookup",
        annotations(
            title = "Test Engine lookup",
            read_only_hint = true,
            open_world_hint = true
        )
    )]
    pub async fn test_history_analytics(
        &self,
        Parameters(params): Parameters<AnalyticsParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<Json<AnalyticsMatch>, String> {
        suite_slug(&params.suite_slug)?;
        let client = self.buildkite(&context.extensions)?;
        let ids = vec![params.test_name_or_nodeid.clone()];
        let mut result = watch::analytics_bulk(
            &client,
            &self.settings.buildkite_org,
            &params.suite_slug,
            &ids,
        )
        .await
        .map_err(|e| e.to_string())?;
        if let Some(found) = result.results.pop() {
            return super::output::sanitized(found).map(Json);
        }
        if let Some(candidates) = result.multiple_matches.remove(&params.test_name_or_nodeid) {
            let names: Vec<String> = candidates
                .iter()
                .map(|c| format!("{} ({})", c.name, c.location))
                .collect();
            return Err(untrusted(format!(
                "{} tests match {:?}: {}; give the full node id with parameters",
                names.len(),
                params.test_name_or_nodeid,
                names.join(", ")
            )));
        }
        Err(untrusted(format!(
            "test {:?} not found in Test Engine suite {} ({} tests read){}",
            params.test_name_or_nodeid,
            params.suite_slug,
            result.suite_tests_read,
            result
                .warnings
                .first()
                .map(|w| format!("; {w}"))
                .unwrap_or_default()
        )))
    }

    /// Look many pytest node ids up in Buildkite Test Engine at once (two paginated listings,
    /// however many ids): for each, the suite test and whether it is labelled flaky; ids with
    /// no test go to `not_found`, ambiguous ones to `multiple_matches`. Needs read_suites.
    #[tool(
        name = "ciwatch_get_test_analytics_bulk",
        title = "Test Engine bulk lookup",
        annotations(
            title = "Test Engine bulk lookup",
            read_only_hint = true,
            open_world_hint = true
        )
    )]
    pub async fn get_test_analytics_bulk(
        &self,
        Parameters(params): Parameters<AnalyticsBulkParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<Json<AnalyticsBulkResult>, String> {
        suite_slug(&params.suite_slug)?;
        let client = self.buildkite(&context.extensions)?;
        watch::analytics_bulk(
            &client,
            &self.settings.buildkite_org,
            &params.suite_slug,
            &params.test_nodeids,
        )
        .await
        .map_err(|e| e.to_string())
        .and_then(|result| {
            super::output::sanitized_within_cap(
                result,
                |r| {
                    r.results.pop().is_some()
                        || r.not_found.pop().is_some()
                        || r.multiple_matches.pop_last().is_some()
                },
                |r, removed| {
                    r.warnings.push(format!(
                        "{removed} entries left out to stay under {} characters: ask for fewer test_nodeids at once",
                        super::output::max_result_chars()
                    ))
                },
            )
        })
        .map(Json)
    }
}

/// An error that quotes Test Engine's text (test names, warnings): sanitised like results.
fn untrusted(message: String) -> String {
    crate::untrusted::sanitize(&message).into_owned()
}

/// A suite slug becomes an API path segment: Buildkite's slug characters only.
fn suite_slug(slug: &str) -> Result<(), String> {
    crate::buildkite::parse_pipeline(slug, "vllm")
        .ok()
        .filter(|_| !slug.contains('/'))
        .map(|_| ())
        .ok_or_else(|| {
            format!("suite_slug {slug:?} is not a Test Engine suite slug: give one like ci-1")
        })
}
