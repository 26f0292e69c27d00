//! Choosing "last night's build": the newest scheduled nightly on the branch whose result is in.

use crate::buildkite::{Build, BuildkiteClient, ListBuilds, PipelineKey};
use regex::Regex;
use std::sync::LazyLock;

/// vLLM's schedules use "Full CI run - nightly" (ci) and "AMD Full CI Run - nightly" (amd-ci);
/// "Full CI run - daily" and torch-nightly runs are other schedules.
static NIGHTLY_MESSAGE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)\bnightly\b").expect("valid"));
static TORCH_NIGHTLY: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)torch nightly").expect("valid"));

/// Builds a day on the branch that a listing for nightlies is sized for (vLLM's main runs
/// about 50).
const BUILDS_PER_DAY: usize = 80;
/// The most pages of 100 builds read looking for nightlies: 4,000 builds, about 50 nightlies.
/// A listing stops earlier as soon as it holds the nightlies wanted.
pub const MAX_NIGHTLY_LISTING_PAGES: usize = 40;

/// Pages of 100 builds that hold `nightlies` nightlies (one a day), within the bound.
pub(super) fn pages_for_nightlies(nightlies: usize) -> usize {
    ((nightlies + 1) * BUILDS_PER_DAY)
        .div_ceil(100)
        .clamp(1, MAX_NIGHTLY_LISTING_PAGES)
}

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
    // Enough once a finished nightly is listed: the pick, or the one named beside a running one.
    let listing = client
        .list_builds(
            &PipelineKey::new(org, pipeline),
            &filter,
            crate::buildkite::client::MAX_LIST_PAGES,
            |builds| builds.iter().any(|b| is_nightly(b) && b.is_finished()),
        )
        .await?;
    let cut = listing.cut_warning(&format!(
        "{org}/{pipeline} on {branch} in the last {window_hours}h"
    ));
    let with_cut = |text: String| match &cut {
        Some(cut) => format!("{text}; {cut}"),
        None => text,
    };
    pick_nightly(
        &listing.builds,
        &format!("{org}/{pipeline}"),
        branch,
        window_hours,
    )
    .map(|mut choice| {
        choice.explanation = with_cut(choice.explanation);
        choice
    })
    .map_err(|error| super::WatchError::NotFound(with_cut(error)))
}

pub fn is_nightly(build: &Build) -> bool {
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
    let nightlies: Vec<&Build> = builds.iter().filter(|b| is_nightly(b)).collect();
    for (at, build) in nightlies.iter().enumerate() {
        if build.build_state().has_result() {
            let mut explanation = format!(
                "newest scheduled nightly on {branch} of {pipeline} within {window_hours}h: #{} {:?} ({}, created {})",
                build.number,
                build.message.as_deref().unwrap_or("").trim(),
                build.state(),
                build.created_at.as_deref().unwrap_or("unknown"),
            );
            explanation.push_str(&finish_note(build, &nightlies[at + 1..]));
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

/// Whether the chosen nightly has finished; when it has not, the newest one that has.
fn finish_note(chosen: &Build, older: &[&Build]) -> String {
    if chosen.is_finished() {
        return format!(
            "; finished {}",
            chosen.finished_at.as_deref().unwrap_or("unknown")
        );
    }
    let newest_finished = older
        .iter()
        .find(|b| b.is_finished())
        .map(|b| format!("#{} ({})", b.number, b.state()))
        .unwrap_or_else(|| "none in the window".to_string());
    format!(
        "; NOT FINISHED: it is still running with failures already, so more may come; the newest finished nightly is {newest_finished}"
    )
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
            finished_at: matches!(state, "passed" | "failed" | "canceled")
                .then(|| "2026-05-08T09:00:00Z".to_string()),
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
            choice.explanation.contains("; finished "),
            "{}",
            choice.explanation
        );
        assert!(
            choice.explanation.contains("skipped newer #48199 (running"),
            "{}",
            choice.explanation
        );
    }

    #[test]
    fn a_failing_nightly_is_chosen_and_said_to_be_unfinished() {
        let builds = [
            build(48199, "schedule", "failing", "Full CI run - nightly"),
            build(48161, "schedule", "failed", "Full CI run - nightly"),
        ];
        let choice = pick_nightly(&builds, "vllm/ci", "main", 48).expect("found");
        assert_eq!(choice.number, 48199);
        assert!(
            choice
                .explanation
                .contains("NOT FINISHED: it is still running with failures already, so more may come; the newest finished nightly is #48161 (failed)"),
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
