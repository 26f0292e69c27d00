//! The pure decisions of comparing a nightly with the previous nightlies: what a failure is
//! across builds ([`Identity`]), what one previous nightly's job says about it
//! ([`job_says`]), how its trend retells its category and reason ([`retell`]), and whether a
//! previous failure is fixed now ([`fixed_evidence`]). Jobs come in as plain facts
//! ([`PreviousRun`], [`RunNow`]); reading them is `watch/compare.rs`'s job.

use super::trend::Baseline;
use crate::input::comparable;
use crate::logs::LogAnalysis;
use crate::model::{Category, FailureClassification, FailureTrend, JobState, Trend};

/// What a failure is, across builds: its job and test, or its job and error signature.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Identity {
    pub job: String,
    /// The node id in its comparable form; `None` for a job-level failure.
    pub test: Option<String>,
}

impl Identity {
    pub fn of(failure: &FailureClassification) -> Self {
        let tf = &failure.test_failure;
        Self {
            job: tf.job_name.clone(),
            test: tf
                .test_name
                .contains("::")
                .then(|| comparable(&tf.test_name).to_string()),
        }
    }
}

/// A failure a job's log showed: who it is, its name as printed, its error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShownFailure {
    pub identity: Identity,
    pub test_name: String,
    pub error_message: Option<String>,
}

/// The failures `analysis` shows for the job `job_name`: its tests, or its job-level failure
/// when no test failed.
pub fn failures_shown(job_name: &str, analysis: &LogAnalysis) -> Vec<ShownFailure> {
    let mut shown: Vec<ShownFailure> = analysis
        .tests
        .iter()
        .map(|t| ShownFailure {
            identity: Identity {
                job: job_name.to_string(),
                test: Some(comparable(&t.node_id).to_string()),
            },
            test_name: comparable(&t.node_id).to_string(),
            error_message: t.error_message.clone(),
        })
        .collect();
    if let (true, Some(level)) = (shown.is_empty(), &analysis.job_level) {
        shown.push(ShownFailure {
            identity: Identity {
                job: job_name.to_string(),
                test: None,
            },
            test_name: job_name.to_string(),
            error_message: level.error_message.clone(),
        });
    }
    shown
}

/// What was learnt from a job's log.
#[derive(Debug, Clone, Copy)]
pub enum LogWord<'a> {
    /// Not read (over the comparison's budget).
    NotRead,
    /// Read, and it could not be analysed; why.
    Unreadable(&'a str),
    /// Analysed; `complete` when every command of the job was read.
    Read {
        analysis: &'a LogAnalysis,
        complete: bool,
    },
}

/// One job of a previous nightly, as the comparison needs it.
#[derive(Debug, Clone, Copy)]
pub struct PreviousRun<'a> {
    pub state: JobState,
    /// Buildkite's word for the state, as the notes name it.
    pub state_name: &'a str,
    /// The job had started (a cancelled job counts as failed only then).
    pub started: bool,
    pub exit_status: Option<i64>,
    pub signal_reason: Option<&'a str>,
    pub log: LogWord<'a>,
}

impl PreviousRun<'_> {
    /// The host, not the code, ended it: Docker could not give the container its GPUs
    /// (exit 125 with `nvidia-container-cli`), or it started and wrote not a byte.
    fn host_killed(&self) -> bool {
        let gpu_runtime = self.exit_status == Some(125)
            && matches!(self.log, LogWord::Read { analysis, .. }
                if analysis.job_level.as_ref().is_some_and(|j| j.excerpt.contains("nvidia-container-cli")));
        let silent =
            self.started && matches!(self.log, LogWord::Unreadable(why) if why.contains("empty"));
        gpu_runtime || silent
    }

    fn agent_lost(&self) -> bool {
        self.exit_status == Some(-1)
            || self
                .signal_reason
                .is_some_and(|reason| reason.starts_with("agent"))
    }
}

/// What one previous nightly says about `identity`: its job of the same name (`None` when
/// no such job ran) passed, failed with it, or cannot say.
pub fn job_says(identity: &Identity, job: Option<&PreviousRun<'_>>) -> Baseline {
    let Some(job) = job else {
        return Baseline::NotRun;
    };
    if job.state == JobState::Passed {
        return Baseline::Passed;
    }
    if !job.state.is_failure(job.started) {
        return Baseline::NoAnswer(format!("the job was {}", job.state_name));
    }
    if job.agent_lost() {
        return Baseline::NoAnswer("the agent was lost".into());
    }
    if job.host_killed() {
        return Baseline::NoAnswer("the host killed it (no GPU runtime, or an empty log)".into());
    }
    if job.state == JobState::Canceled {
        return Baseline::NoAnswer("the job was cancelled".into());
    }
    match job.log {
        LogWord::NotRead => Baseline::NoAnswer("its log was not read (budget)".into()),
        LogWord::Unreadable(why) => {
            Baseline::NoAnswer(format!("its log could not be read ({why})"))
        }
        LogWord::Read { analysis, complete } => failed_job_says(identity, analysis, complete),
    }
}

/// What a failed job's log says about `identity`, when it can say.
fn failed_job_says(identity: &Identity, analysis: &LogAnalysis, complete: bool) -> Baseline {
    let fingerprint = |message: &Option<String>| message.as_deref().map(super::fingerprint);
    match &identity.test {
        Some(test) => {
            if let Some(failure) = analysis
                .tests
                .iter()
                .find(|t| comparable(&t.node_id) == test)
            {
                Baseline::Failed {
                    fingerprint: fingerprint(&failure.error_message),
                }
            } else if analysis.passed.iter().any(|p| comparable(p) == test)
                || (complete && analysis.job_level.is_none())
            {
                // pytest ran to its summary and did not name the test: it passed.
                Baseline::Passed
            } else {
                Baseline::NoAnswer("the job failed before the test's result".into())
            }
        }
        None => match &analysis.job_level {
            Some(level) => Baseline::Failed {
                fingerprint: fingerprint(&level.error_message),
            },
            // Tests failed instead: the job-level failure did not happen there, when the
            // whole job was read.
            None if complete => Baseline::Passed,
            None => Baseline::NoAnswer("its log was read only in part".into()),
        },
    }
}

/// The failure with its trend, and a category and reason that tell the truth about it: an
/// untracked failure that failed before is continuing, one that came and went is flaky.
pub fn retell(mut failure: FailureClassification, trend: FailureTrend) -> FailureClassification {
    let reason = failure.reason.take().unwrap_or_default();
    failure.reason = Some(match (failure.category, trend.trend) {
        (Category::NewRegression, Trend::Continuing) => {
            failure.category = Category::ContinuingUntracked;
            format!(
                "Failing since build {}, {} nightlies{}, no tracking issue",
                trend.first_failed_build,
                trend.streak,
                if trend.streak_reaches_past_window {
                    " (and before the window)"
                } else {
                    ""
                }
            )
        }
        (Category::NewRegression, Trend::Intermittent) => {
            failure.category = Category::FlakySuspected;
            format!(
                "Intermittent: failed in {} of the {} previous nightlies compared, passed in the last one ({reason})",
                trend.failed_in_window, trend.nightlies_compared
            )
        }
        (Category::NewRegression, Trend::New) => {
            format!("New since the previous nightly: it passed there ({reason})")
        }
        (Category::NewRegression, Trend::Unknown) => format!(
            "{reason}; not compared: no previous nightly could say{}",
            if trend.notes.is_empty() {
                String::new()
            } else {
                format!(" ({})", trend.notes.join("; "))
            }
        ),
        (_, Trend::Continuing) => format!(
            "{reason}; continuing: failing since build {}, {} nightlies",
            trend.first_failed_build, trend.streak
        ),
        _ => reason,
    });
    failure.since.trend = Some(trend);
    failure
}

/// The same job in this nightly.
#[derive(Debug, Clone, Copy)]
pub enum RunNow<'a> {
    Passed,
    /// It failed (or has not finished); its log's analysis when every command was read.
    NotPassed {
        complete_read: Option<&'a LogAnalysis>,
    },
}

/// Why a previous failure (not failing now) is fixed: its job passed, or its test passed in
/// its job (read in full, no job-level failure). `None` when this nightly cannot say.
pub fn fixed_evidence(identity: &Identity, now: RunNow<'_>) -> Option<&'static str> {
    match now {
        RunNow::Passed => Some("the job passed"),
        RunNow::NotPassed {
            complete_read: Some(analysis),
        } if identity.test.is_some() && analysis.job_level.is_none() => {
            Some("the test passed in its job")
        }
        RunNow::NotPassed { .. } => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn says(log: &str, identity: &Identity, complete: bool) -> Baseline {
        failed_job_says(identity, &crate::logs::analyze_log(log), complete)
    }

    fn run(state: JobState, started: bool, exit: Option<i64>, log: LogWord<'_>) -> PreviousRun<'_> {
        PreviousRun {
            state,
            state_name: "x",
            started,
            exit_status: exit,
            signal_reason: None,
            log,
        }
    }

    /// A previous nightly whose job the host killed is no baseline: its whole log read and no
    /// test in it would otherwise read as a pass.
    #[test]
    fn a_job_the_host_killed_is_no_baseline() {
        let identity = Identity {
            job: "Kernels".into(),
            test: Some("a.py::test_a".into()),
        };
        let no_gpu = crate::logs::analyze_log(
            "docker: Error response from daemon: failed to create task for container: OCI runtime create failed: nvidia-container-cli: initialization error: nvml error: driver not loaded: unknown.\n🚨 Error: The command exited with status 125\n",
        );
        let killed = LogWord::Read {
            analysis: &no_gpu,
            complete: true,
        };
        for job in [
            run(JobState::Failed, true, Some(125), killed),
            run(
                JobState::Failed,
                true,
                Some(1),
                LogWord::Unreadable("the log is empty"),
            ),
        ] {
            assert_eq!(
                job_says(&identity, Some(&job)),
                Baseline::NoAnswer("the host killed it (no GPU runtime, or an empty log)".into())
            );
        }
    }

    /// The order of a previous job's answers: its state, then the agent, then its log.
    #[test]
    fn what_a_previous_job_says_before_its_log_is_looked_at() {
        let identity = Identity {
            job: "Kernels".into(),
            test: Some("a.py::test_a".into()),
        };
        // Another test failed and the whole job was read: this one passed.
        let other_failed = crate::logs::analyze_log(
            "FAILED tests/b.py::test_b - AssertionError: x\n= 1 failed in 2.00s =\n",
        );
        let read = LogWord::Read {
            analysis: &other_failed,
            complete: true,
        };
        let says = |job: Option<PreviousRun<'_>>| match job_says(&identity, job.as_ref()) {
            Baseline::NoAnswer(why) => why,
            other => format!("{other:?}"),
        };
        let cases = [
            (None, "NotRun"),
            (
                Some(run(JobState::Passed, true, Some(0), LogWord::NotRead)),
                "Passed",
            ),
            (
                Some(run(JobState::Running, true, None, read)),
                "the job was x",
            ),
            (
                Some(run(JobState::Canceled, false, None, read)),
                "the job was x",
            ),
            (
                Some(run(JobState::Failed, true, Some(-1), read)),
                "the agent was lost",
            ),
            (
                Some(run(JobState::Canceled, true, Some(1), read)),
                "the job was cancelled",
            ),
            (
                Some(run(JobState::Failed, true, Some(1), LogWord::NotRead)),
                "its log was not read (budget)",
            ),
            (
                Some(run(
                    JobState::Failed,
                    true,
                    Some(1),
                    LogWord::Unreadable("no log"),
                )),
                "its log could not be read (no log)",
            ),
            (Some(run(JobState::TimedOut, true, Some(1), read)), "Passed"),
        ];
        for (job, expected) in cases {
            assert_eq!(says(job), expected);
        }
    }

    #[test]
    fn a_job_read_in_part_can_say_failed_or_passed_only_for_what_it_showed() {
        let tail = "+++ :test_tube: Command (5/5): pytest e\n\
                    tests/e.py::test_shown PASSED\n\
                    FAILED tests/e.py::test_e - AssertionError: x\n\
                    = 1 failed, 1 passed in 2.00s =\n";
        let test = |name: &str| Identity {
            job: "Kernels".into(),
            test: Some(name.into()),
        };
        assert!(matches!(
            says(tail, &test("e.py::test_e"), false),
            Baseline::Failed { .. }
        ));
        assert_eq!(
            says(tail, &test("e.py::test_shown"), false),
            Baseline::Passed
        );
        // A test of command 1, not in the part read: no answer, not a pass.
        assert!(matches!(
            says(tail, &test("a.py::test_first"), false),
            Baseline::NoAnswer(_)
        ));
        assert_eq!(
            says(tail, &test("a.py::test_first"), true),
            Baseline::Passed
        );
        // A job-level failure is not ruled out by test failures in the part read.
        let job_level = Identity {
            job: "Kernels".into(),
            test: None,
        };
        assert!(matches!(
            says(tail, &job_level, false),
            Baseline::NoAnswer(_)
        ));
        assert_eq!(says(tail, &job_level, true), Baseline::Passed);
    }
}
