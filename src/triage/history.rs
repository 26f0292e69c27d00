//! Assessment of one test across builds. Pure: a timeline in, a verdict out.
//!
//! The original's vocabulary and thresholds are kept (REGRESSION, FLAKE_ONSET, PERSISTENT_FAIL,
//! SPORADIC, INSUFFICIENT_DATA; fewer than 3 builds is too few; 0.2 / 0.8 rates; a fingerprint is
//! consistent above 80%), its flaws are fixed:
//! * a pass→fail transition is a REGRESSION with or without fingerprints — fingerprints and the
//!   number of failing builds after it set the confidence;
//! * the transition names the last passing and first failing build and commit, with a compare
//!   URL for the range;
//! * FIXED: failing, then passing in the newest builds;
//! * flakiness looks at alternation and at recency (a rising fail rate is an onset), and a
//!   test that failed and passed on the same commit is flaky, whatever the rates.

pub use crate::model::{Assessment, Confidence, HistoryClass, TestStatus, Transition};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};

/// What one build says about the test; `found` entries have `status` pass or fail.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Observation {
    pub build_number: u64,
    pub commit: String,
    pub status: TestStatus,
    /// Fingerprints of the failing runs in this build.
    #[serde(default)]
    pub fingerprints: Vec<String>,
}

/// Fewer found builds than this cannot show a pattern (the original's 3).
const MIN_FOUND: usize = 3;
const LOW_RATE: f64 = 0.2;
const HIGH_RATE: f64 = 0.8;
const CONSISTENT_SHARE: f64 = 0.8;

fn fail_rate(entries: &[&Observation]) -> f64 {
    if entries.is_empty() {
        return 0.0;
    }
    entries
        .iter()
        .filter(|e| e.status == TestStatus::Fail)
        .count() as f64
        / entries.len() as f64
}

fn percent(rate: f64) -> String {
    format!("{:.1}%", rate * 100.0)
}

/// Whether more than 80% of the failing runs share one fingerprint; `None` without any.
fn consistent_fingerprint(entries: &[&Observation]) -> Option<bool> {
    let prints: Vec<&String> = entries.iter().flat_map(|e| e.fingerprints.iter()).collect();
    if prints.is_empty() {
        return None;
    }
    let mut counts: HashMap<&String, usize> = HashMap::new();
    for print in &prints {
        *counts.entry(print).or_default() += 1;
    }
    let most = counts.values().copied().max().unwrap_or(0);
    Some(most as f64 / prints.len() as f64 > CONSISTENT_SHARE)
}

fn compare_url(repo: &str, from: &str, to: &str) -> Option<String> {
    (!from.is_empty() && !to.is_empty() && from != to)
        .then(|| format!("https://github.com/{repo}/compare/{from}...{to}"))
}

fn transition(before: &Observation, after: &Observation, repo: &str) -> Transition {
    Transition {
        last_good_build: before.build_number,
        last_good_commit: before.commit.clone(),
        first_bad_build: after.build_number,
        first_bad_commit: after.commit.clone(),
        compare_url: compare_url(repo, &before.commit, &after.commit),
    }
}

/// Assesses `timeline` (any order; sorted here oldest first by build number). `repo` is
/// `owner/name` for compare URLs.
pub fn assess(timeline: &[Observation], repo: &str) -> Assessment {
    let mut found: Vec<&Observation> = timeline
        .iter()
        .filter(|e| e.status != TestStatus::Unknown)
        .collect();
    found.sort_by_key(|e| e.build_number);
    let n = found.len();
    if n < MIN_FOUND {
        return plain(
            HistoryClass::InsufficientData,
            Confidence::Low,
            vec![
                format!("Test found in only {n} builds"),
                "Need at least 3 builds to detect patterns".to_string(),
            ],
        );
    }
    let flaky_commits = flaky_commits(&found);
    let regression = if flaky_commits.is_empty() {
        regression(&found, repo)
    } else {
        None
    };
    regression
        .or_else(|| fixed(&found, repo))
        .or_else(|| flaky(&found, &flaky_commits))
        .unwrap_or_else(|| steady(&found))
}

/// An assessment without a transition.
fn plain(classification: HistoryClass, confidence: Confidence, notes: Vec<String>) -> Assessment {
    Assessment {
        classification,
        confidence,
        notes,
        transition_build: None,
        transition: None,
    }
}

/// Commits the test failed on in one build and passed on in another: flaky by definition.
fn flaky_commits<'o>(found: &[&'o Observation]) -> Vec<&'o str> {
    let mut outcomes_by_commit: HashMap<&str, HashSet<TestStatus>> = HashMap::new();
    for entry in found {
        outcomes_by_commit
            .entry(entry.commit.as_str())
            .or_default()
            .insert(entry.status);
    }
    outcomes_by_commit
        .into_iter()
        .filter(|(commit, statuses)| !commit.is_empty() && statuses.len() == 2)
        .map(|(commit, _)| commit)
        .collect()
}

/// REGRESSION: a clean change of outcome, the first point with <20% failures before and >80%
/// after.
fn regression(found: &[&Observation], repo: &str) -> Option<Assessment> {
    let n = found.len();
    let split = (1..n).find(|&i| {
        let (before, after) = found.split_at(i);
        fail_rate(before) < LOW_RATE && fail_rate(after) > HIGH_RATE
    })?;
    // The split only says where the rates change; the transition is the first failure at or
    // after it, and the last pass before that failure.
    let i = (split..n)
        .find(|&k| found[k].status == TestStatus::Fail)
        .unwrap_or(split);
    let after = &found[i..];
    let consistent = consistent_fingerprint(after);
    let confidence = match (after.len(), consistent) {
        (3.., Some(true)) => Confidence::High,
        (2.., Some(false)) => Confidence::Low,
        (2.., _) => Confidence::Med,
        _ => Confidence::Low,
    };
    let last_good = found[..i]
        .iter()
        .rev()
        .find(|e| e.status == TestStatus::Pass)
        .copied()
        .unwrap_or(found[i - 1]);
    let first_bad = after[0];
    let notes = vec![
        format!(
            "Clear transition at build {} (commit {}); last pass in build {} (commit {})",
            first_bad.build_number,
            short(&first_bad.commit),
            last_good.build_number,
            short(&last_good.commit)
        ),
        match consistent {
            Some(true) => format!(
                "Consistent failure fingerprint across {} builds after transition",
                after.len()
            ),
            Some(false) => "Failure fingerprints after the transition differ".to_string(),
            None => format!(
                "Failing in {} builds after transition (no error message to compare)",
                after.len()
            ),
        },
        format!("Fail rate before: {}", percent(fail_rate(&found[..i]))),
        format!("Fail rate after: {}", percent(fail_rate(after))),
    ];
    Some(Assessment {
        classification: HistoryClass::Regression,
        confidence,
        notes,
        transition_build: Some(first_bad.build_number),
        transition: Some(transition(last_good, first_bad, repo)),
    })
}

/// FIXED: a failing run ended and the newest builds pass.
fn fixed(found: &[&Observation], repo: &str) -> Option<Assessment> {
    let n = found.len();
    let trailing_passes = found
        .iter()
        .rev()
        .take_while(|e| e.status == TestStatus::Pass)
        .count();
    if trailing_passes < 2 || trailing_passes >= n {
        return None;
    }
    let failing_before = &found[..n - trailing_passes];
    let recent_failures = failing_before
        .iter()
        .rev()
        .take_while(|e| e.status == TestStatus::Fail)
        .count();
    if recent_failures < 2 || fail_rate(failing_before) <= 0.5 {
        return None;
    }
    let last_bad = failing_before[failing_before.len() - 1];
    let first_good = found[n - trailing_passes];
    let confidence = if trailing_passes >= 3 {
        Confidence::High
    } else {
        Confidence::Med
    };
    Some(Assessment {
        classification: HistoryClass::Fixed,
        confidence,
        notes: vec![
            format!(
                "Failing in {recent_failures} builds up to build {} (commit {}), passing since build {} (commit {})",
                last_bad.build_number,
                short(&last_bad.commit),
                first_good.build_number,
                short(&first_good.commit)
            ),
            format!("Passing in the newest {trailing_passes} builds"),
        ],
        transition_build: Some(first_good.build_number),
        transition: Some(Transition {
            last_good_build: first_good.build_number,
            last_good_commit: first_good.commit.clone(),
            first_bad_build: last_bad.build_number,
            first_bad_commit: last_bad.commit.clone(),
            compare_url: compare_url(repo, &last_bad.commit, &first_good.commit),
        }),
    })
}

/// FLAKE_ONSET or SPORADIC: it failed and passed on one commit, or it alternates.
fn flaky(found: &[&Observation], flaky_commits: &[&str]) -> Option<Assessment> {
    let overall = fail_rate(found);
    let flips = found
        .windows(2)
        .filter(|w| w[0].status != w[1].status)
        .count();
    if flaky_commits.is_empty() && !((LOW_RATE..=HIGH_RATE).contains(&overall) && flips >= 3) {
        return None;
    }
    let half = found.len() / 2;
    let (older, newer) = (fail_rate(&found[..half]), fail_rate(&found[half..]));
    let prints: HashSet<&String> = found.iter().flat_map(|e| e.fingerprints.iter()).collect();
    let mut notes = vec![format!(
        "Intermittent failures: {} fail rate, {flips} pass/fail alternations",
        percent(overall)
    )];
    if !flaky_commits.is_empty() {
        notes.push(format!(
            "Failed and passed on the same commit in {} case(s)",
            flaky_commits.len()
        ));
    }
    if prints.len() > 1 {
        notes.push(format!(
            "{} different failure fingerprints detected",
            prints.len()
        ));
    }
    notes.push(format!(
        "Fail rate older half {} → newer half {}",
        percent(older),
        percent(newer)
    ));
    // Alternating as much or more lately is flaky now; alternating only earlier is quieting down.
    let onset = newer >= older || !flaky_commits.is_empty();
    let confidence = if flaky_commits.is_empty() {
        Confidence::Med
    } else {
        Confidence::High
    };
    let classification = if onset {
        HistoryClass::FlakeOnset
    } else {
        HistoryClass::Sporadic
    };
    Some(plain(classification, confidence, notes))
}

/// PERSISTENT_FAIL when it nearly always fails, else SPORADIC.
fn steady(found: &[&Observation]) -> Assessment {
    let overall = fail_rate(found);
    if overall > HIGH_RATE {
        let consistent = consistent_fingerprint(found);
        return plain(
            HistoryClass::PersistentFail,
            Confidence::High,
            vec![
                format!("Failing in {} of recent builds", percent(overall)),
                format!("Consistent fingerprint: {}", consistent.unwrap_or(false)),
                "Test has been broken for extended period".to_string(),
            ],
        );
    }
    let confidence = if overall < LOW_RATE {
        Confidence::High
    } else {
        Confidence::Med
    };
    plain(
        HistoryClass::Sporadic,
        confidence,
        vec![
            format!("Rare failures: {} fail rate", percent(overall)),
            "Test is mostly stable with occasional failures".to_string(),
        ],
    )
}

fn short(commit: &str) -> &str {
    if commit.is_empty() {
        "unknown"
    } else {
        crate::model::short_sha(commit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `pattern`, oldest first: P pass, F fail (fingerprint "a"), f fail (fingerprint "b"), U unknown.
    fn timeline(pattern: &str) -> Vec<Observation> {
        pattern
            .chars()
            .enumerate()
            .map(|(i, c)| Observation {
                build_number: 1000 + i as u64,
                commit: format!("{:040x}", i + 1),
                status: match c {
                    'P' => TestStatus::Pass,
                    'U' => TestStatus::Unknown,
                    _ => TestStatus::Fail,
                },
                fingerprints: match c {
                    'F' => vec!["a".into()],
                    'f' => vec!["b".into()],
                    _ => vec![],
                },
            })
            .collect()
    }

    fn class(pattern: &str) -> (HistoryClass, Confidence) {
        let a = assess(&timeline(pattern), "vllm-project/vllm");
        (a.classification, a.confidence)
    }

    #[test]
    fn classes() {
        use Confidence::*;
        use HistoryClass::*;
        assert_eq!(class("PP"), (InsufficientData, Low));
        assert_eq!(class("PPPPPPPFFFF"), (Regression, High));
        assert_eq!(
            class("PPPPPxxxxx"),
            (Regression, Med),
            "no fingerprints: still a regression"
        );
        assert_eq!(
            class("PPPPPPPPPF"),
            (Regression, Low),
            "one failing build is weak evidence"
        );
        assert_eq!(class("FFFFFPPPP"), (Fixed, High));
        assert_eq!(class("FFFFFFFFFF"), (PersistentFail, High));
        assert_eq!(class("PFPFPPFPPF"), (FlakeOnset, Med));
        assert_eq!(
            class("PFfPFPPPPP"),
            (Sporadic, Med),
            "alternating early, quiet lately"
        );
        assert_eq!(class("PPPPPPPPPPPPFPPPPPPP"), (Sporadic, High));
        assert_eq!(
            class("PUPUPUFFUF"),
            (Regression, High),
            "unknown builds are skipped"
        );
    }

    #[test]
    fn transition_is_the_first_failure_not_the_rate_split() {
        // 25 passes then 15 failures: the rates already split 3 builds early.
        let pattern = format!("{}{}", "P".repeat(25), "F".repeat(15));
        let a = assess(&timeline(&pattern), "r");
        let t = a.transition.expect("transition");
        assert_eq!((t.last_good_build, t.first_bad_build), (1024, 1025));
    }

    #[test]
    fn regression_names_the_transition() {
        let a = assess(&timeline("PPPPPFFFF"), "vllm-project/vllm");
        let t = a.transition.expect("transition");
        assert_eq!((t.last_good_build, t.first_bad_build), (1004, 1005));
        assert_eq!(a.transition_build, Some(1005));
        assert_eq!(
            t.compare_url.as_deref(),
            Some("https://github.com/vllm-project/vllm/compare/0000000000000000000000000000000000000005...0000000000000000000000000000000000000006")
        );
    }

    #[test]
    fn same_commit_fail_and_pass_is_flaky() {
        let mut t = timeline("PPPPPFFFF");
        t[8].commit = t[7].commit.clone();
        t[8].status = TestStatus::Pass;
        t[7].status = TestStatus::Fail;
        let a = assess(&t, "r");
        assert_eq!(a.classification, HistoryClass::FlakeOnset);
        assert!(a.notes.iter().any(|n| n.contains("same commit")));
    }
}
