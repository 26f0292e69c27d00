//! Recurring failures across recent main-branch builds: scan the failed builds of a window and
//! group their failures by key.

use super::call::{Enrichment, Presentation, ScanCall, ScanOptions, Snapshot};
use super::{Progress, WatchError};
use crate::buildkite::{Build, BuildKey, ListBuilds, PipelineKey};
use crate::model::{
    AnalysisWindow, AnalyzedBuild, DetailLevel, FailurePage, MainBranchAnalysis, RecurringFailure,
};
use crate::reader::JobReader;
use crate::triage::recurrence::{aggregate, BuildFailures};

/// States asked for in the listing: builds whose jobs failed (see `BuildState::has_failures`).
const FAILED_STATES: [&str; 3] = ["failed", "failing", "canceled"];

/// The longest window looked at, in hours (90 days): Buildkite refuses deep listings, and a
/// larger number would only overflow the date arithmetic.
pub const MAX_HOURS_LOOKBACK: u32 = 90 * 24;

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

/// Lists the window's failed builds with their jobs (one request: no `get build` per build),
/// then scans the newest `max_builds` of them through the job-outcome reader.
pub async fn analyze_main_branch(
    reader: &JobReader<'_>,
    enrichment: Enrichment<'_>,
    pipeline: &PipelineKey,
    options: &MainBranchOptions,
    progress: &dyn Progress,
) -> Result<MainBranchAnalysis, WatchError> {
    let (org, pipeline) = (pipeline.org.as_str(), pipeline.pipeline.as_str());
    let work = async {
        let mut warnings = Vec::new();
        let hours_lookback = options.hours_lookback.clamp(1, MAX_HOURS_LOOKBACK);
        if hours_lookback != options.hours_lookback {
            warnings.push(format!(
                "hours_lookback {} is outside 1..={MAX_HOURS_LOOKBACK}; used {hours_lookback}",
                options.hours_lookback
            ));
        }
        let end = chrono::Utc::now();
        let start = end - chrono::Duration::hours(i64::from(hours_lookback));
        let stamp =
            |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let window = Window {
            org,
            pipeline,
            start,
        };
        let (listed_any, selected) = failed_builds(reader, &window, options, &mut warnings).await?;
        let call = MainBranchCall {
            reader,
            enrichment,
            window: &window,
            options,
            progress,
        };
        let (analyzed, scanned) = scan_each(&call, &selected, &mut warnings).await;
        progress.report(selected.len(), selected.len(), "grouping failures");
        let (failures, summary) = aggregate(&scanned);
        let (failures, page) = one_page(failures, options.scan.presentation);
        if page.is_partial() {
            warnings.push(page.note());
        }
        if selected.is_empty() {
            warnings.push(format!(
                "no failed builds on branch {} of {org}/{pipeline} in the last {hours_lookback} hours{}",
                options.branch,
                if listed_any { " (after leaving out scheduled builds)" } else { "" }
            ));
        }
        let window = AnalysisWindow {
            start_time: stamp(start),
            end_time: stamp(end),
            hours_lookback,
            builds_scanned: scanned.len(),
            builds_analyzed: analyzed,
        };
        let mut analysis = MainBranchAnalysis {
            analysis_window: window,
            summary,
            failures,
            page,
            scan_timestamp: stamp(end),
            analysis_text: None,
            warnings,
        };
        if options.scan.presentation.detail_level == DetailLevel::Full {
            analysis.analysis_text = Some(crate::report::main_branch_text(&analysis));
        }
        Ok(analysis)
    };
    crate::call::answered(work, |r| &mut r.warnings).await
}

/// The page of `failures` the caller asked for, each at its detail level.
fn one_page(
    failures: Vec<RecurringFailure>,
    presentation: Presentation,
) -> (Vec<RecurringFailure>, FailurePage) {
    let (failures, page) = presentation.page_of(failures);
    let failures = failures
        .into_iter()
        .map(|mut entry| {
            entry.failure = entry.failure.at_detail(presentation.detail_level);
            entry
        })
        .collect();
    (failures, page)
}

/// The pipeline and the window's start.
struct Window<'a> {
    org: &'a str,
    pipeline: &'a str,
    start: chrono::DateTime<chrono::Utc>,
}

/// One analysis of main: what its scans of each build read.
struct MainBranchCall<'a> {
    reader: &'a JobReader<'a>,
    enrichment: Enrichment<'a>,
    window: &'a Window<'a>,
    options: &'a MainBranchOptions,
    progress: &'a dyn Progress,
}

/// The window's newest `max_builds` failed builds with their jobs, from one listing; also
/// whether the listing held any build at all.
async fn failed_builds(
    reader: &JobReader<'_>,
    window: &Window<'_>,
    options: &MainBranchOptions,
    warnings: &mut Vec<String>,
) -> Result<(bool, Vec<Build>), WatchError> {
    let Window { org, pipeline, .. } = *window;
    let max_builds = options.max_builds.max(1);
    let filter = ListBuilds {
        exclude_jobs: false,
        states: FAILED_STATES.to_vec(),
        // Room for the scheduled builds that are left out after listing.
        per_page: max_builds * 2 + 4,
        ..ListBuilds::created_since(&options.branch, window.start)
    };
    let wanted = |b: &Build| {
        b.build_state().has_failures()
            && !(options.exclude_scheduled && b.source.as_deref() == Some("schedule"))
    };
    let listing = reader
        .client()
        .list_builds(&PipelineKey::new(org, pipeline), &filter, 1, |builds| {
            builds.iter().filter(|b| wanted(b)).count() >= max_builds
        })
        .await?;
    warnings.extend(listing.cut_warning(&format!(
        "{max_builds} failed builds on {} of {org}/{pipeline}",
        options.branch
    )));
    let listed_any = !listing.builds.is_empty();
    let selected = listing
        .builds
        .into_iter()
        .filter(wanted)
        .take(max_builds)
        .collect();
    Ok((listed_any, selected))
}

/// Scans each selected build with every failure at full detail (the result applies the
/// caller's); a build that cannot be scanned becomes a warning.
async fn scan_each(
    call: &MainBranchCall<'_>,
    selected: &[Build],
    warnings: &mut Vec<String>,
) -> (Vec<AnalyzedBuild>, Vec<BuildFailures>) {
    let MainBranchCall {
        reader,
        enrichment,
        window,
        options,
        progress,
    } = *call;
    let per_build = ScanOptions {
        presentation: Presentation::WHOLE,
        render_reports: false,
        selection: None,
        // Recurrence across these builds is this analysis' own comparison.
        compare_nightlies: 0,
        compare_pipeline: None,
        ..options.scan.clone()
    };
    let mut analyzed = Vec::new();
    let mut scanned = Vec::new();
    for (done, build) in selected.iter().enumerate() {
        progress.report(done, selected.len(), &format!("build {}", build.number));
        let commit = crate::model::short_sha(build.commit.as_deref().unwrap_or_default());
        analyzed.push(AnalyzedBuild {
            build_number: build.number.to_string(),
            commit: commit.to_string(),
            state: build.state().to_string(),
            created_at: build.created_at.clone(),
        });
        let key = BuildKey::new(window.org, window.pipeline, build.number);
        reader.remember_build(&key, build).await;
        let before = Snapshot::take();
        // Progress is reported per build; a scan's own log counts would run backwards.
        let quiet = &super::NoProgress;
        let call = ScanCall {
            reader,
            enrichment,
            key: &key,
            options: &per_build,
            progress: quiet,
        };
        match call.scan_fetched(build, before).await {
            Ok(result) => {
                warnings.extend(
                    result
                        .warnings
                        .into_iter()
                        .map(|w| format!("build {}: {w}", build.number)),
                );
                scanned.push(BuildFailures {
                    build_number: build.number.to_string(),
                    commit: commit.to_string(),
                    failures: result.failures,
                });
            }
            Err(error) => warnings.push(format!(
                "build {} could not be scanned: {error}",
                build.number
            )),
        }
    }
    (analyzed, scanned)
}
