//! Recurring failures across recent main-branch builds: scan the failed builds of a window and
//! group their failures by key.

use super::scan::{scan_build, Enrichment, ScanOptions};
use super::{Progress, WatchError};
use crate::buildkite::{BuildkiteClient, ListBuilds};
use crate::model::{AnalysisWindow, AnalyzedBuild, DetailLevel, MainBranchAnalysis};
use crate::triage::recurrence::{aggregate, BuildFailures};

/// States whose failures are read; passed builds have none, running ones are not done.
const FAILED_STATES: [&str; 3] = ["failed", "failing", "canceled"];

#[derive(Debug, Clone)]
pub struct MainBranchOptions {
    pub branch: String,
    pub hours_lookback: u32,
    pub max_builds: usize,
    /// Leave out scheduled (nightly) builds, which run everything and are scanned separately.
    pub exclude_scheduled: bool,
    /// The scan settings of each build; `max_failures` and `detail_level` apply to the result.
    pub scan: ScanOptions,
}

pub async fn analyze_main_branch(
    client: &BuildkiteClient,
    enrichment: Enrichment<'_>,
    org: &str,
    pipeline: &str,
    options: &MainBranchOptions,
    progress: &dyn Progress,
) -> Result<MainBranchAnalysis, WatchError> {
    let end = chrono::Utc::now();
    let start = end - chrono::Duration::hours(i64::from(options.hours_lookback));
    let stamp =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let filter = ListBuilds::created_since(&options.branch, start);
    let listed = client
        .list_builds(
            org,
            pipeline,
            &filter,
            crate::buildkite::client::MAX_LIST_PAGES,
        )
        .await?;
    if listed.is_empty() {
        return Err(WatchError::NotFound(format!(
            "no builds on branch {} of {org}/{pipeline} in the last {} hours",
            options.branch, options.hours_lookback
        )));
    }
    let selected: Vec<_> = listed
        .iter()
        .filter(|b| FAILED_STATES.contains(&b.state()))
        .filter(|b| !(options.exclude_scheduled && b.source.as_deref() == Some("schedule")))
        .take(options.max_builds.max(1))
        .collect();

    // Each build is scanned with every failure at full detail; the result applies the caller's.
    let per_build = ScanOptions {
        detail_level: DetailLevel::Full,
        max_failures: usize::MAX,
        selection: None,
        ..options.scan.clone()
    };
    let mut warnings = Vec::new();
    let mut analyzed = Vec::new();
    let mut scanned = Vec::new();
    for (done, build) in selected.iter().enumerate() {
        progress.report(done, selected.len(), &format!("build {}", build.number));
        let commit = build.commit.clone().unwrap_or_default();
        analyzed.push(AnalyzedBuild {
            build_number: build.number.to_string(),
            commit: commit.chars().take(8).collect(),
            state: build.state().to_string(),
            created_at: build.created_at.clone(),
        });
        match scan_build(
            client,
            enrichment,
            org,
            pipeline,
            build.number,
            &per_build,
            // Progress is reported per build; a scan's own log counts would run backwards.
            &super::NoProgress,
        )
        .await
        {
            Ok(result) => {
                warnings.extend(
                    result
                        .warnings
                        .into_iter()
                        .map(|w| format!("build {}: {w}", build.number)),
                );
                scanned.push(BuildFailures {
                    build_number: build.number.to_string(),
                    commit: commit.chars().take(8).collect(),
                    failures: result.failures,
                });
            }
            Err(error) => warnings.push(format!(
                "build {} could not be scanned: {error}",
                build.number
            )),
        }
    }
    progress.report(selected.len(), selected.len(), "grouping failures");
    let (mut failures, summary) = aggregate(&scanned);
    failures.truncate(options.scan.max_failures);
    for entry in &mut failures {
        entry.failure = entry.failure.clone().at_detail(options.scan.detail_level);
    }
    if selected.is_empty() {
        warnings.push(format!(
            "no failed builds among the {} builds of the last {} hours (after filtering)",
            listed.len(),
            options.hours_lookback
        ));
    }
    let window = AnalysisWindow {
        start_time: stamp(start),
        end_time: stamp(end),
        hours_lookback: options.hours_lookback,
        builds_scanned: scanned.len(),
        builds_analyzed: analyzed,
    };
    let mut analysis = MainBranchAnalysis {
        analysis_window: window,
        summary,
        failures,
        scan_timestamp: stamp(end),
        analysis_text: None,
        warnings,
    };
    if options.scan.detail_level == DetailLevel::Full {
        analysis.analysis_text = Some(crate::report::main_branch_text(&analysis));
    }
    Ok(analysis)
}
