//! One job's failures: find the job of a build by id or name, read its log through the
//! job-outcome reader (a stored outcome costs no request), extract failures.

use super::{Budgets, WatchError};
use crate::buildkite::{latest_attempts, BuildKey, Job};
use crate::logs::pytest::head_line;
pub use crate::model::{JobInfo, JobTestFailure, JobTestFailuresResult, MatchStrategy};
use crate::reader::{JobRead, JobReader};

/// Which job of a build a caller means: its id, or its name matched exactly or loosely.
#[derive(Debug, Clone, Copy)]
pub struct JobQuery<'q> {
    pub text: &'q str,
    pub strategy: MatchStrategy,
}

impl<'q> JobQuery<'q> {
    pub fn new(text: &'q str, strategy: MatchStrategy) -> Self {
        Self { text, strategy }
    }

    /// The job of `jobs` it names (see [`match_job`]).
    pub fn find<'j>(&self, jobs: &'j [Job]) -> Result<&'j Job, String> {
        match_job(jobs, self.text, self.strategy)
    }
}

/// Picks one job. Names are matched among latest attempts (a retried job shares its name with
/// its retries); ids among all attempts. Errors list the candidates.
pub fn match_job<'a>(
    jobs: &'a [Job],
    query: &str,
    strategy: MatchStrategy,
) -> Result<&'a Job, String> {
    let scripts: Vec<&Job> = jobs.iter().filter(|j| j.is_script()).collect();
    let latest: Vec<&Job> = latest_attempts(jobs).collect();
    let names = |list: &[&Job]| {
        list.iter()
            .map(|j| format!("{:?}", j.display_name()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match strategy {
        MatchStrategy::Id => scripts
            .iter()
            .copied()
            .find(|j| j.id == query)
            .ok_or_else(|| format!("job id {query} not found in this build")),
        MatchStrategy::Exact => {
            let found: Vec<&Job> = latest
                .iter()
                .copied()
                .filter(|j| j.display_name() == query)
                .collect();
            match found.as_slice() {
                [one] => Ok(one),
                [] => Err(format!(
                    "job {query:?} not found (exact match); try match_strategy \"fuzzy\""
                )),
                many => Err(format!(
                    "several jobs are named {query:?}: ids {}",
                    many.iter()
                        .map(|j| j.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            }
        }
        MatchStrategy::Fuzzy => {
            let wanted = query.to_lowercase();
            let found: Vec<&Job> = latest
                .iter()
                .copied()
                .filter(|j| j.display_name().to_lowercase().contains(&wanted))
                .collect();
            match found.as_slice() {
                [one] => Ok(one),
                [] => Err(format!(
                    "no job name contains {query:?}; failed jobs: {}",
                    names(
                        &latest
                            .iter()
                            .copied()
                            .filter(|j| j.is_failed())
                            .collect::<Vec<_>>()
                    )
                )),
                many => {
                    let exact: Vec<&&Job> = many
                        .iter()
                        .filter(|j| j.display_name().to_lowercase() == wanted)
                        .collect();
                    match exact.as_slice() {
                        [one] => Ok(one),
                        _ => Err(format!("{} jobs match {query:?}: {}; give more of the name or use match_strategy \"id\"", many.len(), names(many))),
                    }
                }
            }
        }
    }
}

/// What the job tools say about the job they read.
pub(super) fn job_info(job: &Job) -> JobInfo {
    JobInfo {
        job_id: job.id.clone(),
        job_name: job.display_name().to_string(),
        job_url: job.web_url.clone().unwrap_or_default(),
        state: job.state().to_string(),
        exit_status: job.exit_status,
        soft_failed: job.is_soft_failed(),
    }
}

/// The build holding the job `query` names. A stored build may predate a retry, so a job it
/// does not have is looked for in the build as Buildkite has it now (one request).
pub(super) async fn build_with_job(
    reader: &JobReader<'_>,
    key: &BuildKey,
    query: &JobQuery<'_>,
) -> Result<crate::buildkite::Build, WatchError> {
    Ok(reader
        .build_holding(key, |build| query.find(build.jobs()).is_ok())
        .await?)
}

/// One job's failures, read in a call of its own: what the call met beside the log (a shared
/// store that did not answer) is among its warnings.
pub async fn job_test_failures(
    reader: &JobReader<'_>,
    key: &BuildKey,
    query: &JobQuery<'_>,
    budgets: &Budgets,
) -> Result<JobTestFailuresResult, WatchError> {
    crate::call::answered(read_job_failures(reader, key, query, budgets), |r| {
        &mut r.warnings
    })
    .await
}

async fn read_job_failures(
    reader: &JobReader<'_>,
    key: &BuildKey,
    query: &JobQuery<'_>,
    budgets: &Budgets,
) -> Result<JobTestFailuresResult, WatchError> {
    let build = build_with_job(reader, key, query).await?;
    let job = query.find(build.jobs()).map_err(WatchError::NotFound)?;
    let limits = budgets.limits();
    let JobRead {
        analysis, detail, ..
    } = reader.job(key, job, &limits).await;
    let mut warnings: Vec<String> = detail.into_iter().collect();
    let test_failures: Vec<JobTestFailure> = match analysis {
        None => Vec::new(),
        Some(analysis) if !analysis.tests.is_empty() => analysis
            .tests
            .into_iter()
            .map(|t| JobTestFailure {
                scope: t.node_id.split("::").next().unwrap_or_default().to_string(),
                test_name: head_line(&t.node_id),
                log_snippet: t
                    .excerpt
                    .as_deref()
                    .map(|e| crate::logs::bounded_text(e, 500)),
                stack_trace: t.excerpt,
                error_message: t.error_message,
                test_nodeid: t.node_id,
            })
            .collect(),
        Some(analysis) => analysis
            .job_level
            .map(|level| JobTestFailure {
                test_nodeid: job.display_name().to_string(),
                scope: String::new(),
                test_name: job.display_name().to_string(),
                error_message: level.error_message,
                log_snippet: Some(crate::logs::bounded_text(&level.excerpt, 500)),
                stack_trace: Some(level.excerpt),
            })
            .into_iter()
            .collect(),
    };
    if job.is_passed() {
        warnings.push(
            "the job passed; failures listed are from tests it reran or tolerated".to_string(),
        );
    }
    Ok(JobTestFailuresResult {
        job_info: job_info(job),
        total_failures: test_failures.len(),
        test_failures,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching_on_the_real_build() {
        let build = crate::fixtures::build_65099();
        let jobs = build.jobs();
        let fuzzy =
            |q| match_job(jobs, q, MatchStrategy::Fuzzy).map(|j| j.display_name().to_string());
        assert_eq!(
            fuzzy("elastic ep").as_deref(),
            Ok("Elastic EP Scaling Test")
        );
        // "Examples" is a substring of "Model Runner V2 Examples": the exact name wins.
        assert_eq!(fuzzy("examples").as_deref(), Ok("Examples"));
        let several = fuzzy("Spec Decode").expect_err("several");
        assert!(
            several.contains("Spec Decode Eagle Nightly B200"),
            "{several}"
        );
        assert!(fuzzy("no such job")
            .expect_err("none")
            .contains("failed jobs:"));
        // The retried job's latest attempt is chosen, not the original.
        let latest = match_job(
            jobs,
            "Distributed Tests (2 GPUs)(H100)",
            MatchStrategy::Exact,
        )
        .expect("one");
        assert_eq!(latest.id, "019e068f-84f5-4636-9707-f971a7d87843");
        assert!(match_job(
            jobs,
            "019e062d-318f-4e16-ba10-a1794563c3fc",
            MatchStrategy::Id
        )
        .is_ok());
    }
}
