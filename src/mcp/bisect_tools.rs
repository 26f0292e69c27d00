//! `ciwatch_bisect_plan`: from a new failure to its culprit commit, narrowed by the runs main
//! already has, with the next runs to start (suggested, never started).

use super::numbers::WholeNumber;
use super::CiWatchServer;
use crate::buildkite::parse_pipeline;
use crate::input::{CommitSha, NodeId};
use crate::model::{BisectPlan, ElsewhereState, FailureClassification, Platform, ScanResult};
use crate::watch::{self, BisectOptions, BisectTarget};
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::CallToolResult;
use rmcp::service::RequestContext;
use rmcp::{tool, tool_router, RoleServer};
use schemars::JsonSchema;
use serde::Deserialize;

/// Logs one plan may fetch at most.
const MAX_BISECT_LOGS: u64 = 50;

fn default_max_logs() -> WholeNumber {
    WholeNumber::new(watch::DEFAULT_BISECT_LOGS as u64)
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct BisectParams {
    /// A failure's `failure_key` from this caller's last nightly scan: new failures there carry
    /// an onset (last good and first bad nightly), which the plan starts from.
    #[serde(default)]
    pub failure_key: Option<String>,
    /// Or a cause's `cause_id` from that scan: its first member with an onset.
    #[serde(default)]
    pub cause_id: Option<String>,
    /// Without a scan: the job's name as Buildkite shows it (with good_commit and bad_commit).
    #[serde(default)]
    pub job_name: Option<String>,
    /// Without a scan: the pytest node id; leave it out for a job-level failure.
    #[serde(default)]
    pub test_nodeid: Option<String>,
    /// Without a scan: the last commit where the job passed (a nightly's commit).
    #[serde(default)]
    pub good_commit: Option<String>,
    /// Without a scan: the first commit where it failed.
    #[serde(default)]
    pub bad_commit: Option<String>,
    /// Without a scan: the failure's error line; runs count against their commit only when
    /// they fail with its signature. Left out, any failure of the test (or job) counts.
    #[serde(default)]
    pub error_message: Option<String>,
    /// Pipeline as "org/pipeline" whose main-branch builds are read (default: the scan's, else
    /// "vllm/ci").
    #[serde(default)]
    pub pipeline: Option<String>,
    /// Failed-job logs fetched at most (default 8, 0 to 50); stored outcomes are free.
    #[serde(default = "default_max_logs")]
    #[schemars(range(min = 0, max = MAX_BISECT_LOGS))]
    pub max_logs: WholeNumber,
}

#[tool_router(router = bisect_router, vis = "pub(super)")]
impl CiWatchServer {
    /// Narrow a new failure's range of commits to its culprit from the runs main's own builds
    /// already have, as vLLM's bisect runbook does by hand. Give a failure_key or cause_id of
    /// the last nightly scan (its onset is the range), or job_name, good_commit and bad_commit.
    /// For each commit of the range (GitHub's compare, merge order) it says whether main's
    /// build ran the job and how: passed, failed with the same signature, failed otherwise (no
    /// evidence), blocked (with the block step's key and unblock URL), not in the build, or no
    /// build. The range shrinks to the commits between the last pass and the first failure
    /// with the signature: `confirmed` when they are adjacent, else `narrowed`. `next` names
    /// the run that halves it: a block step to unblock on an existing build, or a `/ci retry`
    /// step-key set for a commit with no build. It unblocks and starts nothing. One listing of
    /// the window's builds and logs only where the state changes; the request counts are in
    /// `stats`.
    #[tool(
        name = "ciwatch_bisect_plan",
        output_schema = rmcp::handler::server::common::schema_for_output::<BisectPlan>(),
        title = "Plan a bisect from main's runs",
        annotations(
            title = "Plan a bisect from main's runs",
            read_only_hint = true,
            open_world_hint = true
        )
    )]
    pub async fn bisect_plan(
        &self,
        Parameters(params): Parameters<BisectParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, String> {
        let max_logs = params.max_logs.count("max_logs", 0..=MAX_BISECT_LOGS)?;
        let from_scan = params.failure_key.is_some() || params.cause_id.is_some();
        let (target, scan_pipeline) = if from_scan {
            let scan = self
                .latest_scan(&context.extensions)
                .await
                .ok_or(super::NO_SCAN_YET)?;
            let target = target_from_scan(
                &scan,
                params.failure_key.as_deref(),
                params.cause_id.as_deref(),
            )?;
            (target, Some(scan.build_info.pipeline.clone()))
        } else {
            (target_from_arguments(&params)?, None)
        };
        let pipeline = params
            .pipeline
            .or(scan_pipeline)
            .unwrap_or_else(|| "vllm/ci".into());
        let pipeline =
            parse_pipeline(&pipeline, &self.settings.buildkite_org).map_err(|e| e.to_string())?;
        let client = self.buildkite(&context.extensions)?;
        let plan = self.plan(&client, &target, pipeline, max_logs);
        let mut plan = tokio::select! {
            plan = plan => plan?,
            () = context.ct.cancelled() => return Err("the bisect plan was cancelled".to_string()),
        };
        plan.warnings.extend(self.no_store_warning());
        // Commits outside the narrowed range go first over the cap, oldest first.
        let (response, removed) = super::output::structured_within_cap(
            &mut plan,
            crate::report::bisect_text,
            |p| match p.commits.iter().position(|c| !c.in_narrowed_range) {
                Some(at) => {
                    p.commits.remove(at);
                    true
                }
                None => false,
            },
        )?;
        if removed > 0 {
            plan.warnings.push(format!(
                "{removed} commits outside the narrowed range left out to stay under {} characters",
                super::output::max_result_chars()
            ));
            return super::output::structured(&plan, crate::report::bisect_text(&plan));
        }
        Ok(response)
    }
}

impl CiWatchServer {
    /// The plan of `target` on `org/pipeline`'s main branch, through this server's store.
    async fn plan(
        &self,
        client: &crate::buildkite::BuildkiteClient,
        target: &BisectTarget,
        pipeline: crate::buildkite::PipelineKey,
        max_logs: usize,
    ) -> Result<BisectPlan, String> {
        let options = BisectOptions {
            pipeline,
            branch: "main".into(),
            repo: "vllm-project/vllm".into(),
            max_logs,
            limits: self.settings.budgets().limits(),
        };
        let reader = self.reader(client);
        watch::bisect_plan(&reader, &self.github, target, &options)
            .await
            .map_err(|e| e.to_string())
    }

    /// The plan of a failure of the nightly the HUD holds for `org/pipeline`, with the server's
    /// own token and the default log budget.
    pub(super) async fn bisect_for_hud(
        &self,
        org: &str,
        pipeline: &str,
        failure_key: &str,
    ) -> Result<BisectPlan, String> {
        let scan = self
            .hud_scan(&format!("{org}/{pipeline}"))
            .await
            .ok_or("no nightly scan is held for this pipeline: scan it first")?;
        let target = target_from_scan(&scan, Some(failure_key), None)?;
        let client = self.buildkite(&rmcp::model::Extensions::default())?;
        let logs = watch::DEFAULT_BISECT_LOGS;
        let pipeline = crate::buildkite::PipelineKey::new(org, pipeline);
        self.plan(&client, &target, pipeline, logs).await
    }
}

/// The failure `failure_key` (or the first member of `cause_id` with an onset) names in a
/// nightly scan, with its onset range.
fn target_from_scan(
    scan: &ScanResult,
    failure_key: Option<&str>,
    cause_id: Option<&str>,
) -> Result<BisectTarget, String> {
    let failure: &FailureClassification = match (failure_key, cause_id) {
        (Some(key), _) => scan
            .failures
            .iter()
            .find(|f| f.failure_key == key)
            .ok_or_else(|| format!("no failure with failure_key {key:?} in your last scan; failure keys are in its failures"))?,
        (None, Some(id)) => scan
            .failures
            .iter()
            .filter(|f| f.cause_id.as_deref() == Some(id))
            .find(|f| f.since.onset.is_some())
            .ok_or_else(|| format!("no member of cause {id:?} in your last scan has an onset (new failures of a nightly scan have one); give job_name, good_commit and bad_commit instead"))?,
        (None, None) => return Err("give failure_key or cause_id".into()),
    };
    let onset = failure.since.onset.as_ref().ok_or_else(|| {
        format!(
            "failure {:?} has no onset: it is not new in this nightly, or no compared nightly passed it; give job_name, good_commit and bad_commit instead",
            failure.failure_key
        )
    })?;
    let cause = scan
        .causes
        .iter()
        .find(|c| Some(&c.cause_id) == failure.cause_id.as_ref());
    let also_on_amd = cause.is_some_and(|c| {
        c.elsewhere
            .as_ref()
            .is_some_and(|e| e.state == ElsewhereState::FailingThere)
            || (c.platforms.contains(&Platform::Rocm) && c.platforms.len() > 1)
    });
    let test = &failure.test_failure;
    Ok(BisectTarget {
        test: test
            .test_name
            .contains("::")
            .then(|| NodeId::parse(&test.test_name))
            .transpose()
            .map_err(|e| e.to_string())?,
        job_name: test.job_name.clone(),
        error_message: test.error_message.clone(),
        stack_trace: test.stack_trace.clone(),
        good_commit: onset.last_passed_commit.clone(),
        bad_commit: onset.first_failed_commit.clone(),
        also_on_amd,
        suspects: onset.suspects.clone(),
    })
}

/// The failure as the arguments give it, checked before any request.
fn target_from_arguments(params: &BisectParams) -> Result<BisectTarget, String> {
    let needed = "give failure_key or cause_id (from your last nightly scan), or job_name, good_commit and bad_commit";
    let job_name = params
        .job_name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .ok_or(needed)?;
    let commit = |argument: &'static str, value: &Option<String>| -> Result<String, String> {
        let value = value.as_deref().ok_or(needed)?;
        CommitSha::parse(argument, value)
            .map(|sha| sha.as_str().to_string())
            .map_err(|e| e.to_string())
    };
    Ok(BisectTarget {
        test: params
            .test_nodeid
            .as_deref()
            .filter(|t| !t.trim().is_empty())
            .map(NodeId::parse)
            .transpose()
            .map_err(|e| e.to_string())?,
        job_name: job_name.to_string(),
        error_message: params
            .error_message
            .clone()
            .filter(|e| !e.trim().is_empty()),
        stack_trace: None,
        good_commit: commit("good_commit", &params.good_commit)?,
        bad_commit: commit("bad_commit", &params.bad_commit)?,
        also_on_amd: false,
        suspects: Vec::new(),
    })
}
