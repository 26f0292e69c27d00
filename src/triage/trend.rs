//! How one failure compares with the previous scheduled nightlies. Pure: what each previous
//! nightly said about the failure in, a [`FailureTrend`] out.
//!
//! A nightly whose job could not say (agent lost, cancelled, log missing, not read) is no
//! baseline: it is skipped and named in the notes, never read as a pass.

use crate::model::{FailureTrend, Trend};

/// What one previous nightly said about the failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Baseline {
    /// It failed there too; the fingerprint of its error when there was one.
    Failed { fingerprint: Option<String> },
    /// It ran and passed (the job passed, or the test passed in its job).
    Passed,
    /// The nightly had no job of that name.
    NotRun,
    /// The nightly cannot say; why.
    NoAnswer(String),
}

impl Baseline {
    /// The letter of [`FailureTrend::runs`].
    fn letter(&self) -> char {
        match self {
            Self::Failed { .. } => 'F',
            Self::Passed => 'P',
            Self::NotRun => 'N',
            Self::NoAnswer(_) => '?',
        }
    }

    fn says(&self) -> bool {
        matches!(self, Self::Failed { .. } | Self::Passed)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NightlyBaseline {
    pub build_number: u64,
    pub baseline: Baseline,
    /// The nightly's job of the failure's name, when it had one.
    pub job_id: Option<String>,
}

/// `previous` is newest first; `fingerprint` is the current failure's.
pub fn assess_trend(
    current_build: u64,
    fingerprint: Option<&str>,
    previous: &[NightlyBaseline],
) -> FailureTrend {
    let mut notes: Vec<String> = previous
        .iter()
        .filter_map(|p| match &p.baseline {
            Baseline::NoAnswer(why) => Some(format!("nightly {} skipped: {why}", p.build_number)),
            Baseline::NotRun => Some(format!(
                "nightly {} skipped: the job did not run",
                p.build_number
            )),
            _ => None,
        })
        .collect();
    let usable: Vec<&NightlyBaseline> = previous.iter().filter(|p| p.baseline.says()).collect();
    let failed_in_window = usable
        .iter()
        .filter(|p| matches!(p.baseline, Baseline::Failed { .. }))
        .count() as u32;
    let mut trend = FailureTrend {
        trend: Trend::Unknown,
        streak: 1,
        streak_reaches_past_window: false,
        first_failed_build: current_build,
        failed_in_window,
        nightlies_compared: usable.len() as u32,
        runs: previous.iter().map(|p| p.baseline.letter()).collect(),
        run_jobs: previous
            .iter()
            .map(|p| p.job_id.clone().unwrap_or_default())
            .collect(),
        notes: Vec::new(),
    };
    let Some(first) = usable.first() else {
        trend.notes = notes;
        return trend;
    };
    match &first.baseline {
        Baseline::Failed {
            fingerprint: previous_fingerprint,
        } => {
            let streak: Vec<&&NightlyBaseline> = usable
                .iter()
                .take_while(|p| matches!(p.baseline, Baseline::Failed { .. }))
                .collect();
            trend.trend = Trend::Continuing;
            trend.streak = 1 + streak.len() as u32;
            trend.streak_reaches_past_window = streak.len() == usable.len();
            trend.first_failed_build = streak.last().map_or(current_build, |p| p.build_number);
            if let (Some(now), Some(before)) = (fingerprint, previous_fingerprint.as_deref()) {
                if now != before {
                    notes.push(format!(
                        "the error changed since nightly {}: it was {before:?}",
                        first.build_number
                    ));
                }
            }
        }
        Baseline::Passed => {
            trend.trend = if failed_in_window > 0 {
                Trend::Intermittent
            } else {
                Trend::New
            };
        }
        Baseline::NotRun | Baseline::NoAnswer(_) => unreachable!("filtered out above"),
    }
    trend.notes = notes;
    trend
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nightly(build_number: u64, baseline: Baseline) -> NightlyBaseline {
        NightlyBaseline {
            build_number,
            baseline,
            job_id: Some(format!("job-{build_number}")),
        }
    }
    fn failed(fingerprint: &str) -> Baseline {
        Baseline::Failed {
            fingerprint: Some(fingerprint.to_string()),
        }
    }
    fn lost() -> Baseline {
        Baseline::NoAnswer("agent lost".into())
    }

    #[test]
    fn every_trend_from_its_window() {
        use Baseline::Passed;
        let check = |previous: Vec<NightlyBaseline>, expected: (Trend, u32, bool, u64, u32)| {
            let t = assess_trend(100, Some("E"), &previous);
            assert_eq!(
                (
                    t.trend,
                    t.streak,
                    t.streak_reaches_past_window,
                    t.first_failed_build,
                    t.failed_in_window
                ),
                expected,
                "{previous:?}"
            );
        };
        check(
            vec![nightly(99, Passed), nightly(98, Passed)],
            (Trend::New, 1, false, 100, 0),
        );
        check(
            vec![
                nightly(99, failed("E")),
                nightly(98, failed("E")),
                nightly(97, Passed),
            ],
            (Trend::Continuing, 3, false, 98, 2),
        );
        check(
            vec![nightly(99, failed("E")), nightly(98, failed("E"))],
            (Trend::Continuing, 3, true, 98, 2),
        );
        check(
            vec![
                nightly(99, Passed),
                nightly(98, failed("E")),
                nightly(97, Passed),
            ],
            (Trend::Intermittent, 1, false, 100, 1),
        );
        // A lost baseline is skipped, not read as a pass: the nightly before it failed.
        check(
            vec![
                nightly(99, lost()),
                nightly(98, failed("E")),
                nightly(97, Passed),
            ],
            (Trend::Continuing, 2, false, 98, 1),
        );
        check(
            vec![nightly(99, lost())],
            (Trend::Unknown, 1, false, 100, 0),
        );
        check(vec![], (Trend::Unknown, 1, false, 100, 0));
    }

    #[test]
    fn each_nightly_is_one_letter_beside_its_job() {
        let t = assess_trend(
            100,
            Some("E"),
            &[
                nightly(99, failed("E")),
                nightly(98, Baseline::NotRun),
                nightly(97, lost()),
                nightly(96, Baseline::Passed),
            ],
        );
        assert_eq!(t.runs, "FN?P");
        assert_eq!(t.run_jobs[1], "job-98");
        assert_eq!(
            (t.trend, t.streak, t.nightlies_compared),
            (Trend::Continuing, 2, 2)
        );
        assert_eq!(t.notes[0], "nightly 98 skipped: the job did not run");
    }

    #[test]
    fn notes_name_skipped_nightlies_and_a_changed_error() {
        let t = assess_trend(
            100,
            Some("E2"),
            &[nightly(99, lost()), nightly(98, failed("E1"))],
        );
        assert_eq!(
            t.notes,
            vec![
                "nightly 99 skipped: agent lost".to_string(),
                "the error changed since nightly 98: it was \"E1\"".to_string()
            ]
        );
    }
}
