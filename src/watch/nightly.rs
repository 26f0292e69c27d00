//! Choosing "last night's build": the newest scheduled nightly on the branch whose result is in.

use crate::buildkite::{Build, BuildkiteClient, ListBuilds};
use regex::Regex;
use std::sync::LazyLock;

/// vLLM's schedules use "Full CI run - nightly" (ci) and "AMD Full CI Run - nightly" (amd-ci);
/// "Full CI run - daily" and torch-nightly runs are other schedules.
static NIGHTLY_MESSAGE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)\bnightly\b").expect("valid"));
static TORCH_NIGHTLY: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)torch nightly").expect("valid"));

#[derive(Debug, Clone)]
pub struct NightlyChoice {
    pub number: u64,
    /// Says which build was chosen and why, and what was skipped.
    pub explanation: String,
}

/// Lists the branch's builds of the last `window_hours` and picks the nightly.
pub async fn latest_nightly(
    client: &BuildkiteClient,
    org: &str,
    pipeline: &str,
    branch: &str,
    window_hours: u32,
) -> Result<NightlyChoice, super::WatchError> {
    let since = chrono::Utc::now() - chrono::Duration::hours(i64::from(window_hours));
    let filter = ListBuilds::created_since(branch, since);
    let builds = client
        .list_builds(
            org,
            pipeline,
            &filter,
            crate::buildkite::client::MAX_LIST_PAGES,
        )
        .await?;
    pick_nightly(&builds, &format!("{org}/{pipeline}"), branch, window_hours)
        .map_err(super::WatchError::NotFound)
}

pub(super) fn is_nightly(build: &Build) -> bool {
    let message = build.message.as_deref().unwrap_or("");
    build.source.as_deref() == Some("schedule")
        && NIGHTLY_MESSAGE.is_match(message)
        && !TORCH_NIGHTLY.is_match(message)
}

/// Picks from `builds` (newest first). `Err` says what was searched and what was there.
pub fn pick_nightly(
    builds: &[Build],
    pipeline: &str,
    branch: &str,
    window_hours: u32,
) -> Result<NightlyChoice, String> {
    let mut skipped = Vec::new();
    for build in builds.iter().filter(|b| is_nightly(b)) {
        if build.build_state().has_result() {
            let mut explanation = format!(
                "newest scheduled nightly on {branch} of {pipeline} within {window_hours}h: #{} {:?} ({}, created {})",
                build.number,
                build.message.as_deref().unwrap_or("").trim(),
                build.state(),
                build.created_at.as_deref().unwrap_or("unknown"),
            );
            if !skipped.is_empty() {
                explanation.push_str(&format!("; skipped newer {}", skipped.join(", ")));
            }
            return Ok(NightlyChoice {
                number: build.number,
                explanation,
            });
        }
        skipped.push(format!(
            "#{} ({}, no result yet)",
            build.number,
            build.state()
        ));
    }
    let newest: Vec<String> = builds
        .iter()
        .take(5)
        .map(|b| {
            format!(
                "#{} source={} state={} message={:?}",
                b.number,
                b.source.as_deref().unwrap_or("?"),
                b.state(),
                crate::logs::bounded_text(
                    b.message
                        .as_deref()
                        .unwrap_or("")
                        .lines()
                        .next()
                        .unwrap_or(""),
                    60
                )
            )
        })
        .collect();
    let seen = if newest.is_empty() {
        "no builds at all".to_string()
    } else {
        format!("newest builds: {}", newest.join("; "))
    };
    let running = if skipped.is_empty() {
        String::new()
    } else {
        format!(" Nightlies still running: {}.", skipped.join(", "))
    };
    Err(format!(
        "no finished scheduled nightly build on branch {branch} of {pipeline} in the last {window_hours}h ({} builds searched; {seen}).{running} Try a longer window (CIWATCH_NIGHTLY_WINDOW_HOURS) or scan a build by number.",
        builds.len()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(number: u64, source: &str, state: &str, message: &str) -> Build {
        Build {
            number,
            source: Some(source.into()),
            state: Some(state.into()),
            message: Some(message.into()),
            ..Default::default()
        }
    }

    #[test]
    fn picks_newest_finished_scheduled_nightly() {
        let builds = [
            build(48200, "webhook", "failed", "Fix nightly test"),
            build(48199, "schedule", "running", "Full CI run - nightly"),
            build(48198, "schedule", "failed", "Full CI run torch nightly"),
            build(48197, "schedule", "passed", "Full CI run - daily"),
            build(48161, "schedule", "failed", "Full CI run - nightly"),
        ];
        let choice = pick_nightly(&builds, "vllm/ci", "main", 48).expect("found");
        assert_eq!(choice.number, 48161);
        assert!(
            choice.explanation.contains("skipped newer #48199 (running"),
            "{}",
            choice.explanation
        );
    }

    #[test]
    fn none_found_names_window_and_newest_builds() {
        let builds = [build(1, "webhook", "passed", "Merge x")];
        let error = pick_nightly(&builds, "vllm/ci", "main", 48).expect_err("none");
        assert!(error.contains("last 48h"), "{error}");
        assert!(error.contains("#1 source=webhook state=passed"), "{error}");
    }
}
