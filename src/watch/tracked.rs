//! Tracked issues, both ways: each `ci-failure` issue matched in the compared nightlies is
//! still failing, silent (its tests ran and passed in the last [`CLEAN_RUNS`] nightlies: close
//! it?) or, closed, failing again (reopen it?). An issue is matched to the nightlies through
//! the failures it tracks, and through its own text: the test file its title or body names,
//! run by a job's command. From what the comparison already read: no request of its own (the
//! candidates hold the issues closed in the last `CIWATCH_GITHUB_CLOSED_DAYS` days).

use crate::buildkite::{Build, Job};
use crate::github::{best_match, IssueCandidate, IssueState};
use crate::input::comparable;
use crate::model::{FailureClassification, JobStatus, TrackedIssue, TrackedStatus};
use crate::reader::JobRead;
use regex::Regex;
use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;

/// A test file named in an issue's title or body.
static TEST_FILE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:^|[\s`(:])((?:tests/)?[\w.-]+(?:/[\w.-]+)*/test_[\w-]+\.py)").expect("valid")
});

/// Clean nightlies that make an open issue silent, this one included: vLLM's CI control
/// resolves a main-branch failure after 3 clean runs.
pub const CLEAN_RUNS: usize = 3;

/// One nightly as the comparison saw it: its jobs and the logs read of them.
pub(super) struct NightlyView<'a> {
    pub build: &'a Build,
    /// Logs read, by job id.
    pub reads: &'a HashMap<&'a str, &'a JobRead>,
}

/// What an issue was matched to: a test (node id) or a job-level failure, in a job.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Subject {
    job: String,
    test: Option<String>,
}

/// `nightlies` newest first, this one first; `failures` are this nightly's, matched already.
pub(super) fn tracked_issues(
    nightlies: &[NightlyView<'_>],
    failures: &[FailureClassification],
    candidates: &[IssueCandidate],
) -> Vec<TrackedIssue> {
    if nightlies.is_empty() {
        return Vec::new();
    }
    let (matched, failing_now) = matched_issues(nightlies, failures, candidates);
    let mut out = Vec::new();
    for issue in candidates
        .iter()
        .filter(|i| i.tracking && i.is_ci_failure())
    {
        let number = issue.number;
        let now = failing_now.contains(&number);
        let (subjects, last_failed) = matched.get(&number).cloned().unwrap_or_default();
        let file = named_test_file(issue);
        let status = match (issue.state, now) {
            (IssueState::Open, true) => TrackedStatus::StillFailing,
            (IssueState::Closed, true) => TrackedStatus::FailingAgain,
            (IssueState::Open, false) if silent(&subjects, file.as_deref(), nightlies) => {
                TrackedStatus::Silent
            }
            _ => continue,
        };
        let suggestion = match status {
            TrackedStatus::StillFailing => "still failing: keep it open".to_string(),
            TrackedStatus::Silent => format!(
                "its tests ran and passed in the last {CLEAN_RUNS} nightlies ({}): close it?",
                nightlies[..CLEAN_RUNS]
                    .iter()
                    .map(|n| n.build.number.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            TrackedStatus::FailingAgain => "closed, and failing again: reopen it?".to_string(),
        };
        out.push(TrackedIssue {
            number,
            url: issue.url.clone(),
            title: issue.title.clone(),
            state: issue.state,
            status,
            suggestion,
            tests: subjects
                .iter()
                .map(|s| s.test.clone().unwrap_or_else(|| s.job.clone()))
                .chain(file.filter(|_| subjects.is_empty()))
                .collect(),
            last_failed_build: (last_failed > 0).then_some(last_failed),
        });
    }
    out
}

/// Issue number -> the tests or jobs it was matched to, and the newest nightly where it failed.
type IssueMatches = BTreeMap<u64, (Vec<Subject>, u64)>;

/// Issue number -> what it was matched to (this nightly's failures, and the earlier nightlies'
/// failing tests) and the newest nightly where it failed; also the issues failing now.
/// `nightlies` is not empty, this one first.
fn matched_issues(
    nightlies: &[NightlyView<'_>],
    failures: &[FailureClassification],
    candidates: &[IssueCandidate],
) -> (IssueMatches, Vec<u64>) {
    let current = &nightlies[0];
    let mut matched = IssueMatches::new();
    for failure in failures {
        if let Some(issue) = &failure.issue.matched {
            let entry = matched
                .entry(issue.number)
                .or_insert((Vec::new(), current.build.number));
            push_subject(
                &mut entry.0,
                subject_of(
                    &failure.test_failure.test_name,
                    &failure.test_failure.job_name,
                ),
            );
        }
    }
    let failing_now: Vec<u64> = matched.keys().copied().collect();
    for nightly in &nightlies[1..] {
        for (test, job) in failing_in(nightly) {
            if let Some(issue) = best_match(&test, &job, candidates) {
                let entry = matched
                    .entry(issue.number)
                    .or_insert((Vec::new(), nightly.build.number));
                push_subject(&mut entry.0, subject_of(&test, &job));
            }
        }
    }
    (matched, failing_now)
}

fn subject_of(test_name: &str, job_name: &str) -> Subject {
    Subject {
        job: job_name.to_string(),
        test: test_name
            .contains("::")
            .then(|| comparable(test_name).to_string()),
    }
}

fn push_subject(subjects: &mut Vec<Subject>, subject: Subject) {
    if !subjects.contains(&subject) {
        subjects.push(subject);
    }
}

/// The failures a previous nightly's read logs show: (node id or job name, job name).
fn failing_in(nightly: &NightlyView<'_>) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for job in latest_failed(nightly.build) {
        let Some(analysis) = nightly
            .reads
            .get(job.id.as_str())
            .and_then(|r| r.analysis.as_ref())
        else {
            continue;
        };
        let name = job.display_name().to_string();
        for test in &analysis.tests {
            found.push((comparable(&test.node_id).to_string(), name.clone()));
        }
        if analysis.job_level.is_some() {
            found.push((name.clone(), name));
        }
    }
    found
}

fn latest_failed(build: &Build) -> impl Iterator<Item = &Job> {
    build.latest_attempts().filter(|j| j.is_failed())
}

/// The test file an issue names (title first, then body), as a path under `tests/`'s root.
fn named_test_file(issue: &IssueCandidate) -> Option<String> {
    [&issue.title, &issue.body]
        .into_iter()
        .find_map(|text| TEST_FILE.captures(text))
        .map(|caps| comparable(&caps[1]).to_string())
}

/// What the issue tracks ran and passed in each of the last [`CLEAN_RUNS`] nightlies: every
/// failure it was matched to, and every job whose command runs the file it names (at least
/// one job in each nightly).
fn silent(subjects: &[Subject], file: Option<&str>, nightlies: &[NightlyView<'_>]) -> bool {
    if nightlies.len() < CLEAN_RUNS || (subjects.is_empty() && file.is_none()) {
        return false;
    }
    nightlies[..CLEAN_RUNS].iter().all(|n| {
        subjects.iter().all(|s| passed_in(s, n)) && file.is_none_or(|f| file_passed_in(f, n))
    })
}

/// Some job of `nightly` runs `file`, and none of them failed it.
fn file_passed_in(file: &str, nightly: &NightlyView<'_>) -> bool {
    let paths = crate::input::repo_path_candidates(file);
    let running: Vec<&Job> = nightly
        .build
        .latest_attempts()
        .filter(|j| {
            j.command.as_deref().is_some_and(|command| {
                paths
                    .iter()
                    .any(|p| crate::pipeline::runs_test_file(command, p))
            })
        })
        .collect();
    !running.is_empty()
        && running.iter().all(|job| {
            job.is_passed()
                || (job.is_failed()
                    && nightly.reads.get(job.id.as_str()).is_some_and(|read| {
                        read.status == JobStatus::Analyzed
                            && read.analysis.as_ref().is_some_and(|a| {
                                a.job_level.is_none()
                                    && a.tests.iter().all(|t| {
                                        comparable(t.node_id.split("::").next().unwrap_or(""))
                                            != file
                                    })
                            })
                    }))
        })
}

/// The subject's job ran in `nightly` and passed, or failed with a log read whole that does
/// not name the test.
fn passed_in(subject: &Subject, nightly: &NightlyView<'_>) -> bool {
    let Some(job) = nightly
        .build
        .latest_attempts()
        .find(|j| j.display_name() == subject.job)
    else {
        return false;
    };
    if job.is_passed() {
        return true;
    }
    let (Some(test), true) = (&subject.test, job.is_failed()) else {
        return false;
    };
    nightly.reads.get(job.id.as_str()).is_some_and(|read| {
        read.status == JobStatus::Analyzed
            && read.analysis.as_ref().is_some_and(|a| {
                a.tests.iter().all(|t| comparable(&t.node_id) != test)
                    && (a.passed.iter().any(|p| comparable(p) == test) || a.job_level.is_none())
            })
    })
}
