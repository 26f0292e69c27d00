//! The AMD nightly beside it: each cause of a scan looked up in the matching nightly of a
//! second pipeline (by default `vllm/amd-ci`, "AMD Full CI Run - nightly"), so a cause reads
//! as failing everywhere, only on CUDA or only on ROCm.
//!
//! The matching nightly is the one on the same commit, else the nearest earlier one within
//! [`WINDOW_HOURS`]. Its jobs are matched to a cause by area (the cluster key: hardware,
//! shards and prefixes stripped) or by running one of the cause's test files; failed ones are
//! read through the job-outcome reader, at most [`MAX_LOGS`] logs. Bounded: one listing page,
//! the build, the logs; all of it said in `stats.compared_pipeline_requests`.

use super::call::ScanCall;
use super::Budgets;
use crate::buildkite::{Build, BuildKey, Job, ListBuilds, PipelineKey};
use crate::input::comparable;
use crate::model::{Cause, Elsewhere, ElsewhereState, Platform, ScanResult};
use crate::reader::{JobRead, JobReader};
use crate::triage::cause::parity;
use crate::triage::cluster::{cluster_key, platform};
use crate::triage::signature::signature;
use std::collections::HashMap;

/// The pipeline compared with by default (`CIWATCH_COMPARE_PIPELINE`).
pub const DEFAULT_COMPARE_PIPELINE: &str = "vllm/amd-ci";
/// How much earlier than the scanned build the compared nightly may be.
pub const WINDOW_HOURS: i64 = 36;
/// Logs of the compared nightly read per scan.
pub const MAX_LOGS: usize = 10;

/// Sets each cause's `elsewhere` and `parity`. Problems become warnings.
pub(super) async fn compare_elsewhere(
    call: &ScanCall<'_>,
    build: &Build,
    other: &PipelineKey,
    result: &mut ScanResult,
) {
    let (reader, key, budgets) = (call.reader, call.key, &call.options.budgets);
    let same_pipeline = other.org == key.org && other.pipeline == key.pipeline;
    if result.causes.is_empty() || same_pipeline {
        return;
    }
    let before = crate::call::call_totals().buildkite_requests;
    match counterpart(reader, build, other).await {
        Ok(Some(there)) => {
            let other_key = BuildKey::new(&other.org, &other.pipeline, there.number);
            let reads = read_matching(reader, &other_key, &there, &result.causes, budgets).await;
            for cause in &mut result.causes {
                let found = state_there(cause, &there, &reads);
                cause.elsewhere = Some(Elsewhere {
                    pipeline: other.slug(),
                    build_number: there.number,
                    ..found
                });
            }
        }
        Ok(None) => result.warnings.push(format!(
            "no nightly of {} on the same commit or within {WINDOW_HOURS} h before build {}: causes have no `elsewhere`",
            other.slug(),
            build.number
        )),
        Err(warning) => result.warnings.push(warning),
    }
    let passed = passed_platforms(build, &result.causes, &key.pipeline_name());
    for (cause, passed_on) in result.causes.iter_mut().zip(passed) {
        cause.parity = parity(
            &cause.platforms,
            cause.elsewhere.as_ref().map(|e| e.state),
            &passed_on,
        );
    }
    result.stats.compared_pipeline_requests =
        crate::call::call_totals().buildkite_requests - before;
}

/// The compared pipeline's nightly for `build`, with its jobs (from the store when unchanged).
async fn counterpart(
    reader: &JobReader<'_>,
    build: &Build,
    other: &PipelineKey,
) -> Result<Option<Build>, String> {
    let created = build
        .created_at
        .as_deref()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&chrono::Utc));
    let filter = ListBuilds {
        branch: build.branch.clone(),
        created_from: created.map(|t| {
            (t - chrono::Duration::hours(WINDOW_HOURS))
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        }),
        exclude_jobs: true,
        ..Default::default()
    };
    let cannot = |e: &dyn std::fmt::Display| {
        format!(
            "the nightly of {} could not be read ({e}); causes have no `elsewhere`",
            other.slug()
        )
    };
    let listing = reader
        .client()
        .list_builds(other, &filter, 1, |_| true)
        .await
        .map_err(|e| cannot(&e))?;
    let Some(listed) = pick_counterpart(&listing.builds, build) else {
        return Ok(None);
    };
    let key = BuildKey::new(&other.org, &other.pipeline, listed.number);
    reader
        .build_as_listed(&key, listed)
        .await
        .map(Some)
        .map_err(|e| cannot(&e))
}

/// The nightly on `build`'s commit, else the newest one created before it (the listing holds
/// only the window). Nightlies without a result yet are skipped.
fn pick_counterpart<'b>(listed: &'b [Build], build: &Build) -> Option<&'b Build> {
    let nightlies: Vec<&Build> = listed
        .iter()
        .filter(|b| super::nightly::is_nightly(b) && b.build_state().has_result())
        .collect();
    nightlies
        .iter()
        .find(|b| b.commit.is_some() && b.commit == build.commit)
        .or_else(|| {
            nightlies
                .iter()
                .filter(|b| b.created_at <= build.created_at)
                .max_by(|a, b| a.created_at.cmp(&b.created_at))
        })
        .copied()
}

/// The latest attempts of the script jobs there that run a cause's area or test files.
fn matching_jobs<'b>(cause: &Cause, there: &'b Build) -> Vec<&'b Job> {
    let files: Vec<&str> = cause
        .tests
        .iter()
        .filter_map(|t| t.split("::").next())
        .collect();
    there
        .latest_attempts()
        .filter(|j| {
            cause.clusters.contains(&cluster_key(j.display_name()))
                || j.command.as_deref().is_some_and(|command| {
                    files.iter().any(|f| {
                        crate::input::repo_path_candidates(f)
                            .iter()
                            .any(|path| crate::pipeline::runs_test_file(command, path))
                    })
                })
        })
        .collect()
}

/// Reads the failed matching jobs, the strongest causes' first, at most [`MAX_LOGS`].
async fn read_matching(
    reader: &JobReader<'_>,
    key: &BuildKey,
    there: &Build,
    causes: &[Cause],
    budgets: &Budgets,
) -> HashMap<String, JobRead> {
    let mut wanted: Vec<&Job> = Vec::new();
    for cause in causes {
        for job in matching_jobs(cause, there) {
            if job.is_failed() && !wanted.iter().any(|w| w.id == job.id) {
                wanted.push(job);
            }
        }
    }
    wanted.truncate(MAX_LOGS);
    let limits = budgets.limits();
    let jobs: Vec<(&BuildKey, &Job)> = wanted.iter().map(|j| (key, *j)).collect();
    let reads = reader
        .jobs(&jobs, &limits, budgets.concurrency, &super::NoProgress)
        .await;
    wanted.iter().map(|j| j.id.clone()).zip(reads).collect()
}

/// What the compared nightly says about `cause` (pipeline and build filled in by the caller).
fn state_there(cause: &Cause, there: &Build, reads: &HashMap<String, JobRead>) -> Elsewhere {
    let jobs = matching_jobs(cause, there);
    let names: Vec<String> = jobs.iter().map(|j| j.display_name().to_string()).collect();
    let answer = |state, evidence: String| Elsewhere {
        pipeline: String::new(),
        build_number: 0,
        state,
        jobs: names.clone(),
        evidence,
    };
    if jobs.is_empty() {
        return answer(
            ElsewhereState::NotRunThere,
            format!("no job there runs {}", cause.clusters.join(" or ")),
        );
    }
    let mut unknown = Vec::new();
    for job in jobs.iter().filter(|j| !j.is_passed()) {
        if !job.is_failed() {
            unknown.push(format!("{} was {}", job.display_name(), job.state()));
            continue;
        }
        let Some(read) = reads.get(&job.id) else {
            unknown.push(format!(
                "the log of {} was not read (at most {MAX_LOGS})",
                job.display_name()
            ));
            continue;
        };
        let Some(analysis) = &read.analysis else {
            unknown.push(format!(
                "the log of {} could not be read",
                job.display_name()
            ));
            continue;
        };
        if let Some(evidence) = fails_in(cause, job, analysis) {
            return answer(ElsewhereState::FailingThere, evidence);
        }
        if read.status != crate::model::JobStatus::Analyzed {
            unknown.push(format!(
                "the log of {} was read only in part",
                job.display_name()
            ));
        } else if analysis.job_level.is_some() && cause.tests.iter().any(|t| t.contains("::")) {
            // It failed without a test result: the cause's tests may not have run there.
            unknown.push(format!(
                "{} failed before its tests' results",
                job.display_name()
            ));
        }
    }
    if unknown.is_empty() {
        answer(
            ElsewhereState::PassingThere,
            format!("its tests passed there ({})", names.join(", ")),
        )
    } else {
        answer(ElsewhereState::Unknown, unknown.join("; "))
    }
}

/// Whether a job there failed with `cause`: one of its tests failed (its error named), or, for
/// a job-level cause, the job failed with the same signature.
fn fails_in(cause: &Cause, job: &Job, analysis: &crate::logs::LogAnalysis) -> Option<String> {
    let members: Vec<&str> = cause
        .tests
        .iter()
        .filter(|t| t.contains("::"))
        .map(|t| t.split('[').next().unwrap_or(t))
        .map(comparable)
        .collect();
    if let Some(test) = analysis.tests.iter().find(|t| {
        let id = comparable(t.node_id.split('[').next().unwrap_or(&t.node_id));
        members.contains(&id)
    }) {
        return Some(format!(
            "{} failed in {}{}",
            test.node_id,
            job.display_name(),
            test.error_message
                .as_deref()
                .map(|e| format!(": {}", crate::text::bounded_text(e, 160)))
                .unwrap_or_default()
        ));
    }
    let level = analysis.job_level.as_ref()?;
    let there = signature(
        job.display_name(),
        job.display_name(),
        level.error_message.as_deref(),
        Some(&level.excerpt),
    );
    (members.is_empty() && there.text() == cause.signature)
        .then(|| format!("{} failed with the same error", job.display_name()))
}

/// For each cause, the platforms on which a job of its areas passed in the scanned build.
fn passed_platforms(build: &Build, causes: &[Cause], pipeline: &str) -> Vec<Vec<Platform>> {
    causes
        .iter()
        .map(|cause| {
            let mut passed: Vec<Platform> = build
                .latest_attempts()
                .filter(|j| j.is_passed())
                .filter(|j| cause.clusters.contains(&cluster_key(j.display_name())))
                .map(|j| platform(j.display_name(), pipeline))
                .collect();
            passed.sort();
            passed.dedup();
            passed
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nightly(number: u64, commit: &str, created: &str) -> Build {
        Build {
            number,
            commit: Some(commit.into()),
            created_at: Some(created.into()),
            source: Some("schedule".into()),
            message: Some("AMD Full CI Run - nightly".into()),
            state: Some("failed".into()),
            ..Default::default()
        }
    }

    #[test]
    fn the_same_commit_first_else_the_nearest_earlier_nightly() {
        let current = nightly(65099, "abc", "2026-05-08T06:00:07Z");
        let listed = [
            nightly(7600, "later", "2026-05-08T09:00:00Z"),
            nightly(7599, "abc", "2026-05-08T08:00:00Z"),
            nightly(7598, "older", "2026-05-07T06:00:00Z"),
        ];
        assert_eq!(
            pick_counterpart(&listed, &current).map(|b| b.number),
            Some(7599)
        );
        let listed = [listed[0].clone(), listed[2].clone()];
        assert_eq!(
            pick_counterpart(&listed, &current).map(|b| b.number),
            Some(7598)
        );
        assert_eq!(
            pick_counterpart(&listed[..1], &current).map(|b| b.number),
            None
        );
    }
}
