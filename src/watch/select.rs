//! Which jobs of a build a scan reads, in what order. Pure: build in, plan out.
//!
//! Only the latest attempt of each job counts as the job's state. Latest attempts that failed
//! (`failed`/`timed_out`) are read first, hard failures before soft ones (`soft_failed`). A
//! failed attempt whose later retry passed is a flake signal: it is listed and read last, only
//! when budget remains.

use crate::buildkite::{Build, Job};
use std::collections::HashMap;

#[derive(Debug, Clone)]
pub struct PlannedJob<'a> {
    pub job: &'a Job,
    /// The attempt that passed after this one failed.
    pub passed_retry: Option<&'a str>,
}

#[derive(Debug, Clone, Default)]
pub struct JobPlan<'a> {
    /// Script jobs, latest attempts only.
    pub total_jobs: usize,
    pub hard_failed: usize,
    pub soft_failed: usize,
    /// In reading order: hard failures, soft failures, then flaked attempts.
    pub ordered: Vec<PlannedJob<'a>>,
}

pub fn plan_jobs(build: &Build) -> JobPlan<'_> {
    let scripts: Vec<&Job> = build.jobs().iter().filter(|j| j.is_script()).collect();
    let by_id: HashMap<&str, &Job> = scripts.iter().map(|j| (j.id.as_str(), *j)).collect();
    let latest: Vec<&Job> = build.latest_attempts().collect();

    let mut hard = Vec::new();
    let mut soft = Vec::new();
    let mut flaked = Vec::new();
    for job in &latest {
        if job.is_failed() {
            let planned = PlannedJob {
                job,
                passed_retry: None,
            };
            if job.is_soft_failed() {
                soft.push(planned)
            } else {
                hard.push(planned)
            }
        } else if job.is_passed() {
            // The most recent failed earlier attempt, if this pass came from a retry.
            let mut source = job.retry_source.as_ref().and_then(|s| s.job_id.as_deref());
            while let Some(previous) = source.and_then(|id| by_id.get(id)) {
                if previous.is_failed() {
                    flaked.push(PlannedJob {
                        job: previous,
                        passed_retry: Some(job.id.as_str()),
                    });
                    break;
                }
                source = previous
                    .retry_source
                    .as_ref()
                    .and_then(|s| s.job_id.as_deref());
            }
        }
    }
    let (hard_failed, soft_failed) = (hard.len(), soft.len());
    let mut ordered = hard;
    ordered.extend(soft);
    ordered.extend(flaked);
    JobPlan {
        total_jobs: latest.len(),
        hard_failed,
        soft_failed,
        ordered,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_nightly_65099() {
        let build: Build =
            serde_json::from_str(include_str!("../../wiremock-fixtures/builds/65099.json"))
                .expect("fixture parses");
        let plan = plan_jobs(&build);
        // 235 script jobs of which 22 were retried: 213 latest attempts.
        assert_eq!(plan.total_jobs, 213);
        assert_eq!((plan.hard_failed, plan.soft_failed), (9, 7));
        let flaked: Vec<&str> = plan
            .ordered
            .iter()
            .filter(|p| p.passed_retry.is_some())
            .map(|p| p.job.display_name())
            .collect();
        assert_eq!(flaked.len(), 8, "{flaked:?}");
        assert!(flaked.contains(&"Spec Decode Eagle Nightly B200"));
        assert!(flaked.contains(&"e2e Scheduling (1 GPU)"));
        // Hard failures come first.
        assert!(plan.ordered[..9]
            .iter()
            .all(|p| !p.job.is_soft_failed() && p.passed_retry.is_none()));
        // The flaked Spec Decode job is its second attempt (the one retried into the pass).
        let spec = plan
            .ordered
            .iter()
            .find(|p| p.job.display_name() == "Spec Decode Eagle Nightly B200")
            .expect("listed");
        assert_eq!(spec.job.id, "019e0663-e6af-472c-8301-c022a17dd163");
    }
}
