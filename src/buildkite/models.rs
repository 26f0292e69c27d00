//! Buildkite REST v2 response bodies, as tolerant serde types: every field is optional or
//! defaulted (real bodies carry `null` for absent values and grow new fields), unknown fields
//! are ignored. Terms: a *build* is one run of a pipeline; a *job* is one execution of a step
//! in it; a *retry* is a new job for the same step, linked by `retry_source`/`retried_in_job_id`.

pub use crate::model::{BuildState, JobState};
use serde::{Deserialize, Serialize};

/// A pipeline of an organisation (`vllm/ci`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PipelineKey {
    pub org: String,
    pub pipeline: String,
}

impl PipelineKey {
    pub fn new(org: &str, pipeline: &str) -> Self {
        Self {
            org: org.to_string(),
            pipeline: pipeline.to_string(),
        }
    }

    /// `org/pipeline`.
    pub fn slug(&self) -> String {
        format!("{}/{}", self.org, self.pipeline)
    }
}

/// One build of one pipeline.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BuildKey {
    pub org: String,
    pub pipeline: String,
    pub number: u64,
}

impl BuildKey {
    pub fn new(org: &str, pipeline: &str, number: u64) -> Self {
        Self {
            org: org.to_string(),
            pipeline: pipeline.to_string(),
            number,
        }
    }

    /// `org/pipeline`.
    pub fn pipeline_name(&self) -> String {
        format!("{}/{}", self.org, self.pipeline)
    }

    /// The build's pipeline.
    pub fn pipeline_key(&self) -> PipelineKey {
        PipelineKey::new(&self.org, &self.pipeline)
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Build {
    pub id: Option<String>,
    pub number: u64,
    pub state: Option<String>,
    pub message: Option<String>,
    pub commit: Option<String>,
    pub branch: Option<String>,
    pub source: Option<String>,
    pub web_url: Option<String>,
    pub created_at: Option<String>,
    pub finished_at: Option<String>,
    pub env: Option<serde_json::Value>,
    pub pipeline: Option<PipelineRef>,
    pub jobs: Option<Vec<Job>>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct PipelineRef {
    pub slug: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Job {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// Script jobs carry the rendered label here.
    pub name: Option<String>,
    /// Block (`manual`) jobs carry `label` instead of `name`.
    pub label: Option<String>,
    pub step_key: Option<String>,
    /// Block (`manual`) jobs: the API URL that unblocks them.
    pub unblock_url: Option<String>,
    pub state: Option<String>,
    pub web_url: Option<String>,
    pub command: Option<String>,
    pub soft_failed: Option<bool>,
    pub exit_status: Option<i64>,
    pub signal_reason: Option<String>,
    pub retried: Option<bool>,
    pub retried_in_job_id: Option<String>,
    pub retry_source: Option<RetrySource>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct RetrySource {
    pub job_id: Option<String>,
}

impl Job {
    pub fn display_name(&self) -> &str {
        self.name
            .as_deref()
            .or(self.label.as_deref())
            .unwrap_or("Unknown Job")
    }
    pub fn state(&self) -> &str {
        self.state.as_deref().unwrap_or("unknown")
    }
    pub fn is_script(&self) -> bool {
        self.kind.as_deref() == Some("script")
    }
    /// A block (`manual`) step: it holds the jobs after it until someone unblocks it.
    pub fn is_block_step(&self) -> bool {
        self.kind.as_deref() == Some("manual")
    }
    /// Waiting behind a block step that was never unblocked (one of the states
    /// [`JobState::NotStarted`] covers).
    pub fn is_blocked(&self) -> bool {
        self.state() == "blocked"
    }
    pub fn job_state(&self) -> JobState {
        JobState::parse(self.state())
    }
    /// The job's command ran and did not succeed (see [`JobState::is_failure`]).
    pub fn is_failed(&self) -> bool {
        self.job_state().is_failure(self.started_at.is_some())
    }
    pub fn is_passed(&self) -> bool {
        self.job_state() == JobState::Passed
    }
    pub fn is_soft_failed(&self) -> bool {
        self.soft_failed.unwrap_or(false)
    }
    /// In a final state: its log and outcome can no longer change, so they may be stored.
    pub fn is_finished(&self) -> bool {
        self.job_state().is_final()
    }
    /// A later attempt of this job exists.
    pub fn was_retried(&self) -> bool {
        self.retried.unwrap_or(false) || self.retried_in_job_id.is_some()
    }
}

impl Build {
    pub fn build_state(&self) -> BuildState {
        BuildState::parse(self.state())
    }
    pub fn state(&self) -> &str {
        self.state.as_deref().unwrap_or("unknown")
    }
    /// Finished (no job can still start or change): what the store keeps. A `failing` build
    /// still runs jobs.
    pub fn is_finished(&self) -> bool {
        self.finished_at.is_some() && self.build_state().is_final()
    }
    pub fn jobs(&self) -> &[Job] {
        self.jobs.as_deref().unwrap_or_default()
    }
    /// The latest attempt of each script job: what the job's state is. A retried attempt is
    /// left out (its retry shares its name and carries the outcome).
    pub fn latest_attempts(&self) -> impl Iterator<Item = &Job> {
        latest_attempts(self.jobs())
    }
}

/// The latest attempt of each script job among `jobs` (see [`Build::latest_attempts`]).
pub fn latest_attempts(jobs: &[Job]) -> impl Iterator<Item = &Job> {
    jobs.iter().filter(|j| j.is_script() && !j.was_retried())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_vllm_build_parses_with_nulls_and_unknown_fields() {
        let text = include_str!("../../wiremock-fixtures/builds/65099.json");
        let build: Build = serde_json::from_str(text).expect("real build parses");
        assert_eq!(build.number, 65099);
        assert_eq!(build.source.as_deref(), Some("schedule"));
        assert_eq!(build.jobs().len(), 235);
        let failed = build.jobs().iter().filter(|j| j.is_failed()).count();
        assert_eq!(failed, 38);
        assert_eq!(JobState::parse("expired"), JobState::NeverRan);
        assert!(!JobState::parse("running").is_final());
        assert!(!JobState::parse("some_new_state").is_final());
        assert!(BuildState::parse("failing").has_result());
        assert!(!BuildState::parse("failing").is_final());
        let cancelled = |started: Option<&str>| Job {
            state: Some("canceled".into()),
            started_at: started.map(str::to_string),
            ..Job::default()
        };
        assert!(cancelled(Some("2026-05-08T06:00:00Z")).is_failed());
        assert!(!cancelled(None).is_failed());
        let blocked: Build = serde_json::from_str(r#"{"number": 1, "jobs": [{"id": "b", "type": "manual", "label": "Run x", "state": "blocked", "web_url": null}], "author": "someone@example.com"}"#)
            .expect("block jobs parse");
        assert_eq!(blocked.jobs()[0].display_name(), "Run x");
    }
}

/// A test of a Test Engine suite (`GET /v2/analytics/organizations/{org}/suites/{suite}/tests`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(default)]
pub struct SuiteTest {
    pub id: String,
    pub web_url: Option<String>,
    pub scope: Option<String>,
    pub name: Option<String>,
    pub location: Option<String>,
    pub file_name: Option<String>,
}
